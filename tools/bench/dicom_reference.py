"""The Python side of `willis bench dicom`: a series folder to a HU volume.

    python tools/bench/dicom_reference.py FOLDER --mode notebook|sitk [--repeat N]

notebook: the reference notebook's load_dicom_series exactly (sorted glob, pydicom
          dcmread + pixel_array, np.stack): stored values, no HU;
notebook_hu: the same loop plus the rescale to HU (float32) that Willis returns;
sitk:     SimpleITK's ImageSeriesReader (GDCM) reading the same files.
Prints {"mode", "seconds": [...], "shape"} as JSON.
"""
import argparse
import json
import os
import time
from glob import glob

import numpy as np


def notebook(folder):
    import pydicom
    slices = []
    for f in sorted(glob(os.path.join(folder, "*.dcm"))):
        ds = pydicom.dcmread(f)
        slices.append(ds.pixel_array)
    return np.stack(slices, axis=0)


def notebook_hu(folder):
    import pydicom
    slices = []
    for f in sorted(glob(os.path.join(folder, "*.dcm"))):
        ds = pydicom.dcmread(f)
        slices.append(ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept))
    return np.stack(slices, axis=0)


def sitk(folder):
    import SimpleITK as sitk
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(folder))
    reader.SetOutputPixelType(sitk.sitkFloat32)
    return sitk.GetArrayFromImage(reader.Execute())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--mode", choices=["notebook", "notebook_hu", "sitk"], default="notebook")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.mode == "sitk" and args.threads > 0:
        import SimpleITK
        SimpleITK.ProcessObject.SetGlobalDefaultNumberOfThreads(args.threads)
    load = {"notebook": notebook, "notebook_hu": notebook_hu, "sitk": sitk}[args.mode]
    load(args.folder)  # warm the page cache and imports
    seconds, shape = [], None
    for _ in range(args.repeat):
        start = time.perf_counter()
        shape = load(args.folder).shape
        seconds.append(time.perf_counter() - start)
    print(json.dumps({"mode": args.mode, "seconds": seconds, "shape": list(shape)}))


if __name__ == "__main__":
    main()
