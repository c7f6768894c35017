"""The main window over an indexed synthetic collection: neighbours, chart, heatmap, history,
export, external images, re-ranking and re-fitting."""

from __future__ import annotations

import csv
from dataclasses import replace
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from synth import make_painting  # noqa: E402

pytestmark = pytest.mark.gui


def select_in_gallery(win, relpath):
    row = win.gallery.model.row_of(relpath)
    win.gallery.view.setCurrentIndex(win.gallery.model.index(row))


def test_open_shows_saved_index_and_gallery(window, indexed):
    c = window.controller
    assert window.gallery.model.rowCount() == 32
    assert c.analysis.fingerprint == indexed.an.fingerprint  # loaded, not recomputed
    assert window.problems.problems == []


def test_selecting_fills_neighbours_in_core_order_and_mixture_chart(window, indexed):
    c = window.controller
    ref = indexed.reference()
    for rel in (indexed.an.relpaths[3], indexed.an.relpaths[20]):
        select_in_gallery(window, rel)
        assert c.current == rel
        row = ref.analysis.row_of(rel)
        expected = [n.relpath for n in ref.similar(row, 12)]
        assert window.detail.neighbour_relpaths() == expected
        cards = window.detail.strip.card_model.cards
        assert [cd.score for cd in cards] == pytest.approx([n.score for n in ref.similar(row, 12)], abs=1e-5)
        assert all(abs(sum(cd.shares.values()) - 1) < 1e-5 for cd in cards)
        np.testing.assert_allclose(window.detail.chart.heights(), ref.analysis.topics.mixtures[row], atol=1e-6)
        assert len(window.detail.chart.bars.opts["brushes"]) == ref.analysis.topics.k
    ref.close()


def test_neighbour_click_and_history(window, indexed):
    c = window.controller
    a = indexed.an.relpaths[0]
    select_in_gallery(window, a)
    b = window.detail.neighbour_relpaths()[0]
    window.detail.strip.card_activated.emit(b)
    assert c.current == b and window.gallery.model.row_of(b) == window.gallery.view.currentIndex().row()
    assert window.act_back.isEnabled() and not window.act_forward.isEnabled()
    window.act_back.trigger()
    assert c.current == a
    window.act_forward.trigger()
    assert c.current == b


def test_bar_click_opens_topic(window, indexed):
    c = window.controller
    rel = indexed.an.relpaths[7]
    select_in_gallery(window, rel)
    t = int(np.argmax(c.mixture(rel)))
    window.detail.chart.topic_clicked.emit(t)
    assert window.tabs.currentWidget() is window.topics
    assert window.topics.topic == t
    members = np.flatnonzero(c.analysis.dominant_topics() == t)
    assert window.topics.summaries[t].size == len(members)
    top = window.topics.top_relpaths()
    mix = c.analysis.topics.mixtures[:, t]
    assert top[0] == c.analysis.relpaths[int(np.argmax(mix))]


def test_heatmap_data_equals_core_mixtures(window, indexed, qtbot):
    hm = window.heatmap
    mix = indexed.an.topics.mixtures
    for mode in ("topic", "label", "name"):
        hm.set_mode(mode, "artist")
        order = hm.row_order
        assert sorted(order.tolist()) == list(range(indexed.an.n))  # every painting, once
        np.testing.assert_array_equal(hm.image_data(), mix[order])
        np.testing.assert_array_equal(hm.img.image, mix[order])
    hm.set_mode("topic")
    dom = mix.argmax(1)[hm.row_order]
    assert (np.diff(dom) >= 0).all()  # grouped by dominant topic
    hm.click_row(5)
    assert window.controller.current == indexed.an.relpaths[int(hm.row_order[5])]
    assert hm.marker.isVisible() and hm.marker.value() == pytest.approx(5.5)
    hm.set_mode("groups", "artist")
    arts = indexed.an.label_column("artist")
    for i, name in enumerate(hm.group_names):
        rows = [j for j, a in enumerate(arts) if a == name]
        np.testing.assert_allclose(hm.image_data()[i], mix[rows].mean(0), atol=1e-6)
    hm.click_row(0)
    assert window.gallery.filter.text() == hm.group_names[0]
    assert window.tabs.currentWidget() is window.gallery


