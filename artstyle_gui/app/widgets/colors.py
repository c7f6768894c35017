"""One topic palette for the whole app (gallery marks, bar chart, heatmap strip, topic browser), the
colours of the descriptor parts, and the small colour swatch icon of the lists."""

from __future__ import annotations

import colorsys
from collections.abc import Mapping

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPainter, QPalette, QPixmap

from ...core.analysis.parts import PART_COLOURS as CORE_PART_COLOURS

# Colour-blind-safe categorical colours (Okabe-Ito, then Paul Tol's "muted" set), ordered so that
# neighbouring topic numbers contrast. Okabe-Ito's orange, blue and reddish purple are left out: they are
# too close to the "why similar" part colours (texture #e39b2d, deep #3f6fd8, colour #cf4f8e), and so is
# grey (no topic). Beyond these, golden-angle hues (no palette stays colour-blind-safe past ~12).
_BASE = [
    "#56b4e9", "#d55e00", "#009e73", "#f0e442", "#332288", "#cc6677", "#999933", "#882255",
    "#88ccee", "#117733", "#ddcc77", "#aa4499", "#44aa99", "#1d6996", "#a6761d", "#b8e186",
]
NO_TOPIC = QColor("#9a9a9a")
#: the selected painting's line / ring: white in a black outline, which no topic colour and no value of the
#: heatmap's colour map (viridis) is
MARKER_INNER = QColor("#ffffff")
MARKER_OUTER = QColor("#000000")
HEATMAP_COLORMAP = "viridis"
#: the "why similar" colour of each descriptor part (core.analysis.parts.PARTS)
class _PartColours(Mapping):
    """{part: QColor} of the registered descriptor parts (core.analysis.parts: each part names its colour)."""

    def __getitem__(self, part: str) -> QColor:
        return QColor(CORE_PART_COLOURS[part])

    def __iter__(self):
        return iter(CORE_PART_COLOURS)

    def __len__(self) -> int:
        return len(CORE_PART_COLOURS)


PART_COLOURS: Mapping[str, QColor] = _PartColours()


def topic_color(t: int) -> QColor:
    """The colour of topic ``t`` (0-based); grey for -1 (no topic)."""
    if t is None or t < 0:
        return QColor(NO_TOPIC)
    if t < len(_BASE):
        return QColor(_BASE[t])
    # beyond the base palette: golden-angle hues at two lightness levels
    h = (0.11 + (t - len(_BASE)) * 0.618034) % 1.0
    lightness = 0.48 if t % 2 else 0.62
    r, g, b = colorsys.hls_to_rgb(h, lightness, 0.55)
    return QColor.fromRgbF(r, g, b)


def topic_colors(k: int) -> list[QColor]:
    return [topic_color(t) for t in range(k)]


def topic_rgb(k: int):
    """(k, 3) uint8 array of the topic colours (for images)."""
    import numpy as np

    return np.array([[c.red(), c.green(), c.blue()] for c in topic_colors(k)], np.uint8).reshape(k, 3)


def swatch(color: QColor, size: int = 14) -> QIcon:
    """A ``size`` px rounded square of ``color`` (the topic and legend lists)."""
    pm = QPixmap(size, size)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(color)
    p.drawRoundedRect(1, 1, size - 2, size - 2, 3, 3)
    p.end()
    return QIcon(pm)


def is_dark() -> bool:
    app = QGuiApplication.instance()
    if app is None:
        return False
    pal = app.palette()  # type: ignore[union-attr]
    return pal.color(QPalette.ColorRole.Window).lightness() < 128


def plot_colors() -> tuple[QColor, QColor]:
    """(background, foreground) for pyqtgraph plots, from the current palette."""
    app = QGuiApplication.instance()
    if app is None:
        return QColor("white"), QColor("black")
    pal = app.palette()  # type: ignore[union-attr]
    return pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.Text)


def style_plot(widget, items) -> None:
    """Give a pyqtgraph widget and its PlotItems/axes the current palette (light or dark)."""
    bg, fg = plot_colors()
    widget.setBackground(bg)
    for item in items:
        axes = [item.getAxis(n) for n in ("left", "bottom", "top", "right")] if hasattr(item, "getAxis") else [item]
        for ax in axes:
            ax.setPen(fg)
            ax.setTextPen(fg)
