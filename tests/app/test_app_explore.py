"""The explore features in the app: the style map, near-duplicates, "more like this, but…" and
topic names kept in the index."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app_helpers import fast_settings  # noqa: E402
from synth import tree_digest  # noqa: E402

pytestmark = pytest.mark.gui


def reference(window, indexed):
    """A second core Collection over the window's (copied) index: what the app must agree with."""
    from artstyle_gui.core.index.collection import Collection

    col = Collection(indexed.root, settings=fast_settings(), index_dir=window.controller.collection.index_dir)
    col.load_analysis()
    return col


def show_map(window, qtbot, method="pca"):
    m = window.map
    m.set_method(method)
    window.tabs.setCurrentWidget(m)
    qtbot.waitUntil(lambda: m.has_map() and not window.controller.busy, timeout=60000)
    return m


class FakeDrag:
    """The parts of a pyqtgraph MouseDragEvent that the map's ViewBox reads."""

    def __init__(self, a, b, finish: bool, shift: bool = True) -> None:
        self.a, self.b, self.finish, self.shift = a, b, finish, shift

    def button(self):
        return Qt.MouseButton.LeftButton

    def modifiers(self):
        return Qt.KeyboardModifier.ShiftModifier if self.shift else Qt.KeyboardModifier.NoModifier

    def buttonDownScenePos(self):  # noqa: N802
        return self.a

    def scenePos(self):  # noqa: N802
        return self.b

    def isStart(self):  # noqa: N802
        return False

    def isFinish(self):  # noqa: N802
        return self.finish

    def accept(self):
        pass


# --------------------------------------------------------------------------- the style map
def test_map_points_click_and_area_selection(window, indexed, qtbot, tmp_path):
    from PySide6.QtTest import QTest

    c = window.controller
    m = show_map(window, qtbot, "pca")
    ref = reference(window, indexed)
    xy = ref.saved_style_map("pca")
    assert xy is not None and xy.shape == (indexed.an.n, 2)  # the app's job saved it with the index
    np.testing.assert_array_equal(m.positions(), xy)  # one point per painting, at the core's positions
    assert m.point_count() == indexed.an.n
    assert m.shown_layout == "pca"
    mix = ref.analysis.topics.mixtures
    for gi, rows in enumerate(m.group_rows[: ref.analysis.topics.k]):  # coloured by dominant topic
        assert (mix[rows].argmax(1) == gi).all()

    # clicking a point selects that painting (gallery and detail panel follow)
    row = 5
    rel = indexed.an.relpaths[row]
    pos = m.plot.mapFromScene(m.scene_pos_of(row))
    assert m.row_at_scene(m.scene_pos_of(row)) == row
    QTest.mouseClick(m.plot.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pos)
    assert c.current == rel
    assert window.gallery.model.row_of(rel) == window.gallery.view.currentIndex().row()
    assert window.detail.shown_path == c.path_of(rel) and window.detail.neighbour_relpaths()
    assert m.cur_item.getData()[0][0] == pytest.approx(xy[row, 0])

    # Shift+drag a rectangle over the left part of the map: the gallery shows exactly those paintings
    xs = np.sort(xy[:, 0])
    split = float((xs[12] + xs[13]) / 2)
    a = m.vb.mapViewToScene(QPointF(-1.01, -1.01))
    b = m.vb.mapViewToScene(QPointF(split, 1.01))
    m.vb.mouseDragEvent(FakeDrag(a, b, finish=False))
    assert m.vb.band.isVisible()
    m.vb.mouseDragEvent(FakeDrag(a, b, finish=True))
    inside = np.flatnonzero(xy[:, 0] <= split)
    assert len(inside) == 13
    expected = {indexed.an.relpaths[i] for i in inside}
    assert set(m.selected_relpaths()) == expected
    assert set(window.gallery.model.relpaths()) == expected
    assert not window.gallery.subset_chip.isHidden() and "(13)" in window.gallery.subset_chip.text()

    out = m.export_selection(tmp_path / "selection.csv")
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["relpath"] for r in rows} == expected
    assert {"x", "y", "dominant_topic", "dominant_topic_name", "artist"} <= set(rows[0])
    for r in rows:
        i = indexed.an.row_of(r["relpath"])
        assert float(r["x"]) == pytest.approx(xy[i, 0], abs=1e-4)
        assert int(r["dominant_topic"]) == int(mix[i].argmax()) + 1
    with pytest.raises(Exception, match="inside the collection"):
        m.export_selection(indexed.root / "selection.csv")  # never written into the collection
    assert not (indexed.root / "selection.csv").exists()

    window.gallery.subset_chip.click()  # the chip's ✕ shows everything again and clears the map's selection
    assert window.gallery.model.rowCount() == indexed.an.n and window.gallery.subset_chip.isHidden()
    assert len(m.selected_rows) == 0
    ref.close()


