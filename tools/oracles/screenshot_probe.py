"""Reads a browser screenshot with Pillow and describes rectangles of it, so a test can tell
whether images rendered there.

    python tools/oracles/screenshot_probe.py OUT.json PNG x0,y0,x1,y1 ...

Per rectangle: the number of distinct grey levels, the fraction of pixels that differ from the
rectangle's most common colour (its background), and the fraction of strongly red pixels.
"""
import json
import sys
from collections import Counter

from PIL import Image

out, path, boxes = sys.argv[1], sys.argv[2], sys.argv[3:]
with Image.open(path) as im:
    rgb = im.convert("RGB")
    result = {"width": rgb.width, "height": rgb.height, "boxes": []}
    for box in boxes:
        x0, y0, x1, y1 = (int(v) for v in box.split(","))
        pixels = list(rgb.crop((x0, y0, x1, y1)).getdata())
        counts = Counter(pixels)
        background, n = counts.most_common(1)[0]
        greys = {round(0.299 * r + 0.587 * g + 0.114 * b) for r, g, b in pixels}
        red = sum(1 for r, g, b in pixels if r > 150 and r > g + 60 and r > b + 60)
        result["boxes"].append({
            "distinctGreys": len(greys),
            "notBackground": 1 - n / len(pixels),
            "red": red / len(pixels),
        })
with open(out, "w") as f:
    json.dump(result, f)
