"""Search: pure functions of an :class:`~.model.Analysis` (nearest neighbours, "more like this,
but...", the user's names for topics).

Nothing here reads or writes the index: the topic names' stored text comes in and goes out as a
string (:class:`~.derived.DerivedFiles` keeps it). Every function works on the Analysis it is given,
so a view ranks over the one it shows while a worker makes the next.

Neighbours: the query's blended vector (parts weighted by the blend, see
:func:`.analysis.parts.blend`) against the hnswlib index; each neighbour says how much each part
contributed ("why similar").

Steering: the query painting's topic mixture is moved by the user (raise topic 3 by 0.3, lower
topic 7 by 0.3), clipped at 0 and renormalised; every painting is then ranked by

    alpha * (1 - topic distance to the steered mixture) + (1 - alpha) * embedding cosine to the query

with the Hellinger distance ``sqrt(1 - sum sqrt(p q))`` or the Jensen-Shannon distance (the square
root of the JS divergence in bits); both lie in [0, 1], are 0 for identical mixtures and symmetric.
Vectorised over all paintings (100k x K is a few milliseconds).

Topic numbers in this API are 0-based (the views and the CLI show them 1-based: "Topic 3" is
topic 2). Names are kept in the index database (meta table, key ``topic_names``), one entry per topic
model: feature set, space (and adapter), topic input and K. Another K or input shows other names
(switching back shows the old ones again). When the same kind of model is refitted on a changed
collection (paintings added or removed), a name follows its topic when most of the paintings that
best represented it (saved with the name) are still dominated by one topic, else it is dropped.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import numpy as np

from .analysis.parts import blend, part_contributions
from .errors import ArtStyleError
from .model import Analysis, Neighbour

TOPIC_METRICS = ("hellinger", "js")
_MAX_MODELS = 16  # name sets kept (one per topic model)
_SIGNATURE = 20  # paintings saved with a name to find its topic again after a refit
_FOLLOW_SHARE = 0.6  # share of those paintings one topic must dominate for the name to follow it


# --------------------------------------------------------------------------- neighbours
def similarity_to_row(an: Analysis, row: int) -> np.ndarray:
    """Blended similarity of every painting to painting ``row`` (same scale as ``Neighbour.score``:
    cosine similarity, or minus the squared distance for the euclidean metric)."""
    x = an.blended
    q = x[row]
    if an.metric == "cosine":
        return x @ q
    d = x - q[None, :]
    return -np.einsum("ij,ij->i", d, d)


def neighbour_at(an: Analysis, r: int, score: float, c: np.ndarray) -> Neighbour:
    """A Neighbour from its row, score and per-part contributions (shares: "why similar")."""
    pos = np.maximum(c, 0)
    tot = float(pos.sum())
    if tot <= 0:  # nothing similar at all: fall back to the blend's own proportions
        pos = np.array([max(0.0, an.weights.get(p, 0.0)) for p in an.parts])
        tot = float(pos.sum())
    shares = {p: float(pos[i]) / tot for i, p in enumerate(an.parts)}
    return Neighbour(r, an.relpaths[r], score, {p: float(c[i]) for i, p in enumerate(an.parts)}, shares)


def nearest(an: Analysis, qvec: np.ndarray, k: int, exclude: int | None = None,
            query_parts: dict[str, np.ndarray] | None = None) -> list[Neighbour]:
    """The ``k`` nearest paintings to the blended vector ``qvec`` (``exclude``: a row left out)."""
    labels, sims = an.index.query(qvec[None, :], k + (1 if exclude is not None else 0))
    rows = [int(r) for r in labels[0] if r != exclude][:k]
    score = {int(r): float(s) for r, s in zip(labels[0], sims[0])}
    contrib = part_contributions(an.parts, exclude if exclude is not None else 0, np.array(rows, np.int64),
                                 an.weights, query=query_parts)
    return [neighbour_at(an, r, score[r], c) for r, c in zip(rows, contrib)]


def similar(an: Analysis, row: int, k: int = 10) -> list[Neighbour]:
    """The ``k`` nearest paintings to painting ``row``."""
    if not 0 <= row < an.n:
        raise ArtStyleError(f"No painting number {row}.")
    q = blend({p: v[row : row + 1] for p, v in an.parts.items()}, an.weights)[0]
    return nearest(an, q, k, exclude=row)


def similar_to_parts(an: Analysis, parts: dict[str, np.ndarray], k: int = 10) -> list[Neighbour]:
    """The ``k`` nearest paintings to an outside image's embedding parts (one row each)."""
    return nearest(an, blend(parts, an.weights)[0], k, exclude=None, query_parts=parts)


