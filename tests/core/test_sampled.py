"""Analysis at a million (issue 19): above sampled.SAMPLE_ABOVE paintings the PCA and the topics are fitted on
a seeded sample and every painting is placed into them, chunk by chunk; the neighbour index uses every core.
Here the thresholds are lowered so that ~150 paintings take the sampled path."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading

import numpy as np
import pytest
from synth import make_collection

from artstyle_gui.cli import main
from artstyle_gui.core.analysis import neighbors
from artstyle_gui.core.analysis.neighbors import NeighbourIndex
from artstyle_gui.core.analysis.parts import l2n
from artstyle_gui.core.analysis.topics import counts_for, lda_transform
from artstyle_gui.core.explore.summaries import fit_summary
from artstyle_gui.core.index import sampled
from artstyle_gui.core.index.collection import Collection
from artstyle_gui.core.model import Settings
from artstyle_gui.core.progress import collect, run

SMALL = dict(k=4, deep_components=16, gram_components=8, colour_components=8, vocab_size=16)
N = 152  # 4 styles x 38
SAMPLE, CHUNK = 60, 40


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """152 paintings with their features extracted (not analysed)."""
    base = tmp_path_factory.mktemp("sampled")
    root, idx = base / "c", base / "idx"
    make_collection(root, n_per_style=38, size=(96, 80))
    with Collection(root, settings=Settings(**SMALL), index_dir=idx) as col:
        run(col.update())
        col.files.save_settings()
    return root, idx


@pytest.fixture
def col(extracted, tmp_path):
    root, idx = tmp_path / "c", tmp_path / "idx"
    shutil.copytree(extracted[0], root)
    shutil.copytree(extracted[1], idx)
    with Collection(root, settings=Settings(**SMALL), index_dir=idx) as c:
        yield c


@pytest.fixture
def small_thresholds(monkeypatch):
    monkeypatch.setattr(sampled, "SAMPLE_ABOVE", 60)
    monkeypatch.setattr(sampled, "FIT_SAMPLE", SAMPLE)
    monkeypatch.setattr(sampled, "CHUNK", CHUNK)


def _mapped(a: np.ndarray) -> bool:
    import mmap

    while a is not None and not isinstance(a, mmap.mmap):
        a = getattr(a, "base", None) if isinstance(a, np.ndarray) else getattr(a, "obj", None)
    return a is not None


def _spy_reads(col, monkeypatch) -> list[int]:
    asked: list[int] = []
    real = col.store.get_vectors

    def spy(fs, hashes):
        asked.append(len(hashes))
        return real(fs, hashes)

    monkeypatch.setattr(col.store, "get_vectors", spy)
    return asked


def test_a_large_collection_is_fitted_on_a_sample_and_every_painting_placed(col, small_thresholds, monkeypatch):
    asked = _spy_reads(col, monkeypatch)
    events, an = collect(col.analyse())
    # memory stays bounded: the store is never asked for more than a chunk of vectors at once
    assert asked and max(asked) <= CHUNK and sum(asked) >= N + SAMPLE
    assert (an.n, an.sample_n, an.fitted_on, an.models_fitted_on) == (N, SAMPLE, N, SAMPLE)
    assert an.added_since == 0 and an.fit_rows is None
    # progress says how far the placement is, chunk by chunk
    msgs = [e.message for e in events]
    assert f"placing {N:,} paintings: {CHUNK}/{N}" in msgs and f"placing {N:,} paintings: {N}/{N}" in msgs

    raw = col.files.load_raw(an.hashes)
    # the models were fitted on the seeded sample, not on every painting
    rows = sampled.sample_rows(N, SAMPLE, col.settings.seed)
    deep = an.part_model.fitted["deep"].projection
    np.testing.assert_allclose(deep.mean, l2n(raw["deep"][rows]).mean(0), atol=1e-5)
    assert not np.allclose(deep.mean, l2n(raw["deep"]).mean(0), atol=1e-5)
    # every painting: its parts and its topic mixture are the fitted models' transform
    for p, v in an.part_model.transform(raw).items():
        assert an.parts[p].shape == v.shape and an.parts[p].dtype == sampled.PARTS_DTYPE  # half the memory
        np.testing.assert_allclose(an.parts[p], v, atol=2e-3)
    mix = lda_transform(an.topics.components, counts_for(an.topics.input_kind, raw, an.part_model, an.topics.vocab))
    assert an.topics.mixtures.shape == (N, an.topics.k)
    np.testing.assert_allclose(an.topics.mixtures, mix, atol=1e-5)
    np.testing.assert_allclose(an.topics.mixtures.sum(1), 1.0, atol=1e-5)
    # every painting has neighbours, those outside the sample too, and mostly of its own style
    outside = np.setdiff1d(np.arange(N), rows)
    assert an.index.live == N
    same = []
    for r in outside:
        nb = col.similar(int(r), 5)
        assert len(nb) == 5 and all(0 <= n.row < N and n.row != r for n in nb)
        style = an.relpaths[r].split("/")[0]
        same.append(np.mean([n.relpath.split("/")[0] == style for n in nb]))
    assert np.mean(same) > 0.8


def test_a_sampled_analysis_is_saved_and_loads_back(col, small_thresholds, capsys):
    an = run(col.analyse())
    assert fit_summary(an) == f"Topics fitted on a sample of {SAMPLE} of {N} paintings"
    with Collection(col.root, settings=Settings(**SMALL), index_dir=col.index_dir) as again:
        events, loaded = collect(again.analyse())
        assert [e.message for e in events] == ["loaded saved analysis"]
        assert loaded.sample_n == SAMPLE and loaded.relpaths == an.relpaths
        if os.name == "posix":  # the parts of a large analysis are mapped from the file, not read
            assert all(_mapped(v) for v in loaded.parts.values())
        for p in an.parts:
            np.testing.assert_array_equal(loaded.parts[p], an.parts[p])
        np.testing.assert_array_equal(loaded.topics.mixtures, an.topics.mixtures)
        assert [n.relpath for n in again.similar(7, 5)] == [n.relpath for n in col.similar(7, 5)]
    capsys.readouterr()
    assert main(["-q", "topics", str(col.root), "--index-dir", str(col.index_dir)]) == 0
    assert f"Topics fitted on a sample of {SAMPLE} of {N} paintings (the others are placed into that fit)." \
        in capsys.readouterr().out
    assert main(["-q", "topics", str(col.root), "--index-dir", str(col.index_dir), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert (got["fitted_on"], got["sampled_from"], got["added_since"]) == (SAMPLE, N, 0)


def test_paintings_added_to_a_sampled_fit_are_placed(col, small_thresholds):
    fit = run(col.analyse())
    make_collection(col.root / "new", n_per_style=1, size=(96, 80), seed=5)
    events, (_, an) = collect(col.index())
    assert any(e.stage == "place" for e in events)  # 4 of 152: placed, not fitted again
    assert (an.n, an.fitted_on, an.sample_n, an.added_since) == (N + 4, N, SAMPLE, 4)
    assert fit_summary(an) == f"Topics fitted on a sample of {SAMPLE} of {N} paintings, 4 added since"
    np.testing.assert_array_equal(an.topics.components, fit.topics.components)
    assert all(v.dtype == sampled.PARTS_DTYPE for v in an.parts.values())
    new_row = an.row_of("new/swirl/swirl_0.jpg")
    assert all(n.row != new_row for n in col.similar(new_row, 5)) and len(col.similar(new_row, 5)) == 5
    with Collection(col.root, settings=Settings(**SMALL), index_dir=col.index_dir) as again:
        loaded = again.load_analysis()
        assert loaded is not None and loaded.sample_n == SAMPLE and loaded.added_since == 4
        # placing into the loaded (mapped) analysis, then saving over the file it maps, then loading again
        (col.root / "stripes" / "stripes_1.jpg").unlink()
        make_collection(col.root / "more", n_per_style=1, size=(96, 80), seed=9)
        _, placed = run(again.index())
        assert (placed.n, placed.added_since, placed.removed_since) == (N + 7, 8, 1)
        assert all(not _mapped(v) for v in placed.parts.values())
        np.testing.assert_array_equal(placed.parts["deep"][placed.row_of("swirl/swirl_0.jpg")],
                                      an.parts["deep"][an.row_of("swirl/swirl_0.jpg")])
    with Collection(col.root, settings=Settings(**SMALL), index_dir=col.index_dir) as third:
        again_loaded = third.load_analysis()
        assert again_loaded.relpaths == placed.relpaths and again_loaded.added_since == 8
        for p in placed.parts:
            np.testing.assert_array_equal(again_loaded.parts[p], placed.parts[p])


def test_below_the_threshold_the_analysis_is_the_full_fit(col, monkeypatch):
    full = run(col.analyse(force=True))
    called = []
    monkeypatch.setattr(sampled, "SAMPLE_ABOVE", N)  # exactly N paintings: not above it
    monkeypatch.setattr(sampled, "fit_sampled", lambda *a, **k: called.append(1))
    again = run(col.analyse(force=True))
    assert not called and again.sample_n == 0 and full.sample_n == 0 and fit_summary(again) == ""
    for p in full.parts:
        np.testing.assert_array_equal(again.parts[p], full.parts[p])
    np.testing.assert_array_equal(again.topics.mixtures, full.topics.mixtures)
    np.testing.assert_array_equal(again.topics.components, full.topics.components)


def test_damaged_vectors_are_left_out_of_a_sampled_fit(col, small_thresholds):
    fs, _ = col.files.featureset()
    recs = col.ok_records()
    victim = recs[3].hash
    with col.store.transaction():
        col.store.db.execute("UPDATE vectors SET data=? WHERE featureset=? AND hash=?", (b"\0" * 10, fs, victim))
    an = run(col.analyse())
    assert an.n == N - sum(r.hash == victim for r in recs) and victim not in an.hashes
    assert an.index.live == an.n and an.topics.mixtures.shape[0] == an.n
    assert victim not in col.store.known_hashes(fs)  # the next update extracts it again


def test_records_are_read_once_for_every_thread_until_something_changes(col):
    """The app's worker shares the records its GUI thread read (one copy at a million paintings), and a
    commit by another connection (another process) is still seen from every thread."""
    recs = col.store.records()

    def in_thread() -> list:
        got = []
        t = threading.Thread(target=lambda: got.append(col.store.records()))
        t.start()
        t.join()
        return got[0]

    shared = in_thread()
    assert shared[0] is recs[0] and len(shared) == len(recs)
    assert recs[0].labels is recs[1].labels or recs[0].labels != recs[1].labels  # one dict per distinct labels
    with sqlite3.connect(col.index_dir / "index.sqlite") as other:
        other.execute("UPDATE files SET labels=? WHERE relpath=?", ('{"artist": "Someone"}', recs[0].relpath))
    fresh = in_thread()
    assert fresh[0] is not recs[0] and fresh[0].labels == {"artist": "Someone"}
    assert col.store.records()[0].labels == {"artist": "Someone"}


def _structured(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, d)).astype(np.float32)
    return centres[rng.integers(0, 40, n)] + 0.7 * rng.standard_normal((n, d)).astype(np.float32)


def test_the_neighbour_index_builds_on_every_core_with_the_same_quality(monkeypatch):
    x, q = _structured(4000, 32, 0), _structured(200, 32, 1)
    sims = l2n(q) @ l2n(x).T
    exact = np.argsort(-sims, axis=1)[:, :10]

    def recall(idx: NeighbourIndex) -> float:
        found, _ = idx.query(q, 10)
        return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact)]))

    many = NeighbourIndex.build(x)
    monkeypatch.setattr(neighbors.os, "cpu_count", lambda: 1)
    one = NeighbourIndex.build(x)
    monkeypatch.setattr(neighbors.os, "cpu_count", lambda: 4)
    four = NeighbourIndex.build(x)
    assert one._index.num_threads == 1 and four._index.num_threads == 4
    r1, rn, r4 = recall(one), recall(many), recall(four)
    assert r1 >= 0.95 and rn >= r1 - 0.02 and r4 >= r1 - 0.02
