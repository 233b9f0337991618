"""How many of a `willis synth` set's aneurysms a candidate list holds: for `willis candidates` output
(SeriesInstanceUID, rank, x_mm, y_mm, z_mm, value), the aneurysms with a candidate within 4 mm of their
centre among their series' N strongest, by size, and the candidates per series. Willis itself never runs it.

    python tools/analysis/candidate_coverage.py DATA_DIR CANDIDATES_CSV [N]
"""
import csv
import sys

import numpy as np

SIZE_BANDS = [(0, 3), (3, 5), (5, 100)]  # diameter in mm: (low, high]
MATCH_MM = 4.0


def main(data, listed, top=20):
    top = int(top)
    points = {}
    for r in csv.DictReader(open(listed)):
        if int(r["rank"]) < top:
            points.setdefault(r["SeriesInstanceUID"], []).append([float(r["x_mm"]), float(r["y_mm"]), float(r["z_mm"])])
    series = [r["SeriesInstanceUID"] for r in csv.DictReader(open(f"{data}/train.csv"))]
    rows = []
    for r in csv.DictReader(open(f"{data}/synth_aneurysms.csv")):
        centre = np.array([float(r["x_mm"]), float(r["y_mm"]), float(r["z_mm"])])
        near = np.array(points.get(r["SeriesInstanceUID"], [])).reshape(-1, 3)
        rows.append((float(r["diameter_mm"]), bool(len(near) and (np.linalg.norm(near - centre, axis=1) <= MATCH_MM).any())))
    counts = [len(points.get(u, [])) for u in series]
    print(f"{len(series)} series, {sum(1 for u in series if u in points)} with candidates, median {np.median(counts):.0f} each; "
          f"aneurysms with a candidate within {MATCH_MM:g} mm among their series' {top} strongest:")
    for low, high in SIZE_BANDS:
        band = [found for d, found in rows if low < d <= high]
        print(f"  ({low}, {high}] mm: {sum(band)} of {len(band)}")
    print(f"  all: {sum(f for _, f in rows)} of {len(rows)}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
