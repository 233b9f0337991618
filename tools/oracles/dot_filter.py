"""Oracle for Willis's DotFilter: a small anisotropic volume holding a tube, a ball beside it and noise,
its Gaussian derivatives from scipy.ndimage.gaussian_filter1d, and the dot measure and its local maxima as
tools/analysis/hessian_blobs.py computes them (scipy filters, numpy's eigvalsh), written as raw arrays.

    python tools/oracles/dot_filter.py OUT_DIR
      → OUT_DIR/dot_filter/{image,measure,d0o1,d1o2,d2o0}.f32, mask.u8 and OUT_DIR/dot_filter.json
"""
import json
import os
import sys

import numpy as np
from scipy.ndimage import gaussian_filter1d, maximum_filter

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "analysis"))
from hessian_blobs import SCALES_MM, dot_filter  # noqa: E402  (the definition the analysis used)


def main(out_dir):
    folder = os.path.join(out_dir, "dot_filter")
    os.makedirs(folder, exist_ok=True)
    shape, spacing = (18, 30, 34), np.array([1.5, 0.8, 0.9])
    k, j, i = np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing)], indexing="ij")
    # A tube of radius 1.6 mm along a slanted line, and a ball of radius 1.4 mm on its wall.
    direction = np.array([0.3, 0.5, 0.81]) / np.linalg.norm([0.3, 0.5, 0.81])
    centre = np.array([13.0, 12.0, 15.0])
    p = np.stack([k, j, i], -1) - centre
    along = p @ direction
    across = np.linalg.norm(p - along[..., None] * direction, axis=-1)
    ball = np.array([13.0, 12.0, 15.0]) + np.array([0.0, 2.6, -1.4])
    image = 1.0 / (1 + np.exp((across - 1.6) * 4)) + 1.0 / (1 + np.exp((np.linalg.norm(np.stack([k, j, i], -1) - ball, axis=-1) - 1.4) * 4))
    image = np.minimum(image, 1.0) + np.random.default_rng(3).normal(0, 0.03, shape)
    image = image.astype(np.float32)
    mask = image > 0.25
    measure = dot_filter(image, spacing, mask)
    reach = [1, 3, 3]
    peaks = (measure == maximum_filter(measure, size=tuple(2 * r + 1 for r in reach))) & (measure > 0)
    order = np.argsort(-measure[peaks], kind="stable")
    flat = np.flatnonzero(peaks)[order]
    image.tofile(os.path.join(folder, "image.f32"))
    mask.astype(np.uint8).tofile(os.path.join(folder, "mask.u8"))
    measure.astype(np.float32).tofile(os.path.join(folder, "measure.f32"))
    derivatives = {"d0o1": (0, 0.7, 1), "d1o2": (1, 1.3, 2), "d2o0": (2, 2.1, 0)}
    for name, (axis, sigma, order) in derivatives.items():
        gaussian_filter1d(image, sigma, axis=axis, order=order).astype(np.float32).tofile(os.path.join(folder, name + ".f32"))
    with open(os.path.join(out_dir, "dot_filter.json"), "w") as f:
        json.dump({"shape": list(shape), "spacing": spacing.tolist(), "scales": SCALES_MM, "reach": reach,
                   "derivatives": {n: list(v) for n, v in derivatives.items()},
                   "maxima": [int(v) for v in flat], "maximaValues": [float(measure.flat[v]) for v in flat],
                   "ballVoxel": [int(round(ball[a] / spacing[a])) for a in range(3)]}, f)


if __name__ == "__main__":
    main(sys.argv[1])
