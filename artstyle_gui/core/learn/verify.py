""""Same hand?": a pairwise verifier trained from the labels (the Siamese idea, on frozen features).

Given two paintings a and b with embedding parts (deep, texture, colour; base or adapted space),
the pair is described per part by ``|a_p - b_p|`` and ``a_p * b_p`` (elementwise), and a
logistic regression turns the concatenation into the probability that both carry the same label
(same artist, same style, ...).  Being linear in the pair features, the log-odds split exactly
into one contribution per part::

    logit(a, b) = base + c_deep + c_texture + c_colour,   c_p = w_p . (phi_p(a, b) - mean phi_p)

where ``base`` is the log-odds of an average training pair: the contributions say how much each
part pushed this pair's probability up or down (linear SHAP values).

The decision threshold is chosen on held-out training pairs (best F1 there).  How well the
verifier generalises is measured the way that matters, on labels it never saw:
:func:`evaluate_unseen_labels` holds out groups of labels, trains on the others and scores pairs
made only of paintings with held-out labels (ROC AUC, F1 at the chosen threshold).

Saved next to the analysis as ``verifier.npz`` (arrays) + ``verifier.json`` (provenance); no pickle.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import ArtStyleError
from ..ingest.store import load_json, load_npz, save_json, save_npz

VERIFIER_VERSION = 1
VERIFIER_NPZ, VERIFIER_JSON = "verifier.npz", "verifier.json"


def pair_features(parts: dict[str, np.ndarray], i: np.ndarray, j: np.ndarray,
                  names=None) -> tuple[np.ndarray, list[slice]]:
    """(len(i), F) pair features and the column slice of each part (``names``, default all given)."""
    cols, slices, o = [], [], 0
    for p in (parts if names is None else names):
        a, b = parts[p][i].astype(np.float32), parts[p][j].astype(np.float32)
        f = np.concatenate([np.abs(a - b), a * b], axis=1)
        cols.append(f)
        slices.append(slice(o, o + f.shape[1]))
        o += f.shape[1]
    return np.concatenate(cols, axis=1), slices


def positive_pairs(labels: np.ndarray, rows: np.ndarray, n: int, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random pairs of distinct paintings among ``rows`` with the same label (a label is drawn
    in proportion to its number of pairs)."""
    lab = labels[rows]
    by = {v: rows[lab == v] for v in np.unique(lab)}
    multi = [v for v, r in by.items() if len(r) >= 2]
    if not multi:
        raise ArtStyleError("Pairs need a label carried by two or more paintings.")
    sizes = np.array([len(by[v]) for v in multi], float)
    pv = rng.choice(len(multi), size=n, p=sizes ** 2 / (sizes ** 2).sum())
    pi, pj = np.empty(n, np.int64), np.empty(n, np.int64)
    for c in np.unique(pv):
        r = by[multi[c]]
        m = pv == c
        a = rng.integers(0, len(r), m.sum())
        b = (a + rng.integers(1, len(r), m.sum())) % len(r)
        pi[m], pj[m] = r[a], r[b]
    return pi, pj


