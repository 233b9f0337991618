"""The candidate readout as if the second stage had read only the N strongest heatmap peaks of each series,
from a `willis predict --candidate-classifier ... --results` folder that read more of them: each peak's
recorded probability (after the classifiers and their calibrations) is kept, the peaks outside the N with
the largest heatmap value are dropped, and the K best of the rest are read as `willis predict` reads them
(tools/analysis/readout_sweep.py's arithmetic). A peak's probability does not depend on the other peaks, so
one run with many peaks answers for every smaller N. Willis itself never runs it.

    python tools/analysis/peak_count_sweep.py RESULTS_DIR TRAIN_CSV WEIGHTS K N [N ...]
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from readout_sweep import noisy_or, score, setting  # noqa: E402


def main(results, train_csv, weights, k, counts):
    comps, frame, truth, names, uids = setting(results, train_csv, weights)
    found = {}
    for u in uids:
        cands = json.load(open(os.path.join(results, "series", u, "candidates.json")))
        found[u] = [(np.array(c["voxel"], float), c["heatmap"], c["probability"]) for c in cands]
    for n in counts:
        pred = {}
        for u in uids:
            listed = sorted(found[u], key=lambda c: -c[1])[:n]
            scored = sorted(((p, v) for v, _, p in listed), key=lambda t: -t[0])[:k]
            pred[u] = noisy_or(comps, frame, scored)
        print("peaks N=%2d  K=%d  score %.4f  mean location AUC %.4f  AUC Aneurysm Present %.4f" % ((n, k) + score(truth, pred, names, uids)))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), [int(n) for n in sys.argv[5:]] or [20, 50])
