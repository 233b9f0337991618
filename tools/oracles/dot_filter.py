"""Oracle for Willis's DotFilter: a small anisotropic volume holding a tube, a ball beside it and noise,
its Gaussian derivatives from scipy.ndimage.gaussian_filter1d, and the dot measure and its local maxima as
tools/analysis/hessian_blobs.py computes them (scipy filters, numpy's eigvalsh), written as raw arrays. And a
small CT head (skull shell, an air pocket inside, cut by the bottom face, a vessel with a ball): the head's
interior as that tool's REGION=foreground finds it, the vessel-bright image, and the strongest maxima. And a
small ball touching a large one on thick slices (an aneurysm at a junction): the strongest peaks read across
the scales and read at each scale, merged strongest first (`DotFilter.PeakSearch`).

    python tools/oracles/dot_filter.py OUT_DIR
      → OUT_DIR/dot_filter/{image,measure,d0o1,d1o2,d2o0}.f32, mask.u8, head.f32, head_region.u8,
        head_bright.f32, junction.f32 and OUT_DIR/dot_filter.json
"""
import json
import os
import sys

import numpy as np
from scipy.ndimage import gaussian_filter1d, maximum_filter

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "analysis"))
from hessian_blobs import SCALES_MM, dot_filter, inside_foreground, vessel_bright  # noqa: E402  (the analysis' definitions)


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
    head = write_head(folder)
    junction = write_junction(folder)
    with open(os.path.join(out_dir, "dot_filter.json"), "w") as f:
        json.dump({"head": head, "junction": junction, "shape": list(shape), "spacing": spacing.tolist(), "scales": SCALES_MM, "reach": reach,
                   "derivatives": {n: list(v) for n, v in derivatives.items()},
                   "maxima": [int(v) for v in flat], "maximaValues": [float(measure.flat[v]) for v in flat],
                   "ballVoxel": [int(round(ball[a] / spacing[a])) for a in range(3)]}, f)


def write_head(folder):
    shape, spacing, depth = (40, 56, 60), np.array([1.5, 1.0, 0.9]), 8.0
    k, j, i = np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing)], indexing="ij")
    p = np.stack([k, j, i], -1)
    r = np.linalg.norm((p - [12.0, 28.0, 27.0]) / [30.0, 25.0, 24.0], axis=-1)  # cut by the bottom face
    hu = np.where(r < 1, 1100.0, -1000.0)
    hu = np.where(r < 0.85, 35.0, hu)
    hu = np.where(np.linalg.norm(p - [30.0, 20.0, 20.0], axis=-1) < 3, -1000.0, hu)  # an air pocket inside
    direction = np.array([0.2, 0.3, 0.93]) / np.linalg.norm([0.2, 0.3, 0.93])
    q = p - [24.0, 30.0, 27.0]
    across = np.linalg.norm(q - (q @ direction)[..., None] * direction, axis=-1)
    ball = np.array([24.0, 32.5, 27.0])
    vessel = (across < 1.4) | (np.linalg.norm(p - ball, axis=-1) < 1.6)
    hu = np.where(vessel & (r < 0.8), 400.0, hu) + np.random.default_rng(4).normal(0, 12, shape)
    hu = hu.astype(np.float32)
    region = inside_foreground(hu, spacing, depth)
    bright = vessel_bright(hu, "CTA", region)
    measure = dot_filter(bright, spacing, (bright > 0.25) & region)
    reach = np.ceil(2.4 / spacing).astype(int)
    peaks = (measure == maximum_filter(measure, size=tuple(2 * reach + 1))) & (measure > 0)
    flat = np.flatnonzero(peaks)[np.argsort(-measure[peaks], kind="stable")]
    hu.tofile(os.path.join(folder, "head.f32"))
    region.astype(np.uint8).tofile(os.path.join(folder, "head_region.u8"))
    bright.astype(np.float32).tofile(os.path.join(folder, "head_bright.f32"))
    return {"shape": list(shape), "spacing": spacing.tolist(), "depth": depth, "maxima": [int(v) for v in flat[:10]],
            "maximaValues": [float(measure.flat[v]) for v in flat[:10]], "regionVoxels": int(region.sum()),
            "ballVoxel": [int(round(ball[a] / spacing[a])) for a in range(3)]}


def strongest_maxima(values, reach):
    """Local maxima (flat indices, values) strongest first, ties by index."""
    peaks = (values == maximum_filter(values, size=tuple(2 * r + 1 for r in reach))) & (values > 0)
    flat = np.flatnonzero(peaks)
    return sorted(zip(values.flat[flat].tolist(), flat.tolist()), key=lambda p: (-p[0], p[1]))


def merged_scale_maxima(maps, reach, count):
    """Each scale's maxima, strongest first, each left out when a stronger one kept lies within its window."""
    shape = maps[0].shape
    found = sorted((p for m in maps for p in strongest_maxima(m, reach)), key=lambda p: (-p[0], p[1]))
    kept = []
    for value, index in found:
        if len(kept) == count:
            break
        voxel = np.unravel_index(index, shape)
        if not any(all(abs(a - b) <= r for a, b, r in zip(voxel, np.unravel_index(other, shape), reach)) for _, other in kept):
            kept.append((value, index))
    return kept


def write_junction(folder):
    """A ball of radius 3 mm and one of 1 mm touching it on 2 mm slices: across the scales the large ball's
    response covers the small one, which is a maximum of the smallest scale."""
    shape, spacing = (16, 40, 40), np.array([2.0, 0.7, 0.7])
    k, j, i = np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing)], indexing="ij")
    p = np.stack([k, j, i], -1)
    large, small = np.array([15.0, 14.0, 12.0]), np.array([15.0, 14.0, 16.0])
    image = 1 / (1 + np.exp((np.linalg.norm(p - large, axis=-1) - 3) * 4)) + 1 / (1 + np.exp((np.linalg.norm(p - small, axis=-1) - 1) * 4))
    image = (np.minimum(image, 1) + np.random.default_rng(5).normal(0, 0.01, shape)).astype(np.float32)
    mask = image > 0.25
    reach = np.ceil(2.4 / spacing).astype(int).tolist()
    across = strongest_maxima(dot_filter(image, spacing, mask), reach)[:10]
    each = merged_scale_maxima(dot_filter(image, spacing, mask, each_scale=True), reach, 10)
    image.tofile(os.path.join(folder, "junction.f32"))
    return {"shape": list(shape), "spacing": spacing.tolist(), "reach": reach, "smallCentreMM": small.tolist(),
            "acrossScales": [i for _, i in across], "acrossScalesValues": [v for v, _ in across],
            "eachScale": [i for _, i in each], "eachScaleValues": [v for v, _ in each]}


if __name__ == "__main__":
    main(sys.argv[1])
