"""The gallery: QListView + a list model that filters/sorts with numpy + a constant-size delegate.

The model holds every indexed painting once (parallel Python lists and numpy arrays) and a
``order`` array of the rows currently shown, so filtering and sorting 50,000 paintings costs a
few milliseconds and no per-item Qt objects exist.  Thumbnails are requested by the delegate
when a cell is painted (see :mod:`.thumbnails`).
"""

from __future__ import annotations

import bisect

import re

import numpy as np
from PySide6.QtCore import QAbstractListModel, QEvent, QModelIndex, QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QColor, QFont, QPainter, QPalette, QPen
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QLineEdit, QListView, QMenu, QSlider,
                               QStyle, QStyledItemDelegate, QStyleOptionViewItem, QToolButton, QVBoxLayout,
                               QWidget)

from ...core.search import similarity_to_row
from ..prefs import DEFAULT_THUMB, THUMB_RANGE, THUMB_SNAP, THUMB_STEP, clamp_thumb_size
from ..widgets.captions import caption_of, cell_texts, subtitle_of
from ..widgets.cards import begin_card, draw_thumbnail
from ..widgets.colors import topic_color
from ..widgets.roles import ArtistRole, PathRole, RelpathRole, ScoreRole, SubtitleRole, TopicRole
from ..widgets.thumbnails import ThumbnailLoader

SORTS = [("name", "File name"), ("artist", "Artist"), ("topic", "Dominant topic"),
         ("similarity", "Similarity to selection")]

_DIGITS = re.compile(r"(\d+)")


def _natural_key(s: str):
    return [int(t) if t.isdigit() else t for t in _DIGITS.split(s.casefold())]


