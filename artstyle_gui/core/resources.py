"""Locate bundled resources (the sample collection, icons) in a source tree or an install."""

from __future__ import annotations

import sys
from pathlib import Path

_PKG = Path(__file__).resolve().parent.parent


def resources_dir() -> Path:
    candidates = [
        _PKG / "_resources",  # wheel / frozen bundle (packaging copies resources/ here)
        _PKG.parent / "resources",  # source checkout / editable install
    ]
    if getattr(sys, "_MEIPASS", None):  # PyInstaller
        candidates.insert(0, Path(sys._MEIPASS) / "resources")  # type: ignore[attr-defined]
    for c in candidates:
        if c.is_dir():
            return c
    return candidates[-1]


def sample_collection() -> Path:
    return resources_dir() / "sample_paintings"


ICON_SIZES = (16, 32, 48, 64, 128, 256, 512)


def icons_dir() -> Path:
    return resources_dir() / "icons"


def app_icon_files() -> list[Path]:
    """The app icon: the SVG (if present) and the PNG renders, smallest first."""
    d = icons_dir()
    files = [d / f"artstyle-gui-{n}.png" for n in ICON_SIZES]
    return [p for p in [d / "artstyle-gui.svg", *files] if p.is_file()]
