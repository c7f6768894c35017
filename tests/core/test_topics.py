"""Topic fitting in worker processes (the app's mode) gives the in-thread result and leaves nothing running."""

from __future__ import annotations

import multiprocessing

import numpy as np
import pytest

from artstyle_gui.core.analysis.topics import PROCESS_MIN_PAINTINGS, fit_topics


def _counts(n: int = PROCESS_MIN_PAINTINGS + 100, v: int = 60, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    topics = rng.dirichlet(np.full(v, 0.1), 4)  # 4 planted topics
    mix = rng.dirichlet(np.full(4, 0.3), n)
    return rng.poisson(mix @ topics * 80).astype(np.float32)


def _run(gen):
    stages = []
    try:
        while True:
            stages.append(next(gen).stage)
    except StopIteration as stop:
        return stop.value, stages


def test_worker_processes_give_the_in_thread_model():
    counts = _counts()
    here, st_here = _run(fit_topics(counts, k=None, k_range=(3, 6), processes=0))
    there, st_there = _run(fit_topics(counts, k=None, k_range=(3, 6), processes=2))
    assert st_here == st_there  # the same progress, stage by stage
    assert there.curve_k == here.curve_k == [3, 4, 5, 6]
    np.testing.assert_allclose(there.curve_perplexity, here.curve_perplexity, rtol=1e-4)
    assert there.k == here.k
    np.testing.assert_allclose(there.mixtures, here.mixtures, atol=1e-3)
    np.testing.assert_allclose(there.components, here.components, rtol=1e-3, atol=1e-3)
    assert multiprocessing.active_children() == []


def test_cancelled_sweep_ends_its_processes_and_files(tmp_path, monkeypatch):
    import tempfile
    import threading

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the runner puts its .npy files
    counts = _counts(v=400)  # tasks with the arrays inside would be far over a pipe's 64 KB buffer
    for _ in range(3):  # the hang this guards against was a race
        gen = fit_topics(counts, k=None, k_range=(3, 12), processes=2)
        first = next(gen)
        assert first.stage == "k-select"
        assert len(multiprocessing.active_children()) == 2  # the sweep runs in two worker processes
        assert list(tmp_path.glob("artstyle-topics-*/*.npy"))  # the sample went to them as files
        closer = threading.Thread(target=gen.close)  # what Cancel does to the job
        closer.start()
        closer.join(60)
        assert not closer.is_alive(), "Cancel hung while ending the worker processes"
        assert multiprocessing.active_children() == []
        assert list(tmp_path.iterdir()) == []


def test_automatic_k_never_leaves_a_topic_empty():
    """An automatic K whose fit leaves topics unused is refitted with the topics that are used (a
    topic no painting has would be a dead entry in every view); a K given by the user is kept."""
    from artstyle_gui.core.analysis.topics import _live_topics, fit_topics
    from artstyle_gui.core.progress import collect

    mix = np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.0], [0.1, 0.9, 0.0]])
    assert _live_topics(mix) == 2
    assert _live_topics(np.array([[0.5, 0.3, 0.2]] * 10)) == 3  # used by mass, never dominant
    rng = np.random.default_rng(0)
    counts = np.zeros((60, 12), np.float32)  # two sharply separated groups of paintings
    counts[:30, :6] = rng.poisson(20, (30, 6))
    counts[30:, 6:] = rng.poisson(20, (30, 6))
    import artstyle_gui.core.analysis.topics as analysis

    real_knee = analysis.knee
    try:
        analysis.knee = lambda ks, values: 8  # an elbow far above the 2 groups: the first fit leaves topics empty
        events, tm = collect(fit_topics(counts, k_range=(2, 8), seed=0, processes=0))
        assert any("empty" in e.message for e in events), [e.message for e in events]
        assert 2 <= tm.k < 8 and _live_topics(tm.mixtures) == tm.k
        assert tm.curve_k == list(range(2, 9))  # the sweep is kept as it was
        _, floor = collect(fit_topics(counts, k_range=(5, 8), seed=0, processes=0))
        assert floor.k >= 5  # never below the range the user gave
    finally:
        analysis.knee = real_knee
    _, fixed = collect(fit_topics(counts, k=6, seed=0, processes=0))
    assert fixed.k == 6


def test_stored_shape_part_round_trips_and_style_codes_ignore_the_shape():
    from artstyle_gui.core.analysis.topics import style_counts, without_shape
    from artstyle_gui.core.ingest.backbones import EFFNET_INFO, ART_INFO
    from artstyle_gui.core.ingest.features import FeatureLayout
    from artstyle_gui.core.progress import run

    old, new = FeatureLayout.for_backbone(EFFNET_INFO, 8), FeatureLayout.for_backbone(ART_INFO, 8)
    assert old.shape_dim == 0 and new.size == old.size + 1  # feature sets made before keep their layout
    rng = np.random.default_rng(0)
    deep, colour = rng.random(1280), rng.random(512)
    grams = [rng.random(g) for g in new.gram_dims]
    local = rng.random(new.local_shape)
    raw = new.unpack_many([new.pack(deep, grams, colour, local, aspect=0.5)])
    assert raw["shape"][0] == pytest.approx(np.log(0.5), abs=1e-3)
    np.testing.assert_allclose(raw["deep"][0], deep, atol=1e-3)
    np.testing.assert_allclose(raw["local"][0].astype(np.float32), local, atol=1e-3)
    assert "shape" not in old.unpack_many([old.pack(deep, grams, colour, local)])

    # an embedding in which one direction is the picture's log aspect: removed before the style codes
    a = rng.normal(0, 0.5, 400)
    style = rng.normal(size=(400, 16))
    x = np.column_stack([style, 3 * a + 0.5 * a**2])
    cleaned = without_shape(x, a)
    np.testing.assert_allclose(np.linalg.norm(cleaned, axis=1), 1.0, atol=1e-5)
    assert abs(np.corrcoef(cleaned[:, -1], a)[0, 1]) < 0.05 < abs(np.corrcoef(x[:, -1], a)[0, 1])
    counts = run(style_counts(x, shape=a, words=16)).counts
    assert counts.shape == (400, 16) and (counts >= 0).all()
    np.testing.assert_allclose(counts.sum(1), 200.0, rtol=1e-4)  # pseudo-counts per painting
