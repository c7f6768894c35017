"""The style map: every painting as a point of a 2-D layout of the search embedding.

Two layouts:

``pca``   the first two principal axes of the (L2-normalised) embedding: instant, always available.
``tsne``  scikit-learn's t-SNE (Barnes-Hut, ``init="pca"``) on the embedding reduced to 50 PCA
          dimensions and L2-normalised again (so distances follow the cosine similarity the search
          uses). Above :data:`TSNE_SAMPLE` paintings t-SNE is fitted on a seeded random sample and
          every other painting is placed at the similarity-weighted mean position of its nearest
          sampled paintings, which keeps 50k-100k paintings in minutes (docs/explore.md).
``auto``  t-SNE from :data:`AUTO_TSNE_MIN` paintings up to :data:`AUTO_TSNE_MAX`, else PCA.

Layouts are float32 ``(n, 2)``, centred and scaled so the longer axis spans [-1, 1] (aspect kept),
and deterministic for a given seed. :func:`style_map` caches the layout of a collection's current
embedding under its analysis directory (``stylemap-<method>.npz``, no pickle, atomic), keyed by
what shapes the embedding: the analysis fingerprint, the blend weights, the space (base or adapted,
with the adapter's id), the method and the seed; a matching saved layout is loaded, never recomputed.
The metric (cosine or euclidean) is not part of the key: the embedding is made of unit vectors and
the layout depends on the vectors only.
"""

from __future__ import annotations

import json
import os
import time
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from ..derived import DerivedFiles
from ..errors import ArtStyleError
from ..ingest.store import atomic_write_bytes, check_outside, load_npz, save_npz
from ..model import Analysis
from ..progress import Progress, ProgressGen
from .summaries import csv_bytes, label_columns

METHODS = ("auto", "pca", "tsne")
TSNE_SAMPLE = 10_000  # t-SNE is fitted on at most this many paintings; the rest are placed by neighbours
AUTO_TSNE_MIN = 10  # fewer paintings: PCA (t-SNE on a handful of points says nothing)
AUTO_TSNE_MAX = 200_000  # more paintings: PCA (placing the rest grows linearly; see docs/explore.md)
MAP_VERSION = 1
_PLACE_NEIGHBOURS = 5
_PLACE_CHUNK = 2048


def resolve_method(method: str, n: int) -> str:
    """The concrete layout ("pca" or "tsne") that ``method`` gives for ``n`` paintings."""
    if method not in METHODS:
        raise ArtStyleError(f"map method must be one of {', '.join(METHODS)} (got {method!r}).")
    if method == "auto":
        return "tsne" if AUTO_TSNE_MIN <= n <= AUTO_TSNE_MAX else "pca"
    return method


# --------------------------------------------------------------------------- layouts
def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _pca(x: np.ndarray, k: int) -> np.ndarray:
    """Scores on the top-k principal axes (eigendecomposition of the d x d covariance; the sign of
    every axis is fixed, largest loading positive, so the result is deterministic)."""
    n, d = x.shape
    k = int(min(k, d, max(1, n)))
    xc = (x - x.mean(0, dtype=np.float64)).astype(np.float32)
    if n < 2:
        return np.zeros((n, k), np.float32)
    w, v = np.linalg.eigh((xc.T @ xc).astype(np.float64))
    v = v[:, ::-1][:, :k]
    big = np.argmax(np.abs(v), axis=0)
    v = v * np.sign(v[big, np.arange(v.shape[1])])
    return (xc @ v.astype(np.float32)).astype(np.float32)


def _scale(xy: np.ndarray) -> np.ndarray:
    """Centre on the midrange and scale by the larger half-range: the layout fills [-1, 1]."""
    xy = np.asarray(xy, np.float64)
    if len(xy) == 0:
        return np.zeros((0, 2), np.float32)
    lo, hi = xy.min(0), xy.max(0)
    half = float(np.max(hi - lo)) / 2
    out = (xy - (lo + hi) / 2) / (half if half > 1e-12 else 1.0)
    return np.clip(out, -1, 1).astype(np.float32)


def pca_layout(vectors: np.ndarray) -> np.ndarray:
    x = _unit(vectors)
    xy = _pca(x, 2)
    if xy.shape[1] < 2:
        xy = np.concatenate([xy, np.zeros((len(xy), 2 - xy.shape[1]), np.float32)], axis=1)
    return _scale(xy)


