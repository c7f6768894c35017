"""Topic fitting in worker processes (the app's mode) gives the in-thread result and leaves nothing running."""

from __future__ import annotations

import multiprocessing

import numpy as np

from artstyle_gui.core.analysis import PROCESS_MIN_PAINTINGS, fit_topics


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
    from artstyle_gui.core.analysis import _live_topics, fit_topics
    from artstyle_gui.core.progress import collect

    mix = np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.0], [0.1, 0.9, 0.0]])
    assert _live_topics(mix) == 2
    assert _live_topics(np.array([[0.5, 0.3, 0.2]] * 10)) == 3  # used by mass, never dominant
    rng = np.random.default_rng(0)
    counts = np.zeros((60, 12), np.float32)  # two sharply separated groups of paintings
    counts[:30, :6] = rng.poisson(20, (30, 6))
    counts[30:, 6:] = rng.poisson(20, (30, 6))
    events, tm = collect(fit_topics(counts, k_range=(2, 8), seed=0, processes=0))
    assert _live_topics(tm.mixtures) == tm.k
    assert tm.curve_k == list(range(2, 9))  # the sweep is kept as it was
    _, floor = collect(fit_topics(counts, k_range=(5, 8), seed=0, processes=0))
    assert floor.k >= 5  # never below the range the user gave
    _, fixed = collect(fit_topics(counts, k=6, seed=0, processes=0))
    assert fixed.k == 6
