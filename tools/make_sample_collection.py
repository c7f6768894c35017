#!/usr/bin/env python3
"""Regenerate the bundled demo collection ``resources/sample_paintings/``.

Takes 24 Baroque and 24 Romanticism paintings (public domain: the painters
died centuries ago) from the wikiart7-dev evaluation set, crops each one to
its content box so the black letterbox bars are gone, strips metadata and
saves it as JPEG quality 92.  Also writes ``labels.csv``.

Selection is deterministic: per style, files are sorted by their numeric
name and cut into 24 equal strides; for each stride the first usable image
at or after its start is taken.  Unusable: near-monochrome or mostly light images (drawings,
engravings, sepia studies on paper), a short hand-made exclusion list, and
tiny crops.

Usage::

    python tools/make_sample_collection.py [WIKIART7_DEV_DIR] [--out DIR]

``WIKIART7_DEV_DIR`` defaults to ``../shared/data/wikiart7-dev`` relative to
the repository root.  Only the Baroque and Romanticism folders are ever read.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SRC = REPO_ROOT.parent / "shared" / "data" / "wikiart7-dev"
DEFAULT_OUT = REPO_ROOT / "resources" / "sample_paintings"

# source folder name -> (output subfolder, style string in labels.csv)
STYLES = {
    "Baroque": ("baroque", "Baroque"),
    "Romanticism": ("romanticism", "Romanticism"),
}
N_PER_STYLE = 24
JPEG_QUALITY = 92
MIN_COLOURFULNESS = 18.0  # Hasler & Suesstrunk metric; below ~15 looks monochrome
MIN_SIDE = 96  # skip crops whose content box is narrower/shorter than this
LIGHT_LEVEL = 170  # grey level counted as "paper"
MAX_LIGHT = 0.4  # skip images with more than this share of light pixels
SOURCE_REPO = "eliogrande/TheEndlessTuning_WikiArt224"
# Drawings/engravings that pass the colourfulness filter (sepia tint), found by
# looking at a contact sheet of the selection.  Keys are labels.csv paths.
EXCLUDE = {
    "images/Romanticism/707.jpg",  # sepia engraving of a bearded man
    "images/Romanticism/710.jpg",  # sepia chalk study of drapery
    "images/Romanticism/4733.jpg",  # tinted pencil drawing of a woman
}


def colourfulness(img: Image.Image) -> float:
    """Hasler & Suesstrunk (2003) colourfulness of an RGB image."""
    a = np.asarray(img.convert("RGB"), dtype=np.float32)
    rg = a[..., 0] - a[..., 1]
    yb = 0.5 * (a[..., 0] + a[..., 1]) - a[..., 2]
    return float(
        np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
    )


def parse_bbox(text: str) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = (int(v) for v in text.split())
    return x0, y0, x1, y1


def load_rows(src: Path) -> list[dict[str, str]]:
    with open(src / "labels.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def light_fraction(img: Image.Image) -> float:
    """Share of bright pixels: drawings and prints on paper are mostly light."""
    a = np.asarray(img.convert("L"), dtype=np.uint8)
    return float((a > LIGHT_LEVEL).mean())


def usable(src: Path, r: dict[str, str]) -> Image.Image | None:
    """Cropped image for a labels.csv row, or None if it should be skipped."""
    if r["path"] in EXCLUDE:
        return None
    x0, y0, x1, y1 = parse_bbox(r["content_bbox_x0_y0_x1_y1"])
    if min(x1 - x0, y1 - y0) < MIN_SIDE:
        return None
    with Image.open(src / r["path"]) as im:
        crop = im.convert("RGB").crop((x0, y0, x1, y1))
    if colourfulness(crop) < MIN_COLOURFULNESS or light_fraction(crop) > MAX_LIGHT:
        return None
    return crop


def select(src: Path, rows: list[dict[str, str]], folder: str) -> list[tuple[dict, Image.Image]]:
    """Deterministically pick N_PER_STYLE cropped images from one style folder.

    Rows sorted by numeric name are cut into N_PER_STYLE equal strides; for
    each stride the first usable image at or after its start (and after the
    previous pick) is taken, so skipping one image only shifts nearby picks.
    """
    prefix = f"images/{folder}/"
    rows = [r for r in rows if r["path"].startswith(prefix)]
    rows.sort(key=lambda r: int(Path(r["path"]).stem))
    picked = []
    pos = 0
    for j in range(N_PER_STYLE):
        pos = max(pos, j * len(rows) // N_PER_STYLE)
        while pos < len(rows):
            r = rows[pos]
            pos += 1
            crop = usable(src, r)
            if crop is not None:
                picked.append((r, crop))
                break
        else:
            raise SystemExit(f"only {len(picked)} usable images in {folder}")
    return picked


def save_clean_jpeg(img: Image.Image, path: Path) -> None:
    # Re-create the image from raw pixels so no EXIF/ICC/comment survives.
    clean = Image.frombytes("RGB", img.size, img.convert("RGB").tobytes())
    clean.save(path, "JPEG", quality=JPEG_QUALITY, optimize=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", nargs="?", type=Path, default=DEFAULT_SRC,
                    help="wikiart7-dev folder (default: %(default)s)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT,
                    help="output folder (default: %(default)s)")
    args = ap.parse_args(argv)
    src: Path = args.src.resolve()
    out: Path = args.out.resolve()
    if not (src / "labels.csv").is_file():
        ap.error(f"{src} has no labels.csv")

    rows = load_rows(src)
    labels: list[list[str]] = []
    for folder, (sub, style) in STYLES.items():
        picked = select(src, rows, folder)
        dest = out / sub
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        for r, crop in picked:
            name = f"{int(Path(r['path']).stem):04d}.jpg"
            save_clean_jpeg(crop, dest / name)
            commit = r["source_commit"][:8] or "7a1ba60d"
            source = f"wikiart via {r['source_repo'] or SOURCE_REPO}@{commit} {r['source_path']}"
            labels.append([f"{sub}/{name}", "", "", "", style, source])

    with open(out / "labels.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["path", "artist", "title", "year", "style", "source"])
        w.writerows(labels)

    total = sum(p.stat().st_size for p in out.rglob("*.jpg"))
    print(f"wrote {len(labels)} images ({total / 1e6:.2f} MB) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
