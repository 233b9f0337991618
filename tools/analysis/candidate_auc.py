"""Candidate by candidate: how well the heatmap's value p, the candidate classifier's q and √(p·q) tell
aneurysms from false peaks, over every candidate of a `willis predict --candidate-classifier --results`
folder of a `willis synth` dataset. A candidate within max(4 mm, radius + 2 mm) of a true aneurysm's centre
is a hit; the AUC by size compares each size's hits with all misses, and by modality each modality's
candidates among themselves. Willis itself never runs it.

    python tools/analysis/candidate_auc.py DATA_DIR RESULTS_DIR
"""
import csv
import json
import os
import sys

import numpy as np
from sklearn.metrics import roc_auc_score


def main(data, results):
    truth = {}
    for r in csv.DictReader(open(f"{data}/synth_aneurysms.csv")):
        centre = np.array([float(r["x_mm"]), float(r["y_mm"]), float(r["z_mm"])])
        truth.setdefault(r["SeriesInstanceUID"], []).append((centre, float(r["diameter_mm"])))
    modality = {r["SeriesInstanceUID"]: r["Modality"] for r in csv.DictReader(open(f"{data}/train.csv"))}
    rows = []  # (hit, diameter of the aneurysm hit or None, p, q, modality)
    for uid in sorted(os.listdir(f"{results}/series")):
        for c in json.load(open(f"{results}/series/{uid}/candidates.json")):
            if "classifier" not in c:
                sys.exit(f"{uid}: candidates.json holds no classifier probabilities (predict with --candidate-classifier)")
            hit = [d for centre, d in truth.get(uid, []) if np.linalg.norm(np.array(c["lps"]) - centre) <= max(4.0, d / 2 + 2)]
            rows.append((bool(hit), hit[0] if hit else None, c["heatmap"], c["classifier"], modality.get(uid, "?")))
    y = np.array([r[0] for r in rows])
    p = np.array([r[2] for r in rows])
    q = np.array([r[3] for r in rows])
    print(f"{len(rows)} candidates, {y.sum()} hits")
    print("all       AUC p %.3f  q %.3f  sqrt(p q) %.3f" % (roc_auc_score(y, p), roc_auc_score(y, q), roc_auc_score(y, np.sqrt(p * q))))
    for low, high in [(0, 3), (3, 5), (5, 100)]:
        keep = np.array([not r[0] or low < r[1] <= high for r in rows])
        if y[keep].sum() == 0:
            continue
        label = f"{low}–{high} mm" if high < 100 else f"> {low} mm"
        print("%-9s AUC p %.3f  q %.3f  sqrt(p q) %.3f  (%d hits)" % (label, roc_auc_score(y[keep], p[keep]), roc_auc_score(y[keep], q[keep]),
                                                                   roc_auc_score(y[keep], np.sqrt(p[keep] * q[keep])), y[keep].sum()))
    for m in sorted({r[4] for r in rows}):
        keep = np.array([r[4] == m for r in rows])
        if y[keep].sum() == 0 or y[keep].all():
            continue
        print("%-9s AUC p %.3f  q %.3f  sqrt(p q) %.3f  (%d hits of %d)" % (m[:9], roc_auc_score(y[keep], p[keep]), roc_auc_score(y[keep], q[keep]),
                                                                         roc_auc_score(y[keep], np.sqrt(p[keep] * q[keep])), y[keep].sum(), keep.sum()))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
