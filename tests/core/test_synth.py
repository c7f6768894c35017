"""Self-checks for the synthetic paintings generator (tests/synth.py)."""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

try:
    from tests.synth import STYLES, make_collection, make_painting, write_labels_csv
except ImportError:  # tests/ not a package: import the sibling module directly
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from synth import STYLES, make_collection, make_painting, write_labels_csv


def _hist(img: Image.Image, bins: int = 8) -> np.ndarray:
    a = np.asarray(img.convert("RGB")).reshape(-1, 3) // (256 // bins)
    idx = (a[:, 0].astype(np.int64) * bins + a[:, 1]) * bins + a[:, 2]
    h = np.bincount(idx, minlength=bins**3).astype(np.float64)
    return h / h.sum()


def test_deterministic_by_seed_and_varied():
    assert len(set(STYLES)) >= 4
    for style in STYLES:
        a = np.asarray(make_painting(style, 3))
        b = np.asarray(make_painting(style, 3))
        c = np.asarray(make_painting(style, 4))
        assert a.shape == (128, 160, 3) and a.dtype == np.uint8
        assert np.array_equal(a, b), style
        assert not np.array_equal(a, c), style
    img = make_painting(STYLES[0], 0, size=(64, 48))
    assert img.mode == "RGB" and img.size == (64, 48)


def test_styles_separable_by_colour_histogram():
    n = 10
    feats = {s: np.stack([_hist(make_painting(s, i)) for i in range(2 * n)]) for s in STYLES}
    # centroids from the first half, classify the second half
    centroids = np.stack([feats[s][:n].mean(0) for s in STYLES])
    correct = total = 0
    for k, s in enumerate(STYLES):
        for h in feats[s][n:]:
            pred = int(np.argmin(np.linalg.norm(centroids - h, axis=1)))
            correct += pred == k
            total += 1
    assert correct / total >= 0.9, correct / total


def test_make_collection_writes_promised_files(tmp_path: Path):
    t0 = time.perf_counter()
    rows = make_collection(tmp_path / "nested", n_per_style=3, seed=7)
    assert time.perf_counter() - t0 < 5.0
    assert len(rows) == 3 * len(STYLES)
    files = sorted(p.relative_to(tmp_path / "nested").as_posix()
                   for p in (tmp_path / "nested").rglob("*") if p.is_file())
    assert files == sorted(r for r, _ in rows)  # images only, nothing else
    for rel, style in rows:
        assert rel == f"{style}/{rel.split('/')[-1]}" and rel.endswith(".jpg")
        with Image.open(tmp_path / "nested" / rel) as im:
            assert im.format == "JPEG" and im.mode == "RGB" and im.size == (160, 128)

    flat = make_collection(tmp_path / "flat", n_per_style=2, styles=STYLES[:2],
                           size=(40, 30), fmt="png", subfolders=False)
    assert [r for r, _ in flat] == [f"{s}_{i}.png" for s in STYLES[:2] for i in range(2)]
    assert all((tmp_path / "flat" / r).is_file() for r, _ in flat)
    assert not any(p.is_dir() for p in (tmp_path / "flat").iterdir())

    write_labels_csv(tmp_path / "labels.csv", flat, column="movement")
    with open(tmp_path / "labels.csv", newline="", encoding="utf-8") as f:
        got = list(csv.reader(f))
    assert got[0] == ["path", "movement"]
    assert [tuple(r) for r in got[1:]] == flat
