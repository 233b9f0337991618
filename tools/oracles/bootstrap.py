"""Oracle for Willis's bootstrap intervals of the competition score: fixed random predictions of 60
series (two prediction sets), 100 resamples of the series drawn here (28 scikit-learn calls each, most
of the oracle's time), each scored with scikit-learn's roc_auc_score (a location whose resample holds
one class is left out of the mean; a resample whose "Aneurysm Present" holds one class is left out), and
numpy's linear percentiles.

    python tools/oracles/bootstrap.py OUT_DIR      # writes OUT_DIR/bootstrap.json
"""
import json
import os
import sys

import numpy as np
from sklearn.metrics import roc_auc_score


def score(truth, scores):
    def auc(c):
        t = truth[:, c]
        return roc_auc_score(t, scores[:, c]) if t.min() != t.max() else None
    present = auc(13)
    locations = [a for a in (auc(c) for c in range(13)) if a is not None]
    if present is None or not locations:
        return None
    return (present + float(np.mean(locations))) / 2


def main(out_dir):
    rng = np.random.default_rng(23)
    n = 60
    truth = (rng.random((n, 14)) < 0.2).astype(int)
    truth[:, 13] = truth[:, :13].max(axis=1)
    a = rng.random((n, 14)) * 0.6 + truth * rng.random((n, 14)) * 0.6
    b = rng.random((n, 14)) * 0.8 + truth * rng.random((n, 14)) * 0.3
    rows = rng.integers(0, n, size=(100, n))
    sa = [score(truth[r], a[r]) for r in rows]
    pairs = [(x, score(truth[r], b[r])) for x, r in zip(sa, rows)]
    single = [x for x in sa if x is not None]
    diffs = [x - y for x, y in pairs if x is not None and y is not None]
    with open(os.path.join(out_dir, "bootstrap.json"), "w") as f:
        json.dump({
            "truth": truth.tolist(), "a": a.tolist(), "b": b.tolist(), "rows": rows.tolist(),
            "score": score(truth, a), "interval": np.percentile(single, [2.5, 97.5]).tolist(), "defined": len(single),
            "difference": score(truth, a) - score(truth, b), "differenceInterval": np.percentile(diffs, [2.5, 97.5]).tolist(),
            "differenceDefined": len(diffs), "shareAboveZero": float(np.mean(np.array(diffs) > 0)),
        }, f)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".build-fixtures")