def test_map_recomputes_when_the_embedding_changes_only(window, indexed, qtbot):
    c = window.controller
    jobs: list[str] = []
    c.job_started.connect(jobs.append)
    m = show_map(window, qtbot, "pca")
    assert jobs == ["map"]
    before = m.positions().copy()
    window.tabs.setCurrentWidget(window.gallery)
    window.tabs.setCurrentWidget(m)  # re-opening the tab: the shown layout stays, nothing runs
    qtbot.wait(50)
    assert jobs == ["map"]

    weights = {"deep": 0.0, "texture": 0.0, "colour": 1.0}
    c.indexing.set_blend(weights)  # the embedding changes while the map is showing
    qtbot.waitUntil(lambda: jobs.count("map") == 2 and m.has_map() and not c.busy, timeout=60000)
    ref = reference(window, indexed)
    ref.set_blend(weights)
    xy = ref.saved_style_map("pca")
    assert xy is not None
    np.testing.assert_array_equal(m.positions(), xy)
    assert not np.allclose(xy, before)

    window.tabs.setCurrentWidget(window.gallery)  # changed while hidden: computed when shown again
    c.indexing.set_blend({"deep": 1.0, "texture": 0.0, "colour": 0.0})
    qtbot.waitUntil(lambda: not c.busy, timeout=60000)
    assert jobs.count("map") == 2
    window.tabs.setCurrentWidget(m)
    qtbot.waitUntil(lambda: jobs.count("map") == 3 and m.has_map() and not c.busy, timeout=60000)
    ref.close()


def test_map_auto_shows_pca_then_tsne_and_colours_by_label(window, indexed, qtbot):
    m = show_map(window, qtbot, "auto")
    assert m.shown_layout == "tsne" and m.has_map()
    ref = reference(window, indexed)
    np.testing.assert_array_equal(m.positions(), ref.saved_style_map("tsne"))
    assert ref.saved_style_map("pca") is not None  # shown while t-SNE was computed
    ref.close()
    m.set_colour_by("artist")
    arts = indexed.an.label_column("artist")
    assert sorted(m.group_names) == sorted(set(arts))
    for name, rows in zip(m.group_names, m.group_rows):
        assert {arts[i] for i in rows} == {name}
    from artstyle_gui.app import prefs

    assert prefs.map_color_by() == "artist" and prefs.map_method() == "auto"


# --------------------------------------------------------------------------- near-duplicates


def test_duplicates_dialog_finds_a_planted_copy(qtbot, tmp_path):
    from PIL import Image
    from PySide6.QtTest import QTest
    from synth import make_collection

    from artstyle_gui.app.controller import Controller
    from artstyle_gui.app.main_window import MainWindow
    from artstyle_gui.core.explore.duplicates import CACHE_FILE

    root = tmp_path / "paintings"
    make_collection(root, n_per_style=3, size=(128, 104))
    orig, copy = "blocks/blocks_1.jpg", "copies/blocks_1_q80.jpg"
    (root / "copies").mkdir()
    Image.open(root / orig).convert("RGB").save(root / copy, quality=80)  # the same painting, re-encoded
    before = tree_digest(root)
    c = Controller(fast_settings())
    win = MainWindow(c)
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(c.job_finished, timeout=180000):
        assert win.open_folder(root, index_dir=tmp_path / "index")
    assert c.analysis is not None and c.analysis.n == 13
    dlg = win.open_duplicates()
    assert dlg.isVisible() and "Nothing is deleted" in dlg.intro.text()
    assert (dlg.threshold.minimum(), dlg.threshold.value(), dlg.threshold.maximum()) == (70, 90, 99)
    with qtbot.waitSignal(dlg.duplicates_found, timeout=120000):
        dlg.find_btn.click()
    qtbot.waitUntil(lambda: not c.busy, timeout=60000)
    assert [sorted(g.relpaths) for g in dlg.groups] == [sorted([orig, copy])]
    assert dlg.list.group_model.rowCount() == 1 and dlg.export_btn.isEnabled()
    assert "1</b> groups" in dlg.summary.text()
    g = dlg.groups[0]
    QTest.mouseClick(dlg.list.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     dlg.list.member_pos(0, 1))
    assert c.current == g.relpaths[1]
    out = dlg.export_csv(tmp_path / "dups.csv")
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["relpath"] for r in rows) == sorted([orig, copy]) and {r["group"] for r in rows} == {"1"}
    assert (tmp_path / "index" / CACHE_FILE).exists()  # its cache lives with the index...
    win.shutdown()
    assert tree_digest(root) == before  # ...and the collection is unchanged (nothing deleted or written)


