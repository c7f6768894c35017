"""End-to-end engine behaviour with the real offline backbone (EfficientNet-Lite0)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from artstyle_gui.core.analysis.parts import PARTS, blend
from artstyle_gui.core.analysis.topics import knee
from artstyle_gui.core.index.collection import Collection
from artstyle_gui.core.model import Settings
from artstyle_gui.core.errors import ArtStyleError, IndexLocked
from artstyle_gui.core.analysis.evaluate import nmi, retrieval_scores
from artstyle_gui.core.progress import collect, run
from synth import STYLES, make_painting, tree_digest


def _styles(an, rows):
    by = dict(rows)
    return [by[p] for p in an.relpaths]


def test_index_reports_every_image(indexed):
    col, rep, an, rows = indexed
    assert rep.scanned == len(rows) == an.n
    assert rep.extracted == len(rows) and not rep.failed
    assert set(an.relpaths) == {p for p, _ in rows}
    for p in PARTS:
        assert an.parts[p].shape[0] == an.n
        np.testing.assert_allclose(np.linalg.norm(an.parts[p], axis=1), 1.0, atol=1e-4)


def test_neighbours_come_from_the_same_style(indexed):
    col, _, an, rows = indexed
    styles = _styles(an, rows)
    hits = []
    for i in range(an.n):
        nb = col.similar(i, k=5)
        assert len(nb) == 5 and all(n.row != i for n in nb)
        scores = [n.score for n in nb]
        assert scores == sorted(scores, reverse=True)
        hits.append(np.mean([styles[n.row] == styles[i] for n in nb]))
    assert np.mean(hits) >= 0.9


def test_why_similar_shares_add_up_to_the_score(indexed):
    col, _, an, _ = indexed
    for n in col.similar(3, k=4):
        assert sum(n.shares.values()) == pytest.approx(1.0, abs=1e-5)
        assert sum(n.parts.values()) == pytest.approx(n.score, abs=2e-3)  # hnsw cosine == sum of parts


def test_topics_separate_the_styles(indexed):
    _, _, an, rows = indexed
    assert an.topics is not None and an.topics.k == len(STYLES)
    np.testing.assert_allclose(an.topics.mixtures.sum(1), 1.0, atol=1e-4)
    assert nmi(list(an.dominant_topics()), _styles(an, rows)) >= 0.6


def test_labels_come_from_the_csv(indexed):
    _, _, an, rows = indexed
    assert an.label_column("style") == _styles(an, rows)


def test_external_image_query_is_not_added(indexed, tmp_path):
    col, _, an, _ = indexed
    q = tmp_path / "query.png"
    make_painting("blocks", seed=999).save(q)
    nb = col.similar_to_file(q, k=5)
    assert len(nb) == 5
    assert sum(n.relpath.startswith("blocks/") for n in nb) >= 4
    assert col.analysis.n == an.n and col.analysis.index.count == an.n


def test_blend_weights_change_ranking_without_extraction(indexed, monkeypatch):
    col, _, an, _ = indexed
    before = [n.row for n in col.similar(0, k=8)]
    default = dict(col.settings.blend)
    import artstyle_gui.core.ingest.backbones as bb

    monkeypatch.setattr(bb, "load_backbone", lambda *a, **k: pytest.fail("must not reload the model"))
    try:
        col.set_blend({"deep": 0.0, "texture": 0.0, "colour": 1.0})
        colour_only = col.similar(0, k=8)
        assert all(n.shares["colour"] == pytest.approx(1.0) for n in colour_only)
        exact = np.argsort(-(an.parts["colour"] @ an.parts["colour"][0]))[1:9]
        assert [n.row for n in colour_only][:3] == list(exact[:3])
    finally:
        col.set_blend(default)
    assert [n.row for n in col.similar(0, k=8)] == before


def test_blend_is_weighted_mean_of_part_cosines():
    rng = np.random.default_rng(0)
    parts = {p: rng.normal(size=(5, 7)).astype(np.float32) for p in PARTS}
    parts = {p: v / np.linalg.norm(v, axis=1, keepdims=True) for p, v in parts.items()}
    w = {"deep": 2.0, "texture": 1.0, "colour": 1.0}
    e = blend(parts, w)
    expect = sum(w[p] / 4.0 * (parts[p][0] @ parts[p][1]) for p in PARTS)
    assert e[0] @ e[1] == pytest.approx(expect, abs=1e-6)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-6)


def test_knee_finds_the_elbow():
    ks = list(range(5, 21))
    curve = [1000 / (k - 3) ** 2 + 10 if k < 9 else 30 - 0.1 * k for k in ks]
    k = knee(ks, curve)
    assert 7 <= k <= 10
    assert knee(ks, list(range(16))) == 5  # rising curve: its minimum




def test_incremental_reindex(fresh_copy, tmp_path):
    root, rows, labels = fresh_copy
    idx = tmp_path / "idx"
    st = Settings(k=4)
    with Collection(root, settings=st, index_dir=idx, labels_csv=labels) as col:
        rep, an = run(col.index())
        assert rep.extracted == len(rows)
        # nothing changed: nothing extracted, analysis reused
        rep, an2 = run(col.index())
        assert (rep.extracted, rep.unchanged, rep.reused) == (0, len(rows), 0)
        assert an2.fingerprint == an.fingerprint
        # rename one file, modify one, delete one, add one
        (root / "swirl" / "swirl_0.jpg").rename(root / "swirl" / "renamed.jpg")
        make_painting("stripes", seed=4242).save(root / "stripes" / "stripes_1.jpg")
        (root / "blocks" / "blocks_2.jpg").unlink()
        make_painting("pointillist", seed=777).save(root / "pointillist" / "new.jpg")
        rep, an3 = run(col.index())
        assert rep.extracted == 2  # the modified and the new one
        assert rep.reused == 1  # the renamed one: same content hash
        assert rep.removed == 2  # deleted + old name of the renamed
        assert "blocks/blocks_2.jpg" not in an3.relpaths
        assert "swirl/renamed.jpg" in an3.relpaths and "pointillist/new.jpg" in an3.relpaths
        assert an3.n == len(rows)


def test_bad_files_are_reported_and_the_run_goes_on(fresh_copy, tmp_path):
    root, rows, labels = fresh_copy
    (root / "notes.jpg").write_text("this is not a picture")
    (root / "empty.png").write_bytes(b"")
    good = (root / "blocks" / "blocks_0.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(good[: len(good) // 3])
    with Collection(root, settings=Settings(k=4), index_dir=tmp_path / "idx", labels_csv=labels) as col:
        rep, an = run(col.index())
        failed = dict(rep.failed)
        assert set(failed) >= {"notes.jpg", "empty.png"}
        assert "empty" in failed["empty.png"]
        assert an.n >= len(rows)
        assert dict(col.problems()).keys() == failed.keys()
        # unchanged bad files are not retried unless asked, and stay reported
        rep2 = run(col.update())
        assert rep2.extracted == 0 and dict(rep2.failed).keys() == failed.keys()


def test_interrupted_run_keeps_finished_batches_and_resumes(fresh_copy, tmp_path):
    root, rows, labels = fresh_copy
    st = Settings(k=4, batch_size=8)
    with Collection(root, settings=st, index_dir=tmp_path / "idx", labels_csv=labels) as col:
        gen = col.update()
        for ev in gen:
            if ev.stage == "extract" and ev.done >= 16:
                break
        gen.close()  # what Cancel / Ctrl-C does between yields
        assert len([r for r in col.records() if r.status == "ok"]) == 16
    with Collection(root, settings=st, index_dir=tmp_path / "idx", labels_csv=labels) as col:
        rep = run(col.update())
        assert rep.extracted == len(rows) - 16 and rep.unchanged == 16


def test_progress_events_are_ordered(fresh_copy, tmp_path):
    root, rows, labels = fresh_copy
    with Collection(root, settings=Settings(k=4, batch_size=8), index_dir=tmp_path / "idx") as col:
        events, rep = collect(col.update())
    ext = [e for e in events if e.stage == "extract"]
    assert ext[-1].done == ext[-1].total == len(rows)
    assert [e.done for e in ext] == sorted(e.done for e in ext)
    assert sum(len(e.payload or []) for e in ext) == len(rows)


def test_collection_is_never_written(fresh_copy, tmp_path):
    root, rows, labels = fresh_copy
    before = tree_digest(root)
    with Collection(root, settings=Settings(k=4), index_dir=tmp_path / "idx") as col:
        run(col.index())
        from artstyle_gui.core.explore.summaries import export

        export(col.analysis, tmp_path / "out")
        run(col.index())
    assert tree_digest(root) == before


def test_index_dir_inside_collection_is_refused(fresh_copy):
    root, _, _ = fresh_copy
    with pytest.raises(ArtStyleError, match="never writes"):
        Collection(root, index_dir=root / ".index")


def test_second_writer_is_refused(fresh_copy, tmp_path):
    root, _, _ = fresh_copy
    a = Collection(root, index_dir=tmp_path / "idx")
    b = Collection(root, index_dir=tmp_path / "idx")
    try:
        a.store.acquire_writer_lock()
        with pytest.raises(IndexLocked):
            run(b.update())
    finally:
        a.close()
        b.close()


def test_changing_k_refits_without_extraction(indexed, monkeypatch):
    col, _, an, _ = indexed
    import artstyle_gui.core.index.collection as eng

    calls = []
    monkeypatch.setattr(eng.Collection, "backbone", lambda self: calls.append(1))
    an3 = run(col.refit_topics(k=3))
    try:
        assert an3.topics.k == 3 and an3.topics.mixtures.shape == (an.n, 3) and not calls
    finally:
        run(col.refit_topics(k=4))


def test_auto_k_records_the_perplexity_curve(indexed):
    col, _, an, _ = indexed
    an2 = run(col.refit_topics(k=None))
    try:
        t = an2.topics
        assert t.curve_k[0] == 5 and len(t.curve_k) == len(t.curve_perplexity) >= 3
        assert t.k in t.curve_k
    finally:
        run(col.refit_topics(k=4))


def test_reopen_loads_the_saved_analysis(indexed, monkeypatch):
    col, _, an, _ = indexed
    import artstyle_gui.core.index.collection as ana

    monkeypatch.setattr(ana, "fit_parts", lambda *a, **k: pytest.fail("must not refit"))
    with Collection(col.root, settings=Settings(k=4), index_dir=col.index_dir, labels_csv=col.labels_csv) as c2:
        an2 = c2.load_analysis()
        assert an2 is not None and an2.relpaths == an.relpaths
        np.testing.assert_array_equal(an2.topics.mixtures, col.analysis.topics.mixtures)
        assert [n.row for n in c2.similar(1, 5)] == [n.row for n in col.similar(1, 5)]


def test_retrieval_scores_on_known_data():
    emb = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], np.float32)
    s = retrieval_scores(emb, ["a", "a", "b", "b"], k=1)
    assert s.precision_at_k == 1.0 and s.map_at_k == 1.0
    s = retrieval_scores(emb, ["a", "b", "a", "b"], k=1)
    assert s.precision_at_k == 0.0


def test_feature_sets_are_kept_apart_and_reused(fresh_copy, tmp_path):
    root, rows, labels = fresh_copy
    idx = tmp_path / "idx"
    with Collection(root, settings=Settings(k=4), index_dir=idx) as col:
        assert run(col.update()).extracted == len(rows)
    with Collection(root, settings=Settings(k=4, trim_borders=False), index_dir=idx) as col:
        assert run(col.update()).extracted == len(rows)  # another feature set
    with Collection(root, settings=Settings(k=4), index_dir=idx) as col:
        rep = run(col.update())
        assert rep.extracted == 0 and rep.unchanged == len(rows)  # switching back reuses the cached one


def test_deleted_content_leaves_the_vector_store(fresh_copy, tmp_path):
    root, rows, labels = fresh_copy
    with Collection(root, settings=Settings(k=4), index_dir=tmp_path / "idx") as col:
        run(col.update())
        fs, _ = col.files.featureset()
        h = next(r.hash for r in col.records() if r.relpath == "stripes/stripes_0.jpg")
        (root / "stripes" / "stripes_0.jpg").unlink()
        run(col.update())
        assert h not in col.store.known_hashes(fs)


def test_ctrl_c_in_the_cli_keeps_finished_batches(fresh_copy, tmp_path):
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    from synth import make_collection

    root, rows, labels = fresh_copy
    make_collection(root / "more", n_per_style=40, size=(160, 128), seed=7)  # enough batches to interrupt
    idx = tmp_path / "idx"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "artstyle_gui.cli", "-q", "index", str(root), "--index-dir",
                             str(idx), "--batch-size", "8", "--k", "4"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            # a shell running us in the background ignores SIGINT, and the child would
                            # inherit that: give it the default disposition, as in a terminal
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    db = idx / "index.sqlite"
    deadline = time.time() + 120
    n = 0
    while time.time() < deadline and proc.poll() is None:
        if db.exists():
            try:
                with sqlite3.connect(db, timeout=1) as c:
                    n = c.execute("SELECT COUNT(*) FROM files").fetchone()[0]
            except sqlite3.Error:
                n = 0
            if n >= 8:
                break
        time.sleep(0.05)
    assert proc.poll() is None, "indexing finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err
    with sqlite3.connect(db) as c:
        kept = c.execute("SELECT COUNT(*) FROM files WHERE status='ok'").fetchone()[0]
    assert kept >= 8
    total = len(rows) + 160
    with Collection(root, settings=Settings(k=4), index_dir=idx) as col:
        rep = run(col.update())
    assert rep.unchanged == kept and rep.extracted == total - kept


def test_euclidean_metric_ranks_like_cosine_on_unit_vectors(indexed):
    col, _, an, _ = indexed
    cos = [n.row for n in col.similar(5, k=6)]
    col.set_blend(an.weights, metric="euclidean")
    try:
        nb = col.similar(5, k=6)
        assert [n.row for n in nb] == cos
        assert all(n.score <= 0 for n in nb)  # minus squared distance
    finally:
        col.set_blend(an.weights, metric="cosine")


def test_forward_in_chunks_gives_every_image_its_own_features():
    from artstyle_gui.core.ingest.backbones import FORWARD_CHUNK, load_backbone

    net = load_backbone("effnet-lite0")
    n = FORWARD_CHUNK * 2 + 3  # two full chunks and a short one
    x = np.random.default_rng(1).integers(0, 255, (n, 224, 224, 3), dtype=np.uint8)
    x[5] = 0  # a distinct image: misplaced rows would show
    out = net.forward(x)
    assert out["deep"].shape[0] == out["local"].shape[0] == n and all(g.shape[0] == n for g in out["grams"])
    for i in (0, 5, FORWARD_CHUNK, n - 1):
        one = net.forward(x[i : i + 1])
        np.testing.assert_allclose(out["deep"][i], one["deep"][0], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(out["local"][i], one["local"][0], rtol=1e-4, atol=1e-5)
        for g, g1 in zip(out["grams"], one["grams"]):
            np.testing.assert_allclose(g[i], g1[0], rtol=1e-4, atol=1e-5)
