"""The style map: every painting as a point of a 2-D layout of the search embedding.

The layout comes from the core (``Collection.style_map``: t-SNE or PCA, saved with the index and
reused while the embedding is unchanged); it is loaded at once when saved, else computed by a
controller job (progress, ETA and Cancel in the status bar).  "Auto" shows the instant PCA layout
first and replaces it by t-SNE when that finishes.

Drawing stays cheap at 50,000 points: one pxMode ``ScatterPlotItem`` per colour (a small palette:
topics or the most common values of a label column), each fed plain numpy arrays, so no per-point
Python objects exist; hit tests (hover, click, area) are vectorised numpy over the layout.  When
fewer than :data:`MAX_THUMBS` paintings are in view their thumbnails (decoded by the shared
:class:`~.thumbnails.ThumbnailLoader` off the GUI thread) are drawn at the points.
"""

from __future__ import annotations

import html
from collections import Counter
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPixmap
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QHBoxLayout, QLabel, QListWidget, QListWidgetItem,
                               QPushButton, QSplitter, QToolButton, QVBoxLayout, QWidget)

import pyqtgraph as pg  # after PySide6

from ...core.explore.stylemap import resolve_method, saved_style_map, style_map, write_map_csv
from ...core.explore.summaries import group_columns, group_values
from .. import prefs
from ..jobs import Job
from ..widgets.captions import caption_of
from ..widgets.colors import MARKER_INNER, MARKER_OUTER, NO_TOPIC, plot_colors, swatch, topic_color
from ..widgets.map_items import FastScatter, HoverCard, MapViewBox, ThumbItem, point_size
from ..widgets.thumbnails import ThumbnailLoader

MAX_THUMBS = 150  # fewer paintings than this in view: each one's thumbnail is drawn
MAX_GRID_POINTS = 3000  # up to this many in view: one thumbnail per grid cell (PixPlot-like), no piles
GRID_THUMB_PX = 64  # the grid's cell (and thumbnail) side at moderate zoom
MAX_COLOURS = 19  # label values beyond the most common ones are "other"
METHODS = [("auto", "Auto", "t-SNE when it finishes in reasonable time (PCA is shown meanwhile), else PCA"),
           ("tsne", "t-SNE", "t-SNE of the search embedding: neighbourhoods are kept, distances between "
                             "clusters mean little"),
           ("pca", "PCA", "The first two principal axes of the search embedding: instant, global structure")]
OTHER = QColor("#b8b8b8")


def layout_key(an) -> tuple | None:
    """What a layout depends on (as the core's cache key): paintings, blend weights and space."""
    if an is None:
        return None
    adapter = getattr(an, "adapter", None)
    space = getattr(an, "space", "base")
    return (an.fingerprint, an.n, tuple(sorted((k, float(v)) for k, v in an.weights.items())), space,
            str(getattr(adapter, "id", "")) if space == "adapted" and adapter is not None else None)


def step_map(an, files, method: str):
    """The map job: (the Analysis it maps, its layout)."""
    xy = yield from style_map(an, files, method)
    return an, xy

