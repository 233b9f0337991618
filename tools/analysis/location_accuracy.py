"""How often the location prior names a found aneurysm's artery. For each true aneurysm of a `willis synth`
dataset that one of a series' candidates finds (the strongest candidate within max(4 mm, radius + 2 mm) of
its centre, in a `willis predict --results` folder), the prior stored in the weights gives P(location | the
candidate's place); this prints how often its most likely location is the true one, the mean probability
it gives the true one, and the commonest confusions. Willis itself never runs it.

    python tools/analysis/location_accuracy.py DATA_DIR RESULTS_DIR WEIGHTS
"""
import collections
import csv
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from readout_sweep import posterior, setting  # noqa: E402


def main(data, results, weights):
    comps, frame, truth, names, uids = setting(results, f"{data}/train.csv", weights)
    aneurysms = collections.defaultdict(list)
    for r in csv.DictReader(open(f"{data}/synth_aneurysms.csv")):
        aneurysms[r["SeriesInstanceUID"]].append((np.array([float(r["x_mm"]), float(r["y_mm"]), float(r["z_mm"])]),
                                                  float(r["diameter_mm"]), r["location"]))
    rows = []  # (diameter, true location index, posterior, rank of the finding candidate)
    missed = 0
    for u in uids:
        candidates = json.load(open(os.path.join(results, "series", u, "candidates.json")))
        for centre, d, location in aneurysms.get(u, []):
            hit = [(n, c) for n, c in enumerate(candidates) if np.linalg.norm(np.array(c["lps"]) - centre) <= max(4.0, d / 2 + 2)]
            if not hit:
                missed += 1
                continue
            n, c = hit[0]
            rows.append((d, names.index(location), posterior(comps, frame(np.array(c["voxel"], dtype=float))), n))
    print(f"{len(rows)} aneurysms found by a candidate, {missed} by none")
    for label, keep in [("all", lambda r: True), ("found by one of the 3 strongest", lambda r: r[3] < 3),
                        ("<= 3 mm", lambda r: r[0] <= 3), ("> 3 mm", lambda r: r[0] > 3)]:
        chosen = [r for r in rows if keep(r)]
        if not chosen:
            continue
        right = sum(int(np.argmax(r[2]) == r[1]) for r in chosen)
        mass = np.mean([r[2][r[1]] for r in chosen])
        print(f"{label:34s} {len(chosen):3d}: most likely location right {right} ({right / len(chosen):.0%}); mean P(true location) {mass:.2f}")
    confusions = collections.Counter((names[r[1]], names[int(np.argmax(r[2]))]) for r in rows if np.argmax(r[2]) != r[1])
    print("commonest confusions (true -> named):")
    for (t, p), n in confusions.most_common(8):
        print(f"  {n:2d}  {t} -> {p}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
