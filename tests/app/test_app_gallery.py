"""Gallery model (qtmodeltester), filter/sort, and the thumbnail loader."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.gui


@pytest.fixture
def model(qapp, indexed):
    from artstyle_gui.app.views.gallery import GalleryModel

    an = indexed.an
    m = GalleryModel()
    m.set_items(str(indexed.root), an.relpaths, an.labels)
    m.set_analysis(an)
    return m


def test_gallery_model_passes_qtmodeltester(qtmodeltester, model, indexed):
    qtmodeltester.check(model, force_py=True)  # keeps checking every signal of the changes below
    model.set_filter("stripes")
    model.set_sort("topic")
    model.set_anchor(indexed.an.relpaths[0])
    model.set_sort("similarity")
    model.set_filter("")
    model.add_items(["new/added.jpg", "new/other.jpg"])
    model.set_sort("artist")
    assert model.rowCount() == 34


def test_filter_matches_name_artist_and_title(model):
    model.set_filter("stripes")
    assert model.rowCount() == 8
    assert all("stripes" in p for p in model.relpaths())
    model.set_filter("mondrian")  # artist label
    assert model.rowCount() == 4 and all(p.startswith("blocks/") for p in model.relpaths())
    model.set_filter("Study 27")  # words of the title, all must match
    assert model.relpaths() == ["swirl/swirl_3.jpg"]
    model.set_filter("")
    assert model.rowCount() == 32


def test_sorts(model, indexed):
    from artstyle_gui.app.widgets.roles import ArtistRole, ScoreRole, TopicRole

    an = indexed.an
    model.set_sort("name")
    names = model.relpaths()
    assert names[:3] == ["blocks/blocks_0.jpg", "blocks/blocks_1.jpg", "blocks/blocks_2.jpg"]
    model.set_sort("artist")
    artists = [model.index(r).data(ArtistRole) for r in range(model.rowCount())]
    assert artists == sorted(artists, key=str.casefold)
    model.set_sort("topic")
    topics = [model.index(r).data(TopicRole) for r in range(model.rowCount())]
    assert topics == sorted(topics)
    assert set(topics) <= set(range(an.topics.k))
    anchor = an.relpaths[5]
    model.set_anchor(anchor)
    model.set_sort("similarity")
    assert model.relpaths()[0] == anchor
    scores = [model.index(r).data(ScoreRole) for r in range(model.rowCount())]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] == pytest.approx(1.0, abs=1e-4)


def test_add_items_go_in_their_place_live(model):
    """Paintings indexed while the gallery shows (sorted by name) go where the final order puts them,
    so nothing on screen jumps when indexing ends (issue 16)."""
    from artstyle_gui.app.views.gallery import _natural_key

    n = model.rowCount()
    model.add_items(["late/one.jpg", "late/two.jpg", "aaa/first.jpg"])
    rel = model.relpaths()
    assert model.rowCount() == n + 3 and rel == sorted(rel, key=_natural_key)
    assert model.row_of("late/two.jpg") == rel.index("late/two.jpg") and rel[0] == "aaa/first.jpg"
    model.add_items(["late/one.jpg"])  # no duplicates
    assert model.rowCount() == n + 3


def test_thumbnails_decode_off_thread_and_cache_outside_collection(qtbot, indexed, tmp_path):
    from artstyle_gui.app.widgets.thumbnails import THUMB_SIDE, ThumbnailLoader

    before = sorted(p.name for p in indexed.root.rglob("*"))
    lo = ThumbnailLoader()
    lo.set_cache_dir(tmp_path / "thumbs")
    paths = [str(indexed.root / p) for p in indexed.an.relpaths[:6]]
    assert all(lo.pixmap(p) is None for p in paths)  # queued, not decoded in the GUI thread
    qtbot.waitUntil(lambda: all(lo.cached(p) is not None for p in paths), timeout=20000)
    pm = lo.cached(paths[0])
    assert max(pm.width(), pm.height()) <= THUMB_SIDE
    assert len(list((tmp_path / "thumbs").rglob("*.jpg"))) == 6  # disk cache filled
    assert sorted(p.name for p in indexed.root.rglob("*")) == before  # the collection is never written

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image at all")
    with qtbot.waitSignal(lo.thumbnail_failed, timeout=10000):
        lo.pixmap(str(broken))
    assert lo.failure(str(broken))

    lo2 = ThumbnailLoader()  # a new session reads the disk cache
    lo2.set_cache_dir(tmp_path / "thumbs")
    lo2.pixmap(paths[0])
    qtbot.waitUntil(lambda: lo2.cached(paths[0]) is not None, timeout=10000)
    lo.shutdown()
    lo2.shutdown()


def test_thumbnail_requests_are_lifo(qapp, tmp_path):
    from artstyle_gui.app.widgets import thumbnails as th

    lo = th.ThumbnailLoader()
    pool = th.thumbnail_pool()
    old = pool.maxThreadCount()
    lo._running = 10 ** 6  # pretend the workers are busy so nothing is popped yet
    try:
        for i in range(5):
            lo.pixmap(f"/nowhere/{i}.jpg")
        lo.pixmap("/nowhere/1.jpg")  # looked at again: moves to the top
        lo._running = 1
        order = []
        while True:
            item = lo._pop()
            if item is None:
                break
            order.append(item[1])
            lo._running += 1
        assert order == ["/nowhere/1.jpg", "/nowhere/4.jpg", "/nowhere/3.jpg", "/nowhere/2.jpg", "/nowhere/0.jpg"]
    finally:
        lo._running = 0
        pool.setMaxThreadCount(old)
        lo.set_cache_dir(None)


def test_many_signal_emits_do_not_exhaust_singleton_refcounts(qapp):
    """PySide6 6.12 + CPython 3.11 drops a reference to True per emit(); the app guards against it."""
    from PySide6.QtCore import QObject, Signal

    import artstyle_gui.app  # noqa: F401 - applies the guard

    class Emitter(QObject):
        fired = Signal()

    e = Emitter()
    for _ in range(20000):
        e.fired.emit()  # would abort the interpreter ("bool_dealloc") without the guard


def test_labels_known_after_indexing_do_not_reorder(model):
    """At the end of indexing the records arrive with their labels, in the index's order: the model takes
    the labels without a reset, so the order on screen stays."""
    resets = []
    model.modelReset.connect(lambda: resets.append(1))
    model.add_items(["late/one.jpg"])
    before = model.relpaths()
    rel = sorted(before)[::-1]
    labels = [{"artist": "Someone"} if p == "late/one.jpg" else {} for p in rel]
    assert model.update_labels_in_place(model.root, rel, labels)
    assert model.relpaths() == before and not resets
    assert not model.update_labels_in_place(model.root, rel[1:], labels[1:])  # other paintings: a reset is due
