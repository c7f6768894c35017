"""How a painting is named on screen: its caption (title, else the file stem) and the gallery's
second line. Shared by the gallery, the detail panel, the topic browser, the heatmap, the style
map and the compare dialog."""

from __future__ import annotations

from pathlib import PurePosixPath


def caption_of(relpath: str, labels: dict) -> str:
    return labels.get("title") or _stem(relpath)


def _stem(relpath: str) -> str:
    """``PurePosixPath(relpath).stem`` of an indexed relpath, without building a path object (the
    gallery asks for every painted cell)."""
    name = relpath.rstrip("/").rpartition("/")[2]
    if name in ("", ".", ".."):
        return PurePosixPath(relpath).stem
    i = name.rfind(".")
    return name[:i] if 0 < i < len(name) - 1 else name


def subtitle_of(labels: dict) -> str:
    """The artist, else "year · style" (the gallery cell's second line)."""
    return labels.get("artist") or " · ".join(x for x in (labels.get("year", ""), labels.get("style", "")) if x)
