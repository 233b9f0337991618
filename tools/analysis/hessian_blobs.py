"""A training-free baseline for the detector's peaks: a Hessian "dot" filter at each series' own resolution,
and how its local maxima rank the true aneurysms of a `willis synth` set, by size, against the detector's.

For each series (read with pydicom, slices sorted along their normal, rescaled): intensities are put on a
vessel-bright scale (CTA: (HU − 35) / 400; MRA and T1 post: brain median 0, 99.9th percentile 1; T2, whose
vessels are flow voids: 1 − value / brain median). At scales of 0.5, 0.8, 1.2 and 1.8 mm the Hessian of the
Gaussian-smoothed image is taken in millimetres; where all three eigenvalues are negative (a bright blob) the
measure is σ² λ₃² / |λ₁|, λ₃ the weakest curvature (near zero along a tube) and λ₁ the strongest (Li et al.'s
dot enhancement), the largest over the scales. It is computed only on vessel-bright voxels (scaled value
above 0.25) inside a region that keeps the skull out: by default an ellipsoid 10 mm within the synthetic
head's skull (where the generator puts it); with REGION=foreground, without the generator's knowledge, the
head's foreground (above a tenth of the way from the 1st to the 99th percentile, its largest piece, holes
filled) less a shell DEPTH_MM deep (default 10; 16 keeps the skull's edges out of the filter's reach). Local
maxima are taken in windows about 5 mm across.

Printed: per size band, the dot value within 3 mm of each aneurysm's centre and its rank among its series'
maxima (0: the strongest), how many rank within 1 / 5 / 20 / 50, and the AUC of Aneurysm Present by a
series' strongest maximum. With a `willis predict --results` folder of the same set, also how many
aneurysms have a maximum within 4 mm of their centre among the detector heatmap's 20 strongest, the
filter's 20 strongest, and either (the union a second stage could read). With PREPARED set to a folder of
the set's input cache (DATA_DIR/.willis-cache/improved-…-sub2-…, as `willis train` writes it), the filter reads
the prepared 0.8 mm inputs the second stage cuts its cubes from instead of the DICOM files (CTA's window
undone to HU first); with a results folder too, the filter is max-pooled onto the heatmap's grid and the AUC
of Aneurysm Present is printed for a series' strongest value of heatmap + α · filter, α in ALPHAS. Willis
itself never runs it.

    python hessian_blobs.py DATA_DIR [RESULTS_DIR]      (WORKERS=2 processes by default)
    REGION=foreground DEPTH_MM=16 python hessian_blobs.py DATA_DIR [RESULTS_DIR]
"""
import json
import csv
import glob
import os
import re
import sys
from concurrent.futures import ProcessPoolExecutor

import nibabel as nib
import numpy as np
import pydicom
from scipy.ndimage import binary_fill_holes, distance_transform_edt, gaussian_filter, label, maximum_filter

SCALES_MM = [0.5, 0.8, 1.2, 1.8]
SIZE_BANDS = [(0, 3), (3, 5), (5, 100)]  # diameter in mm: (low, high]
MATCH_MM = 4.0
TOP = 20
ALPHAS = [0, 1, 2, 4, 8]


def read_series(folder):
    """The volume [slice, row, column] and its voxel-to-LPS affine (index order k, j, i)."""
    files = [pydicom.dcmread(f) for f in glob.glob(f"{folder}/*.dcm")]
    first = files[0]
    row = np.array(first.ImageOrientationPatient[:3], float)  # along a row: the column index grows
    col = np.array(first.ImageOrientationPatient[3:], float)
    normal = np.cross(row, col)
    files.sort(key=lambda d: float(normal @ np.array(d.ImagePositionPatient, float)))
    volume = np.stack([d.pixel_array.astype(np.float32) * float(getattr(d, "RescaleSlope", 1))
                       + float(getattr(d, "RescaleIntercept", 0)) for d in files])
    row_spacing, column_spacing = (float(v) for v in first.PixelSpacing)
    p0, p1 = (np.array(files[i].ImagePositionPatient, float) for i in (0, -1))
    dz = normal @ (p1 - p0) / (len(files) - 1)
    affine = np.eye(4)
    affine[:3, 0], affine[:3, 1], affine[:3, 2], affine[:3, 3] = normal * dz, col * row_spacing, row * column_spacing, p0
    return volume, affine


