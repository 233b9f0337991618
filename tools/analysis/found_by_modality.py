"""Per modality: how many of a `willis synth` dataset's aneurysms a `willis predict --results` folder's
candidates find at all (any listed peak within max(4 mm, radius + 2 mm) of the centre, as
candidate_auc.py counts a hit), and how many among the 5 strongest. A miss here is the detector's: no
second stage can rank a peak that was never listed. Willis itself never runs it.

    python tools/analysis/found_by_modality.py DATA_DIR RESULTS_DIR
"""
import csv
import json
import os
import sys

import numpy as np


def main(data, results):
    mod = {r["SeriesInstanceUID"]: r["Modality"] for r in csv.DictReader(open(f"{data}/train.csv"))}
    stats = {}
    for r in csv.DictReader(open(f"{data}/synth_aneurysms.csv")):
        u = r["SeriesInstanceUID"]
        c = np.array([float(r["x_mm"]), float(r["y_mm"]), float(r["z_mm"])])
        d = float(r["diameter_mm"])
        f = f"{results}/series/{u}/candidates.json"
        cands = json.load(open(f)) if os.path.exists(f) else []
        ranks = [i for i, k in enumerate(cands) if np.linalg.norm(np.array(k["lps"]) - c) <= max(4.0, d / 2 + 2)]
        s = stats.setdefault(mod[u], [0, 0, 0, 0])  # aneurysms, listed, among the 5 strongest, ≤ 3 mm
        s[0] += 1
        s[1] += bool(ranks)
        s[2] += bool(ranks) and ranks[0] < 5
        s[3] += d <= 3
    for m, s in sorted(stats.items()):
        print(f"{m:12s} aneurysms {s[0]:3d} (≤3 mm {s[3]:3d})  among the listed peaks {s[1]:3d}  among the 5 strongest {s[2]:3d}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
