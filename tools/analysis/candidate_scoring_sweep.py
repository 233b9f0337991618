"""Scores the candidate readout under each way of combining the heatmap's value p and the candidate
classifier's probability q (`willis predict --candidate-classifier ... --candidate-scoring`), and each
number of candidates K, from a `willis predict --results` folder whose candidates.json files hold both
(the classifier's peaks, all of them). It re-implements the readout's arithmetic in numpy
(tools/analysis/readout_sweep.py) so a rule and K can be chosen on a validation set; Willis itself
never runs it.

    python tools/analysis/candidate_scoring_sweep.py RESULTS_DIR TRAIN_CSV WEIGHTS [K ...]

With CLASSIFIER=path/candidate-classifier.safetensors each rule's scores go through the calibration those
weights carry for it, as `willis predict` applies it (without, the raw scores: the same order, other sums).
With HEATMAP_ONLY=1 the dot filter's candidates (`"source": "dot-filter"`) are left out: the same classifier
reading the heatmap's peaks alone.
"""
import json
import os
import sys

import numpy as np
from safetensors import safe_open

sys.path.insert(0, os.path.dirname(__file__))
from readout_sweep import noisy_or, score, setting  # noqa: E402

RULES = {
    "heatmap": lambda p, q: p,
    "classifier": lambda p, q: q,
    "geometric-mean": lambda p, q: np.sqrt(p * q),
}


def calibrations(path):
    """The classifier weights' calibration per rule: σ(slope · logit(s) + intercept)."""
    with safe_open(path, "np") as f:
        maps = json.loads((f.metadata() or {}).get("willis_candidate_calibration", "{}"))
    def calibrated(m):
        def apply(s):
            c = np.clip(s, 1e-6, 1 - 1e-6)
            return 1 / (1 + np.exp(-(m["slope"] * np.log(c / (1 - c)) + m["intercept"])))
        return apply
    return {rule: calibrated(m) for rule, m in maps.items()}


def main(results, train_csv, weights, ks):
    maps = calibrations(os.environ["CLASSIFIER"]) if os.environ.get("CLASSIFIER") else {}
    comps, frame, truth, names, uids = setting(results, train_csv, weights)
    found = {}
    for u in uids:
        cands = json.load(open(os.path.join(results, "series", u, "candidates.json")))
        if cands and "classifier" not in cands[0]:
            sys.exit(f"{u}: candidates.json holds no classifier probabilities (predict with --candidate-classifier)")
        found[u] = [(np.array(c["voxel"], float), c["heatmap"], c["classifier"]) for c in cands
                    if not (os.environ.get("HEATMAP_ONLY") and c.get("source") == "dot-filter")]
    for rule, combine in RULES.items():
        calibrate = maps.get(rule, lambda s: s)
        for k in ks:
            pred = {}
            for u in uids:
                scored = sorted(((calibrate(combine(p, q)), v) for v, p, q in found[u]), key=lambda t: -t[0])[:k]
                pred[u] = noisy_or(comps, frame, scored)
            print("%-15s K=%2d  score %.4f  mean location AUC %.4f  AUC Aneurysm Present %.4f" % ((rule, k) + score(truth, pred, names, uids)))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], [int(k) for k in sys.argv[4:]] or [1, 2, 3, 5, 8])