def read_prepared(folder, uid):
    """A cached improved-mode input on its fine grid [z, y, x] (LPS axes) and its voxel-to-LPS affine."""
    record = json.load(open(f"{folder}/{uid}.json"))
    grid = record["output"]
    coarse = grid["spacing"]["x"]
    # The cache folder's name holds the grid and the subdivision: improved-80x96x96-1.6mm-sub2-…
    named = re.search(r"improved-(\d+)x(\d+)x(\d+)-[\d.]+mm(?:-sub(\d))?", os.path.basename(folder.rstrip("/")))
    if not named:
        raise SystemExit(f"{folder}: not an improved-mode cache folder (improved-DxHxW-…)")
    n = int(named.group(4) or 1)
    shape = [int(named.group(a)) * n for a in (1, 2, 3)]
    values = np.fromfile(f"{folder}/{uid}.f32", dtype=np.float32)
    if values.size != np.prod(shape):
        raise SystemExit(f"{folder}/{uid}.f32: {values.size} values, expected {np.prod(shape)}")
    fine = coarse / n
    inset = (coarse - fine) / 2
    affine = np.eye(4)
    for a, (axis, key) in enumerate([("z", "sliceDirection"), ("y", "rowDirection"), ("x", "columnDirection")]):
        affine[:3, a] = [grid[key][c] * fine for c in "xyz"]
    affine[:3, 3] = [grid["origin"][c] - inset for c in "xyz"]
    window = record["intensity"].get("window")
    if window:  # back to HU, so that CTA's scale below applies
        values = values * (window["high"] - window["low"]) + window["low"]
    return values.reshape(shape), affine


def inside_foreground(volume, spacing, depth_mm=float(os.environ.get("DEPTH_MM", "10"))):
    """Without the generator's knowledge: the head's foreground (above a tenth of the way from the 1st to
    the 99th percentile), its largest connected piece with its holes filled, less a shell of `depth_mm`
    (the skull and the scalp)."""
    low, high = np.percentile(volume, [1, 99])
    pieces, count = label(volume > low + 0.1 * (high - low))
    if count == 0:
        return np.zeros(volume.shape, bool)
    largest = np.argmax(np.bincount(pieces.ravel())[1:]) + 1
    head = binary_fill_holes(pieces == largest)
    return distance_transform_edt(head, sampling=spacing) > depth_mm


def inside_head(shape, affine):
    k, j, i = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij")
    x, y, z = (affine[r, 0] * k + affine[r, 1] * j + affine[r, 2] * i + affine[r, 3] for r in range(3))
    return (x / 62) ** 2 + ((y - 5) / 82) ** 2 + ((z + 10) / 75) ** 2 < 1


def vessel_bright(volume, modality, region):
    brain = float(np.median(volume[region]))
    if modality == "CTA":
        return (volume - 35) / 400
    if "T2" in modality:
        return 1 - volume / max(brain, 1e-6)
    top = float(np.percentile(volume[region], 99.9))
    return (volume - brain) / max(top - brain, 1e-6)


def dot_filter(image, spacing, mask, each_scale=False):
    """The measure, the largest over the scales; with each_scale, one map per scale instead."""
    best = np.zeros_like(image)
    maps = []
    at = np.nonzero(mask)
    for s in SCALES_MM:
        sigma = s / spacing
        hessian = np.empty((len(at[0]), 3, 3), np.float32)
        for a in range(3):
            for b in range(a, 3):
                order = [0, 0, 0]
                order[a] += 1
                order[b] += 1
                h = gaussian_filter(image, sigma, order=order)[at] / (spacing[a] * spacing[b])
                hessian[:, a, b] = hessian[:, b, a] = h
        lam = np.linalg.eigvalsh(hessian)  # ascending: a bright blob has all three negative
        weakest, strongest = -lam[:, 2], -lam[:, 0]
        measure = np.where(weakest > 0, s * s * weakest * weakest / np.maximum(strongest, 1e-6), 0)
        best[at] = np.maximum(best[at], measure)
        if each_scale:
            maps.append(np.zeros_like(image))
            maps[-1][at] = measure
    return maps if each_scale else best


def maxima(values, spacing, affine):
    """Local maxima in windows about 5 mm across, strongest first: LPS positions and values."""
    reach = np.ceil(2.4 / spacing).astype(int)
    found = (values == maximum_filter(values, size=tuple(2 * reach + 1))) & (values > 0)
    idx = np.argwhere(found)
    v = values[found]
    order = np.argsort(-v)
    ijk = np.c_[idx[order], np.ones(len(order))]
    return (affine @ ijk.T).T[:, :3], v[order]


def one_series(args):
    data, uid, modality, aneurysms, results = args
    prepared = os.environ.get("PREPARED")
    volume, affine = read_prepared(prepared, uid) if prepared else read_series(f"{data}/series/{uid}")
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    region = inside_foreground(volume, spacing) if os.environ.get("REGION") == "foreground" else inside_head(volume.shape, affine)
    image = vessel_bright(volume, modality, region)
    dots = dot_filter(image, spacing, (image > 0.25) & region)
    positions, values = maxima(dots, spacing, affine)
    to_voxel = np.linalg.inv(affine)
    reach = np.ceil(3.0 / spacing).astype(int)
    found = []
    for centre, diameter in aneurysms:
        v = np.round((to_voxel @ np.r_[centre, 1])[:3]).astype(int)
        box = tuple(slice(max(0, v[a] - reach[a]), max(0, v[a] + reach[a] + 1)) for a in range(3))
        near = float(dots[box].max()) if dots[box].size else 0.0
        rank = int((values > near).sum())
        within = bool(len(positions) and (np.linalg.norm(positions[:TOP] - centre, axis=1) <= MATCH_MM).any())
        found.append((diameter, near, rank, within))
    combined = []
    if prepared and results:
        heat = np.asarray(nib.load(f"{results}/series/{uid}/heatmap.nii.gz").dataobj, np.float32).transpose(2, 1, 0)
        n = dots.shape[0] // heat.shape[0]
        grid = dots.reshape(heat.shape[0], n, heat.shape[1], n, heat.shape[2], n).max(axis=(1, 3, 5))
        combined = [float((heat + a * grid).max()) for a in ALPHAS]
    return (float(values[0]) if len(values) else 0.0), found, combined