# --------------------------------------------------------------------------- more like this, but…
def test_steering_reranks_and_reset_returns_plain_neighbours(window, indexed, qtbot):
    c = window.controller
    d = window.detail
    rel = indexed.an.relpaths[9]
    c.select(rel)
    plain = d.neighbour_relpaths()
    assert plain == [n.relpath for n in c.neighbours(rel)]
    st = d.steer
    assert st.toggle.isEnabled() and st.k == indexed.an.topics.k and len(st.sliders) == st.k
    st.toggle.click()
    assert st.body.isVisible()
    mix = indexed.an.topics.mixtures
    row = indexed.an.row_of(rel)
    t = int(np.argmin(mix[row]))  # a topic this painting hardly has
    rows_of = indexed.an.row_of

    def mean_t(relpaths):
        return float(np.mean([mix[rows_of(p), t] for p in relpaths]))

    st.set_slider(t, 100)
    qtbot.waitUntil(lambda: d.neighbour_relpaths() != plain, timeout=5000)  # debounced re-rank
    steered = d.neighbour_relpaths()
    assert mean_t(steered) > mean_t(plain) + 0.1
    assert d.neigh_label.text().startswith("More like this, but")
    ref = reference(window, indexed)
    expected = ref.steered_similar(row, {t: 1.0}, k=len(steered), alpha=st.alpha_value(), metric="hellinger")
    assert steered == [n.relpath for n in expected]  # the core's ranking
    st.metric.setCurrentIndex(st.metric.findData("js"))
    st.flush()
    expected = ref.steered_similar(row, {t: 1.0}, k=len(steered), alpha=st.alpha_value(), metric="js")
    assert d.neighbour_relpaths() == [n.relpath for n in expected]
    ref.close()
    st.reset()
    assert d.neighbour_relpaths() == plain and d.neigh_label.text().startswith("Most similar")
    d.show_external(str(indexed.root / rel), [])  # an outside image has no mixture: disabled, with a reason
    assert not st.toggle.isEnabled() and "only for paintings" in st.state.text()


# --------------------------------------------------------------------------- topic names
def test_topic_names_live_in_the_index_and_show_everywhere(window, indexed, qtbot):
    from artstyle_gui.core.index.collection import Collection

    c = window.controller
    tb = window.topics
    window.open_topic(1)
    tb.name_edit.setText("Dark stripes")
    tb.name_edit.editingFinished.emit()
    assert c.topic_name(1) == "Dark stripes" and c.topic_label(1) == "Topic 2 · Dark stripes"
    col = Collection(indexed.root, settings=fast_settings(), index_dir=c.collection.index_dir)
    assert col.topic_names() == {1: "Dark stripes"}  # a new Collection (the CLI) sees it
    col.close()
    assert "Dark stripes" in tb.list.item(1).text()
    window.heatmap.set_mode("topic")
    assert any("Dark stripes" in lab for _s, _e, lab in window.heatmap._groups)
    m = show_map(window, qtbot, "pca")
    assert any("Topic 2 · Dark stripes" in m.legend.item(i).text() for i in range(m.legend.count()))
    c.select(indexed.an.relpaths[0])
    window.detail.steer.toggle.click()
    assert window.detail.steer.labels[1].text() == "Topic 2 · Dark stripes"
    c.rename_topic(1, "")
    col = Collection(indexed.root, settings=fast_settings(), index_dir=c.collection.index_dir)
    assert col.topic_names() == {} and c.topic_name(1) in ("Topic 2", c.auto_topic_name(1))  # suggested again
    col.close()


def test_topic_names_from_the_old_settings_move_into_the_index(window, indexed, qtbot):
    from artstyle_gui.app import prefs
    from artstyle_gui.core.index.collection import Collection

    c = window.controller
    fp = c.analysis.fingerprint
    prefs.set_topic_names(fp, {0: "Warm dots"})  # as older versions kept them
    index = c.collection.index_dir
    with qtbot.waitSignal(c.job_finished, timeout=60000):
        window.open_folder(indexed.root, index_dir=index)  # opened again: names are read and moved
    assert c.topic_name(0) == "Warm dots"
    assert prefs.topic_names(fp) == {}
    col = Collection(indexed.root, settings=fast_settings(), index_dir=index)
    assert col.topic_names() == {0: "Warm dots"}
    col.close()


def test_the_topic_browser_says_when_a_large_collection_was_fitted_on_a_sample(window):
    """Above core/index/sampled.SAMPLE_ABOVE paintings the topics are fitted on a sample: the Topics tab says so,
    and that a re-fit fits a new sample (not every painting)."""
    from dataclasses import replace

    tb = window.topics
    an = window.controller.analysis
    n = an.n
    tb.set_analysis(replace(an, sample_n=20))
    assert f"Topics fitted on a sample of 20 of {n} paintings" in tb.k_note.text()
    assert "the others are placed into these topics" in tb.k_note.text()
    placed = replace(an, sample_n=20, fit_n=n - 2, fit_rows=np.r_[np.arange(n - 2), [-1, -1]])
    tb.set_analysis(placed)
    assert f"Topics fitted on a sample of 20 of {n - 2} paintings, 2 added since" in tb.k_note.text()
    assert "on a new sample" in tb.k_note.text()
    tb.set_analysis(an)
    assert "sample" not in tb.k_note.text()
