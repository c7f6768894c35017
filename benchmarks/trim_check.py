"""How well the app's border trim finds the picture inside letterbox/pillarbox bars.

    python benchmarks/trim_check.py ../shared/data/wikiart7-dev
    python benchmarks/trim_check.py ../shared/data/wikiart7-dev --max-fraction 0.35   # the old limit

Runs ``decode_image(..., trim_borders=True)`` (the indexing path) on every image of a folder whose
labels.csv has a ``content_bbox_x0_y0_x1_y1`` column (the true content box, "x0 y0 x1 y1" in pixels
of the file) and reports the share of images whose trimmed box (the whole image when nothing was
trimmed) is within ``--px`` pixels of it on every side, overall and by how much of a side the bars
take. Several ``--max-fraction`` values are compared in one run.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from artstyle_gui.core.ingest.features import INPUT_SIZE
from artstyle_gui.core.ingest.imageio import DEFAULT_TRIM_MAX_FRACTION, SAFE_TRIM_FRACTION, decode_image

BOX_COLUMN = "content_bbox_x0_y0_x1_y1"
BAR_BINS = ((0.0, 0.01, "no bars"), (0.01, 0.35, "bars <= 35%"), (0.35, 1.01, "bars > 35%"))


def read_boxes(folder: Path) -> list[tuple[Path, tuple[int, int, int, int]]]:
    with open(folder / "labels.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or BOX_COLUMN not in rows[0]:
        raise SystemExit(f"{folder / 'labels.csv'} has no {BOX_COLUMN} column")
    out = []
    for r in rows:
        x0, y0, x1, y1 = (int(v) for v in r[BOX_COLUMN].split())
        out.append((folder / r["path"], (x0, y0, x1, y1)))
    return out


def bar_share(box: tuple[int, int, int, int], size: tuple[int, int]) -> float:
    """The larger share of a side that the true bars take (0 = no bars)."""
    w, h = size
    return max((w - (box[2] - box[0])) / w, (h - (box[3] - box[1])) / h)


def check(items, max_fraction: float, px: int) -> dict:
    hits = np.zeros(len(items), bool)
    share = np.zeros(len(items))
    aspect_err = np.zeros(len(items))
    t = time.perf_counter()
    for i, (path, true) in enumerate(items):
        dec = decode_image(path, target_side=INPUT_SIZE, trim_borders=True, trim_max_fraction=max_fraction)
        w, h = dec.original_size
        got = dec.trimmed_box or (0, 0, w, h)
        hits[i] = max(abs(a - b) for a, b in zip(got, true)) <= px
        share[i] = bar_share(true, (w, h))
        true_aspect = (true[2] - true[0]) / max(1, true[3] - true[1])
        aspect_err[i] = abs(np.log(dec.image.width / dec.image.height) - np.log(true_aspect))
    res = {"max_fraction": max_fraction, "images": len(items), "within_px": px,
           "share_within": float(hits.mean()), "seconds": time.perf_counter() - t,
           "aspect_within_5pct": float((aspect_err <= np.log(1.05)).mean()), "by_bars": []}
    for lo, hi, name in BAR_BINS:
        m = (share >= lo) & (share < hi)
        res["by_bars"].append({"bars": name, "images": int(m.sum()),
                               "share_within": float(hits[m].mean()) if m.any() else float("nan")})
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--max-fraction", type=float, action="append",
                    help=f"trim limit(s) to compare (default: the old {SAFE_TRIM_FRACTION} and the app's "
                         f"{DEFAULT_TRIM_MAX_FRACTION})")
    ap.add_argument("--px", type=int, default=3, help="tolerance per side in pixels (default 3)")
    ap.add_argument("--limit", type=int, help="only the first N images (smoke runs)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    items = read_boxes(args.folder)[: args.limit]
    results = []
    for mf in args.max_fraction or [SAFE_TRIM_FRACTION, DEFAULT_TRIM_MAX_FRACTION]:
        r = check(items, mf, args.px)
        results.append(r)
        bins = "; ".join(f"{b['bars']} ({b['images']}): {b['share_within']:.1%}" for b in r["by_bars"])
        print(f"max_fraction {mf:g}: {r['share_within']:.1%} of {r['images']} trimmed boxes within {args.px} px "
              f"of the content box [{bins}]; aspect ratio within 5%: {r['aspect_within_5pct']:.1%} "
              f"({r['seconds']:.1f} s)", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
