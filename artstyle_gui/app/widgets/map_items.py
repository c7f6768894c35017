"""Graphics pieces of the style map (app/views/stylemap.py): the scatter that stays fast at 50,000
points, the view box with Shift+drag area selection, thumbnails drawn at the points, the hover card."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QFrame, QGraphicsItem, QGraphicsRectItem, QHBoxLayout, QLabel, QWidget

import pyqtgraph as pg  # after PySide6

from .colors import MARKER_INNER, MARKER_OUTER, NO_TOPIC

SELECTED = QColor(61, 125, 216)


def point_size(n: int) -> int:
    return 9 if n < 500 else 7 if n < 5000 else 5 if n < 25000 else 4


class FastScatter(pg.ScatterPlotItem):
    """A pxMode scatter whose points all share one style (set as the item's default symbol, size,
    pen and brush, never per point).  pyqtgraph looks the symbol up in its atlas with a Python key
    per point (150 ms for 50,000 points); here it is looked up once and broadcast."""

    def updateSpots(self, dataSet=None) -> None:  # noqa: N802, N803 - pyqtgraph's names
        if dataSet is None:
            dataSet = self.data
        if not (self.opts["pxMode"] and self.opts["useCache"]) or len(dataSet) == 0:
            super().updateSpots(dataSet)
            return
        mask = dataSet["sourceRect"]["w"] == 0
        if np.any(mask):
            first = np.flatnonzero(mask)[:1]
            style = list(zip(*self._style(["symbol", "size", "pen", "brush"], data=dataSet, idx=first)))
            dataSet["sourceRect"][mask] = self.fragmentAtlas[style][0]
            self.invalidate()
        self._updateMaxSpotSizes(data=dataSet)


class MapViewBox(pg.ViewBox):
    """Wheel zooms, drag pans; Shift+drag (or any drag in select mode) draws a selection rectangle.

    Signals:
        area_dragged(QRectF): a selection rectangle in view coordinates (on release).
    """

    area_dragged = Signal(object)

    def __init__(self) -> None:
        super().__init__(enableMenu=False)
        self.select_mode = False
        self.band = QGraphicsRectItem()
        pen = QPen(SELECTED, 0)
        pen.setCosmetic(True)
        pen.setWidth(1)
        self.band.setPen(pen)
        self.band.setBrush(QColor(SELECTED.red(), SELECTED.green(), SELECTED.blue(), 40))
        self.band.setZValue(1e9)
        self.band.hide()
        self.addItem(self.band, ignoreBounds=True)

    def mouseDragEvent(self, ev, axis=None) -> None:  # noqa: N802
        if ev.button() == Qt.MouseButton.LeftButton and (
                self.select_mode or ev.modifiers() & Qt.KeyboardModifier.ShiftModifier):
            ev.accept()
            a = self.mapSceneToView(ev.buttonDownScenePos())
            b = self.mapSceneToView(ev.scenePos())
            r = QRectF(a, b).normalized()
            if ev.isFinish():
                self.band.hide()
                self.area_dragged.emit(r)
            else:
                self.band.setRect(r)
                self.band.show()
            return
        super().mouseDragEvent(ev, axis)


class ThumbItem(QGraphicsItem):
    """A thumbnail drawn at a point, a constant size on screen, framed in its group's colour."""

    def __init__(self) -> None:
        super().__init__()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.setZValue(10)
        self.pm: QPixmap | None = None
        self.side = 64.0
        self.colour = QColor(NO_TOPIC)
        self.current = False  # the selected painting: a thicker red frame, above the others
        self.selected = False  # inside the area selection: a blue frame
        self._rect = QRectF(-32, -32, 64, 64)

    def set_selected(self, on: bool) -> None:
        if on != self.selected:
            self.selected = on
            self.update()

    def set_current(self, on: bool) -> None:
        if on != self.current:
            self.current = on
            self.setZValue(15 if on else 10)
            self.update()

    def set_content(self, pm: QPixmap, side: float, colour: QColor) -> None:
        s = QSize(pm.width(), pm.height()).scaled(QSize(int(side), int(side)), Qt.AspectRatioMode.KeepAspectRatio)
        r = QRectF(-s.width() / 2, -s.height() / 2, s.width(), s.height())
        if r != self._rect:
            self.prepareGeometryChange()
            self._rect = r
        self.pm, self.side, self.colour = pm, side, colour
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802
        return self._rect.adjusted(-4, -4, 4, 4)

    def paint(self, p: QPainter, _opt, _w=None) -> None:
        if self.pm is None:
            return
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        p.drawPixmap(self._rect, self.pm, QRectF(self.pm.rect()))
        p.setBrush(Qt.BrushStyle.NoBrush)
        if self.current:  # the selected painting: a halo no topic colour has (white in a black outline)
            p.setPen(QPen(MARKER_OUTER, 7))
            p.drawRect(self._rect)
            p.setPen(QPen(MARKER_INNER, 3))
            p.drawRect(self._rect)
            return
        p.setPen(QPen(SELECTED, 4) if self.selected else QPen(self.colour, 2))
        p.drawRect(self._rect)


class HoverCard(QFrame):
    """The painting under the mouse: thumbnail, caption, path (a floating frame over the plot)."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        pal = self.palette()
        pal.setColor(QPalette.ColorRole.Window, pal.color(QPalette.ColorRole.ToolTipBase))
        pal.setColor(QPalette.ColorRole.WindowText, pal.color(QPalette.ColorRole.ToolTipText))
        self.setPalette(pal)
        self.image = QLabel()
        self.image.setFixedSize(160, 160)
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.text = QLabel()
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.text.setWordWrap(True)
        self.text.setMinimumWidth(140)
        self.text.setMaximumWidth(260)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 6, 8, 6)
        lay.addWidget(self.image, 0, Qt.AlignmentFlag.AlignTop)
        lay.addWidget(self.text, 0, Qt.AlignmentFlag.AlignTop)
        lay.setSizeConstraint(QHBoxLayout.SizeConstraint.SetFixedSize)
        self.path: str | None = None
        self.hide()

    def set_pixmap(self, pm: QPixmap | None) -> None:
        if pm is None or pm.isNull():
            self.image.setFixedSize(64, 64)
            self.image.setText("…")
            return
        scaled = pm.scaled(QSize(160, 160), Qt.AspectRatioMode.KeepAspectRatio,
                           Qt.TransformationMode.SmoothTransformation)
        self.image.setFixedSize(scaled.size())
        self.image.setPixmap(scaled)
        self.adjustSize()

    def place(self, at, area) -> None:
        """Show the card beside the point ``at`` (QPoint/QPointF in the parent), wholly inside ``area``
        (QRect of the parent): right of the point, else left, else clamped; a narrow view narrows the text."""
        room = max(120, area.width() - self.image.width() - 30)
        if self.text.maximumWidth() != min(260, room):
            self.text.setMaximumWidth(min(260, room))
            self.text.setMinimumWidth(min(140, room))
        lay = self.layout()
        if lay is not None:
            lay.activate()
        self.adjustSize()
        w, h = self.width(), self.height()
        x = at.x() + 18
        if x + w > area.right() + 1:
            x = at.x() - 18 - w
        x = min(max(area.left(), x), area.right() + 1 - w)
        y = min(max(area.top(), at.y() + 18), area.bottom() + 1 - h)
        self.move(int(max(area.left(), x)), int(max(area.top(), y)))
