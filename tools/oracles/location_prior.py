"""Oracle for Willis's location prior and candidate readout: localizer points drawn around 13 centres
(one location with a single point, one with none), the shrunk Gaussians fitted with numpy, the
posterior of query positions from scipy's multivariate_normal densities, and the noisy-or readout of
heatmap peaks on a 10×12×14 grid at 1.5 mm.

    python tools/oracles/location_prior.py OUT_DIR      # writes OUT_DIR/location_prior.json
"""
import json
import os
import sys

import numpy as np
from scipy.stats import multivariate_normal

RIDGE, PSEUDO = 5.0, 2.0


def main(out_dir):
    rng = np.random.default_rng(7)
    centres = rng.uniform(-40, 40, size=(13, 3))
    counts = rng.integers(4, 12, size=13)
    counts[7], counts[11] = 1, 0
    points = []
    for l in range(13):
        a = rng.normal(size=(3, 3)) * 3
        for x in rng.multivariate_normal(centres[l], a @ a.T + np.eye(3), size=counts[l]):
            points.append((x.tolist(), l))
    xs = np.array([p for p, _ in points])
    total = len(points)
    comps = []
    for l in range(13):
        own = np.array([p for p, ll in points if ll == l]).reshape(-1, 3)
        mean = own.mean(axis=0) if len(own) else xs.mean(axis=0)
        scatter = (own - mean).T @ (own - mean)
        cov = (scatter + PSEUDO * RIDGE ** 2 * np.eye(3)) / (len(own) + PSEUDO)
        comps.append({"count": int(len(own)), "weight": (len(own) + 1) / (total + 13), "mean": mean.tolist(),
                      "covariance": cov.reshape(-1).tolist()})
    queries = np.concatenate([centres + rng.normal(size=(13, 3)) * 4, rng.uniform(-80, 80, size=(6, 3)),
                              [[400.0, -300.0, 250.0]]])

    def posterior(q):
        logs = np.array([np.log(c["weight"]) + multivariate_normal(c["mean"], np.reshape(c["covariance"], (3, 3))).logpdf(q)
                         for c in comps])
        e = np.exp(logs - logs.max())
        return e / e.sum()

    shape, spacing = [10, 12, 14], 1.5  # depth, height, width
    peaks = [([3, 4, 5], 0.7), ([10, 2, 8], 0.4), ([0, 11, 9], 0.2), ([13, 0, 0], 0.05)]  # voxel i, j, k

    def frame(v):
        return np.array([(v[0] - (shape[2] - 1) / 2) * spacing, (v[1] - (shape[1] - 1) / 2) * spacing,
                         (v[2] - (shape[0] - 1) / 2) * spacing])

    readouts = {}
    for count in (1, 3, 8):
        absent, none = np.ones(13), 1.0
        for v, p in peaks[:count]:
            absent *= 1 - p * posterior(frame(v))
            none *= 1 - p
        readouts[str(count)] = (1 - absent).tolist() + [1 - none]
    with open(os.path.join(out_dir, "location_prior.json"), "w") as f:
        json.dump({"points": [p for p, _ in points], "locations": [l for _, l in points], "components": comps,
                   "queries": queries.tolist(), "posteriors": [posterior(q).tolist() for q in queries],
                   "shape": shape, "spacing": spacing,
                   "peaks": [{"voxel": v, "probability": p} for v, p in peaks], "readouts": readouts}, f)


if __name__ == "__main__":
    main(sys.argv[1])
