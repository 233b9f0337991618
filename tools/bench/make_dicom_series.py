"""Writes the `willis bench dicom` input: a full-size CTA-like series (default 300
slices of 512×512, 16-bit, rescale intercept -1024) as uncompressed Explicit VR
Little Endian, and the same pixels as JPEG-LS lossless and JPEG 2000 lossless.

    python tools/bench/make_dicom_series.py OUT_DIR [--slices 300] [--size 512]

OUT_DIR/{uncompressed,jpegls,j2k}/<SOPInstanceUID>.dcm. Existing folders are kept.
"""
import argparse
import os

import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import (CTImageStorage, ExplicitVRLittleEndian, JPEG2000Lossless, JPEGLSLossless, generate_uid)


def phantom(slices, size, rng):
    """A head-like volume in HU: air, skull, brain, contrast-filled vessels, noise."""
    z, y, x = np.meshgrid(np.linspace(-1, 1, slices), np.linspace(-1, 1, size), np.linspace(-1, 1, size), indexing="ij")
    r = np.sqrt((x / 0.8) ** 2 + (y / 0.9) ** 2 + (z / 1.1) ** 2)
    hu = np.full(z.shape, -1000.0, np.float32)
    hu[r < 0.95] = 1200.0
    hu[r < 0.88] = 35.0
    for cx, cy in [(-0.2, 0.1), (0.2, 0.1), (0.0, -0.2)]:
        hu[((x - cx) ** 2 + (y - cy) ** 2) < 0.0025] = 350.0
    hu += rng.normal(0, 12, hu.shape).astype(np.float32)
    return np.clip(np.round(hu + 1024), 0, 4095).astype(np.uint16)


def write(folder, stored, syntax, series_uid, study_uid, frame_uid):
    os.makedirs(folder, exist_ok=True)
    if len(os.listdir(folder)) == stored.shape[0]:
        return
    for k in range(stored.shape[0]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.Modality = "CT"
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [-125.0, -125.0, float(k) * 0.625]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [0.488, 0.488]
        ds.SliceThickness = 0.625
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = stored.shape[1:]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        ds.PixelData = stored[k].tobytes()
        if syntax != ExplicitVRLittleEndian:
            ds.compress(syntax, stored[k])
        ds.save_as(os.path.join(folder, ds.SOPInstanceUID + ".dcm"), enforce_file_format=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--size", type=int, default=512)
    args = ap.parse_args()
    names = ["uncompressed", "jpegls", "j2k"]
    if all(os.path.isdir(os.path.join(args.out, n)) and len(os.listdir(os.path.join(args.out, n))) == args.slices
           for n in names):
        return
    stored = phantom(args.slices, args.size, np.random.default_rng(7))
    uids = [generate_uid() for _ in range(3)]
    for name, syntax in [("uncompressed", ExplicitVRLittleEndian), ("jpegls", JPEGLSLossless), ("j2k", JPEG2000Lossless)]:
        write(os.path.join(args.out, name), stored, syntax, *uids)


if __name__ == "__main__":
    main()
