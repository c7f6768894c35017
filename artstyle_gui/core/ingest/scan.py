"""Fast, deterministic discovery of image files below a collection folder.

:func:`iter_image_files` walks the tree with :func:`os.scandir` (one system
call per directory; cached ``DirEntry`` types avoid a ``stat`` per non-image
file), yields files in a stable order (entries sorted by name, depth first),
skips hidden names, follows symbolic links that stay inside the collection
folder without ever looping (links that lead outside it only when asked:
``Settings.follow_links``), and reports unreadable folders, broken links,
loops and links left outside through a callback instead of failing.

File names that are not valid UTF-8 on POSIX arrive from ``os.scandir`` as
``str`` with surrogate escapes (PEP 383); they are kept as such, so
``root / relpath`` still opens the right file. Relative paths always use ``/``.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import ArtStyleError
from .imageio import IMAGE_EXTENSIONS

__all__ = ["ScannedFile", "iter_image_files"]


@dataclass(frozen=True)
class ScannedFile:
    """One image file: ``relpath`` is POSIX-style and relative to the scan root."""

    relpath: str
    size: int
    mtime_ns: int


def iter_image_files(
    root: Path,
    *,
    extensions: Iterable[str] = IMAGE_EXTENSIONS,
    follow_symlinks: bool = True,
    follow_outside_links: bool = False,
    on_error: Callable[[str, str], None] | None = None,
) -> Iterator[ScannedFile]:
    """Yield every image file below ``root`` in deterministic order.

    * Extensions match case-insensitively (``.JPG`` counts as ``.jpg``).
    * Files and folders whose name starts with ``.`` are skipped.
    * With ``follow_symlinks`` symbolic links to files and folders are
      followed when their target (resolved: :func:`os.path.realpath`) lies
      inside ``root``; a link that leads outside it is skipped and reported
      (``on_error(relpath, "symbolic link leads outside the collection ...")``)
      unless ``follow_outside_links`` (``ln -s / everything`` must not index
      the whole file system). Each real folder (``st_dev``, ``st_ino``) is
      scanned at most once, so link loops terminate and aliases give no
      duplicates. Without ``follow_symlinks``, symbolic links are ignored
      altogether.
    * Problems below the root (unreadable folder, broken link, file vanished
      during the scan) are reported as ``on_error(relpath, reason)`` and
      skipped. A root that is missing, not a folder or unreadable raises
      :class:`ArtStyleError`.
    """
    exts = frozenset(e.lower() if e.startswith(".") else "." + e.lower() for e in extensions)
    report = on_error or (lambda _rel, _reason: None)
    root_str = os.fspath(root)
    try:
        root_stat = os.stat(root_str)
    except FileNotFoundError as exc:
        raise ArtStyleError(f"Folder not found: {root_str}") from exc
    except OSError as exc:
        raise ArtStyleError(f"Cannot open folder {root_str}: {exc.strerror or exc}") from exc
    if not stat.S_ISDIR(root_stat.st_mode):
        raise ArtStyleError(f"Not a folder: {root_str}")
    try:
        root_entries = _sorted_entries(root_str)
    except OSError as exc:
        raise ArtStyleError(f"Cannot read folder {root_str}: {_reason(exc)}") from exc

    visited = {(root_stat.st_dev, root_stat.st_ino)}
    root_real = os.path.normcase(os.path.realpath(root_str))

    def outside(path: str) -> str | None:
        """The target of the link at ``path`` when it lies outside the root (None: inside)."""
        if follow_outside_links:
            return None
        real = os.path.realpath(path)
        try:
            if os.path.commonpath([root_real, os.path.normcase(real)]) == root_real:
                return None
        except ValueError:  # another drive (Windows)
            pass
        return real

    # Depth-first with an explicit stack (no recursion limit on deep trees):
    # each frame is (relative prefix, iterator over that folder's sorted entries).
    stack: list[tuple[str, Iterator[os.DirEntry[str]]]] = [("", iter(root_entries))]
    while stack:
        prefix, entries = stack[-1]
        entry = next(entries, None)
        if entry is None:
            stack.pop()
            continue
        name = entry.name
        if name.startswith("."):
            continue
        rel = prefix + name
        try:
            is_link = entry.is_symlink() or _is_junction(entry)
            if is_link and not follow_symlinks:
                continue
            is_dir = entry.is_dir(follow_symlinks=True)
        except OSError as exc:
            report(rel, _reason(exc))
            continue
        if is_dir:
            try:  # os.stat, not entry.stat: on Windows DirEntry.stat() leaves st_ino at 0
                st = os.stat(entry.path)
            except OSError as exc:
                report(rel, _reason(exc))
                continue
            if is_link and (target := outside(entry.path)) is not None:
                report(rel, _outside_reason(target, "folder"))
                continue
            key = (st.st_dev, st.st_ino)
            if key in visited:
                continue  # symlink loop or a second link to an already scanned folder
            visited.add(key)
            try:
                children = _sorted_entries(entry.path)
            except OSError as exc:
                report(rel, _reason(exc))
                continue
            stack.append((rel + "/", iter(children)))
            continue
        if os.path.splitext(name)[1].lower() not in exts:
            continue
        try:
            st = entry.stat(follow_symlinks=True)
        except FileNotFoundError:
            report(rel, "broken symbolic link" if is_link else "file vanished during the scan")
            continue
        except OSError as exc:
            report(rel, _reason(exc))
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        if is_link and (target := outside(entry.path)) is not None:
            report(rel, _outside_reason(target, "file"))
            continue
        yield ScannedFile(rel, st.st_size, st.st_mtime_ns)


def _is_junction(entry: os.DirEntry[str]) -> bool:
    """A Windows junction (a link to a folder that is not a symbolic link; Python >= 3.12 tells)."""
    is_junction = getattr(entry, "is_junction", None)
    return bool(is_junction and is_junction())


def _outside_reason(target: str, what: str) -> str:
    return (f"symbolic link leads outside the collection (to the {what} {target}): not followed; "
            "the follow-links setting follows it")


def _sorted_entries(path: str) -> list[os.DirEntry[str]]:
    """All entries of ``path``, sorted by name (code-point order, deterministic)."""
    with os.scandir(path) as it:
        return sorted(it, key=lambda e: e.name)


def _reason(exc: OSError) -> str:
    """Short user-readable reason for a file-system error."""
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, FileNotFoundError):
        return "vanished during the scan"
    if isinstance(exc, NotADirectoryError):
        return "not a folder"
    if exc.errno == errno.ELOOP:
        return "symbolic link loop"
    return exc.strerror or str(exc) or type(exc).__name__