def heatmap_top(results, uid):
    image = nib.load(f"{results}/series/{uid}/heatmap.nii.gz")
    affine = image.affine.copy()
    affine[:2] *= -1  # NIfTI's RAS to DICOM's LPS
    h = np.asarray(image.dataobj, dtype=np.float32)
    found = (h == maximum_filter(h, size=3, mode="constant", cval=-1)) & (h >= 0.01)
    idx = np.argwhere(found)
    order = np.argsort(-h[found])[:TOP]
    return (affine @ np.c_[idx[order], np.ones(len(order))].T).T[:, :3]


def auc(positive, negative):
    positive, negative = np.asarray(positive), np.asarray(negative)
    if not len(positive) or not len(negative):
        return float("nan")
    greater = (positive[:, None] > negative[None, :]).sum() + 0.5 * (positive[:, None] == negative[None, :]).sum()
    return greater / (len(positive) * len(negative))


def main(data, results=None):
    truth = {}
    for r in csv.DictReader(open(f"{data}/synth_aneurysms.csv")):
        centre = np.array([float(r["x_mm"]), float(r["y_mm"]), float(r["z_mm"])])
        truth.setdefault(r["SeriesInstanceUID"], []).append((centre, float(r["diameter_mm"])))
    modality = {r["SeriesInstanceUID"]: r["Modality"] for r in csv.DictReader(open(f"{data}/train.csv"))}
    uids = sorted(modality)
    with ProcessPoolExecutor(int(os.environ.get("WORKERS", "2"))) as pool:
        out = list(pool.map(one_series, [(data, u, modality[u], truth.get(u, []), results) for u in uids]))
    rows, strongest, combined = [], {}, {}
    for uid, (top, found, both) in zip(uids, out):
        strongest[uid] = top
        combined[uid] = both
        for (centre, _), (diameter, near, rank, within) in zip(truth.get(uid, []), found):
            detector = None
            if results:
                detector = bool((np.linalg.norm(heatmap_top(results, uid) - centre, axis=1) <= MATCH_MM).any())
            rows.append((diameter, near, rank, within, detector))
    negatives = np.array([strongest[u] for u in uids if u not in truth])
    print(f"dot filter at {SCALES_MM} mm; {len(negatives)} negative series, their strongest maximum: "
          f"median {np.median(negatives):.3f}, 90th percentile {np.percentile(negatives, 90):.3f}")
    print("diameter    n  value (median)  rank (median)  rank <1 / <5 / <20 / <50  negatives' strongest below it (median share)")
    for low, high in SIZE_BANDS:
        band = [r for r in rows if low < r[0] <= high]
        if not band:
            continue
        ranks = np.array([r[2] for r in band])
        below = np.median([(negatives < r[1]).mean() for r in band])
        print(f"({low}, {high}] mm {len(band):4d}  {np.median([r[1] for r in band]):14.3f}  {np.median(ranks):13.0f}  "
              f"{(ranks < 1).sum():7d} / {(ranks < 5).sum()} / {(ranks < 20).sum()} / {(ranks < 50).sum()}  {below:.2f}")
    present = [strongest[u] for u in uids if u in truth]
    print(f"AUC of Aneurysm Present by the strongest maximum: {auc(present, negatives):.4f}")
    for m in sorted(set(modality.values())):
        pos = [strongest[u] for u in uids if u in truth and modality[u] == m]
        neg = [strongest[u] for u in uids if u not in truth and modality[u] == m]
        print(f"  {m}: {len(pos)} positive, {len(neg)} negative, AUC {auc(pos, neg):.3f}")
    if results:
        print(f"within {MATCH_MM:g} mm of one of the {TOP} strongest maxima: detector heatmap / dot filter / either")
        for low, high in SIZE_BANDS:
            band = [r for r in rows if low < r[0] <= high]
            if band:
                print(f"({low}, {high}] mm {len(band):4d}  {sum(r[4] for r in band)} / {sum(r[3] for r in band)} / "
                      f"{sum(r[3] or r[4] for r in band)}")
    if results and os.environ.get("PREPARED"):
        for at, a in enumerate(ALPHAS):
            pos = [combined[u][at] for u in uids if u in truth]
            neg = [combined[u][at] for u in uids if u not in truth]
            print(f"AUC of Aneurysm Present by the strongest heatmap + {a} × filter: {auc(pos, neg):.4f}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
