"""Where a detector's strongest false peaks lie on a `willis synth` vessel tree: for each negative series, its
N strongest heatmap maxima, each placed against the series' vessel labels (segmentations/<uid>_cowseg.nii):
near a free end of a labelled vessel (an end of a connected piece with no other label within 3 mm), near a
junction (two labels within 3 mm), elsewhere along a vessel (a label within 3 mm), or off the vessels.
The same for the centres of true aneurysms, by size, and for 25 vessel voxels drawn per series (seeded), the
share each site would get by chance. Willis itself never runs it.

    python false_peak_sites.py DATA_DIR RESULTS_DIR [N]
"""
import csv, sys
import nibabel as nib
import numpy as np
from scipy.ndimage import maximum_filter, label as components


def lps_image(path):
    image = nib.load(path)
    affine = image.affine.copy()
    affine[:2] *= -1  # NIfTI's RAS to DICOM's LPS
    return np.asarray(image.dataobj), affine


def peaks(h, affine, n):
    found = (h == maximum_filter(h, size=3, mode="constant", cval=-1)) & (h >= 0.01)
    idx = np.argwhere(found)
    v = h[found]
    order = np.argsort(-v)[:n]
    ijk = np.c_[idx[order], np.ones(len(order))]
    return (affine @ ijk.T).T[:, :3], v[order]


class Tree:
    def __init__(self, path):
        lab, affine = lps_image(path)
        lab = lab.astype(np.int16)
        self.points = (affine @ np.c_[np.argwhere(lab > 0), np.ones((lab > 0).sum())].T).T[:, :3]
        self.labels = lab[lab > 0]
        self.free_ends = []
        for l in np.unique(self.labels):
            comp, n = components(lab == l)
            for c in range(1, n + 1):
                vox = np.argwhere(comp == c)
                if len(vox) < 10:
                    continue
                pts = (affine @ np.c_[vox, np.ones(len(vox))].T).T[:, :3]
                a = pts[np.argmax(((pts - pts.mean(0)) ** 2).sum(1))]
                b = pts[np.argmax(((pts - a) ** 2).sum(1))]
                for e in (a, b):
                    near = ((self.points - e) ** 2).sum(1) < 9
                    if not np.any(self.labels[near] != l):
                        self.free_ends.append(e)
        self.free_ends = np.array(self.free_ends)

    def site(self, p, end_mm=4.0):
        d2 = ((self.points - p) ** 2).sum(1)
        near = self.labels[d2 < 9]
        if len(self.free_ends) and np.min(((self.free_ends - p) ** 2).sum(1)) < end_mm ** 2:
            return "free end"
        if len(np.unique(near)) >= 2:
            return "junction"
        if len(near):
            return "along a vessel"
        return "off the vessels"


SITES = ["free end", "junction", "along a vessel", "off the vessels"]


def main(data, results, n):
    truth = {}
    for r in csv.DictReader(open(f"{data}/synth_aneurysms.csv")):
        truth.setdefault(r["SeriesInstanceUID"], []).append((np.array([float(r[k]) for k in ("x_mm", "y_mm", "z_mm")]), float(r["diameter_mm"])))
    uids = [r["SeriesInstanceUID"] for r in csv.DictReader(open(f"{data}/train.csv"))]
    counts = {f"negatives' peak {i + 1}": dict.fromkeys(SITES, 0) for i in range(n)}
    values = {s: [] for s in SITES}
    bands = {"aneurysm ≤ 3 mm": dict.fromkeys(SITES, 0), "aneurysm > 3 mm": dict.fromkeys(SITES, 0)}
    ends, chance = [], dict.fromkeys(SITES, 0)
    rng = np.random.default_rng(0)
    for u in uids:
        tree = Tree(f"{data}/segmentations/{u}_cowseg.nii")
        ends.append(len(tree.free_ends))
        for p in tree.points[rng.choice(len(tree.points), 25, replace=False)]:
            chance[tree.site(p)] += 1
        if u in truth:
            for c, d in truth[u]:
                bands["aneurysm ≤ 3 mm" if d <= 3 else "aneurysm > 3 mm"][tree.site(c)] += 1
            continue
        h, affine = lps_image(f"{results}/series/{u}/heatmap.nii.gz")
        pts, vals = peaks(h.astype(np.float32), affine, n)
        for i, (p, v) in enumerate(zip(pts, vals)):
            s = tree.site(p)
            counts[f"negatives' peak {i + 1}"][s] += 1
            values[s].append(v)
    print(f"free ends per series: median {np.median(ends):.0f} (range {min(ends)}–{max(ends)})")
    print("%-22s" % "" + "".join("%17s" % s for s in SITES))
    for name, row in list(counts.items()) + list(bands.items()) + [("vessel voxels", chance)]:
        total = sum(row.values())
        print("%-22s" % name + "".join("%10d (%3.0f%%)" % (row[s], 100 * row[s] / max(total, 1)) for s in SITES))
    print("negatives' peaks, median heatmap by site: " + ", ".join(f"{s} {np.median(values[s]):.3f} (n={len(values[s])})" for s in SITES if values[s]))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 5)
