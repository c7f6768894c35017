"""The window at its smallest supported size (1024x700) and the detail panel's layout (issue 16)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QRect, QSize
from PySide6.QtWidgets import QApplication, QWidget

SMALLEST = QSize(1024, 700)


def _at(window, qtbot, size: QSize = SMALLEST, relpath: str | None = None):
    """The window resized to ``size`` with a painting selected and the layouts settled."""
    c = window.controller
    c.select(relpath or c.analysis.relpaths[5])
    window.resize(size)
    for _ in range(3):
        QApplication.processEvents()
    qtbot.wait(50)
    return window


def _visible_leaves(panel) -> list[QWidget]:
    """The visible widgets in the detail panel's column (its direct children: labels, preview, the
    neighbour grid, the chart, the steering section)."""
    return [w for w in panel.body.findChildren(QWidget, options=_direct()) if w.isVisible()]


def _direct():
    from PySide6.QtCore import Qt

    return Qt.FindChildOption.FindDirectChildrenOnly


def _rect_in(panel, w: QWidget) -> QRect:
    return QRect(w.mapTo(panel, QPoint(0, 0)), w.size())


def test_window_fits_1024x700(window, qtbot):
    msh = window.minimumSizeHint()
    assert msh.width() <= SMALLEST.width() and msh.height() <= SMALLEST.height(), msh
    _at(window, qtbot)
    assert window.size() == SMALLEST
    assert window.detail.width() >= 240


@pytest.mark.parametrize("size", [SMALLEST, QSize(1920, 1080)])
def test_detail_widgets_never_overlap(window, qtbot, size):
    _at(window, qtbot, size)
    panel = window.detail
    for expanded in (False, True):
        panel.steer.set_expanded(expanded)
        QApplication.processEvents()
        widgets = _visible_leaves(panel)
        names = {type(w).__name__ for w in widgets}
        assert {"PreviewWidget", "ThumbStrip", "MixtureChart", "SteerPanel"} <= names
        rects = [(w, _rect_in(panel, w)) for w in widgets]
        for i, (a, ra) in enumerate(rects):
            assert ra.width() > 0 and ra.height() > 0, a
            assert ra.right() <= panel.scroll.viewport().width(), (a, ra, panel.body.geometry(), size)  # nothing cut at the right
            for b, rb in rects[i + 1:]:
                assert not ra.intersects(rb), (type(a).__name__, ra, type(b).__name__, rb)
        # the fixed order: preview, title, metadata, neighbours, chart, "More like this, but…"
        order = [panel.preview, panel.title, panel.meta, panel.strip, panel.chart, panel.steer]
        tops = [_rect_in(panel, w).top() for w in order]
        assert tops == sorted(tops)


def test_expanding_more_like_this_keeps_the_window_size(window, qtbot):
    _at(window, qtbot)
    panel = window.detail
    divider = window.splitter.sizes()
    for on in (True, False, True, False):
        panel.steer.toggle.setChecked(on)
        for _ in range(3):
            QApplication.processEvents()
        assert panel.steer.body.isVisible() == on
        assert window.size() == SMALLEST
        assert window.splitter.sizes() == divider


def test_divider_stays_when_texts_change(window, qtbot):
    _at(window, qtbot)
    divider = window.splitter.sizes()
    panel = window.detail
    panel.title.setText("A very long title " * 20)
    panel.neigh_label.setText("More like this, but… " + "Topic 1 ↑, " * 30)
    panel.steer.state.setText("active: " + "Topic 2 ↓, " * 30)
    for _ in range(3):
        QApplication.processEvents()
    assert window.splitter.sizes() == divider
    assert window.size() == SMALLEST


def test_eight_neighbours_visible_without_scrolling(window, qtbot):
    _at(window, qtbot)
    panel = window.detail
    strip = panel.strip
    cards = strip.card_model.cards
    assert len(cards) >= 8
    assert all(c.subtitle for c in cards)  # artist / style from the labels
    assert all(c.score_text in ("very close", "close", "related", "distant") for c in cards)
    assert all("0 (nothing in common) to 1" in c.score_tip for c in cards)
    assert panel.scroll.verticalScrollBar().value() == 0
    view = QRect(QPoint(0, 0), panel.scroll.viewport().size())
    seen = 0
    for i in range(len(cards)):
        r = strip.visualRect(strip.card_model.index(i))
        if r.isEmpty():
            continue
        in_vp = QRect(strip.viewport().mapTo(panel.scroll.viewport(), r.topLeft()), r.size())
        if view.contains(in_vp) and strip.viewport().rect().contains(r):
            seen += 1
    assert seen >= 8, (seen, strip.size(), panel.scroll.viewport().size())


def test_similarity_words():
    from artstyle_gui.app.views.detail import similarity_words

    assert similarity_words(0.62)[0] == "very close"
    assert similarity_words(0.35)[0] == "close"
    assert similarity_words(0.20)[0] == "related"
    assert similarity_words(0.05)[0] == "distant"
    assert similarity_words(-0.8, "euclidean")[0] == "very close"  # |a-b|² = 0.8: cosine 0.6
    assert similarity_words(-1.4, "euclidean")[0] == "close"  # cosine 0.3


def test_only_the_known_fields_show_until_more_details(window, indexed):
    """Title/artist/style/year/genre by default; raw columns (Md5, Width, bounding boxes...) only under
    "More details"."""
    from types import SimpleNamespace

    d = window.detail
    rel = indexed.an.relpaths[0]
    rec = SimpleNamespace(labels={"style": "Baroque", "artist": "Someone", "md5": "0f1e2d",
                                  "content_bbox_x0_y0_x1_y1": "0 0 10 10", "source_commit": "abc123"},
                          width=100, height=80)
    d.more_details = False
    text = d._meta_html(rel, rec)
    assert "Baroque" in text and "Someone" in text and "More details (3)" in text
    assert "0f1e2d" not in text and "abc123" not in text and "Md5" not in text
    d.more_details = True
    text = d._meta_html(rel, rec)
    assert "0f1e2d" in text and "abc123" in text and "Fewer details" in text
    d.more_details = False
