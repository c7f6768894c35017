"""Retrieval and topic quality against a label column: precision@K, mAP@K, NMI; shape leak."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .parts import blend, l2n


@dataclass
class RetrievalScores:
    name: str
    precision_at_k: float
    map_at_k: float
    k: int
    n: int


def retrieval_scores(emb: np.ndarray, labels: list[str], k: int = 10, name: str = "") -> RetrievalScores:
    """Leave-one-out exact cosine retrieval over rows that have a label."""
    keep = np.array([bool(x) for x in labels])
    x = emb[keep].astype(np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    y = np.array([lab for lab in labels if lab])
    n = len(y)
    k = min(k, max(1, n - 1))
    precs, aps = [], []
    for s in range(0, n, 1024):
        sims = x[s : s + 1024] @ x.T
        for r in range(sims.shape[0]):
            sims[r, s + r] = -np.inf
        top = np.argpartition(-sims, k, axis=1)[:, :k]
        order = np.take_along_axis(sims, top, 1).argsort(1)[:, ::-1]
        top = np.take_along_axis(top, order, 1)
        rel = (y[top] == y[s : s + sims.shape[0], None]).astype(np.float32)
        precs.extend(rel.mean(1))
        cum = np.cumsum(rel, 1)
        prec_i = cum / np.arange(1, k + 1)
        denom = np.maximum(rel.sum(1), 1)
        aps.extend((prec_i * rel).sum(1) / denom)
    return RetrievalScores(name, float(np.mean(precs)) if precs else 0.0, float(np.mean(aps)) if aps else 0.0, k, n)


def nmi(a: list, b: list) -> float:
    from sklearn.metrics import normalized_mutual_info_score

    pairs = [(x, y) for x, y in zip(a, b) if y not in ("", None)]
    if not pairs:
        return float("nan")
    return float(normalized_mutual_info_score([p[0] for p in pairs], [p[1] for p in pairs]))


def evaluate_parts(parts: dict[str, np.ndarray], weights: dict[str, float], labels: list[str],
                   k: int = 10) -> list[RetrievalScores]:
    out = [retrieval_scores(parts[p], labels, k, f"{p} only") for p in parts]
    out.append(retrieval_scores(blend(parts, weights), labels, k,
                                "blend " + "/".join(f"{p}={weights.get(p, 0):g}" for p in parts)))
    return out


#: Aspect-ratio bins (width / height of the picture without its bars): tall, portrait, square-ish,
#: landscape, wide. Edges are roughly even steps of log aspect.
ASPECT_EDGES = (0.6, 0.85, 1.18, 1.67)
ASPECT_BIN_NAMES = ("< 0.6", "0.6-0.85", "0.85-1.18", "1.18-1.67", "> 1.67")


def aspect_bins(width, height) -> np.ndarray:
    """Aspect bin (0..4, see :data:`ASPECT_EDGES`) of each width/height pair; -1 where unknown."""
    w = np.asarray(width, dtype=np.float64)
    h = np.asarray(height, dtype=np.float64)
    ok = np.isfinite(w) & np.isfinite(h) & (w > 0) & (h > 0)
    ratio = np.where(ok, w / np.where(ok, h, 1.0), 1.0)
    return np.where(ok, np.searchsorted(ASPECT_EDGES, ratio, side="right"), -1).astype(np.int64)


def box_size(text: str | None) -> tuple[int, int] | None:
    """(width, height) of an "x0 y0 x1 y1" box (as in a labels.csv content box column), else None."""
    try:
        x0, y0, x1, y1 = (float(v) for v in str(text).replace(",", " ").split())
    except (TypeError, ValueError):
        return None
    return (round(x1 - x0), round(y1 - y0)) if x1 > x0 and y1 > y0 else None


@dataclass
class ShapeLeak:
    """How much the picture's shape groups paintings (it should not).

    ``nmi_topic``: NMI between the dominant topic and the aspect bin (NaN without topics).
    ``same_bin``: share of each query's ``k`` nearest neighbours (cosine, self excluded) that fall in the
    query's aspect bin; ``chance``: the share expected when neighbours ignore shape (sum of squared bin
    shares). ``counts``: paintings per bin; rows of unknown aspect are left out of everything.
    """

    nmi_topic: float
    same_bin: float
    chance: float
    counts: list[int]
    k: int
    n: int


def shape_leak(emb: np.ndarray, bins: np.ndarray, topics=None, k: int = 10) -> ShapeLeak:
    """Shape-leak figures of an embedding (rows = paintings) and optional dominant topics."""
    bins = np.asarray(bins)
    keep = bins >= 0
    b = bins[keep]
    n = len(b)
    counts = [int((b == i).sum()) for i in range(len(ASPECT_EDGES) + 1)]
    chance = float(sum((c / n) ** 2 for c in counts)) if n else float("nan")
    nmi_topic = float("nan")
    if topics is not None and n:
        nmi_topic = nmi(list(np.asarray(topics)[keep]), list(b))
    k = min(k, n - 1)
    if k < 1:
        return ShapeLeak(nmi_topic, float("nan"), chance, counts, max(k, 0), n)
    x = l2n(np.asarray(emb, dtype=np.float32)[keep])
    same = []
    for s in range(0, n, 1024):
        sims = x[s : s + 1024] @ x.T
        rows = np.arange(sims.shape[0])
        sims[rows, s + rows] = -np.inf
        top = np.argpartition(-sims, k, axis=1)[:, :k]
        same.append((b[top] == b[s : s + sims.shape[0], None]).mean(axis=1))
    return ShapeLeak(nmi_topic, float(np.concatenate(same).mean()), chance, counts, k, n)
