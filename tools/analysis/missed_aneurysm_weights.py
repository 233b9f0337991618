"""Per-series draw weights that lean a detector's training towards the aneurysms it misses, for
`willis train --series-weights`. It reads a training cache folder (each series' targets: its localizer
points on the grid) and the peaks a detector found there (the peaks-* folder `willis train-candidates`
writes beside the cache), and gives each series

    weight ∝ FLOOR + (1 - h)^POWER,   h: the lowest over its points of the strongest peak's probability
                                      within MATCH_MM of the point (0 when no listed peak is that close),

scaled so that the series with points keep their mean weight 1: the share of draws on series with
aneurysms stays as uniform sampling gives it, and moves within them towards the missed ones. Series
without points weigh 1. Nothing here looks at aneurysm sizes: it uses only what a user of real data
has, the points and the detector's own output. Willis itself never runs it.

    python tools/analysis/missed_aneurysm_weights.py CACHE_FOLDER PEAKS_FOLDER OUT.csv [POWER] [FLOOR] [MATCH_MM]
"""
import csv
import glob
import json
import os
import sys

import numpy as np


def main(cache, peaks_folder, out, power=4.0, floor=0.25, match_mm=4.0):
    rows, hs, lowest = [], [], []
    for path in sorted(glob.glob(f"{cache}/*.targets.json")):
        uid = os.path.basename(path)[: -len(".targets.json")]
        targets = json.load(open(path))
        spacing = json.load(open(f"{cache}/{uid}.json"))["output"]["spacing"]
        scale = np.array([spacing["x"], spacing["y"], spacing["z"]])
        points = [np.array([p["i"], p["j"], p["k"]]) for p in targets.get("points", [])]
        weight = 1.0
        if points:
            peaks_path = f"{peaks_folder}/{uid}.json"
            if not os.path.exists(peaks_path):
                continue  # a series the detector did not read (validation): left to weigh 1
            found = json.load(open(peaks_path))
            voxels = np.array(found["voxels"], dtype=float).reshape(-1, 3)
            probabilities = np.array(found["probabilities"], dtype=float)
            worst = 1.0
            for p in points:
                near = np.linalg.norm((voxels - p) * scale, axis=1) <= match_mm if len(voxels) else np.zeros(0, bool)
                h = probabilities[near].max() if near.any() else 0.0
                hs.append(h)
                worst = min(worst, h)
            weight = floor + (1 - worst) ** power
            lowest.append(worst)
        rows.append([uid, weight, bool(points)])
    positive = [r for r in rows if r[2]]
    mean = sum(r[1] for r in positive) / max(len(positive), 1)
    for r in positive:
        r[1] /= mean
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["SeriesInstanceUID", "weight"])
        w.writerows([uid, f"{weight:.6g}"] for uid, weight, _ in rows)
    hs = np.array(hs)
    weights = np.array([r[1] for r in positive])
    lowest = np.array(lowest)
    missed = lowest < 0.15
    print(f"{len(rows)} series, {len(positive)} with points ({len(hs)} points); points with no listed peak within {match_mm} mm: "
          f"{(hs == 0).sum()}, h median {np.median(hs):.3f}; series whose weakest point has h < 0.15: {missed.sum()}, "
          f"their share of the draws on series with points {weights[missed].sum() / weights.sum():.3f} (uniform {missed.mean():.3f}); "
          f"largest weight {weights.max():.3f}")


if __name__ == "__main__":
    a = sys.argv[1:]
    main(a[0], a[1], a[2], *(float(x) for x in a[3:]))