# --------------------------------------------------------------------------- steering
def steer(mixture: np.ndarray, adjust: dict[int, float]) -> np.ndarray:
    """``mixture`` moved by ``adjust`` (topic -> delta in [-1, 1]), clipped at 0, summing to 1.
    Lowering every topic to nothing gives the uniform mixture."""
    m = np.array(mixture, np.float64).ravel()
    k = len(m)
    for t, d in adjust.items():
        t = int(t)
        if not 0 <= t < k:
            raise ArtStyleError(f"No topic {t + 1}: topics are 1 to {k}.")
        d = float(d)
        if not -1.0 <= d <= 1.0 or not np.isfinite(d):
            raise ArtStyleError(f"A topic adjustment must be between -1 and 1 (got {d}).")
        m[t] += d
    m = np.clip(m, 0.0, None)
    s = m.sum()
    return (m / s if s > 0 else np.full(k, 1.0 / max(1, k))).astype(np.float32)


def topic_distance(q: np.ndarray, mixtures: np.ndarray, metric: str = "hellinger") -> np.ndarray:
    """Distance in [0, 1] from mixture ``q`` (K,) to every row of ``mixtures`` (N, K)."""
    q = np.clip(np.asarray(q, np.float64).ravel(), 0, None)
    p = np.clip(np.atleast_2d(np.asarray(mixtures, np.float64)), 0, None)
    q = q / max(q.sum(), 1e-12)
    p = p / np.maximum(p.sum(1, keepdims=True), 1e-12)
    if metric == "hellinger":
        bc = np.sqrt(p * q[None, :]).sum(1)
        return np.sqrt(np.clip(1.0 - bc, 0.0, 1.0)).astype(np.float32)
    if metric == "js":
        m = 0.5 * (p + q[None, :])

        def kl(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            with np.errstate(divide="ignore", invalid="ignore"):
                t = np.where(a > 0, a * np.log2(np.where(a > 0, a, 1.0) / np.maximum(b, 1e-300)), 0.0)
            return t.sum(1)

        js = 0.5 * kl(p, m) + 0.5 * kl(np.broadcast_to(q, p.shape), m)
        return np.sqrt(np.clip(js, 0.0, 1.0)).astype(np.float32)
    raise ArtStyleError(f"topic metric must be one of {', '.join(TOPIC_METRICS)} (got {metric!r}).")


def steered_similar(an: Analysis, row: int, adjust: dict[int, float], k: int = 10, alpha: float = 0.5,
                    metric: str = "hellinger") -> list[Neighbour]:
    """"More like this, but...": paintings ranked by alpha * topic-space similarity to the steered
    mixture of ``row`` + (1 - alpha) * embedding similarity."""
    if not 0 <= row < an.n:
        raise ArtStyleError(f"No painting number {row}.")
    if not 0.0 <= alpha <= 1.0:
        raise ArtStyleError("alpha must be between 0 and 1.")
    if metric not in TOPIC_METRICS:
        raise ArtStyleError(f"topic metric must be one of {', '.join(TOPIC_METRICS)} (got {metric!r}).")
    contrib = part_contributions(an.parts, row, np.arange(an.n), an.weights)  # (n, 3), sums to the cosine
    esim = contrib.sum(1).astype(np.float64)
    if alpha > 0:
        if an.topics is None:
            raise ArtStyleError("This collection has no style topics (too few paintings).")
        q = steer(an.topics.mixtures[row], adjust)
        tsim = 1.0 - topic_distance(q, an.topics.mixtures, metric).astype(np.float64)
    else:
        if adjust and an.topics is not None:
            steer(an.topics.mixtures[row], adjust)  # still validated
        tsim = np.zeros(an.n)
    score = alpha * tsim + (1.0 - alpha) * esim
    score[row] = -np.inf
    k = int(max(0, min(k, an.n - 1)))
    top = np.argpartition(-score, k - 1)[:k] if k else np.zeros(0, np.int64)
    top = top[np.lexsort((top, -score[top]))]  # best first, ties by row
    return [neighbour_at(an, int(r), float(score[r]), contrib[r]) for r in top]


# --------------------------------------------------------------------------- topic names
def _model_key(an: Analysis) -> dict[str, Any] | None:
    if an.topics is None:
        return None
    adapter = an.adapter
    return {"featureset": an.featureset, "space": an.space,
            "adapter": str(adapter.id) if an.space == "adapted" and adapter is not None else None,
            "input": an.topics.input_kind, "k": int(an.topics.k)}


def _entries(raw: str) -> list[dict[str, Any]]:
    if not raw:
        return []
    try:
        data = json.loads(raw)
    except ValueError:
        return []  # damaged: names are lost, nothing else
    if not isinstance(data, list):
        return []
    return [e for e in data if isinstance(e, dict) and isinstance(e.get("key"), dict)
            and isinstance(e.get("names"), dict)]


def _signature(an: Analysis, t: int) -> list[str]:
    mix = an.topics.mixtures
    dom = mix.argmax(1)
    members = np.flatnonzero(dom == t)
    if len(members) == 0:
        members = np.arange(an.n)
    order = members[np.argsort(-mix[members, t], kind="stable")][:_SIGNATURE]
    return [an.hashes[i] for i in order if an.hashes[i]]


def _follow(an: Analysis, entry: dict[str, Any]) -> dict[int, str]:
    """Names of an older fit of the same kind of model, moved to the topics that now hold their
    paintings (dropped where no single topic clearly does)."""
    rows = {h: i for i, h in enumerate(an.hashes) if h}
    dom = an.topics.mixtures.argmax(1)
    best: dict[int, tuple[float, str]] = {}
    sigs = entry.get("signatures") if isinstance(entry.get("signatures"), dict) else {}
    for t, name in entry["names"].items():
        sig = sigs.get(t)
        if not isinstance(name, str) or not isinstance(sig, list):
            continue
        hit = [dom[rows[h]] for h in sig if isinstance(h, str) and h in rows]
        if len(hit) < 3:
            continue
        topic, count = Counter(int(x) for x in hit).most_common(1)[0]
        share = count / len(hit)
        if share >= _FOLLOW_SHARE and share > best.get(topic, (0.0, ""))[0]:
            best[topic] = (share, name)
    return {t: name for t, (_, name) in best.items()}


def topic_names(an: Analysis | None, raw: str) -> dict[int, str]:
    """{topic (0-based): name} of ``an``'s topic model, from the stored names ``raw``
    (:meth:`DerivedFiles.topic_names_raw`); {} without topics or names."""
    if an is None or an.topics is None:
        return {}
    key = _model_key(an)
    names: dict[int, str] = {}
    for e in _entries(raw):
        if e["key"] != key:
            continue
        if e.get("fingerprint") == an.topics_fingerprint:
            for t, name in e["names"].items():
                try:
                    ti = int(t)
                except ValueError:
                    continue
                if 0 <= ti < an.topics.k and isinstance(name, str) and name:
                    names[ti] = name
        else:
            names = _follow(an, e)
        break
    return names


def clean_topic_name(name: str | None) -> str:
    """A topic name as stored: one line, single spaces, at most 120 characters ('' clears it)."""
    return " ".join((name or "").split())[:120]


def with_topic_name(an: Analysis, raw: str, topic: int, name: str | None) -> str:
    """The stored names ``raw`` with topic ``topic`` (0-based) of ``an`` named ``name`` (None or ''
    clears it): the text to store."""
    if an.topics is None:
        raise ArtStyleError("This collection has no style topics to name.")
    k = an.topics.k
    if not 0 <= int(topic) < k:
        raise ArtStyleError(f"No topic {int(topic) + 1}: topics are 1 to {k}.")
    topic = int(topic)
    clean = clean_topic_name(name)
    names = topic_names(an, raw)
    if clean:
        names[topic] = clean
    else:
        names.pop(topic, None)
    key = _model_key(an)
    entry = {"key": key, "fingerprint": an.topics_fingerprint, "names": {str(t): n for t, n in sorted(names.items())},
             "signatures": {str(t): _signature(an, t) for t in sorted(names)}}
    rest = [e for e in _entries(raw) if e["key"] != key]
    data = ([entry] if names else []) + rest[: _MAX_MODELS - 1]
    return json.dumps(data, ensure_ascii=False, sort_keys=True)


def format_topic_label(t: int, name: str | None) -> str:
    """"Topic 3 · Dark portraits" (named) or "Topic 3" for t = 2: the one spelling everywhere."""
    return f"Topic {int(t) + 1} · {name}" if name else f"Topic {int(t) + 1}"