class GalleryModel(QAbstractListModel):
    """Indexed paintings (rows = the filtered, sorted view)."""

    def __init__(self, loader: ThumbnailLoader | None = None, parent=None) -> None:
        super().__init__(parent)
        self.loader = loader
        self.root = ""
        self._rel: list[str] = []
        self._labels: list[dict] = []
        self._hay: list[str] | None = None  # search text per item, made when a filter is first typed
        self._item_of: dict[str, int] = {}  # relpath -> item (the records' own strings)
        self._topic = np.zeros(0, np.int64)
        self._tprob = np.zeros(0, np.float32)
        self._score = np.zeros(0, np.float32)
        self._order: list[int] = []
        self._pos = np.zeros(0, np.int64)
        self._rank_n = -1
        self._name_rank = self._artist_rank = np.zeros(0, np.int64)
        self.filter_text = ""
        self.sort_key = "name"
        self.anchor: str | None = None
        self.subset: frozenset[str] | None = None  # only these relpaths (a map selection), or all
        self._subset_mask: np.ndarray | None = None
        if loader is not None:
            loader.thumbnail_ready.connect(self._on_loader_thumbnail_ready)
            loader.thumbnail_failed.connect(self._on_loader_thumbnail_ready)

    # ---------------------------------------------------------------- Qt model API
    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._order)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self._order):
            return None
        i = self._order[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return caption_of(self._rel[i], self._labels[i])
        if role == RelpathRole:
            return self._rel[i]
        if role == PathRole:
            return f"{self.root}/{self._rel[i]}"
        if role == TopicRole:
            return int(self._topic[i])
        if role == ScoreRole:
            s = float(self._score[i])
            return None if np.isnan(s) else s
        if role == ArtistRole:
            return self._labels[i].get("artist", "")
        if role == SubtitleRole:
            return subtitle_of(self._labels[i])
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(i)
        return None

    def cell(self, row: int) -> tuple[str, str, str, int, float | None]:
        """(path, caption, subtitle, topic, score) of a displayed row: what the delegate paints,
        in one call instead of five ``data()`` round trips."""
        i = self._order[row]
        rel, lab = self._rel[i], self._labels[i]
        s = float(self._score[i])
        cap, sub = cell_texts(rel, lab)
        return (f"{self.root}/{rel}", cap, sub, int(self._topic[i]), None if np.isnan(s) else s)

    def flags(self, index):
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren

    def _tooltip(self, i: int) -> str:
        lab = self._labels[i]
        lines = [f"<b>{caption_of(self._rel[i], lab)}</b>", self._rel[i]]
        for key in ("artist", "year", "style"):
            if lab.get(key):
                lines.append(f"{key.capitalize()}: {lab[key]}")
        if self._topic[i] >= 0:
            lines.append(f"Dominant topic: {self._topic[i] + 1} (p = {self._tprob[i]:.2f})")
        if not np.isnan(self._score[i]):
            lines.append(f"Similarity: {self._score[i]:.3f}")
        return "<br>".join(lines)

    # ---------------------------------------------------------------- content
    def same_items(self, root: str, relpaths: list[str], labels: list[dict]) -> bool:
        """Whether the model already holds exactly these paintings (in this order, same labels)."""
        return str(root) == self.root and self._rel == relpaths and self._labels == labels

    def update_labels_in_place(self, root: str, relpaths: list[str], labels: list[dict]) -> bool:
        """The same paintings in another order (those added while indexing) with their labels now known:
        take the labels without a reset, so the order on screen does not jump. False: other paintings."""
        if str(root) != self.root or len(relpaths) != len(self._rel) or set(relpaths) != set(self._rel):
            return False
        changed = False
        for p, lab in zip(relpaths, labels):
            i = self._item_of[p]
            if self._labels[i] != lab:
                self._labels[i] = lab
                changed = True
        if changed:
            self._index_items()
            self._rank_n = -1  # the artist ranks follow the labels
            if self.sort_key == "artist":
                self.beginResetModel()
                self._rebuild_order()
                self.endResetModel()
            elif self._order:
                self.dataChanged.emit(self.index(0), self.index(len(self._order) - 1))
        return True

    def set_items(self, root: str, relpaths: list[str], labels: list[dict]) -> None:
        self.beginResetModel()
        self.root = str(root)
        self._rel = list(relpaths)
        self._labels = list(labels)  # the records' dicts (read-only; one per distinct labels at a million)
        self._index_items()
        self._rank_n = -1
        self._subset_mask = None
        n = len(self._rel)
        self._topic = np.full(n, -1, np.int64)
        self._tprob = np.zeros(n, np.float32)
        self._score = np.full(n, np.nan, np.float32)
        self._rebuild_order()
        self.endResetModel()

    def add_items(self, relpaths: list[str]) -> None:
        """Add newly indexed paintings: in their place when sorted by name (the order on screen never jumps),
        else at the end until the analysis that sorts them is there."""
        new = [p for p in relpaths if p not in self._item_of]
        if not new:
            return
        start = len(self._rel)
        self._rel.extend(new)
        self._labels.extend({} for _ in new)
        for j, p in enumerate(new, start):
            if self._hay is not None:
                self._hay.append(p.casefold())
            self._item_of[p] = j
        k = len(new)
        self._topic = np.concatenate([self._topic, np.full(k, -1, np.int64)])
        self._tprob = np.concatenate([self._tprob, np.zeros(k, np.float32)])
        self._score = np.concatenate([self._score, np.full(k, np.nan, np.float32)])
        self._pos = np.concatenate([self._pos, np.full(k, -1, np.int64)])
        shown = [j for j in range(start, start + k) if self._matches(j)]
        if not shown:
            return
        if self.sort_key in ("name", "path"):  # in place, so the order is the final one: nothing jumps later
            key = lambda j: _natural_key(self._rel[j])  # noqa: E731
            for j in sorted(shown, key=key):
                r = bisect.bisect_right(self._order, key(j), key=key)
                self.beginInsertRows(QModelIndex(), r, r)
                self._order.insert(r, j)
                self.endInsertRows()
            self._pos[np.asarray(self._order, np.int64)] = np.arange(len(self._order))
        else:  # sorted by what only the analysis knows: at the end until it is there
            r0 = len(self._order)
            self.beginInsertRows(QModelIndex(), r0, r0 + len(shown) - 1)
            self._order.extend(shown)
            self._pos[shown] = np.arange(r0, r0 + len(shown))
            self.endInsertRows()

    def set_analysis(self, an) -> None:
        """Attach dominant topics (and clear similarity scores) from an Analysis."""
        n = len(self._rel)
        self._topic = np.full(n, -1, np.int64)
        self._tprob = np.zeros(n, np.float32)
        if an is not None and an.topics is not None:
            dom = an.dominant_topics()
            mix = an.topics.mixtures
            rows = self._rows_in(an)
            ok = rows >= 0
            self._topic[ok] = dom[rows[ok]]
            self._tprob[ok] = mix[rows[ok], dom[rows[ok]]]
        self.an = an
        self._compute_scores()
        self._refresh_content()

    def _rows_in(self, an) -> np.ndarray:
        """The analysis row of every item (-1: not in it); a plain range when both list the same
        paintings in the same order (the usual case), else one dictionary lookup per item."""
        n = len(self._rel)
        if an.relpaths == self._rel:
            return np.arange(n, dtype=np.int64)
        rows = np.full(n, -1, np.int64)
        for i, p in enumerate(self._rel):
            r = an.row_of(p)
            if r is not None:
                rows[i] = r
        return rows

    def _refresh_content(self) -> None:
        """Re-derive the shown order after topics or scores changed: a reset (the view lays out every
        item again) only if the order changed, else the cells are just repainted."""
        order = self._new_order()
        if order == self._order:
            if self._order:
                self.dataChanged.emit(self.index(0), self.index(len(self._order) - 1),
                                      [Qt.ItemDataRole.DisplayRole, TopicRole, ScoreRole,
                                       Qt.ItemDataRole.ToolTipRole])
            return
        self.refresh(order)

    def set_filter(self, text: str) -> None:
        self.filter_text = text
        self.refresh()

    def set_subset(self, relpaths=None) -> None:
        """Show only these paintings (e.g. an area selected on the style map); None shows all."""
        self.subset = frozenset(relpaths) if relpaths is not None else None
        self._subset_mask = None
        self.refresh()

    def set_sort(self, key: str) -> None:
        self.sort_key = key
        self.refresh()

    def set_anchor(self, relpath: str | None) -> None:
        """The painting that 'similarity' sorts against."""
        self.anchor = relpath
        self._compute_scores()
        if self.sort_key == "similarity":
            self.refresh()
        elif self._order:
            self.dataChanged.emit(self.index(0), self.index(len(self._order) - 1), [ScoreRole])

    def refresh(self, order: list[int] | None = None) -> None:
        """Re-filter and re-sort (or show ``order``, already computed by :meth:`_new_order`)."""
        self.beginResetModel()
        self._rebuild_order(order)
        self.endResetModel()

    # ---------------------------------------------------------------- helpers
    def relpath_at(self, row: int) -> str | None:
        return self._rel[self._order[row]] if 0 <= row < len(self._order) else None

    def row_of(self, relpath: str | None) -> int | None:
        if relpath is None:
            return None
        i = self._item_of.get(relpath)
        if i is None or self._pos[i] < 0:
            return None
        return int(self._pos[i])

    def relpaths(self) -> list[str]:
        """The displayed order (for tests and exports)."""
        return [self._rel[i] for i in self._order]

    @property
    def total(self) -> int:
        return len(self._rel)

    def _index_items(self) -> None:
        self._hay = None
        self._item_of = {p: i for i, p in enumerate(self._rel)}

    def _haystack(self) -> list[str]:
        """What a filter searches, per item (made on first use: 100 MB nobody needs at a million paintings
        until a filter is typed)."""
        if self._hay is None:
            self._hay = [" ".join([p, lab.get("artist", ""), lab.get("title", ""), lab.get("style", ""),
                                   lab.get("year", "")]).casefold()
                         for p, lab in zip(self._rel, self._labels)]
        return self._hay

    def _matches(self, i: int) -> bool:
        if self.subset is not None and self._rel[i] not in self.subset:
            return False
        words = self.filter_text.casefold().split()
        hay = self._haystack()[i]
        return all(w in hay for w in words)

    def _in_subset(self) -> np.ndarray | None:
        """Boolean mask over the items (None: no subset), rebuilt when items were added."""
        if self.subset is None:
            return None
        m = self._subset_mask
        if m is None or len(m) != len(self._rel):
            sub = self.subset
            m = np.fromiter((p in sub for p in self._rel), bool, len(self._rel))
            self._subset_mask = m
        return m

    def _compute_scores(self) -> None:
        n = len(self._rel)
        self._score = np.full(n, np.nan, np.float32)
        an = getattr(self, "an", None)
        if an is None or self.anchor is None:
            return
        row = an.row_of(self.anchor)
        if row is None:
            return
        sims = similarity_to_row(an, row)
        rows = self._rows_in(an)
        ok = rows >= 0
        self._score[ok] = sims[rows[ok]]

    def _ranks(self) -> tuple[np.ndarray, np.ndarray]:
        """Rank of every item by natural file name and by (artist, name); computed once per content."""
        n = len(self._rel)
        if self._rank_n != n:
            keys = [_natural_key(p) for p in self._rel]
            by_name = sorted(range(n), key=keys.__getitem__)
            self._name_rank = np.empty(n, np.int64)
            self._name_rank[by_name] = np.arange(n)
            artists = [lab.get("artist", "") for lab in self._labels]
            akey = {a: _natural_key(a) for a in set(artists)}  # once per artist, not per painting
            name_rank = self._name_rank.tolist()
            by_artist = sorted(range(n), key=lambda i: (artists[i] == "", akey[artists[i]], name_rank[i]))
            self._artist_rank = np.empty(n, np.int64)
            self._artist_rank[by_artist] = np.arange(n)
            self._rank_n = n
        return self._name_rank, self._artist_rank

    def _rebuild_order(self, order: list[int] | None = None) -> None:
        self._order = self._new_order() if order is None else order
        n = len(self._rel)
        self._pos = np.full(n, -1, np.int64)
        if self._order:
            self._pos[np.asarray(self._order, np.int64)] = np.arange(len(self._order))

    def _new_order(self) -> list[int]:
        """The items to show, filtered and sorted."""
        n = len(self._rel)
        words = self.filter_text.casefold().split()
        if words:
            a = np.asarray([i for i, h in enumerate(self._haystack()) if all(w in h for w in words)], np.int64)
        else:
            a = np.arange(n, dtype=np.int64)
        mask = self._in_subset()
        if mask is not None and len(a):
            a = a[mask[a]]
        name_rank, artist_rank = self._ranks()
        key = self.sort_key
        if len(a):
            if key == "artist":
                a = a[np.argsort(artist_rank[a], kind="stable")]
            elif key == "topic":
                t = self._topic[a]
                t = np.where(t < 0, np.iinfo(np.int64).max, t)
                a = a[np.lexsort((name_rank[a], -self._tprob[a], t))]
            elif key == "similarity":
                s = np.nan_to_num(self._score[a], nan=-np.inf)
                a = a[np.lexsort((name_rank[a], -s))]
            else:
                a = a[np.argsort(name_rank[a], kind="stable")]
        return a.tolist()

    def _on_loader_thumbnail_ready(self, path: str, *_):
        prefix = f"{self.root}/"
        i = self._item_of.get(path[len(prefix):]) if path.startswith(prefix) else None
        if i is None or self._pos[i] < 0:
            return
        ix = self.index(int(self._pos[i]))
        self.dataChanged.emit(ix, ix, [Qt.ItemDataRole.DecorationRole])


class GalleryDelegate(QStyledItemDelegate):
    """Constant-size cells: thumbnail, topic dot + caption, artist line, optional score badge."""

    def __init__(self, loader: ThumbnailLoader, parent=None) -> None:
        super().__init__(parent)
        self.loader = loader
        self.thumb = DEFAULT_THUMB
        self.show_scores = False

    def set_thumb_size(self, size: int) -> None:
        self.thumb = int(size)

    def cell_size(self, option_font: QFont | None = None) -> QSize:
        from PySide6.QtGui import QFontMetrics

        fm = QFontMetrics(option_font or QFont())
        return QSize(self.thumb + 12, self.thumb + 14 + 2 * fm.height())

    def sizeHint(self, option, index) -> QSize:  # noqa: N802
        return self.cell_size(option.font)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index) -> None:
        pal = option.palette
        r = begin_card(painter, option, radius=6, selected_alpha=255)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        img = QRect(r.x() + 4, r.y() + 4, r.width() - 8, self.thumb)
        model = index.model()
        if isinstance(model, GalleryModel):
            path, caption, artist, t, score = model.cell(index.row())
        else:
            path, caption, artist = index.data(PathRole), index.data(Qt.ItemDataRole.DisplayRole), \
                index.data(SubtitleRole)
            t, score = index.data(TopicRole), index.data(ScoreRole)
        if not draw_thumbnail(painter, self.loader.pixmap(path), img, pal, inset=8):
            if self.loader.failure(path):
                painter.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
                painter.drawText(img, Qt.AlignmentFlag.AlignCenter, "unreadable")
        if self.show_scores and score is not None:
            f = QFont(option.font)
            f.setPointSizeF(max(6.0, f.pointSizeF() * 0.85))
            painter.setFont(f)
            txt = f"{score:.2f}"
            w = painter.fontMetrics().horizontalAdvance(txt) + 8
            h = painter.fontMetrics().height() + 2
            badge = QRect(img.right() - w - 2, img.top() + 2, w, h)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(0, 0, 0, 160))
            painter.drawRoundedRect(badge, 4, 4)
            painter.setPen(QColor("white"))
            painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, txt)
            painter.setFont(option.font)
        fm = painter.fontMetrics()
        y = img.bottom() + 5
        text_pen = pal.color(QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text)
        x = r.x() + 6
        if t is not None and t >= 0:
            d = max(10, int(fm.height() * 0.8))  # big enough to tell the colours apart
            painter.setPen(QPen(QColor(255, 255, 255, 220) if selected else pal.color(QPalette.ColorRole.Mid), 1))
            painter.setBrush(topic_color(t))
            painter.drawEllipse(QRect(x, y + (fm.height() - d) // 2, d, d))
            x += d + 5
        painter.setPen(text_pen)
        cap = fm.elidedText(caption or "", Qt.TextElideMode.ElideRight, r.right() - 4 - x)
        painter.drawText(QRect(x, y, r.right() - 4 - x, fm.height()), Qt.AlignmentFlag.AlignVCenter, cap)
        if artist:
            dim = QColor(text_pen)
            dim.setAlpha(170)
            painter.setPen(dim)
            a = fm.elidedText(artist, Qt.TextElideMode.ElideRight, r.width() - 12)
            painter.drawText(QRect(r.x() + 6, y + fm.height(), r.width() - 12, fm.height()),
                             Qt.AlignmentFlag.AlignVCenter, a)
        painter.restore()


class GalleryPanel(QWidget):
    """Filter box, sort menu, size slider and the grid.

    Signals:
        thumb_size_changed(int): the slider moved (persisted by the window).
        subset_cleared(): the "Map selection (N) ✕" chip was clicked (all paintings show again).
    """

    thumb_size_changed = Signal(int)
    subset_cleared = Signal()

    def __init__(self, controller, loader: ThumbnailLoader, parent=None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.model = GalleryModel(loader, self)
        self.delegate = GalleryDelegate(loader, self)
        self._syncing = False
        #: callables (menu, relpath) that add entries to a painting's context menu (e.g. Compare)
        self.context_menu_extenders: list = []

        self.filter = QLineEdit(placeholderText="Filter by file name, artist or title  (Ctrl+F)")
        self.filter.setClearButtonEnabled(True)
        self.sort = QComboBox()
        for key, text in SORTS:
            self.sort.addItem(text, key)
        self.sort.setToolTip("Sort the gallery")
        self.size_slider = QSlider(Qt.Orientation.Horizontal)
        self.size_slider.setRange(*THUMB_RANGE)
        self.size_slider.setSingleStep(THUMB_SNAP)
        self.size_slider.setPageStep(THUMB_STEP)
        self.size_slider.setFixedWidth(110)
        self.size_slider.setToolTip("Thumbnail size (Ctrl+= / Ctrl+-)")
        self.count = QLabel()
        self.count.setMinimumWidth(90)
        self.count.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.subset_chip = QToolButton()  # "Map selection (N) ✕": the gallery shows a subset
        self.subset_chip.setAutoRaise(False)
        self.subset_chip.setStyleSheet("QToolButton { border-radius: 9px; padding: 1px 8px; "
                                       "background: palette(highlight); color: palette(highlighted-text); }")
        self.subset_chip.setToolTip("The gallery shows only the paintings selected on the map — click to show all")
        self.subset_chip.hide()
        self.subset_label = ""

        self.view = QListView()
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setUniformItemSizes(True)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setLayoutMode(QListView.LayoutMode.Batched)
        self.view.setBatchSize(2000)
        self.view.setSelectionMode(QListView.SelectionMode.SingleSelection)
        self.view.setVerticalScrollMode(QListView.ScrollMode.ScrollPerPixel)
        self.view.setMouseTracking(True)
        self.view.setSpacing(0)
        self.view.setModel(self.model)
        self.view.setItemDelegate(self.delegate)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.setFrameShape(QListView.Shape.NoFrame)
        self.view.verticalScrollBar().setSingleStep(24)
        self.view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # the grid fits the width
        self.view.viewport().installEventFilter(self)

        top = QHBoxLayout()
        top.setContentsMargins(6, 6, 6, 2)
        top.addWidget(self.subset_chip)
        top.addWidget(self.filter, 1)
        top.addWidget(QLabel("Sort:"))
        top.addWidget(self.sort)
        top.addWidget(QLabel("Size:"))
        top.addWidget(self.size_slider)
        top.addWidget(self.count)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addLayout(top)
        lay.addWidget(self.view, 1)

        self._filter_timer = QTimer(self, singleShot=True, interval=150)
        self._filter_timer.timeout.connect(self._apply_filter)
        self.filter.textChanged.connect(self._filter_timer.start)
        self.sort.currentIndexChanged.connect(self._on_sort_changed)
        self.subset_chip.clicked.connect(self._on_subset_chip_clicked)
        self.size_slider.valueChanged.connect(self._on_size_slider_value_changed)
        self.view.selectionModel().currentChanged.connect(self._on_view_current_changed)
        self.view.customContextMenuRequested.connect(self._on_view_context_menu)
        self.model.modelReset.connect(self._after_reset)
        self.model.rowsInserted.connect(self._update_count)
        controller.collection_changed.connect(self._on_controller_collection_changed)
        controller.records_changed.connect(self._on_controller_records_changed)
        controller.records_added.connect(self.model.add_items)
        controller.analysis_changed.connect(self._on_controller_analysis_changed)
        controller.selection_changed.connect(self._on_controller_selection_changed)
        self.set_thumb_size(DEFAULT_THUMB)

    # ---------------------------------------------------------------- public
    def set_thumb_size(self, size: int) -> None:
        size = clamp_thumb_size(size)
        self.delegate.set_thumb_size(size)
        self._fit_grid()
        if self.size_slider.value() != size:
            self.size_slider.blockSignals(True)
            self.size_slider.setValue(size)
            self.size_slider.blockSignals(False)

    def _fit_grid(self) -> None:
        """Spread the columns over the whole width (constant cells, no ragged right margin)."""
        base = self.delegate.cell_size(self.view.font()) + QSize(6, 6)
        w = self.view.viewport().width() - 2
        if w < base.width():  # narrower than one cell: shrink the cell (never a horizontal scrollbar)
            base.setWidth(max(24, w))
        cols = max(1, w // base.width())
        grid = QSize(max(base.width(), w // cols), base.height())
        if self.view.gridSize() != grid:
            self.view.setGridSize(grid)

    def eventFilter(self, obj, ev) -> bool:  # noqa: N802
        if obj is self.view.viewport() and ev.type() == QEvent.Type.Resize:
            self._fit_grid()
        return False

    def set_sort_key(self, key: str) -> None:
        i = self.sort.findData(key)
        if i >= 0:
            self.sort.setCurrentIndex(i)

    def set_subset(self, relpaths, label: str = "Map selection") -> None:
        """Show only ``relpaths`` (None: all), with a "label (N) ✕" chip that clears it."""
        self.model.set_subset(relpaths)
        if relpaths is None:
            self.subset_chip.hide()
            self.subset_label = ""
        else:
            self.subset_label = label
            self.subset_chip.setText(f"{label} ({len(self.model.subset):,})  ✕")
            self.subset_chip.show()
        self._update_count()

    def clear_subset(self) -> None:
        if self.model.subset is not None:
            self.set_subset(None)

    def sort_by_similarity_to(self, relpath: str | None) -> None:
        self.model.set_anchor(relpath)
        self.set_sort_key("similarity")

    # ---------------------------------------------------------------- slots
    def _apply_filter(self) -> None:
        self.model.set_filter(self.filter.text())
        self.view.scrollToTop()  # a new filter starts at its first match

    def _on_sort_changed(self, _i: int) -> None:
        key = self.sort.currentData()
        self.delegate.show_scores = key == "similarity"
        if key == "similarity" and self.model.anchor is None:
            self.model.set_anchor(self.controller.current)
        self.model.set_sort(key)
        self._scroll_to_current(top=key == "similarity")

    def _on_size_slider_value_changed(self, v: int) -> None:
        v = int(round(v / THUMB_SNAP) * THUMB_SNAP)
        self.set_thumb_size(v)
        self.thumb_size_changed.emit(v)

    def _on_view_current_changed(self, cur, _prev) -> None:
        if self._syncing or not cur.isValid():
            return
        self.controller.select(self.model.relpath_at(cur.row()))

    def _on_view_context_menu(self, pos) -> None:
        ix = self.view.indexAt(pos)
        if not ix.isValid():
            return
        rel = self.model.relpath_at(ix.row())
        menu = QMenu(self)
        act = QAction("Sort by similarity to this painting", menu)
        act.triggered.connect(lambda: (self.controller.select(rel), self.sort_by_similarity_to(rel)))
        menu.addAction(act)
        for extend in self.context_menu_extenders:
            extend(menu, rel)
        menu.exec(self.view.viewport().mapToGlobal(pos))

    def _on_subset_chip_clicked(self) -> None:
        self.clear_subset()
        self.subset_cleared.emit()

    def _on_controller_collection_changed(self, col) -> None:
        self.model.anchor = None
        self.model.subset = None
        self.subset_chip.hide()
        self.filter.blockSignals(True)
        self.filter.clear()
        self.filter.blockSignals(False)
        self.model.filter_text = ""

    def _on_controller_records_changed(self) -> None:
        c = self.controller
        root = str(c.collection.root) if c.collection is not None else ""
        ok = [r for r in c.records if r.status == "ok"]
        rel, labels = [r.relpath for r in ok], [r.labels for r in ok]
        if self.model.same_items(root, rel, labels) or self.model.update_labels_in_place(root, rel, labels):
            # e.g. the check of the folder after re-opening found nothing new, or the paintings added while
            # indexing: no reset (the order on screen stays), no new layout of every item (300 ms at 10,000)
            if c.analysis is not None and getattr(self.model, "an", None) is not c.analysis:
                self.model.set_analysis(c.analysis)
            return
        self.model.set_items(root, rel, labels)
        if c.analysis is not None:
            self.model.set_analysis(c.analysis)

    def _on_controller_analysis_changed(self, an) -> None:
        self.model.set_analysis(an)

    def _on_controller_selection_changed(self, relpath) -> None:
        if self.model.sort_key == "similarity" and relpath is not None and not self.view.hasFocus():
            self.model.set_anchor(relpath)  # came from elsewhere (neighbours, heatmap, history)
        self._scroll_to_current()

    def _after_reset(self) -> None:
        self._scroll_to_current()
        self._update_count()

    def _update_count(self, *_) -> None:
        shown, total = self.model.rowCount(), self.model.total
        self.count.setText(f"{shown:,} of {total:,}" if shown != total else f"{total:,} paintings")

    def _scroll_to_current(self, top: bool = False) -> None:
        row = self.model.row_of(self.controller.current)
        self._syncing = True
        try:
            if row is None:
                self.view.selectionModel().clearCurrentIndex()
                self.view.clearSelection()
                return
            ix = self.model.index(row)
            if self.view.currentIndex() != ix:
                self.view.setCurrentIndex(ix)
            hint = QListView.ScrollHint.PositionAtTop if top else QListView.ScrollHint.EnsureVisible
            self.view.scrollTo(ix, hint)
        finally:
            self._syncing = False

