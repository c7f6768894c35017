"""Incremental analysis: new paintings are placed into the fitted PCA, topics and neighbour index until
enough has changed; the placements are saved next to the fit and load back as they were."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from synth import make_collection

from artstyle_gui.cli import main
from artstyle_gui.core.analysis.topics import counts_for, lda_transform
from artstyle_gui.core.index.collection import REFIT_MIN, REFIT_SHARE, Collection
from artstyle_gui.core.model import Settings
from artstyle_gui.core.progress import collect, run

SMALL = dict(k=4, deep_components=16, gram_components=8, colour_components=8, vocab_size=16)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """60 paintings, fitted once; each test works on its own copy."""
    base = tmp_path_factory.mktemp("incremental")
    root, idx = base / "c", base / "idx"
    make_collection(root, n_per_style=15, size=(96, 80))
    with Collection(root, settings=Settings(**SMALL), index_dir=idx) as col:
        run(col.index())
    return root, idx


@pytest.fixture
def col(fitted, tmp_path):
    root, idx = tmp_path / "c", tmp_path / "idx"
    shutil.copytree(fitted[0], root)
    shutil.copytree(fitted[1], idx)
    with Collection(root, settings=Settings(**SMALL), index_dir=idx) as c:
        c.files.save_settings()  # the CLI reopens it with these
        c.load_analysis()
        yield c


@pytest.mark.parametrize("kind", ["style", "bovw", "pca"])
def test_placement_equals_a_transform_with_the_fitted_models(tmp_path, kind):
    root = tmp_path / "c"
    make_collection(root, n_per_style=15, size=(96, 80))
    with Collection(root, settings=Settings(**{**SMALL, "topic_input": kind}), index_dir=tmp_path / "i") as c:
        _, an = run(c.index())
        raw = c.files.load_raw(an.hashes)
        for p, v in an.part_model.transform(raw).items():
            np.testing.assert_allclose(v, an.parts[p], atol=1e-5)
        mix = lda_transform(an.topics.components, counts_for(kind, raw, an.part_model, an.topics.vocab))
        np.testing.assert_allclose(mix, an.topics.mixtures, atol=1e-4)


def test_new_paintings_are_placed_and_found(col):
    before = col.analysis
    make_collection(col.root / "new", n_per_style=1, size=(96, 80), seed=5)
    shutil.copyfile(col.root / "swirl" / "swirl_3.jpg", col.root / "new" / "copy_of_swirl_3.png")  # same pixels
    events, (rep, an) = collect(col.index())
    assert rep.extracted == 4 and rep.reused == 1 and any(e.stage == "place" for e in events)
    assert (an.n, an.fitted_on, an.added_since, an.removed_since) == (65, 60, 5, 0)
    assert before.n == 60 and before.index.live == 60  # the analysis the views showed is untouched
    new_rows = [an.row_of(p) for p in an.relpaths if p.startswith("new/")]
    raw = col.files.load_raw([an.hashes[r] for r in new_rows])
    for p, v in an.part_model.transform(raw).items():  # the fitted PCA's transform
        np.testing.assert_allclose(an.parts[p][new_rows], v, atol=1e-5)
    mix = lda_transform(an.topics.components, counts_for(an.topics.input_kind, raw, an.part_model, an.topics.vocab))
    np.testing.assert_allclose(an.topics.mixtures[new_rows], mix, atol=1e-5)  # the fitted LDA's transform
    np.testing.assert_array_equal(an.topics.components, before.topics.components)  # not re-fitted
    twin = an.row_of("new/copy_of_swirl_3.png")
    assert col.similar(twin, 1)[0].relpath == "swirl/swirl_3.jpg"
    assert col.similar(an.row_of("swirl/swirl_3.jpg"), 1)[0].relpath == "new/copy_of_swirl_3.png"
    for r in new_rows:  # new rows answer queries, with rows in range and no self
        assert all(0 <= n.row < an.n and n.row != r for n in col.similar(r, 10))


def test_added_then_removed_leaves_the_index_consistent(col):
    make_collection(col.root / "new", n_per_style=1, size=(96, 80), seed=5)
    run(col.index())
    for rel in ("new/blocks/blocks_0.jpg", "stripes/stripes_0.jpg"):
        (col.root / rel).unlink()
    _, an = run(col.index())
    assert (an.n, an.added_since, an.removed_since) == (62, 3, 1)
    assert an.index.live == an.n and len(set(an.relpaths)) == an.n
    assert all(p not in an.relpaths for p in ("new/blocks/blocks_0.jpg", "stripes/stripes_0.jpg"))
    seen = set()
    for r in range(an.n):
        rows = [n.row for n in col.similar(r, 10)]
        assert len(rows) == 10 and all(0 <= x < an.n for x in rows) and r not in rows
        seen.update(rows)
    assert len(seen) > an.n // 2
    # a painting changed in place is placed again, not kept with its old features (6 changes of 60: placed)
    shutil.copyfile(col.root / "blocks" / "blocks_2.jpg", col.root / "swirl" / "swirl_2.jpg")
    _, an2 = run(col.index())
    row = an2.row_of("swirl/swirl_2.jpg")
    assert (an2.added_since, an2.removed_since) == (4, 2)
    assert an2.fit_rows[row] == -1 and an2.hashes[row] == an2.hashes[an2.row_of("blocks/blocks_2.jpg")]


def test_placements_are_saved_and_load_back(col):
    make_collection(col.root / "new", n_per_style=1, size=(96, 80), seed=5)
    (col.root / "stripes" / "stripes_4.jpg").unlink()
    _, an = run(col.index())
    d = col.files.dir
    assert (d / "placed.json").is_file() and (d / "placed.npz").stat().st_size < 50_000
    with Collection(col.root, settings=Settings(**SMALL), index_dir=col.index_dir) as again:
        loaded = again.load_analysis()
        assert loaded is not None and loaded.relpaths == an.relpaths and loaded.added_since == 4
        for p in an.parts:
            np.testing.assert_array_equal(loaded.parts[p], an.parts[p])
        np.testing.assert_array_equal(loaded.topics.mixtures, an.topics.mixtures)
        r = loaded.row_of("new/swirl/swirl_0.jpg")
        assert [n.relpath for n in again.similar(r, 5)] == [n.relpath for n in col.similar(r, 5)]


def test_a_big_change_or_a_request_refits(col):
    fit = col.analysis
    n_new = int(REFIT_SHARE * fit.n) + 1
    make_collection(col.root / "new", n_per_style=(n_new + 3) // 4, size=(96, 80), seed=7)
    events, (_, an) = collect(col.index())
    assert not any(e.stage == "place" for e in events)
    assert an.fitted_on == an.n and an.added_since == 0 and not (col.files.dir / "placed.json").exists()
    make_collection(col.root / "more", n_per_style=1, size=(96, 80), seed=9)
    _, placed = run(col.index())
    assert placed.added_since == 4
    refit = run(col.analyse(force=True))
    assert refit.fitted_on == refit.n == placed.n and refit.added_since == 0
    assert REFIT_MIN <= 60


def test_small_collections_always_refit(tmp_path):
    root = tmp_path / "c"
    make_collection(root, n_per_style=4, size=(96, 80))
    with Collection(root, settings=Settings(**SMALL), index_dir=tmp_path / "i") as c:
        run(c.index())
        make_collection(root / "new", n_per_style=1, size=(96, 80), seed=3)
        _, an = run(c.index())
        assert an.n == 20 and an.fitted_on == 20 and an.added_since == 0


def test_cli_says_what_was_placed_and_refits_on_request(col, capsys):
    make_collection(col.root / "new", n_per_style=1, size=(96, 80), seed=5)
    args = [str(col.root), "--index-dir", str(col.index_dir), "--k", "4"]
    capsys.readouterr()
    assert main(["-q", "index", *args]) == 0
    out = capsys.readouterr().out
    assert "Topics fitted on 60 paintings, 4 added since" in out and "--refit" in out
    assert main(["-q", "topics", *args]) == 0
    assert "4 added since" in capsys.readouterr().out
    assert main(["-q", "index", *args, "--refit"]) == 0
    assert "added since" not in capsys.readouterr().out


def test_the_map_places_new_paintings_into_the_saved_layout(col):
    xy_fit = run(col.style_map("pca"))
    fit = col.analysis
    make_collection(col.root / "new", n_per_style=1, size=(96, 80), seed=5)
    shutil.copyfile(col.root / "blocks" / "blocks_1.jpg", col.root / "new" / "twin.png")
    (col.root / "stripes" / "stripes_4.jpg").unlink()
    _, an = run(col.index())
    assert an.added_since == 5
    events, xy = collect(col.style_map("pca"))
    assert [e.message for e in events] == ["loaded the saved map"]  # placed, not computed
    for r, p in enumerate(an.relpaths):  # the fitted paintings keep their place
        if an.fit_rows[r] >= 0:
            np.testing.assert_array_equal(xy[r], xy_fit[fit.row_of(p)])
    twin, orig = an.row_of("new/twin.png"), an.row_of("blocks/blocks_1.jpg")
    assert np.linalg.norm(xy[twin] - xy[orig]) < 0.25  # next to its look-alike
    assert np.isfinite(xy).all() and np.abs(xy).max() <= 1.0
    with Collection(col.root, settings=Settings(**SMALL), index_dir=col.index_dir) as again:
        again.load_analysis()
        np.testing.assert_array_equal(again.saved_style_map("pca"), xy)  # saved as this analysis's layout


def test_a_cancelled_fit_is_not_taken_for_a_result(col):
    """A full fit closed at the partial analysis (neighbours, no topics yet: what the app's Cancel does)
    leaves the previous analysis; the next analyse() fits again instead of calling the partial one current."""
    make_collection(col.root / "new", n_per_style=4, size=(96, 80), seed=11)  # 16 of 60: a full fit is due
    run(col.update())
    gen = col.analyse()
    for p in gen:
        if p.stage == "index" and p.payload is not None:
            break
    gen.close()
    assert col.analysis is None or col.analysis.topics is not None
    an = run(col.analyse())
    assert an.n == 76 and an.topics is not None and an.fitted_on == 76
