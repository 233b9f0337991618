"""The Python side of `willis bench dot-filter`: tools/analysis/hessian_blobs.py's dot filter (scipy's
gaussian_filter, numpy's eigvalsh) on the image and mask Willis wrote, timed; writes its output beside them.

    python tools/bench/dot_filter_reference.py FOLDER --shape D,H,W --spacing SD,SH,SW [--repeat N]
Prints {"seconds": [...]} as its last line.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "analysis"))
from hessian_blobs import dot_filter  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("--shape", required=True)
    parser.add_argument("--spacing", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    a = parser.parse_args()
    shape = tuple(int(v) for v in a.shape.split(","))
    spacing = np.array([float(v) for v in a.spacing.split(",")])
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
