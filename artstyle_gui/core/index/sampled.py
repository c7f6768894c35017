"""The analysis of a large collection: fitted on a sample, then every painting transformed in chunks.

Below :data:`SAMPLE_ABOVE` paintings :meth:`.collection.Collection.analyse` loads every feature vector
and fits on all of them (what it has always done; the quality figures are measured there). Above it,
loading every vector cannot work (the stored features are 22.7 KB per painting: 22 GB at a million),
so the analysis

1. reads a seeded random sample of :data:`FIT_SAMPLE` paintings (``settings.seed``), fits the PCA parts,
   the topic input's vocabulary and the LDA topics on it, and lets the sample go;
2. reads every painting, :data:`CHUNK` at a time from SQLite, and places it into that fit exactly as an
   incremental analysis places a new painting: the parts' PCA transform
   (:meth:`..analysis.parts.PartModel.transform`), the topic input under the fitted vocabulary
   (:func:`..analysis.topics.counts_for`) and the LDA transform (:func:`..analysis.topics.lda_transform`),
   and adds its blended vector to the neighbour index (hnswlib, on every core).

What stays in memory is the sample's features while fitting (about 1.1 GB at 50,000 of the real layout),
one chunk's features (about 450 MB), and the result: the parts (float16, :data:`PARTS_DTYPE`) and
mixtures of every painting and the neighbour index. The resulting :class:`..model.Analysis` records ``sample_n`` (the paintings its models
were fitted on); its ``fitted_on`` stays the paintings it covers, the base for incremental re-fits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from ..analysis.neighbors import NeighbourIndex
from ..analysis.parts import PartModel, blend, fit_parts
from ..analysis.topics import TopicModel, counts_for, lda_transform
from ..ingest.features import FeatureLayout
from ..ingest.store import FileRecord, IndexStore
from ..model import Settings
from ..progress import Progress, ProgressGen

#: collections of more paintings than this are fitted on a sample (:data:`FIT_SAMPLE`); up to this many,
#: on every painting (the figures of docs/quality.md and docs/topics.md are measured there)
SAMPLE_ABOVE = 100_000
#: paintings the PCA, the topic vocabulary and the LDA are fitted on above :data:`SAMPLE_ABOVE`
FIT_SAMPLE = 50_000
#: paintings read from SQLite and transformed at a time (the most ``get_vectors`` is asked for at once)
CHUNK = 20_000
#: how a sampled analysis keeps its parts, in memory and saved: half of float32 (640 MB instead of 1.28 GB
#: at a million paintings, in the app too); a cosine of two parts moves by less than 1e-3. The neighbour
#: index is built from the float32 transform.
PARTS_DTYPE = np.float16


@dataclass
class SampledFit:
    """What :func:`fit_sampled` gives the collection to make its Analysis of."""

    recs: list[FileRecord]  # the paintings analysed, in row order (damaged vectors left out)
    model: PartModel
    parts: dict[str, np.ndarray]
    topics: TopicModel | None
    index: NeighbourIndex
    sample_n: int  # paintings the models were fitted on
    bad: set[str]  # hashes of damaged stored vectors (forget them: the next update extracts them again)


def sample_rows(n: int, size: int, seed: int) -> np.ndarray:
    """The rows (sorted) of the seeded random sample of ``size`` of ``n`` paintings."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(n, size), replace=False))


def read_chunks(store: IndexStore, fs: int, hashes: list[str], ok: Callable[[bytes], bool], chunk: int = CHUNK):
    """(start, blobs) per ``chunk`` of ``hashes`` in order: the stored vectors, None for a missing or
    damaged one. Never asks the store for more than ``chunk`` vectors at once."""
    for s in range(0, len(hashes), chunk):
        part = hashes[s : s + chunk]
        got = store.get_vectors(fs, part)
        yield s, [b if b is not None and ok(b) else None for b in (got.get(h) for h in part)]


