"""Oracle for the reference preprocessing: the notebook's normalize_volume and
resize_volume (scikit-image resize, mode='constant', anti_aliasing=True) applied to
fixed volumes, written as raw float32 for the Swift tests.

    python tools/oracles/reference_resize.py OUT_DIR
      → OUT_DIR/resize/<case>.in.f32, <case>.out.f32 and OUT_DIR/resize.json
"""
import json
import os
import sys

import numpy as np
from skimage.transform import resize


def normalize_volume(volume):  # the notebook's, verbatim
    volume = volume.astype(np.float32)
    volume = np.clip(volume, -1000, 1000)
    volume = (volume + 1000) / 2000.0
    return volume


def main(out_dir):
    os.makedirs(os.path.join(out_dir, "resize"), exist_ok=True)
    rng = np.random.default_rng(5)
    cases = {"downsample": ((37, 53, 61), (16, 24, 20)), "mixed": ((10, 40, 41), (16, 32, 12)),
             "notebook_shape": ((80, 150, 140), (64, 128, 128))}
    meta = {}
    for name, (shape, target) in cases.items():
        z, y, x = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
        hu = 1500 * np.exp(-(x ** 2 + y ** 2 + z ** 2) * 3) - 1100 + rng.normal(0, 150, shape)
        hu = hu.astype(np.float32)
        out = resize(normalize_volume(hu), target, mode="constant", anti_aliasing=True)
        hu.tofile(os.path.join(out_dir, "resize", name + ".in.f32"))
        out.astype(np.float32).tofile(os.path.join(out_dir, "resize", name + ".out.f32"))
        meta[name] = {"shape": list(shape), "target": list(target), "dtype": str(out.dtype)}
    with open(os.path.join(out_dir, "resize.json"), "w") as f:
        json.dump(meta, f)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".build-fixtures")
