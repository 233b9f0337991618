"""The Python side of `willis bench dot-filter`, with tools/analysis/hessian_blobs.py's definitions (scipy's
gaussian_filter, label, binary_fill_holes and distance_transform_edt, numpy's eigvalsh), timed:

measure:    the dot filter on the image and mask Willis wrote (image.f32, mask.u8); writes measure.f32;
candidates: the whole candidate source on the CT volume Willis wrote (hu.f32): the head's interior 16 mm
            deep, the vessel-bright scale, the filter, and the 20 strongest maxima in windows about 5 mm
            across; writes candidates.json (flat voxel indices and values).

    python tools/bench/dot_filter_reference.py FOLDER --shape D,H,W --spacing SD,SH,SW [--stage S] [--repeat N]
Prints {"seconds": [...]} as its last line.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "analysis"))
from hessian_blobs import dot_filter, inside_foreground, vessel_bright  # noqa: E402
from scipy.ndimage import maximum_filter  # noqa: E402


def candidates(hu, spacing):
    region = inside_foreground(hu, spacing, 16.0)
    image = vessel_bright(hu, "CTA", region)
    values = dot_filter(image, spacing, (image > 0.25) & region)
    reach = np.ceil(2.4 / spacing).astype(int)
    peaks = (values == maximum_filter(values, size=tuple(2 * reach + 1))) & (values > 0)
    flat = np.flatnonzero(peaks)[np.argsort(-values[peaks], kind="stable")][:20]
    return flat, values.flat[flat]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("--shape", required=True)
    parser.add_argument("--spacing", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stage", choices=["measure", "candidates"], default="measure")
    a = parser.parse_args()
    shape = tuple(int(v) for v in a.shape.split(","))
    spacing = np.array([float(v) for v in a.spacing.split(",")])
    if a.stage == "candidates":
        hu = np.fromfile(os.path.join(a.folder, "hu.f32"), dtype=np.float32).reshape(shape)
        found = candidates(hu, spacing)
        seconds = []
        for _ in range(a.repeat):
            start = time.perf_counter()
            found = candidates(hu, spacing)
            seconds.append(time.perf_counter() - start)
        with open(os.path.join(a.folder, "candidates.json"), "w") as f:
            json.dump({"indices": [int(v) for v in found[0]], "values": [float(v) for v in found[1]]}, f)
        print(json.dumps({"seconds": seconds}))
        return
    image = np.fromfile(os.path.join(a.folder, "image.f32"), dtype=np.float32).reshape(shape)
    mask = np.fromfile(os.path.join(a.folder, "mask.u8"), dtype=np.uint8).reshape(shape) != 0
    out = dot_filter(image, spacing, mask)  # warm-up, as Willis's side has
    seconds = []
    for _ in range(a.repeat):
        start = time.perf_counter()
        out = dot_filter(image, spacing, mask)
        seconds.append(time.perf_counter() - start)
    out.astype(np.float32).tofile(os.path.join(a.folder, "measure.f32"))
    print(json.dumps({"seconds": seconds}))


if __name__ == "__main__":
    main()
