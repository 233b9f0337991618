"""Writes small DICOM series with known geometry, and SimpleITK's reading of them.

    python tools/oracles/dicom_series.py OUT_DIR

OUT_DIR/series/<case>/*.dcm, files named by SOPInstanceUID (so name order is random
with respect to position), and OUT_DIR/dicom_series.json with, per case: the
expected voxels (z-y-x, rescaled, as OUT_DIR/series/<case>.f32), shape, origin,
spacing and direction cosines from the generator, and SimpleITK's
ImageSeriesReader result: its voxels' CRC and the patient coordinates of the
eight corner voxels.
"""
import json
import os
import sys
import zlib

import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

RNG = np.random.default_rng(20261127)


def slice_dataset(series_uid, study_uid, frame_uid, modality, position, iop, spacing, pixels, slope, intercept,
                  instance, syntax):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
    ds.Modality = modality
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = "Doe^Jane", "PID-0001", "19700101"
    ds.PatientAge, ds.PatientSex = "055Y", "F"
    ds.InstanceNumber = instance
    ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
    ds.ImageOrientationPatient = [f"{v:.8f}" for v in iop]
    ds.PixelSpacing = [f"{spacing[1]:.6f}", f"{spacing[0]:.6f}"]  # row spacing, column spacing
    ds.SliceThickness = f"{spacing[2]:.6f}"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleSlope, ds.RescaleIntercept = f"{slope:g}", f"{intercept:g}"
    ds.PixelData = pixels.astype("<i2").tobytes()
    ds.is_implicit_VR = syntax == ImplicitVRLittleEndian
    ds.is_little_endian = True
    return ds


def write_series(folder, shape, origin, spacing, col, row, slice_dir, modality="CT", reverse_files=False,
                 slopes=None, syntaxes=(ExplicitVRLittleEndian,), series_uid=None):
    os.makedirs(folder, exist_ok=True)
    depth, rows, cols = shape
    series_uid = series_uid or generate_uid()
    study_uid, frame_uid = generate_uid(), generate_uid()
    stored = RNG.integers(-1024, 3000, size=shape).astype(np.int16)
    volume = np.zeros(shape, np.float32)
    order = list(range(depth))[::-1] if reverse_files else list(range(depth))
    for n, k in enumerate(order):
        slope = slopes[k] if slopes else 1.0
        intercept = -1024.0 if modality == "CT" else 0.0
        position = np.asarray(origin) + np.asarray(slice_dir) * spacing[2] * k
        ds = slice_dataset(series_uid, study_uid, frame_uid, modality, position, list(col) + list(row), spacing,
                           stored[k], slope, intercept, instance=n + 1, syntax=syntaxes[k % len(syntaxes)])
        ds.save_as(os.path.join(folder, ds.SOPInstanceUID + ".dcm"), enforce_file_format=True)
        volume[k] = stored[k].astype(np.float32) * np.float32(slope) + np.float32(intercept)
    return volume, series_uid


def sitk_reading(folder, series_uid=None):
    import SimpleITK as sitk
    reader = sitk.ImageSeriesReader()
    names = reader.GetGDCMSeriesFileNames(folder, series_uid or "")
    reader.SetFileNames(names)
    image = reader.Execute()
    array = sitk.GetArrayFromImage(image).astype(np.float32)
    size = image.GetSize()
    corners = []
    for k in (0, size[2] - 1):
        for j in (0, size[1] - 1):
            for i in (0, size[0] - 1):
                corners.append({"index": [i, j, k], "point": list(image.TransformIndexToPhysicalPoint((i, j, k)))})
    return {"shape": list(array.shape), "crc32": zlib.crc32(np.ascontiguousarray(array).tobytes()),
            "corners": corners, "origin": list(image.GetOrigin()), "spacing": list(image.GetSpacing()),
            "direction": list(image.GetDirection())}


def unit(v):
    v = np.asarray(v, float)
    return v / np.linalg.norm(v)


