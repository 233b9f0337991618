"""Scores variants of the detector's candidate readout from a `willis predict --results` folder, without
running the network again: for each series the heatmap's local maxima (heatmap.nii.gz), named by the
location prior stored in the weights (`willis location-prior` or `willis train`), combined as noisy-or
(what `willis predict --readout candidates` does) or by their maximum, over the K strongest peaks.
It re-implements the readout's arithmetic in numpy to choose K on a validation set (it matched
`willis predict` to 5e-7 on 100 series); Willis itself never runs it.

    python tools/analysis/readout_sweep.py RESULTS_DIR TRAIN_CSV WEIGHTS [K ...]
"""
import csv
import json
import os
import sys

import nibabel as nib
import numpy as np
from safetensors import safe_open
from scipy.ndimage import maximum_filter
from sklearn.metrics import roc_auc_score


def prior_from(weights):
    with safe_open(weights, "np") as f:
        meta = f.metadata() or {}
    if "willis_location_prior" not in meta:
        sys.exit(f"{weights} carries no location prior (willis location-prior adds one)")
    comps = json.loads(meta["willis_location_prior"])["components"]
    prep = json.loads(meta["willis_preparation"])
    return [(c["weight"], np.array(c["mean"]), np.reshape(c["covariance"], (3, 3))) for c in comps], prep


def posterior(comps, x):
    logs = np.array([np.log(w) - 0.5 * (x - m) @ np.linalg.solve(c, x - m) - 0.5 * np.log(np.linalg.det(c)) for w, m, c in comps])
    e = np.exp(logs - logs.max())
    return e / e.sum()


def peaks(path, threshold=0.05, keep=20):
    h = np.asarray(nib.load(path).dataobj)  # indexed [i, j, k]
    found = (h == maximum_filter(h, size=3, mode="constant", cval=-1)) & (h >= threshold)
    idx, vals = np.argwhere(found), h[found]
    order = np.argsort(-vals)[:keep]
    return [(idx[n].astype(float), float(vals[n])) for n in order]


def noisy_or(comps, frame, scored):
    """The 14 outputs `willis predict`'s candidate readout gives for `scored`, (probability, voxel) pairs."""
    absent = np.ones(13)
    for value, v in scored:
        absent *= 1 - value * posterior(comps, frame(v))
    return list(1 - absent) + [1 - np.prod([1 - value for value, _ in scored])]


def score(truth, pred, names, uids):
    aucs = []
    for c, n in enumerate(names):
        y = [int(truth[u][n]) for u in uids]
        aucs.append(roc_auc_score(y, [pred[u][c] for u in uids]) if 0 < sum(y) < len(y) else np.nan)
    return 0.5 * (aucs[13] + np.nanmean(aucs[:13])), np.nanmean(aucs[:13]), aucs[13]


def setting(results, train_csv, weights):
    """The weights' prior, the crop frame of a grid voxel, the labels, the 14 column names, and the
    labelled series of the results folder."""
    comps, prep = prior_from(weights)
    d, h, w = prep["shape"]
    s = prep["spacing"]
    frame = lambda v: np.array([(v[0] - (w - 1) / 2) * s, (v[1] - (h - 1) / 2) * s, (v[2] - (d - 1) / 2) * s])
    truth = {r["SeriesInstanceUID"]: r for r in csv.DictReader(open(train_csv))}
    names = list(next(iter(truth.values())).keys())[4:]
    uids = sorted(u for u in os.listdir(os.path.join(results, "series")) if u in truth)
    return comps, frame, truth, names, uids


def main(results, train_csv, weights, ks):
    comps, frame, truth, names, uids = setting(results, train_csv, weights)
    found = {u: peaks(os.path.join(results, "series", u, "heatmap.nii.gz")) for u in uids}
    for combine in ("noisy-or", "max"):
        for k in ks:
            pred = {}
            for u in uids:
                absent, strongest = np.ones(13), np.zeros(13)
                for v, p in found[u][:k]:
                    q = p * posterior(comps, frame(v))
                    absent *= 1 - q
                    strongest = np.maximum(strongest, q)
                locations = 1 - absent if combine == "noisy-or" else strongest
                pred[u] = list(locations) + [1 - np.prod([1 - p for _, p in found[u][:k]])]
            print("%-8s K=%2d  score %.4f  mean location AUC %.4f  AUC Aneurysm Present %.4f" % ((combine, k) + score(truth, pred, names, uids)))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], [int(k) for k in sys.argv[4:]] or [1, 2, 3, 5, 8, 10])
