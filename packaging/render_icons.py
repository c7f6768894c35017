"""Render resources/icons/artstyle-gui.svg to the PNG icon set (and .ico / .icns for the
Windows / macOS bundles) with QtSvg, offscreen.

    QT_QPA_PLATFORM=offscreen python3 packaging/render_icons.py

The PNGs are committed; run this again after editing the SVG.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ICONS = ROOT / "resources" / "icons"
SIZES = (16, 32, 48, 64, 128, 256, 512)


def render(svg: Path, size: int):
    from PySide6.QtCore import QRectF, Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg}: not a valid SVG")
    img = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    img.fill(Qt.GlobalColor.transparent)
    p = QPainter(img)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(p, QRectF(0, 0, size, size))
    p.end()
    return img


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 - needed for fonts/paint
    svg = ICONS / "artstyle-gui.svg"
    pngs = []
    for n in SIZES:
        out = ICONS / f"artstyle-gui-{n}.png"
        if not render(svg, n).save(str(out)):
            raise SystemExit(f"could not write {out}")
        pngs.append(out)
        print(f"wrote {out.relative_to(ROOT)}")
    from PIL import Image

    big = Image.open(ICONS / "artstyle-gui-256.png")
    big.save(ICONS / "artstyle-gui.ico", sizes=[(n, n) for n in SIZES if n <= 256])
    Image.open(ICONS / "artstyle-gui-512.png").save(ICONS / "artstyle-gui.icns")
    print("wrote resources/icons/artstyle-gui.ico, resources/icons/artstyle-gui.icns")
    return 0


if __name__ == "__main__":
    sys.exit(main())
