"""A small horizontal (or wrapping) strip of thumbnail cards: neighbours, a topic's top paintings.

Each card shows a thumbnail, a caption with the topic dot, a score, and optionally the stacked
"why similar" bar (deep / texture / colour shares from the core).
"""

from __future__ import annotations

from PySide6.QtCore import QAbstractListModel, QModelIndex, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import QListView, QStyledItemDelegate

from ...core.analysis.parts import PART_NAMES, PARTS
from .cards import begin_card, draw_thumbnail
from .colors import PART_COLOURS, topic_color
from .roles import PathRole, RelpathRole, ScoreRole, ScoreTextRole, SharesRole, TopicRole
from .thumbnails import ThumbnailLoader

#: thumbnail heights (px) of the strips: the default, the detail panel's neighbours, a topic's top paintings
STRIP_THUMB = 104
NEIGHBOURS_THUMB = 100
TOPIC_TOP_THUMB = 112


class Card:
    __slots__ = ("relpath", "path", "caption", "score", "score_text", "shares", "topic")

    def __init__(self, relpath: str, path: str, caption: str, score: float | None = None,
                 score_text: str = "", shares: dict | None = None, topic: int = -1) -> None:
        self.relpath, self.path, self.caption = relpath, path, caption
        self.score, self.score_text, self.shares, self.topic = score, score_text, shares, topic


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
            tip = f"<b>{c.caption}</b><br>{c.relpath}"
            if c.score_text:
                tip += f"<br>{c.score_text}"
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

    def sizeHint(self, option, index) -> QSize:  # noqa: N802
        fm = option.fontMetrics
        return QSize(self.thumb + 10, self.thumb + 16 + 2 * fm.height())

    def paint(self, painter: QPainter, option, index) -> None:
        pal = option.palette
        r = begin_card(painter, option, radius=5, selected_alpha=90)
        img = QRect(r.x() + 3, r.y() + 3, r.width() - 6, self.thumb)
        model = index.model()
        if isinstance(model, CardModel) and 0 <= index.row() < len(model.cards):  # one lookup, not six data() calls
            c = model.cards[index.row()]
            path, topic, caption, score, shares, score_text = c.path, c.topic, c.caption, c.score, c.shares, \
                c.score_text
        else:
            path, topic, caption = index.data(PathRole), index.data(TopicRole), index.data(Qt.ItemDataRole.DisplayRole)
            score, shares, score_text = index.data(ScoreRole), index.data(SharesRole), index.data(ScoreTextRole)
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


class ThumbStrip(QListView):
    """A list of cards; clicking a card emits ``card_activated(relpath)``.

    Signals:
        card_activated(str): the relpath of the clicked card.
    """

    card_activated = Signal(str)

    def __init__(self, loader: ThumbnailLoader, *, thumb: int = STRIP_THUMB, wrap: bool = False,
                 parent=None) -> None:
        super().__init__(parent)
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
        if not wrap:
            self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            fm = self.fontMetrics()
            self.setFixedHeight(thumb + 16 + 2 * fm.height() + 4 + self.horizontalScrollBar().sizeHint().height())
        self.clicked.connect(self._on_clicked)
        self.activated.connect(self._on_clicked)

    def set_cards(self, cards: list[Card]) -> None:
        self.card_model.set_cards(cards)

    def relpaths(self) -> list[str]:
        return self.card_model.relpaths()

    def _on_clicked(self, index) -> None:
        rel = index.data(RelpathRole)
        if rel:
            self.card_activated.emit(rel)
