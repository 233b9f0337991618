"""nibabel's reading of NIfTI files, as the oracle for Willis's NIfTI reader and writer.

    python tools/oracles/nifti_probe.py OUT.json FILE...     # probe the given files
    python tools/oracles/nifti_probe.py --nibabel-tests OUT_DIR
        # probe nibabel's own test images into OUT_DIR/nibabel_images.json

Per file: NIfTI version, shape, datatype code, sform/qform codes, nibabel's affine
(img.affine), and the first 3D volume as float32 in z-y-x order: its CRC-32, and
the raw array written beside the JSON as <name>.f32.
"""
import glob
import json
import os
import sys
import zlib

import nibabel as nib
import numpy as np


def probe(path, out_dir):
    img = nib.load(path)
    data = np.asanyarray(img.get_fdata(dtype=np.float64))
    shape = data.shape
    while data.ndim < 3:
        data = data[..., np.newaxis]
    first = data.reshape(data.shape[:3] + (-1,))[..., 0] if data.ndim > 3 else data
    zyx = np.ascontiguousarray(np.transpose(first, (2, 1, 0)).astype(np.float32))
    name = os.path.basename(path)
    zyx.tofile(os.path.join(out_dir, name + ".f32"))
    header = img.header
    return {"name": name, "path": path, "version": 2 if isinstance(img, nib.Nifti2Image) else 1,
            "shape": list(shape), "datatype": int(header["datatype"]),
            "sform_code": int(header["sform_code"]), "qform_code": int(header["qform_code"]),
            "affine": img.affine.tolist(), "crc32": zlib.crc32(zyx.tobytes())}


def main():
    if sys.argv[1] == "--nibabel-tests":
        out_dir = sys.argv[2]
        os.makedirs(os.path.join(out_dir, "nibabel"), exist_ok=True)
        folder = os.path.join(os.path.dirname(nib.__file__), "tests", "data")
        entries, skipped = [], []
        for path in sorted(glob.glob(os.path.join(folder, "*.nii")) + glob.glob(os.path.join(folder, "*.nii.gz"))):
            try:
                img = nib.load(path)
                if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
                    skipped.append({"name": os.path.basename(path), "reason": f"nibabel reads it as {type(img).__name__}"})
                    continue
                entries.append(probe(path, os.path.join(out_dir, "nibabel")))
            except Exception as e:
                skipped.append({"name": os.path.basename(path), "reason": f"{type(e).__name__}: {e}"[:200]})
        with open(os.path.join(out_dir, "nibabel_images.json"), "w") as f:
            json.dump({"nibabel": nib.__version__, "files": entries, "skipped": skipped}, f, indent=1)
    else:
        out = sys.argv[1]
        results = [probe(p, os.path.dirname(out)) for p in sys.argv[2:]]
        with open(out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