def negative_pairs(labels: np.ndarray, rows_a: np.ndarray, rows_b: np.ndarray, n: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random pairs (a in rows_a, b in rows_b) with different labels."""
    out_i, out_j, got = [], [], 0
    for _ in range(50):
        ni = rng.choice(rows_a, size=2 * n)
        nj = rng.choice(rows_b, size=2 * n)
        keep = labels[ni] != labels[nj]
        out_i.append(ni[keep])
        out_j.append(nj[keep])
        got += int(keep.sum())
        if got >= n:
            break
    if got == 0:
        raise ArtStyleError("Pairs need at least two different labels.")
    return np.concatenate(out_i)[:n], np.concatenate(out_j)[:n]


def sample_pairs(labels: np.ndarray, rows: np.ndarray, n_pairs: int, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Balanced random pairs among ``rows``: half with the same label, half with different labels."""
    if len(np.unique(labels[rows])) < 2:
        raise ArtStyleError("Pairs need at least two labels, one of them on two or more paintings.")
    half = max(1, n_pairs // 2)
    pi, pj = positive_pairs(labels, rows, half, rng)
    ni, nj = negative_pairs(labels, rows, rows, half, rng)
    i = np.concatenate([pi, ni])
    j = np.concatenate([pj, nj])
    y = np.concatenate([np.ones(len(pi)), np.zeros(len(ni))]).astype(np.int64)
    return i, j, y


def best_f1_threshold(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """(threshold, F1) maximising F1 over the candidate thresholds of ``p``."""
    from sklearn.metrics import precision_recall_curve

    prec, rec, thr = precision_recall_curve(y, p)
    if not len(thr):
        return 0.5, 0.0
    f1 = 2 * prec * rec / np.maximum(prec + rec, 1e-12)
    k = int(np.nanargmax(f1[:-1]))
    t = float(thr[k])
    below = p[p < t]
    if len(below):  # the middle (in log-odds) of the gap below the best cut, not its very edge
        lo = float(below.max())
        logit = lambda q: np.log(np.clip(q, 1e-12, 1 - 1e-12) / np.clip(1 - q, 1e-12, 1))  # noqa: E731
        t = float(1.0 / (1.0 + np.exp(-(logit(t) + logit(lo)) / 2)))
    return t, float(f1[k])


@dataclass
class Comparison:
    probability: float
    same: bool  # probability >= the verifier's threshold
    threshold: float
    base_logit: float
    contributions: dict[str, float]  # log-odds per part (sum + base_logit = logit of probability)
    cosine: dict[str, float]  # plain cosine similarity per part, for reference
    space: str


@dataclass
class PairVerifier:
    coef: np.ndarray  # (F,)
    intercept: float
    feat_mean: np.ndarray  # (F,) mean pair features of the training pairs
    dims: dict[str, int]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def threshold(self) -> float:
        return float(self.meta.get("threshold", 0.5))

    @property
    def space(self) -> str:
        return str(self.meta.get("space", "base"))

    def _check(self, parts: dict[str, np.ndarray]) -> None:
        for p in self.dims:
            if p not in parts or parts[p].shape[1] != self.dims[p]:
                raise ArtStyleError("The verifier was trained on other features; run `artstyle adapt` again.")

    def logits(self, parts: dict[str, np.ndarray], i, j) -> np.ndarray:
        self._check(parts)
        f, _ = pair_features(parts, np.atleast_1d(i), np.atleast_1d(j), self.dims)
        return f @ self.coef + self.intercept

    def probability(self, parts: dict[str, np.ndarray], i, j) -> np.ndarray | float:
        """P(same label) of the pairs (i, j) (row numbers, scalars or arrays)."""
        p = 1.0 / (1.0 + np.exp(-self.logits(parts, i, j)))
        return float(p[0]) if np.ndim(i) == 0 else p

    def explain(self, parts: dict[str, np.ndarray], i: int, j: int) -> Comparison:
        self._check(parts)
        f, slices = pair_features(parts, np.array([i]), np.array([j]), self.dims)
        base = float(self.intercept + self.feat_mean @ self.coef)
        contrib = {p: float((f[0, s] - self.feat_mean[s]) @ self.coef[s]) for p, s in zip(self.dims, slices)}
        logit = base + sum(contrib.values())
        prob = float(1.0 / (1.0 + np.exp(-logit)))
        cos = {p: float(parts[p][i] @ parts[p][j]) for p in self.dims}
        return Comparison(prob, prob >= self.threshold, self.threshold, base, contrib, cos, self.space)

    # -- persistence ---------------------------------------------------------
    def save(self, d: Path) -> None:
        save_npz(Path(d) / VERIFIER_NPZ, coef=self.coef, intercept=np.array([self.intercept], np.float64),
                 feat_mean=self.feat_mean)
        save_json(Path(d) / VERIFIER_JSON, {**self.meta, "dims": self.dims, "version": VERIFIER_VERSION})

    @classmethod
    def load(cls, d: Path) -> "PairVerifier | None":
        d = Path(d)
        if not (d / VERIFIER_JSON).exists() or not (d / VERIFIER_NPZ).exists():
            return None
        meta = load_json(d / VERIFIER_JSON)
        if meta.get("version") != VERIFIER_VERSION:
            return None
        a = load_npz(d / VERIFIER_NPZ)
        dims = {p: int(v) for p, v in meta.pop("dims").items()}
        return cls(a["coef"].astype(np.float64), float(a["intercept"][0]), a["feat_mean"].astype(np.float64),
                   dims, meta)


def fit_pairs(parts: dict[str, np.ndarray], labels: np.ndarray, rows: np.ndarray, *, n_pairs: int = 40_000,
              c: float = 1.0, seed: int = 0) -> tuple[np.ndarray, float, np.ndarray]:
    """Logistic regression on balanced pairs among ``rows``: (coef, intercept, mean features)."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    i, j, y = sample_pairs(labels, rows, n_pairs, rng)
    f, _ = pair_features(parts, i, j)
    lr = LogisticRegression(C=c, max_iter=500)
    lr.fit(f, y)
    return lr.coef_[0].astype(np.float64), float(lr.intercept_[0]), f.mean(0).astype(np.float64)


def train_verifier(parts: dict[str, np.ndarray], labels: list[str], *, space: str = "base",
                   adapter_id: str | None = None, label: str = "", seed: int = 0, n_pairs: int = 40_000,
                   heldout_rows: np.ndarray | None = None) -> PairVerifier:
    """Train on balanced pairs of labelled paintings; choose the threshold on held-out pairs.

    ``heldout_rows`` (the rows an adapter did not train on, when ``parts`` are adapted) are used
    to fit the verifier, because pairs of the adapter's own training rows look more alike than
    pairs of new paintings will; the threshold is then chosen on a split of them.
    """
    from sklearn.metrics import roc_auc_score

    t0 = time.monotonic()
    lab = np.array([x or "" for x in labels], dtype=object).astype(str)
    rows = np.flatnonzero(lab != "")
    if heldout_rows is not None and len(heldout_rows) >= 60 and len(np.unique(lab[heldout_rows])) >= 2:
        rows = np.asarray(heldout_rows, np.int64)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(rows)
    cut = max(2, int(len(perm) * 0.75))
    fit_rows, thr_rows = np.sort(perm[:cut]), np.sort(perm[cut:])
    _, thr_counts = np.unique(lab[thr_rows], return_counts=True)
    if len(rows) < 60 or len(thr_counts) < 2 or thr_counts.max() < 2:  # too few: fit and choose on all
        fit_rows = thr_rows = rows
    coef, b, mean = fit_pairs(parts, lab, fit_rows, n_pairs=n_pairs, seed=seed)
    ver = PairVerifier(coef, b, mean, {p: int(v.shape[1]) for p, v in parts.items()})
    ti, tj, ty = sample_pairs(lab, thr_rows, min(n_pairs, 20_000), np.random.default_rng(seed + 1))
    pv = ver.probability(parts, ti, tj)
    thr, f1 = best_f1_threshold(ty, pv)
    ver.meta = {"space": space, "adapter_id": adapter_id, "label": label, "threshold": thr,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "pairs": int(n_pairs),
                "paintings": int(len(rows)), "figures": {"heldout_pair_auc": float(roc_auc_score(ty, pv)),
                                                         "heldout_pair_f1": f1},
                "seconds": time.monotonic() - t0}
    return ver


# --------------------------------------------------------------------------- evaluation
def label_groups(labels: np.ndarray, n_groups: int, seed: int = 0) -> list[np.ndarray]:
    """Split the distinct labels into ``n_groups`` groups of two or more labels each."""
    vals = np.unique(labels[labels != ""])
    n_groups = max(1, min(n_groups, len(vals) // 2))
    rng = np.random.default_rng(seed)
    vals = vals[rng.permutation(len(vals))]
    return [g for g in np.array_split(vals, n_groups) if len(g) >= 2]


@dataclass
class UnseenLabelScores:
    auc: float
    f1: float
    threshold_mean: float
    cosine_auc: float  # the same test pairs scored by the plain blended cosine (reference)
    folds: list[dict[str, Any]]


def evaluate_unseen_labels(labels: list[str], groups: list[np.ndarray],
                           parts_for: Callable[[np.ndarray], dict[str, np.ndarray]], *, n_pairs: int = 40_000,
                           weights: dict[str, float] | None = None, seed: int = 0,
                           negatives: str = "held-out") -> UnseenLabelScores:
    """For every group of held-out labels: ``parts_for(train_rows)`` gives the parts of every row
    (e.g. an adapter trained on train_rows only, or the base parts), a verifier is trained on the
    other labels' paintings and scored on test pairs whose positives are pairs of paintings with
    the same held-out label.  The negatives pair a held-out-label painting with a painting of
    another held-out label (``negatives="held-out"``: every painting of a test pair is unseen; the
    strict protocol) or with any other labelled painting (``"any"``: "is this painting by the same
    hand as that one anywhere in my collection")."""
    from sklearn.metrics import f1_score, roc_auc_score

    from ..analysis.parts import blend

    lab = np.array([x or "" for x in labels], dtype=object).astype(str)
    res, ys, ps = [], [], []
    for g, held in enumerate(groups):
        test_rows = np.flatnonzero(np.isin(lab, held))
        train_rows = np.flatnonzero((lab != "") & ~np.isin(lab, held))
        parts = parts_for(train_rows)
        ver = train_verifier(parts, list(np.where(np.isin(lab, held), "", lab)), seed=seed, n_pairs=n_pairs)
        rng = np.random.default_rng(seed + 100 + g)
        half = min(n_pairs, 20_000) // 2
        pi, pj = positive_pairs(lab, test_rows, half, rng)
        others = test_rows if negatives == "held-out" else np.flatnonzero(lab != "")
        ni, nj = negative_pairs(lab, test_rows, others, half, rng)
        i, j = np.concatenate([pi, ni]), np.concatenate([pj, nj])
        y = np.concatenate([np.ones(len(pi)), np.zeros(len(ni))]).astype(np.int64)
        p = ver.probability(parts, i, j)
        cos = np.einsum("nd,nd->n", *(blend(parts, weights or {q: 1.0 for q in parts})[k] for k in (i, j)))
        res.append({"held_out": [str(x) for x in held], "auc": float(roc_auc_score(y, p)),
                    "f1": float(f1_score(y, p >= ver.threshold)), "threshold": ver.threshold,
                    "cosine_auc": float(roc_auc_score(y, cos)), "pairs": int(len(y))})
        ys.append(y)
        ps.append(p)
    return UnseenLabelScores(
        auc=float(np.mean([r["auc"] for r in res])), f1=float(np.mean([r["f1"] for r in res])),
        threshold_mean=float(np.mean([r["threshold"] for r in res])),
        cosine_auc=float(np.mean([r["cosine_auc"] for r in res])), folds=res)


def load_verifier(d: Path) -> PairVerifier | None:
    """The verifier saved in the derived-files folder ``d`` (None: none trained yet)."""
    return PairVerifier.load(d)
