"""Can a candidate's place in the crop re-rank the heatmap's peaks? Fits a logistic regression over each
peak's features on one labelled set (the fitting set) and scores the noisy-or readout of the re-scored
peaks on another (the test set), against the raw peaks of `willis predict --readout candidates`.
Features: the peak's logit; the log density of the weights' location prior (where aneurysms lie) at the
peak; the log density of the fitting set's false peaks there (a Gaussian kernel, leaving the series
itself out on the fitting set); and the peak's rank. The fitting set's own score is two-fold
cross-validated. Willis itself never runs it.

    python tools/analysis/candidate_rescoring.py FIT_DATA FIT_RESULTS TEST_DATA TEST_RESULTS WEIGHTS
"""
import csv
import os
import sys

import nibabel as nib
import numpy as np
from scipy.ndimage import maximum_filter
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, os.path.dirname(__file__))
from readout_sweep import posterior, prior_from, score  # noqa: E402

KEEP = 20          # peaks per series
BANDWIDTH = 5.0    # mm, the false-peak kernel


def peaks_of(data, results, spacing):
    truth = {}
    for r in csv.DictReader(open(f"{data}/synth_aneurysms.csv")):
        centre = np.array([float(r["x_mm"]), float(r["y_mm"]), float(r["z_mm"])])
        truth.setdefault(r["SeriesInstanceUID"], []).append((centre, float(r["diameter_mm"])))
    labels = {r["SeriesInstanceUID"]: r for r in csv.DictReader(open(f"{data}/train.csv"))}
    out = {}
    for uid in sorted(labels):
        image = nib.load(f"{results}/series/{uid}/heatmap.nii.gz")
        affine = image.affine.copy()
        affine[:2] *= -1
        h = np.asarray(image.dataobj, dtype=np.float32)
        found = (h == maximum_filter(h, size=3, mode="constant", cval=-1)) & (h >= 0.01)
        idx, vals = np.argwhere(found), h[found]
        order = np.argsort(-vals)[:KEEP]
        idx, vals = idx[order], vals[order]
        frame = (idx - (np.array(h.shape) - 1) / 2) * spacing  # mm from the crop's centre, as the prior
        lps = (affine @ np.c_[idx, np.ones(len(idx))].T).T[:, :3]
        hit = np.zeros(len(idx), int)
        for centre, diameter in truth.get(uid, []):
            hit[np.linalg.norm(lps - centre, axis=1) <= max(4.0, diameter / 2 + 2)] = 1
        out[uid] = dict(frame=frame, p=vals.astype(float), hit=hit)
    return out, labels


def log_prior(components, x):
    logs = np.array([np.log(w) - 0.5 * (x - m) @ np.linalg.solve(c, x - m) - 0.5 * np.log(np.linalg.det(2 * np.pi * c))
                     for w, m, c in components])
    top = logs.max()
    return top + np.log(np.exp(logs - top).sum())


def log_kernel(points, x):
    d2 = ((points - x) ** 2).sum(1)
    return np.log(np.mean(np.exp(-0.5 * d2 / BANDWIDTH**2)) + 1e-12) - 1.5 * np.log(2 * np.pi * BANDWIDTH**2)


def features(data, fit, components, leave_out):
    X, y, owner = [], [], []
    for uid, d in data.items():
        false = np.concatenate([e["frame"][e["hit"] == 0] for u, e in fit.items() if not (leave_out and u == uid)])
        for k, p in enumerate(d["p"]):
            p = min(max(p, 1e-4), 1 - 1e-4)
            X.append([np.log(p / (1 - p)), log_prior(components, d["frame"][k]), log_kernel(false, d["frame"][k]), np.log1p(k)])
            y.append(d["hit"][k])
            owner.append((uid, k))
    return np.array(X), np.array(y), owner


def readout(data, owner, q, components, k=3):
    per = {}
    for (uid, n), value in zip(owner, q):
        per.setdefault(uid, []).append((value, n))
    pred = {}
    for uid, d in data.items():
        chosen = sorted(per.get(uid, []), reverse=True)[:k]
        absent = np.ones(13)
        for value, n in chosen:
            absent *= 1 - value * posterior(components, d["frame"][n])
        pred[uid] = list(1 - absent) + [1 - np.prod([1 - v for v, _ in chosen])]
    return pred


def main(fit_data, fit_results, test_data, test_results, weights):
    components, prep = prior_from(weights)
    fit, fit_labels = peaks_of(fit_data, fit_results, prep["spacing"])
    test, test_labels = peaks_of(test_data, test_results, prep["spacing"])
    names = list(next(iter(test_labels.values())).keys())[4:]
    Xf, yf, of = features(fit, fit, components, leave_out=True)
    Xt, _, ot = features(test, fit, components, leave_out=False)
    half = set(sorted(fit)[::2])
    in_half = np.array([o[0] in half for o in of])
    raw_f = readout(fit, of, np.array([fit[u]["p"][n] for u, n in of]), components)
    raw_t = readout(test, ot, np.array([test[u]["p"][n] for u, n in ot]), components)
    print("%-34s fitting set (2-fold) %.4f   test set %.4f" % ("raw peaks (willis predict)", score(fit_labels, raw_f, names, sorted(fit))[0],
                                                            score(test_labels, raw_t, names, sorted(test))[0]))
    for columns, tag in [([0], "peak logit, calibrated"), ([0, 1], "+ prior density"), ([0, 2], "+ false-peak density"),
                         ([0, 1, 2], "+ both"), ([0, 1, 2, 3], "+ both + rank")]:
        q_fit = np.zeros(len(yf))
        for train in (in_half, ~in_half):
            model = LogisticRegression(max_iter=1000).fit(Xf[train][:, columns], yf[train])
            q_fit[~train] = model.predict_proba(Xf[~train][:, columns])[:, 1]
        model = LogisticRegression(max_iter=1000).fit(Xf[:, columns], yf)
        q_test = model.predict_proba(Xt[:, columns])[:, 1]
        print("%-34s fitting set (2-fold) %.4f   test set %.4f   coefficients %s" % (
            tag, score(fit_labels, readout(fit, of, q_fit, components), names, sorted(fit))[0],
            score(test_labels, readout(test, ot, q_test, components), names, sorted(test))[0], np.round(model.coef_[0], 2)))


if __name__ == "__main__":
    main(*sys.argv[1:6])
