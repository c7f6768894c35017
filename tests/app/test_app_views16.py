"""Issue 16 invariants of the heatmap, the map's hover card, trimmed thumbnails and the gallery."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image


def _fake_analysis(labels, k=5, seed=0):
    n = len(labels)
    mix = np.random.default_rng(seed).dirichlet(np.full(k, 0.3), n).astype(np.float32)
    an = SimpleNamespace(n=n, relpaths=[f"f/{i:04d}.jpg" for i in range(n)], labels=labels,
                         topics=SimpleNamespace(k=k, mixtures=mix))
    an.dominant_topics = lambda: mix.argmax(1)
    an.label_column = lambda col: [lab.get(col, "") for lab in an.labels]
    an.row_of = lambda rel: int(rel[2:6])
    return an


def test_group_columns_only_worth_grouping_and_style_first():
    from artstyle_gui.core.explore.summaries import FOLDER, group_columns

    n = 200
    labels = [{"artist": f"A{i % 30}", "style": f"S{i % 7}", "source_repo": "one", "md5": f"{i:032x}",
               "width": str(300 + i), "genre": f"G{i % 3}"} for i in range(n)]
    cols = group_columns(_fake_analysis(labels))
    assert cols[:2] == ["style", "artist"]
    assert "genre" in cols
    assert not {"source_repo", "md5", "width"} & set(cols)
    assert FOLDER not in cols  # every painting is in the one folder "f"
    assert group_columns(_fake_analysis([{} for _ in range(10)])) == [FOLDER]


def test_heatmap_defaults_to_style_and_labels_every_row(qtbot, qapp):
    from artstyle_gui.app.views.heatmap import HeatmapView
    from artstyle_gui.core.explore.summaries import FOLDER

    n = 140
    # 7 styles of very different sizes (1 .. 60 paintings): thin bands still get a label each
    sizes = [60, 1, 30, 2, 25, 1, 21]
    styles = [f"Style {j}" for j, s in enumerate(sizes) for _ in range(s)]
    labels = [{"style": s, "artist": f"A{i % 9}", "source": "x"} for i, s in enumerate(styles)]
    an = _fake_analysis(labels, k=6)
    controller = SimpleNamespace(analysis=None, current=None, topic_name=lambda t: f"Topic {t + 1}",
                                 analysis_changed=_Sig(), selection_changed=_Sig())
    hm = HeatmapView(controller)
    qtbot.addWidget(hm)
    hm.resize(1000, 700)
    hm.show()
    qtbot.waitExposed(hm)
    hm.set_analysis(an)
    assert hm.column == "style"
    assert [hm.column_box.itemData(i) for i in range(hm.column_box.count())][:2] == ["style", "artist"]
    assert FOLDER not in [hm.column_box.itemData(i) for i in range(hm.column_box.count())]
    for mode in ("groups", "label", "topic"):
        hm.set_mode(mode, "style")
        qapp.processEvents()
        ticks = hm.plot.getAxis("left")._tickLevels[0]
        assert len(ticks) == len(hm._groups), mode  # every row / band labelled
        ys = sorted(y for y, _ in ticks)
        if len(ys) > 1:  # labels never drawn over each other
            px = hm.plot.vb.height() / (hm.plot.vb.viewRange()[1][1] - hm.plot.vb.viewRange()[1][0])
            assert min(np.diff(ys)) * px >= 0.99 * hm.fontMetrics().height() * 0.9
    # the combo texts are not cut
    for box in (hm.mode_box, hm.column_box):
        fm = box.fontMetrics()
        widest = max(fm.horizontalAdvance(box.itemText(i)) for i in range(box.count()))
        assert box.width() >= widest + 10
    # the topic strip stays thin, whatever the zoom
    hm.plot.setYRange(0, 5, padding=0)
    qapp.processEvents()
    assert hm.strip_vb.height() <= 16


class _Sig:
    def __init__(self):
        self.slots = []

    def connect(self, f):
        self.slots.append(f)


def test_hover_card_stays_inside_the_view(qtbot):
    from PySide6.QtCore import QPoint, QRect
    from PySide6.QtWidgets import QWidget

    from artstyle_gui.app.widgets.map_items import HoverCard

    host = QWidget()
    qtbot.addWidget(host)
    host.resize(500, 400)
    host.show()
    card = HoverCard(host)
    card.text.setText("<b>A rather long painting title that wraps</b><br>An artist, 1890<br>folder/file_name.jpg")
    card.set_pixmap(None)
    area = QRect(0, 0, 500, 400)
    for at in (QPoint(490, 390), QPoint(5, 5), QPoint(250, 200), QPoint(480, 10), QPoint(10, 395)):
        card.place(at, area)
        card.show()
        g = card.geometry()
        assert area.contains(g), (at, g)
    narrow = QRect(0, 0, 330, 400)
    card.place(QPoint(300, 100), narrow)
    assert narrow.contains(card.geometry())


def _letterboxed(path, w=200, h=200, bar=40):
    rng = np.random.default_rng(1)
    a = np.zeros((h, w, 3), np.uint8)
    a[bar:h - bar] = rng.integers(30, 230, (h - 2 * bar, w, 3), dtype=np.uint8)
    Image.fromarray(a).save(path, quality=95)


def test_thumbnail_is_trimmed_and_original_on_request(qtbot, tmp_path):
    from artstyle_gui.app.prefs import qsettings
    from artstyle_gui.app.widgets import thumbnails as th

    src = tmp_path / "boxed.png"
    _letterboxed(src)
    cache = tmp_path / "cache"
    img, why = th.make_thumbnail(str(src), cache)
    assert why is None
    assert img.width() == 200 and img.height() == 120  # the bars are gone
    orig, _ = th.make_thumbnail(str(src), cache, original=True)
    assert (orig.width(), orig.height()) == (200, 200)
    assert th._cache_file(cache, str(src)) != th._cache_file(cache, str(src), True)
    again, _ = th.make_thumbnail(str(src), cache)  # from the disk cache: still the trimmed one
    assert again.height() == 120

    lo = th.ThumbnailLoader()
    try:
        assert not lo.show_original()
        lo.set_cache_dir(tmp_path / "cache2")
        with qtbot.waitSignal(lo.thumbnail_ready, timeout=20000):
            lo.pixmap(str(src))
        assert lo.cached(str(src)).height() == 120
        with qtbot.waitSignal(lo.thumbnail_ready, timeout=20000):
            lo.set_show_original(True)  # the cached one is decoded again, with its bars
        assert lo.cached(str(src)).height() == 200
        assert qsettings().value(th.SHOW_ORIGINAL_KEY) in (True, "true")
        with qtbot.waitSignal(lo.preview_ready, timeout=20000) as sig:
            lo.request_preview(str(src), 512)
        assert sig.args[1].height() == 200
    finally:
        lo.shutdown()
    assert th.ThumbnailLoader().show_original()  # the pref is read by a new loader


def test_gallery_no_horizontal_scrollbar_and_filter_scrolls_to_top(window, qtbot):
    from PySide6.QtCore import Qt

    g = window.gallery
    assert g.view.horizontalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOff
    g.set_thumb_size(320)
    qtbot.waitUntil(lambda: g.view.verticalScrollBar().maximum() > 0, timeout=5000)
    g.view.verticalScrollBar().setValue(g.view.verticalScrollBar().maximum())
    assert g.view.verticalScrollBar().value() > 0
    g.filter.setText("study")
    g._apply_filter()
    assert g.view.verticalScrollBar().value() == 0
    cap, sub = g.model.cell(0)[1:3]
    assert cap and cap != sub


def test_gallery_caption_of_a_numbered_file():
    from artstyle_gui.app.widgets.captions import cell_texts

    assert cell_texts("x/1694.jpg", {"year": "1694"}) == ("1694.jpg", "1694")
    assert cell_texts("x/1694.jpg", {"artist": "Rembrandt", "style": "Baroque"}) == ("1694.jpg", "Rembrandt · Baroque")
    assert cell_texts("x/a.jpg", {"title": "Night", "artist": "R"}) == ("Night", "R")


@pytest.mark.parametrize("sim,ham,word", [(0.841, 10, "possible duplicate"), (0.99, 2, "same picture")])
def test_duplicate_wording(sim, ham, word):
    from artstyle_gui.app.dialogs.duplicates import group_title

    g = SimpleNamespace(crops=[False, False], size=2, similarity=sim, max_hamming=ham)
    assert word in group_title(0, g)


def test_duplicates_started_while_another_job_runs_say_they_wait(window, qtbot):
    """Started during indexing, the near-duplicates dialog says it waits, then shows its own search."""
    import threading

    from artstyle_gui.app.jobs import Job
    from artstyle_gui.core.progress import Progress

    c = window.controller
    release = threading.Event()

    def busy():  # stands in for a long indexing run
        while not release.wait(0.02):
            yield Progress("extract", 0, 1, "working")
        return None

    c.jobs.start(Job("index", busy))
    qtbot.waitUntil(lambda: c.busy, timeout=5000)
    dlg = window.open_duplicates()
    dlg.find()
    assert dlg.summary.text().startswith("Waiting for indexing to finish")
    release.set()
    qtbot.waitUntil(lambda: not c.busy, timeout=120000)
    assert not dlg.summary.text().startswith(("Waiting", "Searching"))
    dlg.close()
