"""Inputs for the speed benchmarks, built once and cached outside the repository.

* :func:`large_jpegs` - photographs-of-paintings-sized JPEGs (default 2400 x 1800) made from real
  paintings: a 224 px painting upscaled, with film-grain noise and a fine canvas weave added so the
  file carries as much entropy (and costs as much to decode) as a real photograph of that size.
* :func:`synthetic_index` - a collection of ``n`` small, unique image files whose index (records +
  feature vectors of the real layout) is written straight into the store with synthetic vectors, then
  analysed by the real engine.  Everything after the extraction (re-opening, the gallery, topics,
  neighbours) runs the product's own code on it; only the CNN pass is skipped, because extracting
  100,000 images takes about 45 minutes on this machine and is measured separately.
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image

from artstyle_gui.core.ingest.backbones import REGISTRY
from artstyle_gui.core.index.collection import Collection
from artstyle_gui.core.model import Settings
from artstyle_gui.core.ingest.features import FeatureLayout, content_hash
from artstyle_gui.core.ingest.scan import iter_image_files
from artstyle_gui.core.ingest.store import FileRecord


def large_jpegs(src_images: list[Path], out: Path, n: int, size=(2400, 1800), quality: int = 90) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    weave = (8 * np.sin(xx * 1.3) * np.sin(yy * 1.1)).astype(np.float32)[..., None]  # canvas texture
    for i in range(n):
        p = out / f"large_{i:04d}.jpg"
        paths.append(p)
        if p.exists():
            continue
        with Image.open(src_images[i % len(src_images)]) as im:
            big = np.asarray(im.convert("RGB").resize(size, Image.BICUBIC), np.float32)
        big += weave + rng.normal(0, 6, big.shape).astype(np.float32)
        Image.fromarray(np.clip(big, 0, 255).astype(np.uint8)).save(p, quality=quality)
    return paths


def _tiny_jpeg(i: int, rng: np.random.Generator) -> bytes:
    a = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    a[0, 0] = (i & 255, (i >> 8) & 255, (i >> 16) & 255)  # unique content for every file
    buf = io.BytesIO()
    Image.fromarray(a).resize((48, 40), Image.NEAREST).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _synthetic_blobs(layout: FeatureLayout, styles: np.ndarray, rng: np.random.Generator,
                     protos: dict[str, np.ndarray]) -> list[bytes]:
    """Feature blobs of the real layout with style structure (non-negative like real activations)."""
    n = len(styles)
    deep = np.maximum(protos["deep"][styles] + rng.normal(0, 0.6, (n, layout.deep_dim)), 0)
    grams = [np.abs(protos[f"gram{g}"][styles] + rng.normal(0, 0.3, (n, d))) for g, d in enumerate(layout.gram_dims)]
    colour = rng.dirichlet(np.full(layout.colour_dim, 0.05), n) * 0.5 + protos["colour"][styles] * 0.5
    local = np.maximum(protos["local"][styles][:, rng.integers(0, 6, layout.local_shape[0])]
                       + rng.normal(0, 0.5, (n, *layout.local_shape)), 0)
    return [layout.pack(deep[j], [g[j] for g in grams], colour[j], local[j]) for j in range(n)]


def synthetic_index(root: Path, index_dir: Path, n: int, *, settings: Settings, n_styles: int = 12,
                    chunk: int = 2000, analyse: bool = True) -> dict:
    """Create (or reuse) ``n`` files under ``root`` and their synthetic index; returns build figures.
    ``analyse`` False: the features only (the caller analyses, e.g. in a process of its own)."""
    marker = index_dir / f"synthetic-{n}.done"
    if marker.exists():
        return {"reused": True}
    t0 = time.perf_counter()
    rng = np.random.default_rng(n)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        d = root / f"{i // 1000:03d}"
        if i % 1000 == 0:
            d.mkdir(exist_ok=True)
        p = d / f"p{i:06d}.jpg"
        if not p.exists():
            p.write_bytes(_tiny_jpeg(i, rng))
    files_s = time.perf_counter() - t0
    layout = FeatureLayout.for_backbone(REGISTRY[settings.backbone], settings.colour_bins)
    protos = {
        "deep": rng.gamma(0.6, 1.0, (n_styles, layout.deep_dim)),
        "colour": rng.dirichlet(np.full(layout.colour_dim, 0.1), n_styles),
        "local": rng.gamma(0.6, 1.0, (n_styles, 6, layout.local_shape[1])),
    }
    for g, d in enumerate(layout.gram_dims):
        protos[f"gram{g}"] = rng.gamma(0.8, 1.0, (n_styles, d))
    col = Collection(root, settings=settings, index_dir=index_dir)
    try:
        fs, _key = col.files.featureset()
        files = list(iter_image_files(col.root))
        for s in range(0, len(files), chunk):
            part = files[s : s + chunk]
            styles = rng.integers(0, n_styles, len(part))
            blobs = _synthetic_blobs(layout, styles, rng, protos)
            recs, vecs = [], []
            for f, b, st in zip(part, blobs, styles):
                h = content_hash((col.root / f.relpath).read_bytes())
                recs.append(FileRecord(0, f.relpath, f.size, f.mtime_ns, h, "ok", None,
                                       {"style": f"Style {int(st) + 1}"}, 48, 40))
                vecs.append((h, b))
            with col.store.transaction():
                col.store.put_vectors(fs, vecs)
                col.store.upsert_files(recs)
        col.files.save_settings(settings)
        store_s = time.perf_counter() - t0 - files_s
        from artstyle_gui.core.progress import run

        t1 = time.perf_counter()
        if analyse:
            run(col.analyse())
        analyse_s = time.perf_counter() - t1
    finally:
        col.close()
    marker.write_text("ok")
    return {"reused": False, "files_s": round(files_s, 1), "store_s": round(store_s, 1),
            "analyse_s": round(analyse_s, 1), "db_mb": round(os.path.getsize(index_dir / "index.sqlite") / 2**20)}