def test_heatmap_handles_thousands_of_rows(qtbot, window):
    """The whole collection is one image: a synthetic 20,000-row analysis is drawn in full."""
    from types import SimpleNamespace

    from artstyle_gui.app.views.heatmap import HeatmapView

    rng = np.random.default_rng(0)
    n, k = 20000, 12
    mix = rng.dirichlet(np.full(k, 0.3), n).astype(np.float32)
    an = SimpleNamespace(n=n, relpaths=[f"f/{i:05d}.jpg" for i in range(n)],
                         labels=[{"artist": f"A{i % 300}"} for i in range(n)],
                         topics=SimpleNamespace(k=k, mixtures=mix))
    an.dominant_topics = lambda: mix.argmax(1)
    an.label_column = lambda col: [lab.get(col, "") for lab in an.labels]
    an.row_of = lambda rel: int(rel[2:7])
    hm = HeatmapView(window.controller)
    qtbot.addWidget(hm)
    hm.set_analysis(an)
    assert hm.image_data().shape == (n, k)
    np.testing.assert_array_equal(hm.image_data(), mix[hm.row_order])
    hm.set_mode("label", "artist")
    assert hm.image_data().shape == (n, k)
    hm.set_mode("groups", "artist")
    assert hm.image_data().shape == (300, k)


