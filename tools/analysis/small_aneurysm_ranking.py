"""Where the small aneurysms stand in a `willis predict --results` folder of a `willis synth` set: how many
aneurysms lie within 4 mm of a scored candidate (candidates.json), by size; and, for the aneurysms of 3 mm or
less, the best probability of a candidate within 7 mm of each against the strongest candidate of each negative
series: how many beat the strongest of the tenth-strongest negative series (0.1 false positives per negative
series). Willis itself never runs it.

    python tools/analysis/small_aneurysm_ranking.py DATA_DIR RESULTS_DIR [RESULTS_DIR ...]
"""
import csv
import json
import os
import sys

import numpy as np

BANDS = [("<= 3 mm", 0, 3), ("3-5 mm", 3, 5), ("> 5 mm", 5, 100)]


def main(data, *folders):
    truth = {}
    for r in csv.DictReader(open(f"{data}/synth_aneurysms.csv")):
        centre = np.array([float(r["x_mm"]), float(r["y_mm"]), float(r["z_mm"])])
        truth.setdefault(r["SeriesInstanceUID"], []).append((centre, float(r["diameter_mm"])))
    positive = {r["SeriesInstanceUID"]: r["Aneurysm Present"] == "1" for r in csv.DictReader(open(f"{data}/train.csv"))}
    for results in folders:
        pooled = {name: [0, 0] for name, _, _ in BANDS}
        negative_best, small_best = [], []
        for uid in sorted(os.listdir(f"{results}/series")):
            candidates = json.load(open(f"{results}/series/{uid}/candidates.json"))
            places = np.array([c["lps"] for c in candidates]).reshape(-1, 3)
            if not positive[uid]:
                negative_best.append(max((c["probability"] for c in candidates), default=0))
            for centre, diameter in truth.get(uid, []):
                distance = np.linalg.norm(places - centre, axis=1) if len(places) else np.zeros(0)
                for name, low, high in BANDS:
                    if low < diameter <= high:
                        pooled[name][0] += bool((distance <= 4).any())
                        pooled[name][1] += 1
                if diameter <= 3:
                    small_best.append(max((c["probability"] for c, d in zip(candidates, distance) if d <= 7), default=0))
        negative_best = np.sort(negative_best)[::-1]
        rank = max(int(round(0.1 * len(negative_best))) - 1, 0)
        small_best = np.array(small_best)
        print(f"{results}: within 4 mm of a candidate: " + ", ".join(f"{n} {f}/{t}" for n, (f, t) in pooled.items())
              + f"; negative series' strongest candidate: median {np.median(negative_best):.3f}, "
              + f"{rank + 1}th strongest {negative_best[rank]:.3f}; small aneurysms' best candidate: median {np.median(small_best):.3f}, "
              + f"above that: {(small_best > negative_best[rank]).sum()} of {len(small_best)}")


if __name__ == "__main__":
    main(*sys.argv[1:])
