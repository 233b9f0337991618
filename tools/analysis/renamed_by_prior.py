"""Reads a `willis predict --results` folder's candidates again, naming them by the location prior of the
classifier's weights instead of however prediction named them (a location head), and writes the
submission that gives: the same candidates and probabilities, only the naming changed. So the gain of a
classifier with a location head splits into its naming and its ranking of the candidates.

    python tools/analysis/renamed_by_prior.py RESULTS_DIR TRAIN_CSV WEIGHTS OUT_CSV [K]

K is the readout's candidate count (3, `willis predict`'s default). Run on a folder whose candidates
were named by the prior, it gives that folder's own submission back (checked, stop 35). It re-implements
the readout's arithmetic in numpy (readout_sweep.py); Willis itself never runs it.
"""
import csv
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from readout_sweep import noisy_or, setting  # noqa: E402


def main(results, train_csv, weights, out, k=3):
    comps, frame, _, names, uids = setting(results, train_csv, weights)
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["SeriesInstanceUID"] + names)
        for u in uids:
            listed = json.load(open(os.path.join(results, "series", u, "candidates.json")))
            listed = listed["candidates"] if isinstance(listed, dict) else listed
            strongest = sorted(listed, key=lambda c: -c["probability"])[:k]
            scored = [(min(max(c["probability"], 0), 1), np.array(c["voxel"], dtype=float)) for c in strongest]
            writer.writerow([u] + [repr(float(p)) for p in noisy_or(comps, frame, scored)])


if __name__ == "__main__":
    main(*sys.argv[1:5], *[int(k) for k in sys.argv[5:6]])
