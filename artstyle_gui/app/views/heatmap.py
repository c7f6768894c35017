"""Topic heatmap: paintings x topics as ONE pyqtgraph ImageItem + ColorBarItem.

Rows can be grouped by dominant topic, by a label column (artist, style, ... or folder) or
listed by file name; a second mode shows groups x topics (mean mixture per artist).  The whole
collection is one image (50,000 x K floats is small), so nothing is truncated; zooming in (wheel /
drag on the y axis) reveals row labels.  Hover shows painting and value; click selects it.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import PurePosixPath

import numpy as np
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

import pyqtgraph as pg  # after PySide6

from ...core.explore.summaries import FOLDER, group_columns, group_values
from ..widgets.captions import caption_of
from ..widgets.colors import HEATMAP_COLORMAP, MARKER_INNER, MARKER_OUTER, plot_colors, topic_rgb

#: the height (px) of the topic colour strip above the columns, whatever the zoom
STRIP_PX = 12
MODES = [("topic", "Paintings by dominant topic"), ("label", "Paintings grouped by"),
         ("name", "Paintings by file name"), ("groups", "Mean mixture per")]


class HeatmapView(QWidget):
    """Signals:
        painting_clicked(str): relpath of the clicked row (paintings modes).
        group_clicked(str, str): column, value of the clicked row (groups mode).
    """

    painting_clicked = Signal(str)
    group_clicked = Signal(str, str)

    def __init__(self, controller, parent=None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.an = None
        self.mode = "topic"
        self.column: str | None = None  # None: the first of group_columns (style / artist first)
        self.row_order = np.zeros(0, np.int64)  # analysis rows in displayed order (paintings modes)
        self.group_names: list[str] = []
        self.group_sizes: list[int] = []
        self._groups: list[tuple[int, int, str]] = []  # (start, end, label) bands for ticks
        self._data = np.zeros((0, 0), np.float32)
        self._rank, self._rank_for = np.zeros(0, np.int64), None
        self._stale = False  # a new analysis is waiting for the tab to be shown (or its data read)

        self.mode_box = QComboBox()
        for key, text in MODES:
            self.mode_box.addItem(text, key)
        self.column_box = QComboBox()
        for box in (self.mode_box, self.column_box):  # never cut a text ("Paintings grouped by")
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
            box.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Fixed)
        self.hover = QLabel(" ")
        self.hover.setTextFormat(Qt.TextFormat.RichText)
        self.hover.setMinimumWidth(120)
        self.hover.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        top = QHBoxLayout()
        top.setContentsMargins(6, 6, 6, 0)
        top.addWidget(QLabel("Show:"))
        top.addWidget(self.mode_box)
        top.addWidget(self.column_box)
        top.addSpacing(12)
        top.addWidget(self.hover, 1)

        bg, fg = plot_colors()
        self.glw = pg.GraphicsLayoutWidget()
        self.glw.setBackground(bg)
        self.plot = self.glw.addPlot(row=0, col=0)
        self.plot.hideButtons()
        self.plot.setMenuEnabled(False)
        self.plot.invertY(True)
        self.plot.setMouseEnabled(x=False, y=True)
        self.plot.vb.setLimits(xMin=-0.5, minYRange=4)
        for ax in ("left", "bottom", "top"):
            self.plot.getAxis(ax).setPen(fg)
            self.plot.getAxis(ax).setTextPen(fg)
        self.plot.showAxis("top")
        self.plot.hideAxis("bottom")
        self.plot.getAxis("left").setWidth(150)
        self.img = pg.ImageItem(axisOrder="row-major")
        self.img.setAutoDownsample(True)
        self.plot.addItem(self.img)
        # the topic colours above the columns: a fixed STRIP_PX high view box in the plot's title row,
        # x-linked to the heatmap, so zooming never swells it
        self.strip_vb = pg.ViewBox(enableMenu=False)
        self.strip_vb.setMouseEnabled(x=False, y=False)
        self.strip_vb.setXLink(self.plot.vb)
        self.strip_vb.setYRange(0, 1, padding=0)
        self.strip_vb.setFixedHeight(STRIP_PX)
        self.plot.layout.removeItem(self.plot.titleLabel)
        self.plot.titleLabel.setVisible(False)
        self.plot.layout.addItem(self.strip_vb, 0, 1)
        self.plot.layout.setRowFixedHeight(0, STRIP_PX)
        self.strip = pg.ImageItem(axisOrder="row-major")
        self.strip_vb.addItem(self.strip)
        self.seps = pg.PlotCurveItem(pen=pg.mkPen(255, 255, 255, 150, width=1), connect="pairs")
        self.plot.addItem(self.seps)
        # the selected row: a light line in a dark outline, a colour no topic and no viridis value has
        self.marker_outline = pg.InfiniteLine(angle=0, movable=False, pen=pg.mkPen(MARKER_OUTER, width=5))
        self.marker = pg.InfiniteLine(angle=0, movable=False, pen=pg.mkPen(MARKER_INNER, width=2))
        for line in (self.marker_outline, self.marker):
            line.setZValue(20)
            line.hide()
            self.plot.addItem(line)
        self.marker.visibleChanged.connect(lambda: self.marker_outline.setVisible(self.marker.isVisible()))
        self.cbar = pg.ColorBarItem(values=(0, 1), colorMap=pg.colormap.get(HEATMAP_COLORMAP), interactive=False,
                                    width=16)
        self.cbar.setImageItem(self.img, insert_in=self.plot)
        cax = self.cbar.getAxis("right")
        cax.enableAutoSIPrefix(False)
        cax.setPen(fg)
        cax.setTextPen(fg)
        cax.setLabel("share of the painting's style", color=fg.name())

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.glw, 1)

        self.mode_box.currentIndexChanged.connect(self._on_mode_changed)
        self.column_box.currentIndexChanged.connect(self._on_mode_changed)
        self.plot.vb.sigYRangeChanged.connect(self._update_ticks)
        self.plot.vb.sigResized.connect(self._update_ticks)  # rows labelled at the final size too
        self.glw.scene().sigMouseMoved.connect(self._on_scene_mouse_moved)
        self.glw.scene().sigMouseClicked.connect(self._on_scene_clicked)
        controller.analysis_changed.connect(self.set_analysis)
        controller.selection_changed.connect(self._on_controller_selection_changed)
        self.set_analysis(controller.analysis)

    # ---------------------------------------------------------------- content
    def set_analysis(self, an) -> None:
        self.an = an
        cols = group_columns(an) if an is not None else [FOLDER]
        cur = self.column
        self.column_box.blockSignals(True)
        self.column_box.clear()
        for c in cols:
            self.column_box.addItem(c, c)
        self.column = cur if cur is not None and cur in cols else cols[0]
        self.column_box.setCurrentIndex(cols.index(self.column))
        self.column_box.blockSignals(False)
        if self.isVisible() or an is None:
            self.rebuild()
        else:  # a hidden tab is rebuilt when shown: adopting an analysis then costs the other views
            self._stale = True  # only (the first image of 10,000 rows took 35-55 ms here)

    def showEvent(self, ev) -> None:  # noqa: N802
        super().showEvent(ev)
        if self._stale:
            self.rebuild()

    def set_mode(self, mode: str, column: str | None = None) -> None:
        if column is not None:
            i = self.column_box.findData(column)
            if i >= 0:
                self.column_box.setCurrentIndex(i)
        self.mode_box.setCurrentIndex(self.mode_box.findData(mode))
        self._on_mode_changed()

    def image_data(self) -> np.ndarray:
        if self._stale:
            self.rebuild()
        return self._data

    def rebuild(self) -> None:
        self._stale = False
        an = self.an
        self.mode = self.mode_box.currentData()
        self.column = self.column_box.currentData() or FOLDER
        self.column_box.setVisible(self.mode in ("label", "groups"))
        self._groups = []
        if an is None or an.topics is None:
            self._data = np.zeros((0, 0), np.float32)
            self.row_order = np.zeros(0, np.int64)
            self.img.clear()
            self.strip.clear()
            self.seps.setData([], [])
            self.marker.hide()
            self.hover.setText("Topics appear here once the collection is indexed.")
            return
        mix = an.topics.mixtures
        k = an.topics.k
        dom = mix.argmax(1)
        pdom = mix[np.arange(an.n), dom]
        if self._rank_for is not an:
            self._rank, self._rank_for = _natural_rank(an.relpaths), an
        names = self._rank
        if self.mode == "groups":
            vals = group_values(an, self.column)
            by: dict[str, list[int]] = defaultdict(list)
            for i, v in enumerate(vals):
                by[v or "(none)"].append(i)
            keys = sorted(by, key=lambda s: (s == "(none)", s.casefold()))
            self.group_names = keys
            self.group_sizes = [len(by[g]) for g in keys]
            self._data = np.stack([mix[by[g]].mean(0) for g in keys]).astype(np.float32)
            self.row_order = np.zeros(0, np.int64)
            self._groups = [(i, i + 1, f"{g} ({len(by[g])})") for i, g in enumerate(keys)]
            self.cbar.getAxis("right").setLabel("average share in the group")
        else:
            if self.mode == "topic":
                order = np.lexsort((names, -pdom, dom))
                bands = dom[order]
                labels = {t: self.controller.topic_name(t) for t in range(k)}
                self._groups = _bands(bands, lambda t: f"{labels[int(t)]} ({int((dom == t).sum())})")
            elif self.mode == "label":
                vals = np.array([v or "\uffff" for v in group_values(an, self.column)], dtype=object)
                uniq = sorted(set(vals.tolist()), key=lambda s: s.casefold())
                rank = {v: i for i, v in enumerate(uniq)}
                g = np.array([rank[v] for v in vals], np.int64)
                order = np.lexsort((names, -pdom, dom, g))
                counts = np.bincount(g, minlength=len(uniq))
                self._groups = _bands(g[order], lambda r: f"{_none(uniq[int(r)])} ({counts[int(r)]})")
            else:
                order = np.argsort(names, kind="stable")
                self._groups = []
            self.row_order = order.astype(np.int64)
            self._data = mix[self.row_order].astype(np.float32)
            self.cbar.getAxis("right").setLabel("share of the painting's style")
        n = self._data.shape[0]
        self.img.setImage(self._data, levels=(0.0, max(1e-6, float(self._data.max()))), autoLevels=False)
        self.img.setRect(QRectF(0, 0, k, n))
        self.cbar.setLevels((0.0, max(1e-6, float(self._data.max()))))
        self.strip.setImage(topic_rgb(k).reshape(1, k, 3), levels=(0, 255))
        self.strip.setRect(QRectF(0, 0, k, 1))
        xs, ys = [], []
        for start, _end, _lab in self._groups[1:]:
            xs += [0, k]
            ys += [start, start]
        self.seps.setData(np.array(xs, float), np.array(ys, float))
        self.seps.setVisible(self.mode != "groups")
        step = 1 if k <= 25 else 5
        self.plot.getAxis("top").setTicks([[(t + 0.5, str(t + 1)) for t in range(k) if t == 0 or (t + 1) % step == 0]])
        self.plot.vb.setLimits(xMin=-0.2, xMax=k + 0.2, yMin=0, yMax=n)
        self.plot.setXRange(0, k, padding=0.01)
        self.plot.setYRange(0, n, padding=0.0)
        what = f"{n:,} paintings" if self.mode != "groups" else f"{n} groups ({self.column})"
        self.hover.setText(f"{what} × {k} topics — hover for values, click to select, wheel to zoom")
        self._update_marker()
        self._update_ticks()

    # ---------------------------------------------------------------- interaction
    def _row_col(self, scene_pos) -> tuple[int, int] | None:
        if self._data.size == 0 or not self.plot.vb.sceneBoundingRect().contains(scene_pos):
            return None
        p = self.plot.vb.mapSceneToView(scene_pos)
        r, c = int(np.floor(p.y())), int(np.floor(p.x()))
        if 0 <= r < self._data.shape[0] and 0 <= c < self._data.shape[1]:
            return r, c
        return None

    def _on_scene_mouse_moved(self, pos) -> None:
        rc = self._row_col(pos)
        if rc is None:
            return
        r, c = rc
        v = self._data[r, c]
        tname = self.controller.topic_name(c)
        if self.mode == "groups":
            who = f"<b>{self.group_names[r]}</b> ({self.group_sizes[r]} paintings)"
        else:
            row = int(self.row_order[r])
            rel = self.an.relpaths[row]
            lab = self.an.labels[row]
            who = f"<b>{caption_of(rel, lab)}</b>" + (f" — {lab['artist']}" if lab.get("artist") else "")
        self.hover.setText(f"{who} · {tname}: <b>{v:.2f}</b>")

    def _on_scene_clicked(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton:
            return
        rc = self._row_col(ev.scenePos())
        if rc is None:
            return
        self.click_row(rc[0])

    def click_row(self, r: int) -> None:
        """Act as if displayed row ``r`` was clicked (select the painting / filter by the group)."""
        if self._stale:
            self.rebuild()
        if self.mode == "groups":
            self.group_clicked.emit(self.column, self.group_names[r])
        else:
            self.painting_clicked.emit(self.an.relpaths[int(self.row_order[r])])

    def _on_controller_selection_changed(self, _rel) -> None:
        self._update_marker()

    def _on_mode_changed(self, *_):
        self.rebuild()

    def _update_marker(self) -> None:
        rel = self.controller.current
        if self._stale:
            return  # placed by the rebuild when the tab is shown
        if self.an is None or rel is None or self.mode == "groups" or len(self.row_order) == 0:
            self.marker.hide()
            return
        row = self.an.row_of(rel)
        hit = np.flatnonzero(self.row_order == row) if row is not None else []
        if len(hit) == 0:
            self.marker.hide()
            return
        self.marker.setPos(float(hit[0]) + 0.5)
        self.marker_outline.setPos(float(hit[0]) + 0.5)
        self.marker.show()

    def _update_ticks(self, *_):
        axis = self.plot.getAxis("left")
        n = self._data.shape[0]
        if n == 0:
            axis.setTicks([[]])
            return
        y0, y1 = self.plot.vb.viewRange()[1]
        px = max(1.0, self.plot.vb.height()) / max(1e-9, y1 - y0)  # pixels per row
        lh = QFontMetrics(axis.style.get("tickFont") or self.font()).height()
        ticks = []
        if self._groups:
            shown = [g for g in self._groups if g[1] > y0 and g[0] < y1]
            if len(shown) * lh <= max(1.0, self.plot.vb.height()):
                ticks = list(zip(_spread([(max(s, y0) + min(e, y1)) / 2 for s, e, _ in shown], lh / px, y0, y1),
                                 (_elide(lab) for _s, _e, lab in shown)))  # every band labelled, none overlap
            else:
                ticks = [((s + e) / 2, _elide(lab)) for s, e, lab in shown if (e - s) * px >= 0.85 * lh]
        if px >= lh and self.mode != "groups":  # zoomed in: name every visible row
            lo, hi = max(0, int(y0)), min(n, int(np.ceil(y1)))
            minor = [(r + 0.5, _elide(PurePosixPath(self.an.relpaths[int(self.row_order[r])]).name))
                     for r in range(lo, hi)]
            axis.setTicks([[], minor] if not ticks else [ticks, minor])
            return
        axis.setTicks([ticks])


def _bands(keys: np.ndarray, label) -> list[tuple[int, int, str]]:
    out = []
    if len(keys) == 0:
        return out
    cuts = np.flatnonzero(np.diff(keys)) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [len(keys)]])
    for s, e in zip(starts, ends):
        out.append((int(s), int(e), label(keys[s])))
    return out


def _natural_rank(relpaths: list[str]) -> np.ndarray:
    import re

    key = [[int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.casefold())] for p in relpaths]
    order = sorted(range(len(relpaths)), key=key.__getitem__)
    rank = np.empty(len(relpaths), np.int64)
    rank[order] = np.arange(len(relpaths))
    return rank


def _none(v: str) -> str:
    return "(none)" if v == "\uffff" else v


def _elide(s: str, n: int = 24) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def _spread(ys: list[float], gap: float, lo: float, hi: float) -> list[float]:
    """Positions near ``ys`` (ascending) at least ``gap`` apart inside [lo + gap/2, hi - gap/2] where
    they fit: the labels of thin neighbouring bands are moved apart instead of drawn over each other."""
    out: list[float] = []
    for y in ys:
        out.append(max(y, lo + gap / 2, out[-1] + gap if out else y))
    nxt = hi - gap / 2 + gap
    for i in range(len(out) - 1, -1, -1):
        out[i] = min(out[i], nxt - gap)
        nxt = out[i]
    return out
