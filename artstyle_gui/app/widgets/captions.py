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


def cell_texts(relpath: str, labels: dict) -> tuple[str, str]:
    """(caption, second line) of a gallery cell: the title, else the file name (with its extension when
    the stem is a bare number such as "1694"); then artist · style (else year), never repeating the
    caption."""
    cap = caption_of(relpath, labels)
    if not labels.get("title") and not any(ch.isalpha() for ch in cap):
        cap = relpath.rstrip("/").rpartition("/")[2] or cap
    parts = [labels.get("artist", ""), labels.get("style", "")]
    if not any(parts):
        parts = [labels.get("year", ""), labels.get("genre", "")]
    sub = " · ".join(x for x in dict.fromkeys(parts) if x and x != cap)
    return cap, sub or (subtitle_of(labels) if subtitle_of(labels) != cap else "")