def _tsne_iters(n: int) -> int:
    """Optimisation steps (250 of them early exaggeration): 1000 for small sets; 500 above, which halves
    the time for a small loss of neighbourhood preservation (docs/explore.md)."""
    return 1000 if n <= 2500 else 500


def _tsne_threads(n: int) -> int:
    """OpenMP threads for the Barnes-Hut gradient. Small sets: one (measured 2.7x faster than two on a
    busy 2-core machine, where spinning OpenMP threads fight for the cores; 80 points took 0.5 s with
    one thread and 3-16 s with two); large sets: up to 4, leaving a core for the app."""
    if n <= 5000:
        return 1
    return max(1, min(4, (os.cpu_count() or 1) - 1))


def _tsne(x: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.manifold import TSNE

    n = len(x)
    perplexity = float(min(30.0, max(2.0, (n - 1) / 3.0)))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto", random_state=seed,
                method="barnes_hut", max_iter=_tsne_iters(n), n_jobs=None)
    try:  # scikit-learn's own dependency
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return tsne.fit_transform(x.astype(np.float32)).astype(np.float32)
    with threadpool_limits(limits=_tsne_threads(n), user_api="openmp"):
        return tsne.fit_transform(x.astype(np.float32)).astype(np.float32)


def _nearest(query: np.ndarray, base: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-m rows of ``base`` by dot product for every row of ``query`` (exact, one chunk)."""
    sims = query @ base.T
    m = min(m, base.shape[0])
    idx = np.argpartition(-sims, m - 1, axis=1)[:, :m]
    s = np.take_along_axis(sims, idx, axis=1)
    return idx, s


def _tsne_seconds(n: int, sample: int) -> float:
    """Rough wall time on a 2-core machine (docs/explore.md), for the progress message."""
    m = min(n, sample)
    return 1e-5 * m * _tsne_iters(m) + 2e-4 * max(0, n - m)


def compute_layout(vectors: np.ndarray, method: str = "auto", seed: int = 0, *,
                   tsne_sample: int = TSNE_SAMPLE) -> ProgressGen[np.ndarray]:
    """2-D layout of ``vectors`` (n, d): float32 (n, 2) in [-1, 1]. A progress generator."""
    vectors = np.asarray(vectors)
    if vectors.ndim != 2:
        raise ValueError("vectors must be a 2-D array (n, d)")
    n = len(vectors)
    method = resolve_method(method, n)
    if method == "pca" or n < 5:
        yield Progress("map", 0, 1, f"PCA map of {n:,} paintings")
        xy = pca_layout(vectors)
        yield Progress("map", 1, 1, "map ready")
        return xy
    total = 4
    yield Progress("map", 0, total, f"reducing {n:,} embeddings to 50 dimensions")
    x = _unit(vectors)
    if x.shape[1] > 50:
        x = _unit(_pca(x, 50))
    rng = np.random.default_rng(seed)
    sample_n = int(max(5, tsne_sample))
    if n > sample_n:
        sample = np.sort(rng.choice(n, size=sample_n, replace=False))
    else:
        sample = np.arange(n)
    est = _tsne_seconds(n, sample_n)
    yield Progress("map", 1, total, f"t-SNE on {len(sample):,} paintings (about {est:.0f} s)")
    t0 = time.monotonic()
    ys = _tsne(x[sample], seed)
    out = np.zeros((n, 2), np.float32)
    out[sample] = ys
    rest = np.setdiff1d(np.arange(n), sample)
    yield Progress("map", 2, total, f"t-SNE done in {time.monotonic() - t0:.0f} s")
    if len(rest):
        xs = x[sample]
        chunks = [rest[i: i + _PLACE_CHUNK] for i in range(0, len(rest), _PLACE_CHUNK)]
        for ci, rows in enumerate(chunks):
            idx, s = _nearest(x[rows], xs, _PLACE_NEIGHBOURS)
            # similarity-weighted mean of the nearest sampled positions; sharp weights favour the nearest
            w = np.exp((s - s.max(1, keepdims=True)) / 0.02)
            w /= w.sum(1, keepdims=True)
            out[rows] = np.einsum("rm,rmc->rc", w, ys[idx]).astype(np.float32)
            if ci % 4 == 3 or ci == len(chunks) - 1:
                done = min(len(rest), (ci + 1) * _PLACE_CHUNK)
                yield Progress("map", 2, total, f"placed {done:,}/{len(rest):,} other paintings by their neighbours")
    xy = _scale(out)
    yield Progress("map", total, total, "map ready")
    return xy


# --------------------------------------------------------------------------- quality figure
def _knn_rows(x: np.ndarray, queries: np.ndarray, k: int, cosine: bool) -> np.ndarray:
    out = np.empty((len(queries), k), np.int64)
    sq = None if cosine else (x.astype(np.float64) ** 2).sum(1)
    for s in range(0, len(queries), 1024):
        q = queries[s: s + 1024]
        if cosine:
            score = x[q] @ x.T
        else:
            xf = x.astype(np.float64)
            score = 2 * xf[q] @ xf.T - sq[None, :]  # -|a-b|^2 + |a|^2: the same ranking per query
        score[np.arange(len(q)), q] = -np.inf
        idx = np.argpartition(-score, k - 1, axis=1)[:, :k]
        out[s: s + len(q)] = idx
    return out


def neighbourhood_preservation(high: np.ndarray, low: np.ndarray, k: int = 10, *,
                               sample: int | None = 5000, seed: int = 0) -> float:
    """Mean fraction of every point's k nearest neighbours in ``high`` (cosine) that are also among
    its k nearest in ``low`` (euclidean). Chance level is about k / (n - 1). Above ``sample`` points
    the mean is taken over a seeded random sample of query points (neighbours still among all)."""
    high, low = np.asarray(high), np.asarray(low)
    n = len(high)
    if n != len(low):
        raise ValueError("high and low must have the same number of rows")
    k = int(min(k, n - 1))
    if k < 1:
        return float("nan")
    queries = np.arange(n)
    if sample is not None and n > sample:
        queries = np.sort(np.random.default_rng(seed).choice(n, size=sample, replace=False))
    a = _knn_rows(_unit(high), queries, k, cosine=True)
    b = _knn_rows(np.asarray(low, np.float64), queries, k, cosine=False)
    kept = [len(np.intersect1d(a[i], b[i], assume_unique=True)) for i in range(len(queries))]
    return float(np.mean(kept) / k)


# --------------------------------------------------------------------------- the collection's map
#: layouts computed or loaded in this process, per collection (its DerivedFiles), by key: a layout
#: made while another process holds the index's writer lock is kept here only
_MEMORY: "weakref.WeakKeyDictionary[DerivedFiles, dict[str, np.ndarray]]" = weakref.WeakKeyDictionary()


def _map_key(an: Analysis, method: str, seed: int) -> dict[str, Any]:
    adapter = an.adapter
    return {"version": MAP_VERSION, "fingerprint": an.fingerprint, "n": an.n,
            "weights": {k: float(v) for k, v in sorted(an.weights.items())}, "space": an.space,
            "adapter": str(adapter.id) if an.space == "adapted" and adapter is not None else None,
            "method": method, "seed": int(seed)}


def _map_path(files: DerivedFiles, method: str):
    return files.dir / f"stylemap-{method}.npz"


def _memory(files: DerivedFiles) -> dict[str, np.ndarray]:
    return _MEMORY.setdefault(files, {})


def saved_style_map(an: Analysis, files: DerivedFiles, method: str = "auto") -> np.ndarray | None:
    """The saved layout of ``an``'s embedding, or None (nothing is computed). Paintings placed into
    the analysis since its fit (incremental analysis) are placed into the fit's saved layout: at the mean
    position of their 5 nearest fitted paintings (cosine in the search embedding); that layout is then
    saved as this analysis's."""
    method = resolve_method(method, an.n)
    seed = files.settings.seed
    key = json.dumps(_map_key(an, method, seed), sort_keys=True)
    mem = _memory(files).get(key)
    if mem is not None:
        return mem
    saved = _load_map(files, method)
    xy = None
    if saved is not None and str(saved.get("key", "")) == key:
        xy = _valid(saved.get("xy"), an.n)
    if xy is None and an.fit_rows is not None:
        fit_key = json.dumps({**_map_key(an, method, seed), "fingerprint": an.fit_fingerprint, "n": an.fitted_on},
                             sort_keys=True)
        fit_xy = _memory(files).get(fit_key)
        if fit_xy is None and saved is not None:
            for k, v in (("key", "xy"), ("base_key", "base_xy")):
                if str(saved.get(k, "")) == fit_key:
                    fit_xy = _valid(saved.get(v), an.fitted_on)
        if fit_xy is not None:
            xy = _placed_layout(an, fit_xy)
            path = _map_path(files, method)
            files.write_if_unlocked(lambda: save_npz(path, xy=xy, key=np.array(key), base_xy=fit_xy,
                                                     base_key=np.array(fit_key)))
    if xy is not None:
        _memory(files)[key] = xy
    return xy


def _load_map(files: DerivedFiles, method: str) -> dict[str, np.ndarray] | None:
    path = _map_path(files, method)
    if not path.is_file():
        return None
    try:
        return load_npz(path)
    except ArtStyleError:
        return None  # a damaged cache is recomputed


def _valid(xy: np.ndarray | None, n: int) -> np.ndarray | None:
    if xy is None or xy.shape != (n, 2) or not np.issubdtype(xy.dtype, np.floating) or not np.isfinite(xy).all():
        return None
    return xy.astype(np.float32)


def _placed_layout(an: Analysis, fit_xy: np.ndarray) -> np.ndarray:
    """The fit's layout for the fitted paintings still there; each placed one at the mean of its 5 nearest."""
    kept = an.fit_rows >= 0
    xy = np.zeros((an.n, 2), np.float32)
    xy[kept] = fit_xy[an.fit_rows[kept]]
    if (~kept).any() and kept.any():
        x = _unit(an.blended)
        for s in range(0, int((~kept).sum()), 1024):
            rows = np.flatnonzero(~kept)[s : s + 1024]
            idx, _ = _nearest(x[rows], x[kept], 5)
            xy[rows] = xy[kept][idx].mean(1)
    return np.clip(xy, -1.0, 1.0)


def style_map(an: Analysis, files: DerivedFiles, method: str = "auto") -> ProgressGen[np.ndarray]:
    """The layout of ``an``'s search embedding, loaded when saved, else computed and saved (by the
    writer-lock holder only; while another process indexes the collection it stays in memory).
    A progress generator returning float32 (n, 2)."""
    method = resolve_method(method, an.n)
    saved = saved_style_map(an, files, method)
    if saved is not None:
        yield Progress("map", 1, 1, "loaded the saved map")
        return saved
    seed = files.settings.seed
    key = json.dumps(_map_key(an, method, seed), sort_keys=True)
    xy = yield from compute_layout(an.blended, method, seed=seed)
    _memory(files)[key] = xy
    path = _map_path(files, method)
    files.write_if_unlocked(lambda: save_npz(path, xy=xy, key=np.array(key)))
    return xy


# --------------------------------------------------------------------------- the map as CSV (CLI and app)
MAP_CSV_COLUMNS = ("relpath", "x", "y", "dominant_topic", "dominant_topic_name")


def map_csv_bytes(an: Analysis, xy: np.ndarray, topic_names: dict[int, str], rows=None,
                  columns: list[str] | None = None) -> bytes:
    """The map as CSV: relpath, x, y, dominant topic (1-based) and its name, then the label columns
    (``columns``, default every label column the rows carry). ``rows``: the paintings (default all).
    Cells are escaped against spreadsheet formulas."""
    rows = list(range(an.n)) if rows is None else [int(r) for r in rows]
    labels = [{k: v for k, v in an.labels[r].items() if v} for r in rows]
    cols = list(columns) if columns is not None else label_columns(labels, skip=("path", "source"))
    dom = an.dominant_topics()
    out = []
    for r, lab in zip(rows, labels):
        t = int(dom[r])
        out.append([an.relpaths[r], f"{xy[r, 0]:.5f}", f"{xy[r, 1]:.5f}", t + 1 if t >= 0 else "",
                    topic_names.get(t, "") if t >= 0 else "", *[lab.get(k, "") for k in cols]])
    return csv_bytes([*MAP_CSV_COLUMNS, *cols], out)


def write_map_csv(path: str | os.PathLike, root: str | os.PathLike, an: Analysis, xy: np.ndarray,
                  topic_names: dict[int, str], rows=None, columns: list[str] | None = None) -> Path:
    """:func:`map_csv_bytes` written atomically to ``path`` (never inside the collection ``root``)."""
    path = Path(path).expanduser()
    check_outside(Path(root), path, what="map CSV")
    atomic_write_bytes(path, map_csv_bytes(an, xy, topic_names, rows, columns))
    return path
