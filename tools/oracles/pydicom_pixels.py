"""Oracle for DICOM pixel decoding: pydicom 3 (with the pylibjpeg, pylibjpeg-libjpeg,
pylibjpeg-openjpeg and pyjpegls plugins) decodes every CT, MR and OT image file of
pydicom's test set (pydicom-data installed). For each it writes the decoded array
(little-endian, C order) to OUT_DIR/pixels/<name>.raw and records in
OUT_DIR/pydicom_pixels.json: path, transfer syntax, shape, dtype, CRC-32 of the
bytes, min/max/mean of the rescaled values (slope/intercept applied), and the echo time.

Samples are compared as stored: YBR stays YBR (`as_rgb=False`), as Willis reads them.

    python tools/oracles/pydicom_pixels.py OUT_DIR
"""
import json
import os
import sys
import warnings
import zlib

import numpy as np
import pydicom
from pydicom.data import get_testdata_files

warnings.simplefilter("ignore")


def echo_time(ds):
    """EchoTime in ms as pydicom reads it, else an enhanced MR's EffectiveEchoTime (shared functional
    groups, then the first frame's); None without one."""
    if ds.get("EchoTime") not in (None, ""):
        return float(ds.EchoTime)
    for name in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        if name in ds and len(ds[name].value) > 0:
            group = ds[name].value[0]
            if "MREchoSequence" in group and "EffectiveEchoTime" in group.MREchoSequence[0]:
                return float(group.MREchoSequence[0].EffectiveEchoTime)
    return None


def main(out_dir):
    os.makedirs(os.path.join(out_dir, "pixels"), exist_ok=True)
    entries, undecodable = [], []
    for path in sorted(get_testdata_files()):
        try:
            ds = pydicom.dcmread(path, force=True)
        except Exception:
            continue
        if ds.get("Modality") not in ("CT", "MR", "OT") or "PixelData" not in ds:
            continue
        name = os.path.basename(path)
        syntax = str(ds.file_meta.TransferSyntaxUID) if "TransferSyntaxUID" in getattr(ds, "file_meta", {}) else ""
        try:
            ds.pixel_array_options(as_rgb=False)
            arr = ds.pixel_array
        except Exception as e:  # pydicom itself cannot decode it: not part of the oracle
            undecodable.append({"name": name, "path": path, "reason": f"{type(e).__name__}: {e}"[:200]})
            continue
        arr = np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("<")))
        raw = arr.tobytes()
        with open(os.path.join(out_dir, "pixels", name + ".raw"), "wb") as f:
            f.write(raw)
        slope = float(ds.get("RescaleSlope", 1) or 1)
        intercept = float(ds.get("RescaleIntercept", 0) or 0)
        rescaled = arr.astype(np.float64) * slope + intercept
        # Enhanced multi-frame objects: per-frame plane positions and value transformation, as
        # pydicom reads them from the per-frame and shared functional groups.
        frames = []
        if "PerFrameFunctionalGroupsSequence" in ds:
            shared = ds.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in ds else None
            for item in ds.PerFrameFunctionalGroupsSequence:
                def macro(name):
                    if name in item:
                        return item[name].value[0]
                    return shared[name].value[0] if shared is not None and name in shared else None
                pos, vt = macro("PlanePositionSequence"), macro("PixelValueTransformationSequence")
                frames.append({"position": [float(v) for v in pos.ImagePositionPatient] if pos is not None else None,
                               "slope": float(vt.RescaleSlope) if vt is not None else 1.0,
                               "intercept": float(vt.RescaleIntercept) if vt is not None else 0.0})
        entries.append({
            "frames": frames, "echo_time": echo_time(ds),
            "name": name, "path": path, "transfer_syntax": syntax, "modality": ds.get("Modality"),
            "shape": list(arr.shape), "dtype": arr.dtype.name, "crc32": zlib.crc32(raw),
            "min": float(rescaled.min()), "max": float(rescaled.max()), "mean": float(rescaled.mean()),
            "slope": slope, "intercept": intercept,
        })
    with open(os.path.join(out_dir, "pydicom_pixels.json"), "w") as f:
        json.dump({"pydicom": pydicom.__version__, "files": entries, "undecodable": undecodable,
                   "all_test_files": {os.path.basename(p): p for p in get_testdata_files()}}, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".build-fixtures")
