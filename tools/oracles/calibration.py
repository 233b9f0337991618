"""Oracle for Willis's candidate calibration (CandidateCalibration.fit): scikit-learn's
LogisticRegression on the logit of each score, with an L2 penalty on the slope alone
(scikit-learn never penalises the intercept: C = 1 / ridge), solved to a tight tolerance.
Three cases: scores drawn from a known logistic model, a small set with ties, and scores
exactly 0 and 1 (clamped to 1e-6 and 1 - 1e-6 before the logit, as Willis does).

    python tools/oracles/calibration.py OUT_DIR      # writes OUT_DIR/calibration.json
"""
import json
import os
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression

RIDGE = 1e-3


def fit(scores, labels):
    s = np.clip(np.asarray(scores, dtype=np.float64), 1e-6, 1 - 1e-6)
    x = np.log(s / (1 - s)).reshape(-1, 1)
    model = LogisticRegression(C=1 / RIDGE, solver="lbfgs", tol=1e-12, max_iter=100000)
    model.fit(x, np.asarray(labels, dtype=int))
    return {"scores": list(map(float, scores)), "labels": list(map(int, labels)),
            "slope": float(model.coef_[0, 0]), "intercept": float(model.intercept_[0])}


def main(out_dir):
    rng = np.random.default_rng(5)
    # Scores whose logit is normal; labels drawn from σ(1.7·logit(s) − 2.3).
    z = rng.normal(-1.0, 1.5, 3000)
    scores = 1 / (1 + np.exp(-z))
    labels = rng.random(3000) < 1 / (1 + np.exp(-(1.7 * z - 2.3)))
    cases = [fit(scores, labels)]
    # A few levels only: many ties.
    small = np.round(rng.random(80) * 5) / 5 * 0.9 + 0.05
    cases.append(fit(small, rng.random(80) < small * 0.6))
    # Saturated scores at both ends.
    ends = np.concatenate([np.zeros(10), np.ones(10), rng.random(40)])
    cases.append(fit(ends, np.concatenate([rng.random(10) < 0.2, rng.random(10) < 0.8, rng.random(40) < 0.5])))
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "calibration.json"), "w") as f:
        json.dump({"ridge": RIDGE, "cases": cases}, f)


if __name__ == "__main__":
    main(sys.argv[1])