def main(out):
    root = os.path.join(out, "series")
    cases = {}
    axial = (unit([1, 0, 0]), unit([0, 1, 0]))
    theta = np.deg2rad(20)
    phi = np.deg2rad(10)
    oblique = (unit([np.cos(theta), np.sin(theta), 0]),
               unit([-np.sin(theta) * np.cos(phi), np.cos(theta) * np.cos(phi), -np.sin(phi)]))
    definitions = {
        "axial": dict(shape=(9, 20, 24), origin=[-30.5, -12.25, 40.0], spacing=(0.7, 0.8, 1.25), dirs=axial),
        "axial_reversed": dict(shape=(7, 16, 18), origin=[10, 20, -50], spacing=(0.5, 0.5, 2.0), dirs=axial,
                               reverse_files=True, syntaxes=(ExplicitVRLittleEndian, ImplicitVRLittleEndian)),
        "sagittal": dict(shape=(6, 22, 18), origin=[-40, -60, 80], spacing=(0.9, 1.1, 3.0),
                         dirs=(unit([0, 1, 0]), unit([0, 0, -1]))),
        "coronal": dict(shape=(5, 14, 26), origin=[-60, 30, 70], spacing=(0.6, 0.6, 2.5),
                        dirs=(unit([1, 0, 0]), unit([0, 0, -1]))),
        "oblique": dict(shape=(8, 18, 20), origin=[5, -8, 12], spacing=(0.75, 0.8, 1.5), dirs=oblique),
        "rescale_per_slice": dict(shape=(6, 12, 12), origin=[0, 0, 0], spacing=(1, 1, 1), dirs=axial,
                                  slopes=[1.0, 0.5, 2.0, 1.0, 0.25, 4.0]),
        "mr": dict(shape=(6, 16, 16), origin=[-20, -20, -20], spacing=(0.9, 0.9, 1.2), dirs=axial, modality="MR"),
    }
    for name, d in definitions.items():
        col, row = d["dirs"]
        normal = np.cross(col, row)
        folder = os.path.join(root, name)
        volume, uid = write_series(folder, d["shape"], d["origin"], d["spacing"], col, row, normal,
                                   modality=d.get("modality", "CT"), reverse_files=d.get("reverse_files", False),
                                   slopes=d.get("slopes"), syntaxes=d.get("syntaxes", (ExplicitVRLittleEndian,)))
        volume.tofile(os.path.join(root, name + ".f32"))
        cases[name] = {"series_uid": uid, "shape": list(volume.shape), "origin": list(map(float, d["origin"])),
                       "spacing": list(d["spacing"]), "column_direction": list(col), "row_direction": list(row),
                       "slice_direction": list(normal), "sitk": sitk_reading(folder)}

    # Gantry tilt: slices step along z and also along y, so they are sheared.
    col, row = axial
    tilt_dir = unit([0, np.sin(np.deg2rad(15)), np.cos(np.deg2rad(15))])
    step = 2.0
    volume, uid = write_series(os.path.join(root, "tilt"), (6, 14, 16), [0, 0, 0], (0.8, 0.8, step / np.cos(np.deg2rad(15))),
                               col, row, tilt_dir)
    volume.tofile(os.path.join(root, "tilt.f32"))
    cases["tilt"] = {"series_uid": uid, "shape": list(volume.shape), "origin": [0.0, 0.0, 0.0], "tilt_degrees": 15.0,
                     "slice_direction": list(tilt_dir)}

    # A localizer in the folder: other orientation and size, same series.
    folder = os.path.join(root, "with_localizer")
    volume, uid = write_series(folder, (6, 16, 16), [0, 0, 0], (1, 1, 2), col, row, np.cross(col, row))
    scout = slice_dataset(uid, generate_uid(), generate_uid(), "CT", [0, -100, 50], [0, 1, 0, 0, 0, -1], (1, 1, 1),
                          RNG.integers(0, 100, size=(30, 40)).astype(np.int16), 1, -1024, 99, ExplicitVRLittleEndian)
    scout.save_as(os.path.join(folder, scout.SOPInstanceUID + ".dcm"), enforce_file_format=True)
    volume.tofile(os.path.join(root, "with_localizer.f32"))
    cases["with_localizer"] = {"series_uid": uid, "shape": list(volume.shape)}

    # Two series mixed in one folder.
    folder = os.path.join(root, "two_series")
    write_series(folder, (3, 8, 8), [0, 0, 0], (1, 1, 1), col, row, np.cross(col, row))
    write_series(folder, (4, 8, 8), [0, 0, 0], (1, 1, 1), col, row, np.cross(col, row))
    cases["two_series"] = {}

    # All slices at one position.
    folder = os.path.join(root, "one_position")
    write_series(folder, (3, 8, 8), [0, 0, 0], (1, 1, 0), col, row, np.cross(col, row))
    cases["one_position"] = {}

    # A rescale slope that is not a number.
    folder = os.path.join(root, "nan_slope")
    write_series(folder, (3, 8, 8), [0, 0, 0], (1, 1, 1), col, row, np.cross(col, row))
    victim = sorted(os.listdir(folder))[1]
    ds = pydicom.dcmread(os.path.join(folder, victim))
    ds["RescaleSlope"].value = "NaN"
    ds.save_as(os.path.join(folder, victim))
    cases["nan_slope"] = {}

    # A slice missing in the middle, and a slice present twice.
    folder = os.path.join(root, "missing_slice")
    write_series(folder, (8, 8, 8), [0, 0, 0], (1, 1, 2), col, row, np.cross(col, row))
    for name in os.listdir(folder):
        if abs(float(pydicom.dcmread(os.path.join(folder, name)).ImagePositionPatient[2]) - 8.0) < 1e-6:
            os.remove(os.path.join(folder, name))
    cases["missing_slice"] = {}
    folder = os.path.join(root, "duplicate_slice")
    write_series(folder, (5, 8, 8), [0, 0, 0], (1, 1, 2), col, row, np.cross(col, row))
    twin = pydicom.dcmread(os.path.join(folder, sorted(os.listdir(folder))[0]))
    twin.SOPInstanceUID = twin.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    twin.save_as(os.path.join(folder, twin.SOPInstanceUID + ".dcm"), enforce_file_format=True)
    cases["duplicate_slice"] = {}

    # Slices of two sizes, half and half: no majority to trust.
    folder = os.path.join(root, "mixed_sizes")
    uid = generate_uid()
    write_series(folder, (2, 8, 8), [0, 0, 0], (1, 1, 1), col, row, np.cross(col, row), series_uid=uid)
    write_series(folder, (2, 10, 10), [0, 0, 5], (1, 1, 1), col, row, np.cross(col, row), series_uid=uid)
    cases["mixed_sizes"] = {}

    with open(os.path.join(out, "dicom_series.json"), "w") as f:
        json.dump(cases, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".build-fixtures")
