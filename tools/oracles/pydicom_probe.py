"""pydicom's reading of DICOM files written by Willis.

    python tools/oracles/pydicom_probe.py OUT.json FILE...

Per file: SOPInstanceUID, ImagePositionPatient, rescale, shape, and the CRC-32 of the
pixel array (little-endian), or the error pydicom raised.
"""
import json
import sys
import zlib

import numpy as np
import pydicom

out, files = sys.argv[1], sys.argv[2:]
results = []
for path in files:
    try:
        ds = pydicom.dcmread(path)
        arr = np.ascontiguousarray(ds.pixel_array.astype(ds.pixel_array.dtype.newbyteorder("<")))
        results.append({"path": path, "sop": str(ds.SOPInstanceUID), "position": [float(v) for v in ds.ImagePositionPatient],
                        "slope": float(ds.RescaleSlope), "intercept": float(ds.RescaleIntercept),
                        "shape": list(arr.shape), "dtype": arr.dtype.name, "crc32": zlib.crc32(arr.tobytes()),
                        "syntax": str(ds.file_meta.TransferSyntaxUID)})
    except Exception as e:
        results.append({"path": path, "error": f"{type(e).__name__}: {e}"})
with open(out, "w") as f:
    json.dump(results, f)