def test_export_writes_parseable_csv(window, indexed, qtbot, tmp_path):
    c = window.controller
    c.rename_topic(0, "Warm dots")
    out = tmp_path / "export"
    with qtbot.waitSignal(window.exported, timeout=60000) as sig:
        window.export(out)
    names = sorted(p.name for p in sig.args[0])
    assert names == ["artists.csv", "paintings.csv", "provenance.json", "topics.csv"]
    with open(out / "paintings.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == indexed.an.n
    assert {r["path"] for r in rows} == set(indexed.an.relpaths)
    with open(out / "topics.csv", newline="", encoding="utf-8") as fh:
        topics = list(csv.DictReader(fh))
    assert len(topics) == indexed.an.topics.k and topics[0]["name"] == "Warm dots"
    with open(out / "artists.csv", newline="", encoding="utf-8") as fh:
        assert {r["artist"] for r in csv.DictReader(fh)} == set(indexed.an.label_column("artist"))
    assert "Wrote" in window.statusBar().currentMessage()


def drop(win, path: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    ev = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                    Qt.KeyboardModifier.NoModifier)
    win.dropEvent(ev)


def test_drop_external_image_lists_neighbours(window, indexed, qtbot, tmp_path):
    c = window.controller
    ext = tmp_path / "outside" / "query.png"
    ext.parent.mkdir()
    make_painting("stripes", 999, (128, 104)).save(ext)
    with qtbot.waitSignal(window.detail.external_query_finished, timeout=60000):
        drop(window, ext)
    ref = indexed.reference()
    expected = [n.relpath for n in ref.similar_to_file(ext, 12)]
    ref.close()
    assert window.detail.neighbour_relpaths() == expected
    assert window.detail.external == str(ext)
    assert sum(p.startswith("stripes/") for p in expected[:4]) >= 3  # a stripes query finds stripes
    assert window.gallery.model.total == 32  # not added to the collection
    # an image inside the collection is selected rather than searched for
    inside = indexed.root / indexed.an.relpaths[2]
    drop(window, inside)
    assert c.current == indexed.an.relpaths[2] and window.detail.external is None


def test_drop_folder_opens_it(window, indexed, qtbot, tmp_path):
    from synth import make_collection

    other = tmp_path / "other"
    make_collection(other, n_per_style=1, size=(96, 80))
    c = window.controller
    with qtbot.waitSignal(c.job_finished, timeout=120000):
        drop(window, other)
    assert c.collection.root == other.resolve()
    assert window.gallery.model.total == 4
    assert "other" in window.windowTitle()


def test_blend_change_reranks_without_extraction(window, indexed, qtbot):
    c = window.controller
    rel = indexed.an.relpaths[10]
    select_in_gallery(window, rel)
    stages = []
    c.progress_changed.connect(lambda p, *_: stages.append(p.stage if p else None))
    new = replace(c.settings, blend={"deep": 0.0, "texture": 0.0, "colour": 1.0})
    with qtbot.waitSignal(c.job_finished, timeout=60000):
        assert c.indexing.apply_settings(new) == "blend"
    assert "extract" not in stages
    ref = indexed.reference()
    ref.set_blend({"deep": 0.0, "texture": 0.0, "colour": 1.0})
    expected = [n.relpath for n in ref.similar(ref.analysis.row_of(rel), 12)]
    ref.close()
    assert window.detail.neighbour_relpaths() == expected
    assert all(cd.shares["colour"] == pytest.approx(1.0) for cd in window.detail.strip.card_model.cards
               if cd.score > 0)


def test_refit_topics_with_fixed_k(window, qtbot):
    c = window.controller
    tb = window.topics
    tb.auto_k.setChecked(False)
    tb.k_spin.setValue(3)
    stages = []
    c.progress_changed.connect(lambda p, *_: stages.append(p.stage if p else None))
    with qtbot.waitSignal(c.job_finished, timeout=120000):
        tb.refit.click()
    assert "extract" not in stages
    assert c.analysis.topics.k == 3
    assert window.heatmap.image_data().shape[1] == 3
    assert tb.list.count() == 3
    assert len(window.detail.chart.heights()) in (0, 3)


def test_state_is_remembered(window, qtbot):
    from artstyle_gui.app import prefs
    from artstyle_gui.app.controller import Controller
    from artstyle_gui.app.main_window import MainWindow

    window.gallery.size_slider.setValue(224)
    window.gallery.set_sort_key("artist")
    window.tabs.setCurrentIndex(1)
    window.save_state()
    assert prefs.thumb_size() == 224
    assert prefs.recent_folders()[0] == str(window.controller.collection.root)
    w2 = MainWindow(Controller(prefs.load_engine_settings()))
    qtbot.addWidget(w2)
    assert w2.gallery.delegate.thumb == 224
    assert w2.gallery.sort.currentData() == "artist"
    assert w2.tabs.currentIndex() == 1
    w2.shutdown()


def test_keyboard_navigation_zoom_and_full_screen(window, indexed, qtbot):
    from PySide6.QtTest import QTest

    from artstyle_gui.app.views.detail import ZoomDialog

    c = window.controller
    view = window.gallery.view
    first = window.gallery.model.relpath_at(0)
    select_in_gallery(window, first)
    view.setFocus()
    QTest.keyClick(view, Qt.Key.Key_Right)
    assert c.current == window.gallery.model.relpath_at(1)
    qtbot.waitUntil(lambda: window.detail.preview.pixmap() is not None, timeout=20000)
    window.detail.open_zoom()
    dlg = window.findChild(ZoomDialog)
    assert dlg is not None and dlg.isVisible()
    dlg.close()
    window.act_fullscreen.trigger()
    assert window.isFullScreen()
    window.act_fullscreen.trigger()
    assert not window.isFullScreen()


def test_settings_dialog_round_trip_and_analysis_refit(window, qtbot):
    from artstyle_gui.app.dialogs.settings import SettingsDialog

    c = window.controller
    dlg = SettingsDialog(c.settings, 192, window)
    qtbot.addWidget(dlg)
    dlg.pca.setValue(16)
    dlg.auto_k.setChecked(False)
    dlg.k.setValue(4)
    dlg.blend["texture"].setValue(0.0)
    s, thumb = dlg.values()
    assert (s.deep_components, s.k, s.blend["texture"], thumb) == (16, 4, 0.0, 192)
    assert s.backbone == c.settings.backbone and s.metric == c.settings.metric
    stages = []
    c.progress_changed.connect(lambda p, *_: stages.append(p.stage if p else None))
    with qtbot.waitSignal(c.job_finished, timeout=120000) as sig:
        assert c.indexing.apply_settings(s) == "analyse"
    assert sig.args == ["analyse", "ok"] and "extract" not in stages
    assert c.analysis.parts["deep"].shape[1] == 16 and c.analysis.topics.k == 4
    assert c.analysis.weights["texture"] == 0.0
    bad = SettingsDialog(c.settings, 160, window)
    qtbot.addWidget(bad)
    for sb in bad.blend.values():
        sb.setValue(0.0)
    bad.accept()  # refused inline: all weights zero
    assert bad.error.isVisibleTo(bad) and bad.result() == 0


def test_settings_dialog_offers_fine_tuned_backbones(window, qtbot):
    """A backbone saved by `artstyle finetune` is a choice of its own: it sets the base backbone and
    its weights file; going back to a built-in clears the file."""
    import json

    from artstyle_gui.app.dialogs.settings import TUNED_PREFIX, SettingsDialog
    from artstyle_gui.core.learn.finetune import finetuned_dir

    d = finetuned_dir()
    d.mkdir(parents=True)
    (d / "wiki-style.pt").write_bytes(b"weights")
    (d / "wiki-style.json").write_text(json.dumps({
        "kind": "artstyle-finetuned-backbone", "backbone": "effnet-lite0", "created": "2026-11-23",
        "config": {"label": "style"}, "figures": {"k": 10, "base_heldout_p10": 0.3, "heldout_p10": 0.41}}))
    (d / "orphan.json").write_text("{}")  # no weights file: not offered
    dlg = SettingsDialog(window.controller.settings, 192, window)
    qtbot.addWidget(dlg)
    texts = [dlg.backbone.itemText(i) for i in range(dlg.backbone.count())]
    tuned = [t for t in texts if "fine-tuned" in t]
    assert len(tuned) == 1 and tuned[0].startswith("wiki-style") and "'style'" in tuned[0] and "0.41" in tuned[0]
    i = dlg.backbone.findData(TUNED_PREFIX + str(d / "wiki-style.pt"))
    dlg.backbone.setCurrentIndex(i)
    dlg.backbone.activated.emit(i)
    s, _ = dlg.values()
    assert (s.backbone, s.weights_file) == ("effnet-lite0", str(d / "wiki-style.pt"))
    again = SettingsDialog(s, 192, window)  # reopened: the fine-tuned entry is the current one
    qtbot.addWidget(again)
    assert again.backbone.currentIndex() == i
    j = again.backbone.findData("effnet-lite0")
    again.backbone.setCurrentIndex(j)
    again.backbone.activated.emit(j)
    s2, _ = again.values()
    assert (s2.backbone, s2.weights_file) == ("effnet-lite0", None)


def test_settings_are_remembered_in_the_index(window, indexed, qtbot):
    """Like the CLI, the app keeps a collection's settings in its index and uses them on reopening."""
    import json

    from artstyle_gui.app.controller import Controller
    from artstyle_gui.core.model import Settings

    c = window.controller
    index = c.collection.index_dir
    with qtbot.waitSignal(c.job_finished, timeout=120000):
        c.indexing.refit_topics(3)
    assert json.loads(c.collection.store.get_meta("settings"))["k"] == 3
    window.shutdown()
    c2 = Controller(Settings())  # app defaults differ (auto K)...
    with qtbot.waitSignal(c2.job_finished, timeout=120000):
        c2.open_folder(indexed.root, index_dir=index)
    assert c2.settings.k == 3 and c2.analysis.topics.k == 3  # ...but the collection's own settings win
    c2.shutdown()


def test_a_registered_backbone_is_offered_in_settings(window):
    """Adding a backbone is one file and one registration line (tests/toy_backbone.py): the settings
    dialog offers it and returns it."""
    from artstyle_gui.app.dialogs.settings import SettingsDialog
    from artstyle_gui.core.ingest.backbones import REGISTRY, register
    from toy_backbone import TOY

    register(TOY)
    try:
        dlg = SettingsDialog(window.controller.settings, 192, window)
        names = [dlg.backbone.itemData(i) for i in range(dlg.backbone.count())]
        assert TOY.name in names and set(REGISTRY) <= set(names)
        dlg.backbone.setCurrentIndex(names.index(TOY.name))
        assert dlg.values()[0].backbone == TOY.name
        dlg.deleteLater()
    finally:
        REGISTRY.pop(TOY.name, None)


def test_a_registered_part_gets_a_blend_slider_and_a_colour(window):
    """Adding a descriptor part is one file and one registration line (tests/toy_part.py): the settings
    dialog gives it a blend slider (at weight 0, a new part's), the strips a colour."""
    from artstyle_gui.app.dialogs.settings import SettingsDialog
    from artstyle_gui.app.widgets.colors import PART_COLOURS
    from artstyle_gui.core.analysis.parts import PART_REGISTRY, register_part
    from toy_part import TOY_PART

    register_part(TOY_PART)
    try:
        dlg = SettingsDialog(window.controller.settings, 192, window)
        assert TOY_PART.name in dlg.blend and dlg.blend[TOY_PART.name].value() == 0.0
        dlg.blend[TOY_PART.name].setValue(0.5)
        assert dlg.values()[0].blend[TOY_PART.name] == 0.5
        assert PART_COLOURS[TOY_PART.name].name() == TOY_PART.colour
        dlg.deleteLater()
    finally:
        PART_REGISTRY.pop(TOY_PART.name, None)


def test_the_network_device_is_this_computers_choice(window, indexed, qtbot):
    """Settings > Run the network on: kept by the app for this computer, applied without a job, never
    saved into the index (an index opened on a machine without that GPU must still work)."""
    from artstyle_gui.app.dialogs.settings import SettingsDialog

    c = window.controller
    dlg = SettingsDialog(c.settings, 192, window)
    qtbot.addWidget(dlg)
    assert dlg.device.currentData() == "auto"
    dlg.device.setCurrentIndex(dlg.device.findData("cpu"))
    s, _ = dlg.values()
    assert s.device == "cpu"
    assert c.indexing.apply_settings(s) == "none" and not c.busy
    assert c.settings.device == "cpu" and c.collection.settings.device == "cpu"
    c.collection.files.save_settings()
    assert c.collection.files.saved_settings().device == "auto"
