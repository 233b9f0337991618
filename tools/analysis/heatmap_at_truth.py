"""Where a detector's heatmap stands at each true aneurysm, by size: the heatmap's largest value within
3 mm of the aneurysm's centre, that value's rank among its own series' local maxima (0: the strongest
peak; how many rank within the 20 peaks the second stage reads and within 50), how many sit below
the 0.01 peak threshold, and the share of negative series whose strongest peak is lower. It reads a `willis predict
--results` folder of a `willis synth` dataset (whose synth_aneurysms.csv holds centres and diameters);
Willis itself never runs it.

    python tools/analysis/heatmap_at_truth.py DATA_DIR RESULTS_DIR
"""
import csv
import sys

import nibabel as nib
import numpy as np
from scipy.ndimage import maximum_filter

SIZE_BANDS = [(0, 3), (3, 5), (5, 100)]  # diameter in mm: (low, high]


def heatmap(path):
    image = nib.load(path)
    affine = image.affine.copy()
    affine[:2] *= -1  # NIfTI's RAS to DICOM's LPS
    return np.asarray(image.dataobj, dtype=np.float32), affine


def peak_values(h, threshold=0.01):
    found = (h == maximum_filter(h, size=3, mode="constant", cval=-1)) & (h >= threshold)
    return np.sort(h[found])[::-1]


def main(data, results):
    truth = {}
    for r in csv.DictReader(open(f"{data}/synth_aneurysms.csv")):
        centre = np.array([float(r["x_mm"]), float(r["y_mm"]), float(r["z_mm"])])
        truth.setdefault(r["SeriesInstanceUID"], []).append((centre, float(r["diameter_mm"])))
    modality = {r["SeriesInstanceUID"]: r["Modality"] for r in csv.DictReader(open(f"{data}/train.csv"))}
    negative_top, rows = [], []
    for uid in sorted(modality):
        h, affine = heatmap(f"{results}/series/{uid}/heatmap.nii.gz")
        peaks = peak_values(h)
        if uid not in truth:
            negative_top.append(peaks[0] if len(peaks) else 0.0)
            continue
        to_voxel = np.linalg.inv(affine)
        spacing = np.linalg.norm(affine[:3, :3], axis=0)
        for centre, diameter in truth[uid]:
            v = np.round((to_voxel @ np.r_[centre, 1])[:3]).astype(int)
            reach = np.ceil(3.0 / spacing).astype(int)
            box = tuple(slice(max(0, v[a] - reach[a]), max(0, v[a] + reach[a] + 1)) for a in range(3))
            near = float(h[box].max()) if h[box].size else 0.0
            rows.append((diameter, near, int((peaks > near).sum()), modality[uid]))
    negative_top = np.array(negative_top)
    print(f"{len(negative_top)} negative series; their strongest peak: median {np.median(negative_top):.3f}, "
          f"90th percentile {np.percentile(negative_top, 90):.3f}, largest {negative_top.max():.3f}")
    print("diameter   n  heat at centre (median)  rank in own series (median)  rank 0 / ≤4 / ≤19 / ≤49  below 0.01  "
          "negatives' top peak below it (median share)")
    for low, high in SIZE_BANDS:
        band = [r for r in rows if low < r[0] <= high]
        if not band:
            continue
        near = np.array([r[1] for r in band])
        rank = np.array([r[2] for r in band])
        below = np.median([(negative_top < n).mean() for n in near])
        label = f"{low}–{high} mm" if high < 100 else f"> {low} mm"
        print(f"{label:9s} {len(band):3d}  {np.median(near):23.3f}  {np.median(rank):27.0f}  "
              f"{(rank == 0).sum():7d} / {(rank <= 4).sum():2d} / {(rank <= 19).sum():2d} / {(rank <= 49).sum():2d}  "
              f"{(near < 0.01).sum():10d}  {below:44.2f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
