"""How often the location a results folder names is right when its strongest candidate found the aneurysm.

For each positive series of a synthetic set: is the strongest candidate (candidates.json) within 7 mm of
one of its aneurysms (synth_aneurysms.csv, patient LPS mm), and if so, is the submission's most probable
of the 13 locations that aneurysm's? Usage: naming_of_found.py DATA RESULTS
"""
import collections
import csv
import json
import math
import sys

data, results = sys.argv[1], sys.argv[2]
truth = collections.defaultdict(list)
for r in csv.DictReader(open(f"{data}/synth_aneurysms.csv")):
    truth[r["SeriesInstanceUID"]].append((r["location"], [float(r["x_mm"]), float(r["y_mm"]), float(r["z_mm"])]))
submission = {r["SeriesInstanceUID"]: r for r in csv.DictReader(open(f"{results}/submission.csv"))}
locations = [k for k in next(iter(submission.values())) if k not in ("SeriesInstanceUID", "Aneurysm Present")]
found = named = 0
for uid, aneurysms in truth.items():
    listed = json.load(open(f"{results}/series/{uid}/candidates.json"))
    candidates = listed["candidates"] if isinstance(listed, dict) else listed
    if not candidates:
        continue
    top = max(candidates, key=lambda c: c["probability"])
    location, centre = min(aneurysms, key=lambda a: math.dist(top["lps"], a[1]))
    if math.dist(top["lps"], centre) <= 7:
        found += 1
        p = {l: float(submission[uid][l]) for l in locations}
        named += max(locations, key=lambda l: p[l]) == location
print(f"{len(truth)} positive series; strongest candidate within 7 mm of an aneurysm: {found}; its location named right: {named}")
