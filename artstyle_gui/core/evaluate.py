"""Retrieval and topic quality against a label column: precision@K, mAP@K, NMI."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .analysis import PARTS, blend


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
    out = [retrieval_scores(parts[p], labels, k, f"{p} only") for p in PARTS]
    out.append(retrieval_scores(blend(parts, weights), labels, k,
                                "blend " + "/".join(f"{p}={weights.get(p, 0):g}" for p in PARTS)))
    return out
