"""The held-out split and the retrieval figures every learner reports (one place for the policy).

The adapter (:mod:`.adapt`), its verifier (:mod:`.verify`), the fine-tune (:mod:`.finetune`) and the
app's figures all derive "which paintings were held out" from :func:`heldout_rows` /
:func:`stratified_holdout` with the learner's own fraction and seed, so they agree row for row.
"""

from __future__ import annotations

import numpy as np

from ..analysis.parts import l2n


def usable_labels(labels: list[str], min_per_label: int = 2) -> np.ndarray:
    """Row mask of paintings whose label occurs at least ``min_per_label`` times."""
    vals, counts = np.unique([x for x in labels if x], return_counts=True)
    ok = {v for v, c in zip(vals, counts) if c >= min_per_label}
    return np.array([bool(x) and x in ok for x in labels])


def stratified_holdout(labels: np.ndarray, frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers (train, held out): ``frac`` of every label held out (at least one row of every
    label with 4+ members; labels with fewer rows stay in training)."""
    rng = np.random.default_rng(seed)
    tr, ho = [], []
    for v in np.unique(labels):
        idx = np.flatnonzero(labels == v)
        rng.shuffle(idx)
        k = int(round(len(idx) * frac))
        if len(idx) >= 4:
            k = min(max(k, 2 if len(idx) >= 8 else 1), len(idx) - 2)
        else:
            k = 0
        ho.extend(idx[:k])
        tr.extend(idx[k:])
    return np.sort(np.array(tr, np.int64)), np.sort(np.array(ho, np.int64))


def precision_at(emb: np.ndarray, labels: np.ndarray, queries: np.ndarray, gallery: np.ndarray,
                 k: int = 10) -> float:
    """Mean precision@k of ``queries`` retrieving from ``gallery`` (row numbers; a query never
    retrieves itself), exact cosine."""
    if len(queries) == 0 or len(gallery) < 2:
        return float("nan")
    x = l2n(emb)
    k = int(min(k, len(gallery) - 1))
    g = x[gallery]
    gl = labels[gallery]
    pos = {int(r): i for i, r in enumerate(gallery)}
    hits = []
    for s in range(0, len(queries), 1024):
        q = queries[s : s + 1024]
        sims = x[q] @ g.T
        for r, row in enumerate(q):
            j = pos.get(int(row))
            if j is not None:
                sims[r, j] = -np.inf
        top = np.argpartition(-sims, k, axis=1)[:, :k]
        hits.append((gl[top] == labels[q][:, None]).mean(1))
    return float(np.concatenate(hits).mean())


def retrieval_k(labels: np.ndarray, k: int = 10) -> int:
    """K for precision@K among ``labels``: ``k``, or less when the median label has fewer than
    k + 1 paintings (so that a perfect ranking can score 1)."""
    _, counts = np.unique(labels, return_counts=True)
    if len(counts) == 0:
        return 1
    return int(max(1, min(k, int(np.median(counts)) - 1)))


# --------------------------------------------------------------------------- training


def heldout_rows(labels: list[str], frac: float, seed: int, min_per_label: int = 2) -> np.ndarray:
    """Rows (of ``labels``) held out from training: a stratified ``frac`` of the paintings whose label
    has at least ``min_per_label`` paintings."""
    lab = np.array([x or "" for x in labels], dtype=object).astype(str)
    rows = np.flatnonzero(usable_labels(list(lab), min_per_label))
    _, classes = np.unique(lab[rows], return_inverse=True)
    _, ho = stratified_holdout(classes, frac, seed)
    return rows[ho]
