"""The detail panel: preview, metadata, nearest neighbours ("why similar") and the topic mixture."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEvent, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import (QDialog, QFrame, QGraphicsItem, QGraphicsPixmapItem, QGraphicsScene, QGraphicsView,
                               QHBoxLayout, QLabel, QScrollArea, QSizePolicy, QToolButton, QVBoxLayout, QWidget)

import pyqtgraph as pg  # after PySide6

from ...core import search
from ...core.explore.summaries import display_fields
from ...core.analysis.parts import PART_NAMES, PARTS
from ..controller import NEIGHBOURS
from ..jobs import Job, step
from ..widgets.captions import caption_of
from ..widgets.colors import PART_COLOURS, plot_colors, topic_color
from ..widgets.steer import SteerPanel
from ..widgets.thumbnails import ThumbnailLoader
from ..widgets.thumbstrip import NEIGHBOURS_THUMB, Card, ThumbStrip

#: the detail panel's narrowest width (px); its height has no minimum (it scrolls)
MIN_WIDTH = 240
#: the preview's largest preferred height (px): it grows up to this as the view has room
PREVIEW_MAX_H = 560


class PreviewWidget(QWidget):
    """Paints an image scaled to fit (never upscaled beyond 2x); double-click emits ``zoom_requested``.

    Signals:
        zoom_requested(): the user double-clicked the preview.
    """

    zoom_requested = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._pm: QPixmap | None = None
        self._scaled: QPixmap | None = None
        self._placeholder = "No painting selected"
        self._preferred_h = 320
        self.setMinimumSize(160, 150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setToolTip("Double-click to zoom")

    def set_pixmap(self, pm: QPixmap | None, placeholder: str = "") -> None:
        self._pm = pm
        self._scaled = None
        if placeholder:
            self._placeholder = placeholder
        self.update()

    def pixmap(self) -> QPixmap | None:
        return self._pm

    def set_preferred_height(self, h: int) -> None:
        """The height the detail panel would like (what is left of its view once the metadata and the
        neighbours fit); the widget is at least its minimum height."""
        if abs(h - self._preferred_h) > 2:
            self._preferred_h = h
            self.updateGeometry()

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(360, max(self.minimumHeight(), self._preferred_h))

    def paintEvent(self, _ev) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        if self._pm is None or self._pm.isNull():
            c = QColor(self.palette().color(QPalette.ColorRole.Text))
            c.setAlpha(110)
            p.setPen(c)
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._placeholder)
            return
        dpr = self.devicePixelRatioF()
        box = self.size()
        s = self._pm.size()
        fit = s.scaled(box, Qt.AspectRatioMode.KeepAspectRatio)
        if fit.width() > 2 * s.width() / dpr:
            fit = QSize(int(2 * s.width() / dpr), int(2 * s.height() / dpr))
        if self._scaled is None or self._scaled.size() != fit * dpr:
            self._scaled = self._pm.scaled(fit * dpr, Qt.AspectRatioMode.KeepAspectRatio,
                                           Qt.TransformationMode.SmoothTransformation)
            self._scaled.setDevicePixelRatio(dpr)
        r = QRect(0, 0, fit.width(), fit.height())
        r.moveCenter(self.rect().center())
        p.drawPixmap(r.topLeft(), self._scaled)

    def mouseDoubleClickEvent(self, ev) -> None:  # noqa: N802
        if self._pm is not None:
            self.zoom_requested.emit()


class ZoomView(QGraphicsView):
    """Full-resolution viewer: wheel zooms around the cursor, drag pans, 0 fits, 1 is 100 %."""

    def __init__(self, pm: QPixmap, parent=None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.item = QGraphicsPixmapItem(pm)
        self.item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.scene().addItem(self.item)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setBackgroundBrush(QColor(30, 30, 30))

    def fit(self) -> None:
        self.fitInView(self.item, Qt.AspectRatioMode.KeepAspectRatio)

    def wheelEvent(self, ev) -> None:  # noqa: N802
        f = 1.25 if ev.angleDelta().y() > 0 else 0.8
        self.scale(f, f)

    def keyPressEvent(self, ev) -> None:  # noqa: N802
        if ev.key() == Qt.Key.Key_0:
            self.fit()
        elif ev.key() == Qt.Key.Key_1:
            self.resetTransform()
        else:
            super().keyPressEvent(ev)


class ZoomDialog(QDialog):
    def __init__(self, pm: QPixmap, title: str, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.view = ZoomView(pm, self)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.view)
        self.resize(1100, 800)

    def showEvent(self, ev) -> None:  # noqa: N802
        super().showEvent(ev)
        self.view.fit()


class MixtureChart(pg.PlotWidget):
    """The selected painting's topic mixture: ONE BarGraphItem updated in place with setOpts.

    Signals:
        topic_clicked(int): 0-based topic of the clicked bar.
    """

    topic_clicked = Signal(int)

    def __init__(self, parent=None) -> None:
        bg, fg = plot_colors()
        super().__init__(parent, background=bg)
        self.k = 0
        self.names: list[str] = []
        self._style = None  # (brushes, pens) for the current K
        self._ymax = None
        self.bars = pg.BarGraphItem(x=np.zeros(0), height=np.zeros(0), width=0.8)
        self.addItem(self.bars)
        pi = self.getPlotItem()
        pi.hideButtons()
        pi.setMenuEnabled(False)
        pi.setMouseEnabled(False, False)
        pi.showGrid(x=False, y=True, alpha=0.25)
        for ax in ("left", "bottom"):
            pi.getAxis(ax).setPen(fg)
            pi.getAxis(ax).setTextPen(fg)
        pi.getAxis("left").setWidth(34)
        pi.setLabel("bottom", "topic")
        for ax in ("left", "bottom"):  # a click repaints the bars over the grid: the axes (tick text,
            # grid) are blitted from a pixmap instead of replayed (3 QPicture replays took ~5 ms a click)
            pi.getAxis(ax).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.setMinimumHeight(120)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.scene().sigMouseClicked.connect(self._on_scene_clicked)
        self.scene().sigMouseMoved.connect(self._on_scene_mouse_moved)

    def set_mixture(self, mix: np.ndarray | None, names: list[str] | None = None) -> None:
        if mix is None or len(mix) == 0:
            self.k = 0
            self.bars.hide()  # (an empty pens list trips pyqtgraph 0.14; hiding is enough)
            self.hide()
            return
        self.show()
        mix = np.asarray(mix, np.float64)
        k = len(mix)
        self.names = names or [f"Topic {t + 1}" for t in range(k)]
        pi = self.getPlotItem()
        # A click must repaint fast (docs/benchmarks.md: click to panel): the axes are redrawn only
        # when K or the y scale changes, so the y range snaps to a few levels instead of following
        # every painting's largest share, and brushes are made once per K.
        if k != self.k or self._style is None:
            cols = [topic_color(t) for t in range(k)]
            self._style = ([pg.mkBrush(c) for c in cols], [pg.mkPen(c.darker(130)) for c in cols])
            pi.setXRange(0.4, k + 0.6, padding=0)
            step = 1 if k <= 20 else 5 if k <= 60 else 10
            pi.getAxis("bottom").setTicks([[(t, str(t)) for t in range(1, k + 1) if t == 1 or t % step == 0]])
        self.k = k
        top = float(mix.max())
        ymax = next(y for y in (0.1, 0.25, 0.5, 1.0) if top <= y * 0.96 or y == 1.0) * 1.04
        if ymax != self._ymax:
            self._ymax = ymax
            pi.setYRange(0, ymax, padding=0)
        self.bars.setOpts(x=np.arange(1, k + 1), height=mix, width=0.8, brushes=self._style[0], pens=self._style[1])
        self.bars.show()

    def heights(self) -> np.ndarray:
        if self.k == 0:
            return np.zeros(0)
        return np.asarray(self.bars.opts.get("height"), np.float64)

    def _topic_at(self, scene_pos) -> int | None:
        if self.k == 0:
            return None
        vb = self.getPlotItem().vb
        if not vb.sceneBoundingRect().contains(scene_pos):
            return None
        x = vb.mapSceneToView(scene_pos).x()
        t = int(round(x))
        if 1 <= t <= self.k and abs(x - t) <= 0.45:
            return t - 1
        return None

    def _on_scene_clicked(self, ev) -> None:
        t = self._topic_at(ev.scenePos())
        if t is not None:
            self.topic_clicked.emit(t)

    def _on_scene_mouse_moved(self, pos) -> None:
        t = self._topic_at(pos)
        if t is None:
            self.setToolTip("")
        else:
            h = self.heights()[t]
            self.setToolTip(f"{self.names[t]}: {h:.1%} of this painting — click to open the topic")


def _section(text: str) -> QLabel:
    lab = QLabel(text)
    f = lab.font()
    f.setBold(True)
    lab.setFont(f)
    _wrapping(lab)
    return lab


def _wrapping(lab: QLabel) -> QLabel:
    """A label that wraps to the panel's width and never widens the panel (a long title, file path or
    steering description would otherwise push the gallery/detail divider)."""
    lab.setWordWrap(True)
    lab.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    lab.setMinimumWidth(60)
    return lab


#: Plain words for a neighbour's similarity, the cosine similarity of the blended descriptors (1: the
#: same look, 0: nothing in common; the steered score is on the same 0..1 scale). Thresholds chosen by
#: eye: on the bundled samples the neighbours within one style score about 0.3 to 0.5, and the issue's
#: "0.20" was an ordinary neighbour on wikiart7-dev; below 0.15 little is shared.
SIMILARITY_WORDS = ((0.5, "very close"), (0.3, "close"), (0.15, "related"))  # short: they fit a narrow card
LEAST_SIMILAR_WORD = "distant"


def similarity_words(score: float, metric: str = "cosine") -> tuple[str, str]:
    """(word, tooltip) for a neighbour's score; ``euclidean`` scores (-squared distance of unit
    vectors) are turned back into the cosine similarity first."""
    sim = 1.0 + score / 2.0 if metric == "euclidean" else score
    word = next((w for t, w in SIMILARITY_WORDS if sim >= t), LEAST_SIMILAR_WORD)
    scale = ", ".join(f"{w} from {t:.2f}" for t, w in SIMILARITY_WORDS)
    return word, (f"similarity {sim:.2f} on a scale from 0 (nothing in common) to 1 (the same look): "
                  f"{scale}, else {LEAST_SIMILAR_WORD}")


class DetailPanel(QWidget):
    """Everything about the selected painting (or an external query image).

    Signals:
        topic_requested(int): open this topic in the topic browser (a bar was clicked).
        zoom_requested(): handled here; exposed for the window's menu.
    """

    topic_requested = Signal(int)
    external_query_finished = Signal(str, list)  # an outside image and its [Neighbour]

    def __init__(self, controller, loader: ThumbnailLoader, back_action=None, forward_action=None,
                 parent=None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.loader = loader
        self.shown_path: str | None = None  # absolute path of the previewed image
        self.external: str | None = None
        self.neighbours: list = []

        self.title = QLabel("")
        f = self.title.font()
        f.setPointSizeF(f.pointSizeF() * 1.3)
        f.setBold(True)
        self.title.setFont(f)
        _wrapping(self.title)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        head = QHBoxLayout()
        head.setSpacing(2)
        head.addWidget(self.title, 1)
        for act in (back_action, forward_action):
            if act is not None:
                b = QToolButton()
                b.setDefaultAction(act)
                b.setAutoRaise(True)
                head.addWidget(b, 0, Qt.AlignmentFlag.AlignTop)

        self.preview = PreviewWidget()
        self.meta = _wrapping(QLabel())
        self.meta.setTextFormat(Qt.TextFormat.RichText)
        self.meta.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                          | Qt.TextInteractionFlag.LinksAccessibleByMouse)
        self.more_details = False  # the labels' other columns (Md5, Width, ...): shown on request
        self.meta.linkActivated.connect(self._on_meta_link_activated)
        self.meta.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)

        self.neigh_label = _section("Most similar")
        self.neigh_label.setTextFormat(Qt.TextFormat.PlainText)  # may hold a user's topic names
        self.legend = _wrapping(QLabel("Why similar: " + "  ".join(
            f'<span style="color:{PART_COLOURS[p].name()}">■</span>&nbsp;{PART_NAMES[p]}' for p in PARTS)))
        lf = self.legend.font()
        lf.setPointSizeF(lf.pointSizeF() * 0.9)
        self.legend.setFont(lf)
        self.legend.setToolTip("The bar under each neighbour shows how much of the similarity comes from "
                               "CNN content features, texture (Gram) statistics and colour")
        self.strip = ThumbStrip(loader, thumb=NEIGHBOURS_THUMB, grid=True)  # every neighbour, no scrolling
        self.strip.card_activated.connect(self._on_strip_card_activated)

        self.mix_label = _section("Topic mixture")
        self.chart = MixtureChart()
        self.chart.setFixedHeight(150)
        self.chart.setMinimumWidth(120)
        self.chart.topic_clicked.connect(self.topic_requested)
        self.steer = SteerPanel(controller)
        self.steer.changed.connect(self._on_steer_changed)

        # One column in a fixed order inside a scroll area: the panel's minimum size never depends on
        # its content, so a long title, a label text that changes while indexing or the "More like
        # this, but…" section opening neither moves the gallery/detail divider nor resizes the window.
        self.body = QWidget()
        self.body.setObjectName("detail_body")
        lay = QVBoxLayout(self.body)
        lay.setContentsMargins(10, 8, 10, 8)
        lay.setSpacing(6)
        lay.addWidget(self.preview, 1)
        lay.addLayout(head)
        lay.addWidget(self.meta)
        lay.addWidget(self.neigh_label)
        lay.addWidget(self.legend)
        lay.addWidget(self.strip)
        lay.addWidget(self.mix_label)
        lay.addWidget(self.chart)
        lay.addWidget(self.steer)
        self.scroll = QScrollArea()
        self.scroll.setWidget(self.body)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.scroll)
        self.setMinimumWidth(MIN_WIDTH)
        self._above_neighbours = (head, self.meta, self.neigh_label, self.legend, self.strip)
        self.scroll.viewport().installEventFilter(self)

        self.preview.zoom_requested.connect(self.open_zoom)
        loader.preview_ready.connect(self._on_loader_preview_ready)
        loader.thumbnail_ready.connect(self._on_loader_thumbnail_ready)
        controller.selection_changed.connect(self._on_controller_selection_changed)
        controller.analysis_changed.connect(self._on_controller_analysis_changed)
        self.external_query_finished.connect(self.show_external)
        self.show_painting(None)

    # ---------------------------------------------------------------- content
    def show_painting(self, relpath: str | None) -> None:
        c = self.controller
        self.external = None
        if relpath is None or c.collection is None:
            self.title.setText("No painting selected")
            self.meta.setText("Click a painting in the gallery, or drop an image file here to find similar "
                              "paintings." if c.collection is not None else "Open a folder of paintings "
                              "(File > Open Folder, or drop a folder on the window).")
            self._set_preview(None)
            self.strip.set_cards([])
            self.chart.set_mixture(None)
            self.steer.set_topics(0, "select a painting")
            self.neighbours = []
            return
        rec = c.record(relpath)
        labels = rec.labels if rec else {}
        self.title.setText(html.escape(caption_of(relpath, labels)))
        self._set_preview(c.path_of(relpath))
        self.meta.setText(self._meta_html(relpath, rec))
        mix = c.mixture(relpath)
        k = len(mix) if mix is not None else 0
        self.steer.set_topics(k, "" if k else "needs style topics (fitted after indexing)"
                              if c.row_of(relpath) is not None else "needs the painting to be indexed")
        self._show_neighbours(relpath)
        self.chart.set_mixture(mix, [c.topic_name(t) for t in range(k)])
        self.mix_label.setText("Topic mixture — click a bar to open the topic" if mix is not None
                               else "Topic mixture — not fitted yet")

    def show_external(self, path: str, neighbours: list) -> None:
        self.external = path
        self.title.setText(html.escape(f"Similar to {Path(path).name}"))
        self.meta.setText(f"<span>{html.escape(path)}</span><br><i>An image from outside the collection: "
                          "it is not added to the index.</i>")
        self._set_preview(path)
        self.neighbours = list(neighbours)
        self._fill_strip(self.neighbours)
        self.neigh_label.setText(f"Most similar in the collection ({len(neighbours)})")
        self.chart.set_mixture(None)
        self.steer.set_topics(0, "only for paintings in the collection")
        self.mix_label.setText("Topic mixture — only for paintings in the collection")

    def neighbour_relpaths(self) -> list[str]:
        return self.strip.relpaths()

    def open_zoom(self) -> None:
        pm = self.preview.pixmap()
        if pm is None:
            return
        dlg = ZoomDialog(pm, self.title.text(), self.window())
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.show()

    # ---------------------------------------------------------------- layout
    def eventFilter(self, obj, ev) -> bool:  # noqa: N802
        if ev.type() == QEvent.Type.Resize and obj is self.scroll.viewport():
            self._fit_preview()
        return super().eventFilter(obj, ev)

    def _fit_preview(self) -> None:
        """Give the preview what the view has left once the title, the metadata and every neighbour
        fit, so that they show without scrolling; at least the preview's minimum height, at most
        ``PREVIEW_MAX_H`` (the chart and "More like this, but…" follow below, reached by scrolling)."""
        vp = self.scroll.viewport()
        lay = self.body.layout()
        m = lay.contentsMargins()
        inner = vp.width() - m.left() - m.right()
        rest = m.top() + m.bottom() + lay.spacing() * len(self._above_neighbours)
        for item in self._above_neighbours:
            if isinstance(item, QHBoxLayout):
                rest += self.title.heightForWidth(max(1, inner - 60)) if self.title.text() else 0
            elif item.isVisibleTo(self.body):
                rest += item.heightForWidth(inner) if item.hasHeightForWidth() else item.sizeHint().height()
        self.preview.set_preferred_height(min(PREVIEW_MAX_H, vp.height() - rest))

    # ---------------------------------------------------------------- helpers
    def _meta_html(self, relpath: str, rec) -> str:
        """Title / artist / style / year / genre, size, topic and file; the labels' other columns (Md5,
        Width, Source commit, ...) under "More details" (summaries.display_fields decides which are which)."""
        c = self.controller
        known, more = display_fields(dict(rec.labels) if rec else {})
        rows = [(k, v) for k, v in known if k != "Title"]  # the title is the panel's heading
        if rec is not None and rec.width and rec.height:
            rows.append(("Size", f"{rec.width} × {rec.height} px"))
        mix = c.mixture(relpath)
        if mix is not None:
            t = int(np.argmax(mix))
            col = topic_color(t).name()
            rows.append(("Topic", f'<span style="color:{col}">●</span> {html.escape(c.topic_name(t))} '
                                  f"({mix[t]:.0%})"))
        rows.append(("File", html.escape(relpath).replace("/", "/\u200b")))  # may wrap after a folder
        raw = {"Topic", "File"}
        if more and self.more_details:
            rows += [(k, v) for k, v in more]
        cells = "".join(f'<tr><td style="padding-right:10px; color:palette(placeholder-text)">{html.escape(k)}</td>'
                        f"<td>{v if k in raw else html.escape(str(v))}</td></tr>" for k, v in rows)
        link = ""
        if more:
            link = ('<a href="less">Fewer details</a>' if self.more_details
                    else f'<a href="more">More details ({len(more)})</a>')
        return f"<table>{cells}</table>{link}"

    def _on_meta_link_activated(self, which: str) -> None:
        self.more_details = which == "more"
        if self.external is None and self.controller.current is not None:
            self.show_painting(self.controller.current)

    def _show_neighbours(self, relpath: str) -> None:
        """The plain nearest neighbours, or the collection re-ranked by "More like this, but…"."""
        c = self.controller
        steered = self.steer.active() and c.mixture(relpath) is not None
        if steered:
            self.neighbours = self._steered(relpath)
        else:
            self.neighbours = c.neighbours(relpath)
        self._fill_strip(self.neighbours, steered)
        if steered:
            self.neigh_label.setText(f"More like this, but… {self.steer.describe()} ({len(self.neighbours)})")
        elif not self.neighbours:
            self.neigh_label.setText("Most similar — available once the collection is indexed"
                                     if c.row_of(relpath) is None else "Most similar")
        else:
            self.neigh_label.setText(f"Most similar ({len(self.neighbours)})")

    def _steered(self, relpath: str) -> list:
        """"More like this, but...": the shown analysis re-ranked by the steered topic mixture of
        ``relpath`` and its look (a few ms at 10,000 paintings: GUI thread). [] on error (reported)."""
        c = self.controller
        an, row = c.analysis, c.row_of(relpath)
        if an is None or an.topics is None or row is None:
            return []
        try:
            return search.steered_similar(an, row, self.steer.adjust(), k=NEIGHBOURS,
                                          alpha=self.steer.alpha_value(), metric=self.steer.metric_value())
        except Exception as e:  # noqa: BLE001
            c.report(e)
            return []

    def _on_steer_changed(self) -> None:
        if self.external is None and self.controller.current is not None and self.controller.collection is not None:
            self._show_neighbours(self.controller.current)

    def _fill_strip(self, neighbours, steered: bool = False) -> None:
        c = self.controller
        an = c.analysis
        dom = an.dominant_topics() if an is not None else None
        metric = "cosine" if steered or an is None else an.metric
        cards = []
        for nb in neighbours:
            rec = c.record(nb.relpath)
            labels = rec.labels if rec else {}
            cap = caption_of(nb.relpath, labels)
            sub = " · ".join(v for v in (labels.get("artist"), labels.get("style")) if v) or labels.get("year", "")
            topic = int(dom[nb.row]) if dom is not None and nb.row < len(dom) else -1
            word, tip = similarity_words(nb.score, metric)
            if steered:
                tip = "re-ranked by “More like this, but…”: " + tip
            cards.append(Card(nb.relpath, c.path_of(nb.relpath), cap, nb.score, word, dict(nb.shares), topic,
                              subtitle=sub, score_tip=tip))
        self.strip.set_cards(cards)
        self.strip.scrollToTop()
        self._fit_preview()
    def _set_preview(self, path: str | None) -> None:
        self.shown_path = path
        if path is None:
            self.preview.set_pixmap(None, "No painting selected")
            return
        self.preview.set_pixmap(self.loader.pixmap(path), "Loading…")  # thumbnail first, then the large one
        self.loader.request_preview(path)

    def _on_loader_preview_ready(self, path: str, img: QImage) -> None:
        if path == self.shown_path:
            self.preview.set_pixmap(QPixmap.fromImage(img))

    def _on_loader_thumbnail_ready(self, path: str) -> None:
        if path == self.shown_path and self.preview.pixmap() is None:
            self.preview.set_pixmap(self.loader.cached(path))

    def _on_strip_card_activated(self, relpath: str) -> None:
        self.controller.select(relpath)

    def _on_controller_selection_changed(self, relpath) -> None:
        self.show_painting(relpath)

    def _on_controller_analysis_changed(self, _an) -> None:
        if self.external is None:
            self.show_painting(self.controller.current)

    # ---------------------------------------------------------------- search by an outside image
    def query_image(self, path: str | Path) -> None:
        """Find paintings similar to an image outside the collection (not added to the index), in a
        worker; ``external_query_finished`` follows and the panel shows them."""
        c = self.controller
        col = c.need_analysis("searching by image")
        if col is None:
            return
        p = str(path)
        if c.busy:
            c.message_posted.emit(f"Search by {Path(p).name} will run when {c.job_name} has finished")
        c.jobs.start(Job("query", lambda: step(col.similar_to_file, p, NEIGHBOURS),
                         lambda res: self.external_query_finished.emit(p, list(res))))

