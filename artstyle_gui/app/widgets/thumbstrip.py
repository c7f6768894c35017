"""A small horizontal (or wrapping) strip of thumbnail cards: neighbours, a topic's top paintings.

Each card shows a thumbnail, a caption with the topic dot, a score, and optionally the stacked
"why similar" bar (deep / texture / colour shares from the core).
"""

from __future__ import annotations

import html

from PySide6.QtCore import QAbstractListModel, QModelIndex, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import QListView, QSizePolicy, QStyledItemDelegate

from ...core.analysis.parts import PART_NAMES, PARTS
from .cards import begin_card, draw_thumbnail
from .colors import PART_COLOURS, topic_color
from .roles import PathRole, RelpathRole, ScoreRole, ScoreTextRole, SharesRole, TopicRole
from .thumbnails import ThumbnailLoader

#: thumbnail heights (px) of the strips: the default, the detail panel's neighbours, a topic's top paintings
STRIP_THUMB = 104
NEIGHBOURS_THUMB = 64
TOPIC_TOP_THUMB = 112


#: the narrowest card of a grid strip (px): the grid shows as many columns as fit
GRID_CARD_MIN_WIDTH = 84
#: at most this many columns in a grid strip (wider panels get wider cards)
GRID_MAX_COLUMNS = 6


class Card:
    """One card. ``score_text`` is what the card shows for the score (e.g. "very close");
    ``score_tip`` explains it in the tooltip; ``subtitle`` is the second line (artist / style)."""

    __slots__ = ("relpath", "path", "caption", "score", "score_text", "shares", "topic", "subtitle", "score_tip")

    def __init__(self, relpath: str, path: str, caption: str, score: float | None = None,
                 score_text: str = "", shares: dict | None = None, topic: int = -1, subtitle: str = "",
                 score_tip: str = "") -> None:
        self.relpath, self.path, self.caption = relpath, path, caption
        self.score, self.score_text, self.shares, self.topic = score, score_text, shares, topic
        self.subtitle, self.score_tip = subtitle, score_tip


