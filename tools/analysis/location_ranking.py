"""Per artery, how the held-out aneurysms rank among their series' candidates in a `willis predict
--candidate-classifier --results` folder of a `willis synth` dataset: how many are within reach (a candidate
within max(4 mm, radius + 2 mm) of the centre, candidate_auc.py's rule), and how many are their series'
strongest candidate, split at 3 mm. With a location name (or part of one), each of its aneurysms is listed
with its rank, and for those within reach but not first, the candidate above them: its distance, its
probability and the artery the location head names. Candidates rank by their probability, as the readout ranks
them (an ensemble's mean of calibrated scores, not its mean raw score). Willis itself never runs it.

    python tools/analysis/location_ranking.py DATA_DIR RESULTS_DIR [LOCATION]
"""
import csv
import json
import sys
from collections import defaultdict

import numpy as np


def main(data, results, wanted=None):
    rows = defaultdict(list)  # location -> (diameter, rank or None, strongest candidate, distance to it)
    for r in csv.DictReader(open(f"{data}/synth_aneurysms.csv")):
        centre = np.array([float(r[k]) for k in ("x_mm", "y_mm", "z_mm")])
        diameter = float(r["diameter_mm"])
        candidates = sorted(json.load(open(f"{results}/series/{r['SeriesInstanceUID']}/candidates.json")), key=lambda c: -c["probability"])
        near = [i for i, c in enumerate(candidates) if np.linalg.norm(np.array(c["lps"]) - centre) <= max(4.0, diameter / 2 + 2)]
        top = candidates[0] if candidates else None
        distance = np.linalg.norm(np.array(top["lps"]) - centre) if top else float("nan")
        rows[r["location"]].append((diameter, near[0] + 1 if near else None, top, distance))
    print("location: aneurysms, within reach, strongest in their series (≤ 3 mm: of how many; > 3 mm: of how many)")
    for location, found in sorted(rows.items()):
        small = [f for f in found if f[0] <= 3]
        large = [f for f in found if f[0] > 3]
        print(f"{location:45} {len(found):3} {sum(f[1] is not None for f in found):3} {sum(f[1] == 1 for f in found):3}"
              f"   (≤ 3 mm: {sum(f[1] == 1 for f in small)} of {len(small)}; > 3 mm: {sum(f[1] == 1 for f in large)} of {len(large)})")
    if wanted:
        print(f"\naneurysms of locations matching {wanted!r}:")
        for location, found in sorted(rows.items()):
            if wanted.lower() not in location.lower():
                continue
            for diameter, rank, top, distance in found:
                above = "" if rank in (None, 1) or top is None else \
                    f"; above it at {distance:.1f} mm, p {top['probability']:.3f}, named {top.get('location', '?')}"
                print(f"  {location}: {diameter:.1f} mm, rank {rank if rank else 'out of reach'}{above}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