def fit_sampled(store: IndexStore, fs: int, layout: FeatureLayout, st: Settings, recs: list[FileRecord],
                fit_topics: Callable[[dict, PartModel, int], ProgressGen[TopicModel | None]],
                ok: Callable[[bytes], bool], *, sample: int | None = None,
                chunk: int | None = None) -> ProgressGen[SampledFit | None]:
    """Fit on a sample of ``recs``, then place every one of them in chunks (see the module docstring).
    ``fit_topics(raw, model, n)``: the collection's topic fit (topic input, vocabulary, LDA). None when
    no vector is usable."""
    sample = FIT_SAMPLE if sample is None else sample
    chunk = CHUNK if chunk is None else chunk
    n = len(recs)
    hashes = [r.hash or "" for r in recs]
    rows = sample_rows(n, sample, st.seed)
    bad: set[str] = set()
    blobs: list[bytes] = []
    yield Progress("pca", 0, 3, f"reading a sample of {len(rows):,} of {n:,} paintings")
    for s, got in read_chunks(store, fs, [hashes[i] for i in rows], ok, chunk):
        for i, b in zip(rows[s : s + chunk], got):
            if b is None:
                bad.add(hashes[i])
            else:
                blobs.append(b)
        yield Progress("pca", 0, 3, f"reading a sample of {len(rows):,} of {n:,} paintings: "
                                    f"{min(s + chunk, len(rows)):,}/{len(rows):,}")
    if not blobs:
        return None
    sample_n = len(blobs)
    raw = layout.unpack_many(blobs)
    del blobs
    yield Progress("pca", 1, 3, f"reducing with PCA (fitted on {sample_n:,} paintings)")
    model = fit_parts(raw, deep_components=st.deep_components, gram_components=st.gram_components,
                      colour_components=st.colour_components, seed=st.seed)[0]
    yield Progress("pca", 2, 3, "PCA done")
    topics = yield from fit_topics(raw, model, sample_n)
    del raw

    # every painting, chunk by chunk: the fitted models' transform, and the neighbour index grows
    parts: dict[str, np.ndarray] | None = None
    mix = None if topics is None else np.empty((n, topics.k), np.float32)
    index: NeighbourIndex | None = None
    keep = np.ones(n, bool)
    done = 0  # rows filled (damaged vectors are left out, so rows may trail the records)
    yield Progress("index", 0, n, f"placing {n:,} paintings into the fit")
    for s, got in read_chunks(store, fs, hashes, ok, chunk):
        good = [b for b in got if b is not None]
        for j, b in enumerate(got):
            if b is None:
                keep[s + j] = False
                bad.add(hashes[s + j])
        if good:
            raw = layout.unpack_many(good)
            p = model.transform(raw)
            if parts is None:
                parts = {k: np.empty((n, v.shape[1]), PARTS_DTYPE) for k, v in p.items()}
            for k, v in p.items():
                parts[k][done : done + len(good)] = v
            if topics is not None:
                mix[done : done + len(good)] = lda_transform(
                    topics.components, counts_for(topics.input_kind, raw, model, topics.vocab), seed=st.seed)
            del raw
            vecs = blend(p, st.blend)
            if index is None:
                index = NeighbourIndex(vecs.shape[1], st.metric, capacity=n, seed=st.seed)
            index.add(vecs, np.arange(done, done + len(good)))
            done += len(good)
        yield Progress("index", min(s + chunk, n), n, f"placing {n:,} paintings: {min(s + chunk, n):,}/{n:,}")
    if parts is None or index is None:
        return None
    if done < n:  # damaged vectors were left out
        parts = {k: v[:done].copy() for k, v in parts.items()}
        mix = None if mix is None else mix[:done].copy()
    if topics is not None:
        topics = replace(topics, mixtures=mix)
    kept = [r for r, k in zip(recs, keep) if k]
    yield Progress("index", n, n, f"{done:,} paintings placed into the fit on {sample_n:,}")
    return SampledFit(kept, model, parts, topics, index, sample_n, bad)