class CardModel(QAbstractListModel):
    def __init__(self, loader: ThumbnailLoader, parent=None) -> None:
        super().__init__(parent)
        self.cards: list[Card] = []
        loader.thumbnail_ready.connect(self._on_loader_thumbnail_ready)
        loader.thumbnail_failed.connect(self._on_loader_thumbnail_ready)

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.cards)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self.cards):
            return None
        c = self.cards[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return c.caption
        if role == RelpathRole:
            return c.relpath
        if role == PathRole:
            return c.path
        if role == ScoreRole:
            return c.score
        if role == TopicRole:
            return c.topic
        if role == SharesRole:
            return c.shares
        if role == ScoreTextRole:
            return c.score_text
        if role == Qt.ItemDataRole.ToolTipRole:
            tip = f"<b>{html.escape(c.caption)}</b>"
            if c.subtitle:
                tip += f"<br>{html.escape(c.subtitle)}"
            tip += f"<br>{html.escape(c.relpath)}"
            if c.score_text:
                tip += f"<br>{html.escape(c.score_text)}"
            if c.score_tip:
                tip += f"<br><i>{html.escape(c.score_tip)}</i>"
            if c.shares:
                tip += "<br>why similar: " + ", ".join(f"{PART_NAMES[p]} {v:.0%}" for p, v in c.shares.items())
            return tip
        return None

    def set_cards(self, cards: list[Card]) -> None:
        self.beginResetModel()
        self.cards = list(cards)
        self.endResetModel()

    def relpaths(self) -> list[str]:
        return [c.relpath for c in self.cards]

    def _on_loader_thumbnail_ready(self, path: str, *_) -> None:
        for i, c in enumerate(self.cards):
            if c.path == path:
                ix = self.index(i)
                self.dataChanged.emit(ix, ix, [Qt.ItemDataRole.DecorationRole])


class CardDelegate(QStyledItemDelegate):
    def __init__(self, loader: ThumbnailLoader, thumb: int = STRIP_THUMB, parent=None) -> None:
        super().__init__(parent)
        self.loader = loader
        self.thumb = thumb
        self.cell: QSize | None = None  # a grid strip's cell size (set by the strip as it resizes)

    def grid_card_height(self, fm) -> int:
        """A grid card: thumbnail, then caption, artist/style, the similarity word, the "why" bar."""
        return self.thumb + 18 + 4 * fm.height()

    def sizeHint(self, option, index) -> QSize:  # noqa: N802
        if self.cell is not None:
            return QSize(self.cell)
        fm = option.fontMetrics
        return QSize(self.thumb + 10, self.thumb + 16 + 2 * fm.height())

    def paint(self, painter: QPainter, option, index) -> None:
        pal = option.palette
        r = begin_card(painter, option, radius=5, selected_alpha=90)
        img = QRect(r.x() + 3, r.y() + 3, r.width() - 6, self.thumb)
        model = index.model()
        subtitle = ""
        if isinstance(model, CardModel) and 0 <= index.row() < len(model.cards):  # one lookup, not six data() calls
            c = model.cards[index.row()]
            path, topic, caption, score, shares, score_text = c.path, c.topic, c.caption, c.score, c.shares, \
                c.score_text
            subtitle = c.subtitle
        else:
            path, topic, caption = index.data(PathRole), index.data(TopicRole), index.data(Qt.ItemDataRole.DisplayRole)
            score, shares, score_text = index.data(ScoreRole), index.data(SharesRole), index.data(ScoreTextRole)
        if self.cell is not None:
            self._paint_grid_text(painter, pal, r, img, path, topic, caption, subtitle, score_text, shares)
            painter.restore()
            return
        draw_thumbnail(painter, self.loader.pixmap(path) if path else None, img, pal, inset=6)
        fm = painter.fontMetrics()
        y = img.bottom() + 4
        x = r.x() + 4
        if topic is not None and topic >= 0:
            d = max(7, fm.height() // 2 - 1)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(topic_color(topic))
            painter.drawEllipse(QRect(x, y + (fm.height() - d) // 2, d, d))
            x += d + 4
        painter.setPen(pal.color(QPalette.ColorRole.Text))
        right = r.right() - 3
        cap = fm.elidedText(caption or "", Qt.TextElideMode.ElideRight, right - x)
        painter.drawText(QRect(x, y, right - x, fm.height()), Qt.AlignmentFlag.AlignVCenter, cap)
        y2 = y + fm.height() + 1
        left = r.x() + 4
        if score is not None and not shares:  # no "why" bar: say what the number is
            dim = QColor(pal.color(QPalette.ColorRole.Text))
            dim.setAlpha(170)
            painter.setPen(dim)
            txt = fm.elidedText(score_text or f"{score:.2f}", Qt.TextElideMode.ElideRight,
                                right - left)
            painter.drawText(QRect(left, y2, right - left, fm.height()), Qt.AlignmentFlag.AlignVCenter, txt)
            score = None
        if score is not None:
            st = f"{score:.2f}"
            f = painter.font()
            f.setBold(True)
            painter.setFont(f)
            sw = painter.fontMetrics().horizontalAdvance(st)
            painter.drawText(QRect(left, y2, sw + 2, fm.height()), Qt.AlignmentFlag.AlignVCenter, st)
            f.setBold(False)
            painter.setFont(f)
            left += sw + 6
        if shares:
            h = max(6, fm.height() // 2)
            bar = QRectF(left, y2 + (fm.height() - h) / 2, right - left, h)
            bx = bar.x()
            for part in PARTS:
                w = bar.width() * float(shares.get(part, 0.0))
                if w > 0:
                    painter.setPen(Qt.PenStyle.NoPen)
                    painter.setBrush(PART_COLOURS[part])
                    painter.drawRect(QRectF(bx, bar.y(), w, bar.height()))
                    bx += w
        painter.restore()

    def _paint_grid_text(self, painter: QPainter, pal, r: QRect, img: QRect, path, topic, caption: str,
                         subtitle: str, score_text: str, shares) -> None:
        """A grid card: the thumbnail, then one line each for the caption (with the topic dot), the
        artist/style, the similarity in words and the deep/texture/colour split as a labelled bar."""
        draw_thumbnail(painter, self.loader.pixmap(path) if path else None, img, pal, inset=6)
        fm = painter.fontMetrics()
        fh = fm.height()
        left, right = r.x() + 4, r.right() - 3
        y = img.bottom() + 4
        x = left
        if topic is not None and topic >= 0:
            d = max(7, fh // 2 - 1)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(topic_color(topic))
            painter.drawEllipse(QRect(x, y + (fh - d) // 2, d, d))
            x += d + 4
        text = pal.color(QPalette.ColorRole.Text)
        dim = QColor(text)
        dim.setAlpha(170)
        painter.setPen(text)
        painter.drawText(QRect(x, y, right - x, fh), Qt.AlignmentFlag.AlignVCenter,
                         fm.elidedText(caption or "", Qt.TextElideMode.ElideRight, right - x))
        y += fh
        painter.setPen(dim)
        painter.drawText(QRect(left, y, right - left, fh), Qt.AlignmentFlag.AlignVCenter,
                         fm.elidedText(subtitle or "", Qt.TextElideMode.ElideRight, right - left))
        y += fh
        if score_text:
            f = painter.font()
            f.setBold(True)
            painter.setFont(f)
            painter.setPen(text)
            painter.drawText(QRect(left, y, right - left, fh), Qt.AlignmentFlag.AlignVCenter,
                             painter.fontMetrics().elidedText(score_text, Qt.TextElideMode.ElideRight, right - left))
            f.setBold(False)
            painter.setFont(f)
        y += fh + 2
        if shares:
            bar = QRectF(left, y, right - left, fh)
            bx = bar.x()
            sf = painter.font()
            sf.setPointSizeF(max(6.0, sf.pointSizeF() * 0.8))
            painter.setFont(sf)
            sfm = painter.fontMetrics()
            for part in PARTS:
                share = float(shares.get(part, 0.0))
                w = bar.width() * share
                if w <= 0:
                    continue
                seg = QRectF(bx, bar.y(), w, bar.height())
                painter.setPen(Qt.PenStyle.NoPen)
                painter.setBrush(PART_COLOURS[part])
                painter.drawRect(seg)
                label = f"{share:.0%}"
                if sfm.horizontalAdvance(label) + 2 <= w:  # the share, where the segment has room
                    painter.setPen(QColor("white"))
                    painter.drawText(seg, Qt.AlignmentFlag.AlignCenter, label)
                bx += w


class ThumbStrip(QListView):
    """A list of cards; clicking a card emits ``card_activated(relpath)``.

    Signals:
        card_activated(str): the relpath of the clicked card.
    """

    card_activated = Signal(str)

    def __init__(self, loader: ThumbnailLoader, *, thumb: int = STRIP_THUMB, wrap: bool = False,
                 grid: bool = False, parent=None) -> None:
        """``wrap``: the cards wrap and scroll vertically; ``grid``: every card is shown in as many
        columns as fit (at most ``GRID_MAX_COLUMNS``, cards widened to fill the width), never
        scrolling: the strip's height follows its width (``heightForWidth``), for a scroll area."""
        super().__init__(parent)
        self.grid = grid
        self.card_model = CardModel(loader, self)
        self.card_delegate = CardDelegate(loader, thumb, self)
        self.setModel(self.card_model)
        self.setItemDelegate(self.card_delegate)
        self.setViewMode(QListView.ViewMode.ListMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(wrap)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(True)
        self.setMouseTracking(True)
        self.setSelectionMode(QListView.SelectionMode.SingleSelection)
        self.setHorizontalScrollMode(QListView.ScrollMode.ScrollPerPixel)
        self.setVerticalScrollMode(QListView.ScrollMode.ScrollPerPixel)
        self.setFrameShape(QListView.Shape.NoFrame)
        if grid:
            self.setWrapping(True)
            self.setUniformItemSizes(False)  # the cell size changes with the width
            self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            sp = QSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)  # (Fixed would cap it)
            sp.setHeightForWidth(True)
            self.setSizePolicy(sp)
            self.card_delegate.cell = self._cell_for(GRID_CARD_MIN_WIDTH * GRID_MAX_COLUMNS)
            self.setGridSize(self.card_delegate.cell)
            self.card_model.modelReset.connect(self.updateGeometry)
        elif not wrap:
            self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            fm = self.fontMetrics()
            self.setFixedHeight(thumb + 16 + 2 * fm.height() + 4 + self.horizontalScrollBar().sizeHint().height())
        self.clicked.connect(self._on_clicked)
        self.activated.connect(self._on_clicked)

    def set_cards(self, cards: list[Card]) -> None:
        self.card_model.set_cards(cards)

    # ---------------------------------------------------------------- grid: the height follows the width
    def columns_for(self, width: int) -> int:
        return max(1, min(GRID_MAX_COLUMNS, width // GRID_CARD_MIN_WIDTH))

    def _cell_for(self, width: int) -> QSize:
        cols = self.columns_for(width)
        return QSize(max(GRID_CARD_MIN_WIDTH // 2, width // cols),
                     self.card_delegate.grid_card_height(self.fontMetrics()))

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return self.grid

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        if not self.grid:
            return super().heightForWidth(width)
        n = self.card_model.rowCount()
        rows = max(1, -(-n // self.columns_for(width)))
        return rows * self._cell_for(width).height() + 2 * self.frameWidth()

    def sizeHint(self) -> QSize:  # noqa: N802
        if not self.grid:
            return super().sizeHint()
        w = GRID_CARD_MIN_WIDTH * GRID_MAX_COLUMNS
        return QSize(w, self.heightForWidth(w))

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        if not self.grid:
            return super().minimumSizeHint()
        return QSize(GRID_CARD_MIN_WIDTH, self._cell_for(GRID_CARD_MIN_WIDTH).height())

    def resizeEvent(self, ev) -> None:  # noqa: N802
        if self.grid:
            cell = self._cell_for(self.viewport().width())
            if cell != self.card_delegate.cell:
                self.card_delegate.cell = cell
                self.setGridSize(cell)
        super().resizeEvent(ev)

    def relpaths(self) -> list[str]:
        return self.card_model.relpaths()

    def _on_clicked(self, index) -> None:
        rel = index.data(RelpathRole)
        if rel:
            self.card_activated.emit(rel)
