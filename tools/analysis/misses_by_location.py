"""Where a stand-alone second stage's held-out misses are, by location and size: for each aneurysm of a
`willis synth` set, the strongest candidate within 7 mm of its centre in a `willis predict --results` folder
(its rank by probability, its probability, the artery it was named), summarised per location for those of
3 mm or less and the larger ones. Willis itself never runs it.

    python tools/analysis/misses_by_location.py DATA_DIR RESULTS_DIR
"""
import collections
import csv
import json
import math
import statistics
import sys

MATCH_MM = 7.0  # as `willis evaluate --truth` finds an aneurysm
SMALL_MM = 3.0


def main(data, results):
    found = collections.defaultdict(list)  # location -> [(diameter, (rank, probability, named) or None)]
    for a in csv.DictReader(open(f"{data}/synth_aneurysms.csv")):
        candidates = json.load(open(f"{results}/series/{a['SeriesInstanceUID']}/candidates.json"))
        centre = [float(a["x_mm"]), float(a["y_mm"]), float(a["z_mm"])]
        ranked = sorted(candidates, key=lambda c: -c["probability"])
        hit = next(((rank, c["probability"], c.get("location")) for rank, c in enumerate(ranked)
                    if math.dist(centre, c["lps"]) <= MATCH_MM), None)
        found[a["location"]].append((float(a["diameter_mm"]), hit))

    def summary(hits):
        pooled = [h for h in hits if h]
        median = statistics.median(h[1] for h in pooled) if pooled else float("nan")
        return f"{len(hits):3d}, {len(pooled):3d} in the pool, {sum(h[0] == 0 for h in pooled):3d} strongest, median p {median:.3f}"

    for band, keep in [(f"<= {SMALL_MM:g} mm", lambda d: d <= SMALL_MM), (f"> {SMALL_MM:g} mm", lambda d: d > SMALL_MM)]:
        print(f"all locations {band}: " + summary([h for r in found.values() for d, h in r if keep(d)]))
    print(f"{'location':42s} {'named right':>11s}   small (<= {SMALL_MM:g} mm)                                   larger")
    for location, r in sorted(found.items()):
        named = sum(1 for _, h in r if h and h[2] == location)
        small = summary([h for d, h in r if d <= SMALL_MM])
        large = summary([h for d, h in r if d > SMALL_MM])
        print(f"{location[:42]:42s} {named:4d} of {len(r):3d}   {small}   {large}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