class StyleMapView(QWidget):
    """The "Map" tab.

    Signals:
        painting_clicked(str): a point was clicked (relpath).
        area_selected(object): the relpaths (list) inside a selected area, or None when cleared.
    """

    painting_clicked = Signal(str)
    area_selected = Signal(object)
    style_map_ready = Signal(str, object, object)  # method asked for, the Analysis it was computed on, xy (n, 2)

    def __init__(self, controller, loader: ThumbnailLoader, parent=None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.loader = loader
        self.an = None
        self.xy: np.ndarray | None = None  # (n, 2) float32, rows of self.an, or None
        self.shown_method: str | None = None  # the combo value whose layout is shown ("auto" etc.)
        self.shown_layout: str | None = None  # "tsne" / "pca": what the points are
        self._key = None  # layout_key of the analysis the points belong to
        self._stale = True  # the final layout for the current analysis + method is not shown yet
        self.codes = np.zeros(0, np.int64)  # colour group per row
        self.group_names: list[str] = []
        self.group_colours: list[QColor] = []
        self.group_rows: list[np.ndarray] = []
        self.scatters: list[pg.ScatterPlotItem] = []
        self.selected_rows = np.zeros(0, np.int64)
        self._sel_rel: set[str] | None = None
        self.thumbs: dict[int, ThumbItem] = {}  # row -> item, while zoomed in
        self._thumb_pool: list[ThumbItem] = []
        self._wanted: dict[str, int] = {}  # path -> row: thumbnails asked for
        self._thumb_side = 64.0
        self.hover_row: int | None = None

        self.method_box = QComboBox()
        for key, text, tip in METHODS:
            self.method_box.addItem(text, key)
            self.method_box.setItemData(self.method_box.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.method_box.setToolTip("How the paintings are laid out (saved with the index)")
        self.colour_box = QComboBox()
        self.colour_box.setToolTip("Colour the points by dominant topic or by a label column")
        self.thumbs_check = QCheckBox("Thumbnails")
        self.thumbs_check.setChecked(True)
        self.thumbs_check.setToolTip("Draw the paintings when zoomed in (one per grid cell, so they never pile up)")
        self.select_btn = QToolButton()
        self.select_btn.setText("Select area")
        self.select_btn.setCheckable(True)
        self.select_btn.setToolTip("Drag a rectangle to select paintings (or Shift+drag at any time); "
                                   "the gallery then shows only them")
        self.export_btn = QPushButton("Export selection…")
        self.export_btn.setToolTip("Write the selected paintings as CSV: relpath, x, y, dominant topic, labels")
        self.clear_btn = QToolButton()
        self.clear_btn.setText("Clear selection")
        self.fit_btn = QToolButton()
        self.fit_btn.setText("Fit")
        self.fit_btn.setToolTip("Show the whole map (Home)")
        # two rows (what is shown; what to do with it), so the tab fits a 1024 px window beside the detail panel
        for box in (self.method_box, self.colour_box):
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            box.setMinimumContentsLength(10)
        row1 = QHBoxLayout()
        row1.addWidget(QLabel("Layout:"))
        row1.addWidget(self.method_box)
        row1.addWidget(QLabel("Colour by:"))
        row1.addWidget(self.colour_box, 1)
        row1.addWidget(self.thumbs_check)
        row2 = QHBoxLayout()
        row2.addWidget(self.fit_btn)
        row2.addWidget(self.select_btn)
        row2.addWidget(self.clear_btn)
        row2.addStretch(1)
        row2.addWidget(self.export_btn)
        top = QVBoxLayout()
        top.setContentsMargins(6, 6, 6, 0)
        top.setSpacing(4)
        top.addLayout(row1)
        top.addLayout(row2)

        bg, fg = plot_colors()
        self.vb = MapViewBox()
        self.plot = pg.PlotWidget(viewBox=self.vb, background=bg)
        pi = self.plot.getPlotItem()
        pi.hideButtons()
        pi.setMenuEnabled(False)
        pi.hideAxis("left")
        pi.hideAxis("bottom")
        self.vb.setAspectLocked(True)
        self.vb.setLimits(xMin=-4, xMax=4, yMin=-4, yMax=4, minXRange=0.004, minYRange=0.004)
        self.sel_item = FastScatter(pxMode=True, brush=None, pen=pg.mkPen(fg, width=1.5))
        self.sel_item.setZValue(5)
        # the selected painting: a white ring in a black halo (no topic colour), easy to find
        self.cur_halo = pg.ScatterPlotItem(pxMode=True, size=26, brush=None, pen=pg.mkPen(MARKER_OUTER, width=6))
        self.cur_halo.setZValue(8.9)
        self.vb.addItem(self.cur_halo, ignoreBounds=True)
        self.cur_item = pg.ScatterPlotItem(pxMode=True, size=26, brush=None, pen=pg.mkPen(MARKER_INNER, width=3))
        self.cur_item.setZValue(9)  # above the points, below thumbnails (the current one gets a halo frame)
        self.cur_item.sigPlotChanged.connect(self._sync_halo)
        self.hover_item = pg.ScatterPlotItem(pxMode=True, size=16, brush=None, pen=pg.mkPen(fg, width=2))
        self.hover_item.setZValue(9.5)
        for it in (self.sel_item, self.cur_item, self.hover_item):
            self.vb.addItem(it, ignoreBounds=True)
        self.note = QLabel(self.plot)
        self.note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.note.setWordWrap(True)
        self.note.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.card = HoverCard(self.plot)
        self.plot.viewport().installEventFilter(self)

        self.legend = QListWidget()
        self.legend.setIconSize(QSize(12, 12))
        self.legend.setMinimumWidth(110)
        self.legend.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.legend.setToolTip("Click an entry to select its paintings")
        self.info = QLabel()
        self.info.setWordWrap(True)
        self.info.setTextFormat(Qt.TextFormat.RichText)
        side = QVBoxLayout()
        side.setContentsMargins(0, 0, 0, 0)
        side.addWidget(self.legend, 1)
        side.addWidget(self.info)
        sw = QWidget()
        sw.setLayout(side)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.plot)
        self.splitter.addWidget(sw)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setSizes([800, 190])
        self.splitter.setChildrenCollapsible(False)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.splitter, 1)

        self._thumb_timer = QTimer(self, singleShot=True, interval=40)
        self._thumb_timer.timeout.connect(self._update_thumbs)
        self.vb.sigRangeChanged.connect(lambda *_: self._thumb_timer.start())
        self.vb.sigResized.connect(lambda *_: self._thumb_timer.start())
        self.vb.area_dragged.connect(self.select_rect)
        self.plot.scene().sigMouseMoved.connect(self._on_scene_mouse_moved)
        self.plot.scene().sigMouseClicked.connect(self._on_scene_clicked)
        self.method_box.currentIndexChanged.connect(self._on_method_changed)
        self.colour_box.currentIndexChanged.connect(self._on_colour_changed)
        self.thumbs_check.toggled.connect(lambda _on: self._update_thumbs())
        self.select_btn.toggled.connect(self._on_select_toggled)
        self.export_btn.clicked.connect(self.choose_export)
        self.clear_btn.clicked.connect(self.clear_selection)
        self.fit_btn.clicked.connect(self.fit)
        self.legend.itemClicked.connect(self._on_legend_item_clicked)
        loader.thumbnail_ready.connect(self._on_loader_thumbnail_ready)
        controller.analysis_changed.connect(self.set_analysis)
        controller.selection_changed.connect(self._on_controller_selection_changed)
        self.style_map_ready.connect(self._on_style_map_ready)
        controller.job_finished.connect(self._on_controller_job_finished)
        controller.topic_names_changed.connect(self._refresh_legend)

        i = self.method_box.findData(prefs.map_method())
        self.method_box.blockSignals(True)
        self.method_box.setCurrentIndex(max(0, i))
        self.method_box.blockSignals(False)
        self._want_colour = prefs.map_color_by()
        self.set_analysis(controller.analysis)

    # ---------------------------------------------------------------- public
    @property
    def method(self) -> str:
        return self.method_box.currentData() or "auto"

    @property
    def colour_by(self) -> str:
        return self.colour_box.currentData() or "topic"

    def set_method(self, method: str) -> None:
        i = self.method_box.findData(method)
        if i >= 0:
            self.method_box.setCurrentIndex(i)

    def set_colour_by(self, key: str) -> None:
        i = self.colour_box.findData(key)
        if i >= 0:
            self.colour_box.setCurrentIndex(i)

    def has_map(self) -> bool:
        return self.xy is not None and not self._stale

    def set_analysis(self, an) -> None:
        """A new analysis: recolour; if the embedding changed, the layout must be loaded or computed
        again (now if the tab is showing, else when it is opened)."""
        self.an = an
        self._fill_colour_box()
        key = layout_key(an)
        if key != self._key:
            self._key = key
            self._stale = True
            if self.xy is not None and (an is None or len(self.xy) != an.n):
                self._set_points(None)
            self._remap_selection()
        else:
            self._recolour()
        if an is None:
            self._set_points(None)
            self._set_note("Open a folder of paintings: the map appears once it is indexed.")
        if self.isVisible():
            self.ensure_map()

    # ---------------------------------------------------------------- the map job
    def saved_style_map(self, method: str):
        """The saved 2-D layout of the shown analysis (float32 (n, 2)) or None; never computes."""
        col, an = self.controller.collection, self.controller.analysis
        if col is None or an is None:
            return None
        try:
            xy = saved_style_map(an, col.files, method)
        except Exception:  # noqa: BLE001 - a damaged cache is recomputed by the job
            return None
        return xy if xy is not None and xy.shape == (an.n, 2) else None

    def compute_style_map(self, method: str) -> bool:
        """Load or compute the layout in a worker (progress, cancel); ``style_map_ready`` follows.
        False if nothing was started (no analysis, or the same map is already on its way)."""
        c = self.controller
        col = c.need_collection()
        if col is None or (c.analysis is None and not c.busy) or self.map_pending(method):
            return False

        def make():
            an = col.require_analysis()  # when the job starts: the analysis it maps
            return step_map(an, col.files, method)

        c.jobs.start(Job("map", make, lambda r: self.style_map_ready.emit(method, *r), key=method))
        return True

    def cancel_map_jobs(self, keep: str | None = None) -> None:
        """Drop queued map jobs and cancel a running one (except those for ``keep``)."""
        self.controller.jobs.cancel_where(lambda j: j.name != "map" or j.key == keep)

    def map_pending(self, method: str | None = None) -> bool:
        """Whether a map job (for ``method``, or any) is running or queued."""
        return self.controller.jobs.pending("map", method)

    def ensure_map(self) -> None:
        """Show the layout for the current analysis and method: the saved one at once, else start
        the controller's map job (for Auto the instant PCA layout is shown meanwhile)."""
        an = self.an
        if an is None:
            return
        if not self._stale and self.shown_method == self.method:
            return
        method = self.method
        xy = self.saved_style_map(method)
        if xy is not None:
            self._show(method, xy, final=True)
            return
        concrete = resolve_method(method, an.n)
        if method == "auto" and concrete == "tsne":
            pca = self.saved_style_map("pca")
            if pca is not None:
                self._show("pca", pca, final=False)
            else:
                self.compute_style_map("pca")
        self.compute_style_map(method)
        if self.xy is None or len(self.xy) != an.n:
            name = {"tsne": "t-SNE", "pca": "PCA"}[concrete]
            self._set_note(f"Computing the {name} map of {an.n:,} paintings… (progress and Cancel in the status bar)")

    def fit(self) -> None:
        self.vb.setRange(xRange=(-1.05, 1.05), yRange=(-1.05, 1.05), padding=0)

    def positions(self) -> np.ndarray:
        """The drawn points' positions by analysis row (for tests): gathered from the scatter items."""
        n = len(self.codes)
        out = np.full((n, 2), np.nan, np.float32)
        for it, rows in zip(self.scatters, self.group_rows):
            x, y = it.getData()
            out[rows, 0] = x
            out[rows, 1] = y
        return out

    def point_count(self) -> int:
        return int(sum(len(it.getData()[0]) for it in self.scatters if it.isVisible()))

    def scene_pos_of(self, row: int) -> QPointF:
        x, y = self.xy[row]
        return self.vb.mapViewToScene(QPointF(float(x), float(y)))

    def row_at_scene(self, scene_pos, radius_px: float | None = None) -> int | None:
        """The painting drawn at a scene position (nearest within ``radius_px`` screen pixels)."""
        if self.xy is None or len(self.xy) == 0 or not self.vb.sceneBoundingRect().contains(scene_pos):
            return None
        p = self.vb.mapSceneToView(scene_pos)
        px = self.vb.viewPixelSize()  # data units per pixel (x, y)
        if radius_px is None:
            radius_px = self._thumb_side / 2 if self.thumbs else point_size(len(self.xy)) / 2 + 3
        dx = (self.xy[:, 0] - p.x()) / max(px[0], 1e-12)
        dy = (self.xy[:, 1] - p.y()) / max(px[1], 1e-12)
        d2 = dx * dx + dy * dy
        if self.thumbs:  # a thumbnail covers the points under it: its painting is hit
            rows = np.fromiter(self.thumbs, np.int64)
            near = rows[(np.abs(dx[rows]) <= self._thumb_side / 2) & (np.abs(dy[rows]) <= self._thumb_side / 2)]
            if len(near):
                return int(near[np.argmin(d2[near])])
        i = int(np.argmin(d2))
        return i if d2[i] <= radius_px * radius_px else None

    def rows_in_rect(self, rect: QRectF) -> np.ndarray:
        if self.xy is None:
            return np.zeros(0, np.int64)
        x, y = self.xy[:, 0], self.xy[:, 1]
        inside = (x >= rect.left()) & (x <= rect.right()) & (y >= rect.top()) & (y <= rect.bottom())
        return np.flatnonzero(inside).astype(np.int64)

    def select_rect(self, rect: QRectF) -> None:
        """Select the paintings inside ``rect`` (view coordinates); the gallery shows only them."""
        self.select_rows(self.rows_in_rect(rect))

    def select_rows(self, rows) -> None:
        rows = np.unique(np.asarray(rows, np.int64))
        if len(rows) == 0 or self.an is None:
            self.clear_selection()
            return
        self.selected_rows = rows
        self._sel_rel = {self.an.relpaths[int(r)] for r in rows}
        self._draw_selection()
        self.area_selected.emit([self.an.relpaths[int(r)] for r in rows])

    def selected_relpaths(self) -> list[str]:
        if self.an is None:
            return []
        return [self.an.relpaths[int(r)] for r in self.selected_rows]

    def clear_selection(self, notify: bool = True) -> None:
        had = len(self.selected_rows) > 0
        self.selected_rows = np.zeros(0, np.int64)
        self._sel_rel = None
        self._draw_selection()
        if notify and had:
            self.area_selected.emit(None)

    def export_selection(self, path: str | Path) -> Path:
        """CSV of the selected paintings (all of them if none is selected): relpath, x, y,
        dominant topic (1-based) and its name, then the label columns. Cells are escaped against
        spreadsheet formulas; the file is written atomically, never inside the collection."""
        from ...core.errors import ArtStyleError

        an, c = self.an, self.controller
        if an is None or self.xy is None or c.collection is None:
            raise ArtStyleError("There is no map to export yet.")
        rows = self.selected_rows if len(self.selected_rows) else None
        names = {t: c.topic_name(t) for t in range(an.topics.k)} if an.topics is not None else {}
        return write_map_csv(path, c.collection.root, an, self.xy, names, rows)

    def choose_export(self) -> None:
        if self.xy is None:
            return
        n = len(self.selected_rows) or (self.an.n if self.an is not None else 0)
        path, _ = QFileDialog.getSaveFileName(self, f"Export {n:,} paintings of the map as CSV",
                                              str(Path.home() / "map-selection.csv"), "CSV files (*.csv)")
        if not path:
            return
        try:
            p = self.export_selection(path)
        except Exception as e:  # noqa: BLE001
            self.controller.report(e)
            return
        self.controller.message_posted.emit(f"Wrote {n:,} paintings to {p}")

    # ---------------------------------------------------------------- drawing
    def _show(self, method: str, xy: np.ndarray, final: bool) -> None:
        an = self.an
        if an is None or xy is None or len(xy) != an.n:
            return
        first = self.xy is None
        self.xy = np.ascontiguousarray(xy, np.float32)
        self.shown_method = method if final else None
        self.shown_layout = resolve_method(method, an.n)
        self._stale = not final
        self._set_points(self.xy)
        if first:
            self.fit()
        self._set_note("")
        self._update_info()

    def _set_points(self, xy) -> None:
        if xy is None:
            self.xy = None
            self.shown_layout = None
            for it in self.scatters:
                it.setData(x=np.zeros(0), y=np.zeros(0))
                it.hide()
            self.group_rows = [np.zeros(0, np.int64) for _ in self.scatters]
            self._clear_thumbs()
            self.cur_item.setData([], [])
            self.hover_item.setData([], [])
            self.sel_item.setData([], [])
            self.card.hide()
            self._update_info()
            return
        self._recolour()
        self._draw_selection()
        self._on_controller_selection_changed(self.controller.current)
        self._thumb_timer.start()

    def _groups(self) -> tuple[np.ndarray, list[str], list[QColor]]:
        """Colour group of every row, the groups' names and colours."""
        an = self.an
        if an is None:
            return np.zeros(0, np.int64), [], []
        key = self.colour_by
        c = self.controller
        if key == "topic":
            if an.topics is None:
                return np.zeros(an.n, np.int64), ["Topics not fitted yet"], [QColor(NO_TOPIC)]
            k = an.topics.k
            return an.dominant_topics().astype(np.int64), [c.topic_label(t) for t in range(k)], \
                [topic_color(t) for t in range(k)]
        vals = [v or "" for v in group_values(an, key)]
        counts = Counter(v for v in vals if v)
        top = [v for v, _ in counts.most_common(MAX_COLOURS)]
        top.sort(key=str.casefold)
        index = {v: i for i, v in enumerate(top)}
        names = list(top)
        colours = [topic_color(i) for i in range(len(top))]
        other = none = None
        if len(counts) > len(top):
            other = len(names)
            names.append(f"other ({len(counts) - len(top)} values)")
            colours.append(QColor(OTHER))
        if any(not v for v in vals):
            none = len(names)
            names.append("(none)")
            colours.append(QColor(NO_TOPIC).lighter(130))
        codes = np.fromiter((index.get(v, other if v else none) for v in vals), np.int64, len(vals))
        return codes, names, colours

    def _recolour(self) -> None:
        codes, names, colours = self._groups()
        self.codes, self.group_names, self.group_colours = codes, names, colours
        g = len(names)
        while len(self.scatters) < g:
            it = FastScatter(pxMode=True, pen=None, antialias=False)
            it.setZValue(1)
            self.vb.addItem(it)
            self.scatters.append(it)
        self.group_rows = []
        xy = self.xy
        size = point_size(len(codes))
        if xy is not None and len(codes) == len(xy) and len(codes):
            order = np.argsort(codes, kind="stable")
            bounds = np.searchsorted(codes[order], np.arange(g + 1))
            sizes = np.diff(bounds)
            for rank, gi in enumerate(np.argsort(-sizes, kind="stable")):  # big groups below small ones
                rows = order[bounds[gi]: bounds[gi + 1]]
                it = self.scatters[gi]
                it.setZValue(1 + rank * 1e-3)
                it.setData(x=xy[rows, 0], y=xy[rows, 1], size=size, pen=None, brush=pg.mkBrush(colours[gi]))
                it.setVisible(len(rows) > 0)
            self.group_rows = [order[bounds[gi]: bounds[gi + 1]] for gi in range(g)]
        else:
            self.group_rows = [np.zeros(0, np.int64) for _ in range(g)]
            for gi in range(g):
                self.scatters[gi].setData(x=np.zeros(0), y=np.zeros(0))
                self.scatters[gi].hide()
        for it in self.scatters[g:]:
            it.setData(x=np.zeros(0), y=np.zeros(0))
            it.hide()
        self.group_rows += [np.zeros(0, np.int64)] * (len(self.scatters) - g)
        for row, item in self.thumbs.items():
            if row < len(codes):
                item.colour = colours[codes[row]]
                item.update()
        self._refresh_legend()

    def _sync_halo(self, *_):
        x, y = self.cur_item.getData()
        self.cur_halo.setData(x=x, y=y)

    def _fit_legend(self) -> None:
        """The legend column only as wide as its entries (within 110..360 px)."""
        lg = self.legend
        fm = lg.fontMetrics()
        w = max((fm.horizontalAdvance(lg.item(i).text()) for i in range(lg.count())), default=90)
        w += lg.iconSize().width() + 16 + 2 * lg.frameWidth() + lg.verticalScrollBar().sizeHint().width() + 32
        w = int(min(360, max(110, w)))
        lg.setMinimumWidth(min(w, 110))
        side = lg.parentWidget()
        if side is not None:
            side.setMaximumWidth(w)
            sp = getattr(self, "splitter", None)
            sizes = sp.sizes() if sp is not None else []
            if len(sizes) == 2 and sum(sizes) > w and sizes[1] != w:
                sp.setSizes([sum(sizes) - w, w])  # as wide as the entries (the map gets the rest)

    def _refresh_legend(self) -> None:
        if self.colour_by == "topic" and self.an is not None and self.an.topics is not None:
            self.group_names = [self.controller.topic_label(t) for t in range(self.an.topics.k)]
        self.legend.clear()
        counts = np.bincount(self.codes, minlength=len(self.group_names)) if len(self.codes) else []
        for gi, (name, col) in enumerate(zip(self.group_names, self.group_colours)):
            n = int(counts[gi]) if len(counts) else 0
            it = QListWidgetItem(swatch(col, 12), f"{name}  ({n:,})")
            it.setData(Qt.ItemDataRole.UserRole, gi)
            it.setToolTip(f"{html.escape(name)}: {n:,} paintings — click to select them")
            self.legend.addItem(it)
        self._fit_legend()

    def _draw_selection(self) -> None:
        rows = self.selected_rows
        if self.xy is None or len(rows) == 0:
            self.sel_item.setData([], [])
        else:
            rows = rows[rows < len(self.xy)]
            self.sel_item.setData(x=self.xy[rows, 0], y=self.xy[rows, 1], size=point_size(len(self.xy)) + 5)
        has = len(self.selected_rows) > 0
        if self.an is not None:
            for r, item in self.thumbs.items():
                item.set_selected(has and self._sel_rel is not None and self.an.relpaths[r] in self._sel_rel)
        self.clear_btn.setEnabled(has)
        self.export_btn.setText(f"Export selection ({len(self.selected_rows):,})…" if has else "Export map…")
        self.export_btn.setEnabled(self.xy is not None)
        self._update_info()

    def _remap_selection(self) -> None:
        """Keep an area selection across analyses of the same paintings (by relpath)."""
        if self._sel_rel is None or self.an is None:
            self.selected_rows = np.zeros(0, np.int64)
            self._draw_selection()
            return
        rows = [self.an.row_of(r) for r in self._sel_rel]
        self.selected_rows = np.array(sorted(r for r in rows if r is not None), np.int64)
        self._draw_selection()

    def _update_info(self) -> None:
        an = self.an
        if an is None or self.xy is None:
            self.info.setText("")
            return
        name = {"tsne": "t-SNE", "pca": "PCA"}.get(self.shown_layout or "", "")
        extra = " (t-SNE is being computed…)" if self._stale and self.method == "auto" else ""
        sel = f"<br><b>{len(self.selected_rows):,}</b> selected — shown in the gallery" if len(
            self.selected_rows) else ""
        self.info.setText(f"{name} layout of {an.n:,} paintings{extra}{sel}<br><small>Wheel: zoom · drag: pan · "
                          "Shift+drag: select · click: open</small>")

    def _set_note(self, text: str) -> None:
        self.note.setText(text)
        self.note.setVisible(bool(text))
        self._place_note()

    def _place_note(self) -> None:
        r = self.plot.rect()
        self.note.setGeometry(r.adjusted(40, 0, -40, 0))
        self.note.raise_()

    # ---------------------------------------------------------------- thumbnails
    def _clear_thumbs(self) -> None:
        for item in self.thumbs.values():
            item.hide()
            self._thumb_pool.append(item)
        self.thumbs.clear()
        self._wanted.clear()

    def _update_thumbs(self) -> None:
        xy, an, c = self.xy, self.an, self.controller
        if xy is None or an is None or c.collection is None or not self.thumbs_check.isChecked():
            self._clear_thumbs()
            return
        (x0, x1), (y0, y1) = self.vb.viewRange()
        vis = np.flatnonzero((xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1))
        if len(vis) == 0 or len(vis) > MAX_GRID_POINTS:
            self._clear_thumbs()
            return
        w, h = max(1.0, self.vb.width()), max(1.0, self.vb.height())
        side = float(np.clip(0.55 * np.sqrt(w * h / len(vis)), 44, 150))
        if len(vis) > MAX_THUMBS or side < GRID_THUMB_PX:
            side = float(GRID_THUMB_PX)
        self._thumb_side = side
        vis = _one_per_cell(vis, xy, (x0, x1, y0, y1), (w, h), side)
        keep = set(vis.tolist())
        for row in [r for r in self.thumbs if r not in keep]:
            item = self.thumbs.pop(row)
            item.hide()
            self._thumb_pool.append(item)
        self._wanted = {p: r for p, r in self._wanted.items() if r in keep}
        for row in vis.tolist():
            path = c.path_of(an.relpaths[row])
            pm = self.loader.pixmap(path)  # queued for a worker if not cached; never decoded here
            if pm is None:
                self._wanted[path] = row
                continue
            self._place_thumb(row, pm)

    def _place_thumb(self, row: int, pm: QPixmap) -> None:
        item = self.thumbs.get(row)
        if item is None:
            item = self._thumb_pool.pop() if self._thumb_pool else ThumbItem()
            if item.scene() is None:
                self.vb.addItem(item, ignoreBounds=True)
            self.thumbs[row] = item
        colour = self.group_colours[self.codes[row]] if row < len(self.codes) and self.group_colours else NO_TOPIC
        item.set_content(pm, self._thumb_side, QColor(colour))
        item.set_current(self.an is not None and self.an.relpaths[row] == self.controller.current)
        sel = self._sel_rel
        item.set_selected(sel is not None and self.an is not None and self.an.relpaths[row] in sel)
        item.setPos(float(self.xy[row, 0]), float(self.xy[row, 1]))
        item.show()

    def _on_loader_thumbnail_ready(self, path: str) -> None:
        row = self._wanted.pop(path, None)
        if row is not None and self.xy is not None and row < len(self.xy):
            pm = self.loader.cached(path)
            if pm is not None:
                self._place_thumb(row, pm)
        if self.card.isVisible() and path == self.card.path:
            self.card.set_pixmap(self.loader.cached(path))

    # ---------------------------------------------------------------- interaction
    def eventFilter(self, obj, ev) -> bool:  # noqa: N802
        if obj is self.plot.viewport():
            if ev.type() == QEvent.Type.Leave:
                self._hover(None, None)
            elif ev.type() == QEvent.Type.Resize:
                self._place_note()
        return False

    def hover(self, relpath: str | None) -> None:
        """Show the hover card of a painting as if the mouse were over it (screenshots, tests)."""
        row = self.an.row_of(relpath) if self.an is not None and relpath is not None else None
        if row is None or self.xy is None:
            self._hover(None, None)
            return
        self._hover(row, self.plot.mapFromScene(self.scene_pos_of(row)))

    def _on_scene_mouse_moved(self, pos) -> None:
        row = self.row_at_scene(pos)
        self._hover(row, self.plot.mapFromScene(pos) if row is not None else None)

    def _hover(self, row: int | None, at) -> None:
        self.hover_row = row
        if row is None or self.an is None or self.xy is None:
            self.hover_item.setData([], [])
            self.card.hide()
            self.plot.viewport().unsetCursor()
            return
        self.plot.viewport().setCursor(Qt.CursorShape.PointingHandCursor)
        self.hover_item.setData(x=[float(self.xy[row, 0])], y=[float(self.xy[row, 1])])
        an, c = self.an, self.controller
        rel = an.relpaths[row]
        lab = an.labels[row]
        path = c.path_of(rel) if c.collection is not None else rel
        lines = [f"<b>{html.escape(caption_of(rel, lab))}</b>"]
        if lab.get("artist"):
            lines.append(html.escape(lab["artist"]) + (f", {html.escape(lab['year'])}" if lab.get("year") else ""))
        if an.topics is not None:
            t = int(an.topics.mixtures[row].argmax())
            lines.append(f'<span style="color:{topic_color(t).name()}">●</span> '
                         f"{html.escape(c.topic_label(t))} ({an.topics.mixtures[row, t]:.0%})")
        if self.colour_by != "topic" and len(self.codes) > row and self.group_names:
            lines.append(f"{html.escape(self.colour_by)}: {html.escape(self.group_names[self.codes[row]])}")
        lines.append(f'<small style="color:palette(placeholder-text)">{html.escape(rel)}</small>')
        self.card.text.setText("<br>".join(lines))
        if self.card.path != path:
            self.card.path = path
            self.card.set_pixmap(self.loader.pixmap(path))
        self.card.adjustSize()
        if at is not None:
            self.card.place(at, self.plot.rect())  # wholly inside the view
        self.card.show()
        self.card.raise_()

    def _on_scene_clicked(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton or ev.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            return
        row = self.row_at_scene(ev.scenePos())
        if row is not None:
            self.click_row(row)

    def click_row(self, row: int) -> None:
        """Act as if painting ``row`` was clicked: select it (gallery and detail panel follow)."""
        if self.an is not None and 0 <= row < self.an.n:
            self.painting_clicked.emit(self.an.relpaths[row])

    def _on_legend_item_clicked(self, item: QListWidgetItem) -> None:
        gi = item.data(Qt.ItemDataRole.UserRole)
        if gi is not None and gi < len(self.group_rows) and self.xy is not None:
            self.select_rows(self.group_rows[gi])

    def _on_select_toggled(self, on: bool) -> None:
        self.vb.select_mode = on
        self.plot.viewport().setCursor(Qt.CursorShape.CrossCursor if on else Qt.CursorShape.ArrowCursor)

    def _fill_colour_box(self) -> None:
        an = self.an
        cols = group_columns(an) if an is not None else []
        want = self.colour_box.currentData() or getattr(self, "_want_colour", "topic")
        self.colour_box.blockSignals(True)
        self.colour_box.clear()
        self.colour_box.addItem("Dominant topic", "topic")
        for col in cols:
            self.colour_box.addItem(col.capitalize() if col != "folder" else "Folder", col)
        i = self.colour_box.findData(want)
        self.colour_box.setCurrentIndex(max(0, i))
        self.colour_box.blockSignals(False)

    def _on_colour_changed(self, _i: int) -> None:
        self._want_colour = self.colour_by
        prefs.set_map_color_by(self.colour_by)
        self._recolour()

    def _on_method_changed(self, _i: int) -> None:
        prefs.set_map_method(self.method)
        self.cancel_map_jobs(keep=self.method)  # the user changed their mind: no waiting
        self._stale = True
        if self.isVisible():
            self.ensure_map()

    def _on_controller_selection_changed(self, relpath) -> None:
        row = self.controller.row_of(relpath) if self.an is not None else None
        for r, item in self.thumbs.items():
            item.set_current(r == row)
        if row is None or self.xy is None or row >= len(self.xy):
            self.cur_item.setData([], [])
            return
        self.cur_item.setData(x=[float(self.xy[row, 0])], y=[float(self.xy[row, 1])])

    def _on_style_map_ready(self, method: str, an, xy) -> None:
        if self.an is None or layout_key(an) != self._key or xy is None or len(xy) != self.an.n:
            return  # for an older analysis
        if method == self.method:
            self._show(method, xy, final=True)
        elif method == "pca" and self.method == "auto" and (self.xy is None or self._stale):
            self._show("pca", xy, final=False)

    def _on_controller_job_finished(self, name: str, outcome: str) -> None:
        if name == "map" and outcome != "ok" and self.map_pending() is False:
            if self.xy is None:
                self._set_note("The map was not computed (cancelled). Choose PCA for an instant layout, "
                               "or open the tab again to retry.")
            self._stale = self._stale and self.xy is None
            self._update_info()

    def showEvent(self, ev) -> None:  # noqa: N802
        super().showEvent(ev)
        self.ensure_map()
        self._place_note()

    def hideEvent(self, ev) -> None:  # noqa: N802
        super().hideEvent(ev)
        self.card.hide()


def _one_per_cell(rows: np.ndarray, xy: np.ndarray, rng, size, side: float) -> np.ndarray:
    """Of ``rows`` (points in view), at most one per ``side`` px screen cell: the point nearest its cell's
    centre, so thumbnails at moderate zoom tile the view instead of piling up (PixPlot's grid idea)."""
    x0, x1, y0, y1 = rng
    w, h = size
    px = (xy[rows, 0] - x0) / max(1e-12, x1 - x0) * w / side
    py = (xy[rows, 1] - y0) / max(1e-12, y1 - y0) * h / side
    cx, cy = np.floor(px).astype(np.int64), np.floor(py).astype(np.int64)
    d = (px - cx - 0.5) ** 2 + (py - cy - 0.5) ** 2
    cell = cx * (int(h / side) + 3) + cy
    order = np.lexsort((d, cell))
    first = np.ones(len(order), bool)
    first[1:] = cell[order][1:] != cell[order][:-1]
    return np.sort(rows[order[first]])
