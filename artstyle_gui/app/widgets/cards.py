"""Painting of one thumbnail card, shared by the gallery and the thumbnail strips."""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QPainter, QPalette, QPixmap, QTransform
from PySide6.QtWidgets import QStyle, QStyleOptionViewItem

#: placeholder shapes, drawn once per size/colour: an antialiased rounded rectangle cost 0.6 ms a
#: cell, a third of a gallery repaint while the thumbnails load (docs/benchmarks.md)
_placeholders: dict[tuple, QPixmap] = {}


def begin_card(painter: QPainter, option: QStyleOptionViewItem, *, radius: int, selected_alpha: int) -> QRect:
    """Save the painter, turn on smooth rendering, draw the selection/hover background;
    return the card rectangle (the item rect inset by 2 px)."""
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    r = option.rect.adjusted(2, 2, -2, -2)
    selected = bool(option.state & QStyle.StateFlag.State_Selected)
    hover = bool(option.state & QStyle.StateFlag.State_MouseOver)
    if selected or hover:
        c = QColor(option.palette.color(QPalette.ColorRole.Highlight))
        c.setAlpha(selected_alpha if selected else 45)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(c)
        painter.drawRoundedRect(r, radius, radius)
    return r


def draw_thumbnail(painter: QPainter, pm: QPixmap | None, area: QRect, palette: QPalette, *, inset: int) -> bool:
    """Draw ``pm`` fitted and centred in ``area``; without one, a faint placeholder inset by
    ``inset`` px. Returns whether a picture was drawn."""
    if pm is not None and not pm.isNull():
        s = pm.size().scaled(area.size(), Qt.AspectRatioMode.KeepAspectRatio)
        target = QRect(0, 0, s.width(), s.height())
        target.moveCenter(area.center())
        painter.drawPixmap(target, pm)
        return True
    bg = QColor(palette.color(QPalette.ColorRole.Text))
    bg.setAlpha(18)
    r = area.adjusted(inset, inset, -inset, -inset)
    dev = painter.device()
    dpr = dev.devicePixelRatioF() if dev is not None else 1.0
    if r.width() <= 0 or r.height() <= 0 or painter.transform().type().value > QTransform.TransformationType.TxTranslate.value:
        painter.setPen(Qt.PenStyle.NoPen)  # (a scaled painter: draw it, as a cached shape would blur)
        painter.setBrush(bg)
        painter.drawRoundedRect(r, 4, 4)
        return False
    key = (r.width(), r.height(), bg.rgba(), dpr)
    pm = _placeholders.get(key)
    if pm is None:
        if len(_placeholders) > 64:
            _placeholders.clear()
        pm = QPixmap(round(r.width() * dpr), round(r.height() * dpr))
        pm.setDevicePixelRatio(dpr)
        pm.fill(Qt.GlobalColor.transparent)
        p = QPainter(pm)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(bg)
        p.drawRoundedRect(QRect(0, 0, r.width(), r.height()), 4, 4)
        p.end()
        _placeholders[key] = pm
    painter.drawPixmap(r.topLeft(), pm)
    return False
