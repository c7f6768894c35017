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
