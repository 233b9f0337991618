"""Reads PNG files with Pillow (an independent decoder) and reports what it decoded.

    python tools/oracles/png_probe.py OUT.json FILE...

Per file: mode, width, height, and the RGB value of every pixel listed in FILE.points.json
when that file exists ([[x, y], ...]); or the error Pillow raised.
"""
import json
import os
import sys

from PIL import Image

out, files = sys.argv[1], sys.argv[2:]
results = []
for path in files:
    try:
        with Image.open(path) as im:
            im.load()
            rgb = im.convert("RGB")
            entry = {"mode": im.mode, "width": im.width, "height": im.height}
            points_file = path + ".points.json"
            if os.path.exists(points_file):
                with open(points_file) as f:
                    entry["values"] = [list(rgb.getpixel((x, y))) for x, y in json.load(f)]
            results.append(entry)
    except Exception as e:
        results.append({"error": f"{type(e).__name__}: {e}"})
with open(out, "w") as f:
    json.dump(results, f)
