"""Oracle for Willis's AUC and competition score: scikit-learn's roc_auc_score on fixed
random inputs, with ties (scores rounded to a few levels) and a column with one class only,
and `roc_curve(drop_intermediate=False)` of every defined column.

    python tools/oracles/auc.py OUT_DIR      # writes OUT_DIR/auc.json
"""
import json
import os
import sys

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve


def main(out_dir):
    rng = np.random.default_rng(11)
    n = 240
    truth = (rng.random((n, 14)) < 0.15).astype(int)
    truth[:, 13] = truth[:, :13].max(axis=1)
    truth[:, 12] = 0  # one class only: undefined AUC
    scores = rng.random((n, 14)) * 0.6 + truth * rng.random((n, 14)) * 0.5
    scores[:, :6] = np.round(scores[:, :6] * 8) / 8  # many ties
    aucs = [roc_auc_score(truth[:, c], scores[:, c]) if truth[:, c].min() != truth[:, c].max() else None for c in range(14)]
    roc = []
    for c in range(14):
        if aucs[c] is None:
            roc.append(None)
            continue
        fpr, tpr, _ = roc_curve(truth[:, c], scores[:, c], drop_intermediate=False)
        roc.append({"fpr": fpr.tolist(), "tpr": tpr.tolist()})
    locations = [a for a in aucs[:13] if a is not None]
    score = (aucs[13] + float(np.mean(locations))) / 2
    with open(os.path.join(out_dir, "auc.json"), "w") as f:
        json.dump({"scores": scores.tolist(), "truth": truth.tolist(), "auc": aucs, "score": score, "roc": roc}, f)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".build-fixtures")
