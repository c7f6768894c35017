"""Optional per-image labels (artist, title, year, style, ...) from a CSV file.

The CSV is only ever read, never written. It needs a path column (``path``,
``file``, ``filename``, ...) holding paths relative to the collection root
(absolute paths under the root are accepted too); every other column is kept
as a free-form label. When there is no CSV, :func:`artist_from_parent` derives
an artist name from the ``Artist_Name/painting.jpg`` folder convention.
"""

from __future__ import annotations

import csv
import io
import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

from ..errors import ArtStyleError

__all__ = ["STANDARD_COLUMNS", "Labels", "read_labels_csv", "artist_from_parent", "find_default_labels_csv",
           "warnings_summary"]

STANDARD_COLUMNS = ("artist", "title", "year", "style")
PATH_COLUMNS = ("path", "file", "filename", "file_name", "filepath", "file_path", "relpath", "image")
"""Accepted names (case-insensitive) for the column that identifies the image."""


@dataclass
class Labels:
    """Labels keyed by POSIX relpath (relative to the collection root).

    ``columns`` lists every label column except the path column: the standard
    ones present in the file first (in :data:`STANDARD_COLUMNS` order), then
    the extras in file order. Each row's dict holds only its non-empty values.
    ``warnings`` collects user-readable notes about skipped rows.
    """

    by_path: dict[str, dict[str, str]]
    columns: list[str]
    warnings: list[str] = field(default_factory=list)
    _bare: tuple[int, set[str]] | None = field(default=None, init=False, repr=False, compare=False)

    def get(self, relpath: str) -> dict[str, str] | None:
        """Labels of ``relpath``; falls back to a unique bare-file-name match.

        A row written as just ``painting.jpg`` applies to ``Monet/painting.jpg``
        when no other row has that file name.
        """
        row = self.by_path.get(relpath)
        if row is not None:
            return row
        name = posixpath.basename(relpath)
        if name and name in self._unique_bare_names():
            return self.by_path[name]
        return None

    def _unique_bare_names(self) -> set[str]:
        """Rows keyed by a bare file name that no other row shares (cached)."""
        if self._bare is None or self._bare[0] != len(self.by_path):
            counts: dict[str, int] = {}
            for key in self.by_path:
                base = posixpath.basename(key)
                counts[base] = counts.get(base, 0) + 1
            self._bare = (len(self.by_path), {k for k in self.by_path if "/" not in k and counts[k] == 1})
        return self._bare[1]


def read_labels_csv(csv_path: Path, root: Path) -> Labels:
    """Read ``csv_path``; paths are normalised to POSIX relpaths under ``root``.

    Tolerant by design: UTF-8 (with or without BOM; falls back to cp1252),
    ``,``/``;``/tab delimiters, header names in any case, missing columns and
    short rows. Rows without a usable path, outside ``root`` or repeated are
    skipped with a note in ``Labels.warnings``. Raises :class:`ArtStyleError`
    when the file cannot be read or has no path column.
    """
    csv_path = Path(csv_path)
    try:
        raw = csv_path.read_bytes()
    except OSError as exc:
        raise ArtStyleError(f"Cannot read labels file {csv_path}: {exc.strerror or exc}") from exc
    warnings: list[str] = []
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
        warnings.append(f"{csv_path.name} is not UTF-8; read it as Windows-1252")

    lines = io.StringIO(text, newline="").readlines()
    rows = _rows(lines, _guess_delimiter(text), csv_path)
    header = next(rows, (1, None))[1]
    if not header:
        raise ArtStyleError(f"Labels file {csv_path} is empty")
    names = [h.strip() for h in header]
    lowered = [n.lower() for n in names]
    path_idx = next((lowered.index(c) for c in PATH_COLUMNS if c in lowered), None)
    if path_idx is None:  # its first line is not shown (a wrong file given by mistake may hold a secret),
        known = [n for n in lowered if n in STANDARD_COLUMNS]  # only the label column names it has
        raise ArtStyleError(
            f"Labels file {csv_path} has no path column: the first line should name the columns, one of them "
            f"{', '.join(PATH_COLUMNS[:3])} (its first line has {len(names)} cell{'s' if len(names) != 1 else ''}"
            + (f", the label columns {', '.join(known)}" if known else "") + ", and no path column)"
        )

    # Standard columns are matched case-insensitively and stored lower-case;
    # extras keep their spelling. Blank and duplicate header cells are ignored.
    columns: dict[int, str] = {}
    for i, (name, low) in enumerate(zip(names, lowered)):
        key = low if low in STANDARD_COLUMNS else name
        if i != path_idx and key and key not in columns.values():
            columns[i] = key
    ordered = [c for c in STANDARD_COLUMNS if c in columns.values()]
    ordered += [c for c in columns.values() if c not in STANDARD_COLUMNS]

    root_abs = _absolute(root)
    by_path: dict[str, dict[str, str]] = {}
    for line_no, row in rows:
        if not any(cell.strip() for cell in row):
            continue
        value = row[path_idx].strip() if path_idx < len(row) else ""
        rel = _normalise_path(value, root_abs)
        if rel is None:
            warnings.append(f"line {line_no}: " + (f"{_short(value)} is not inside the collection folder"
                                                    if value else "no path, row skipped"))
            continue
        if rel in by_path:
            warnings.append(f"line {line_no}: {_short(rel)} listed again; the first row wins")
            continue
        by_path[rel] = {
            key: row[i].strip() for i, key in columns.items() if i < len(row) and row[i].strip()
        }
    return Labels(by_path=by_path, columns=ordered, warnings=warnings)


def artist_from_parent(relpath: str) -> str | None:
    """Artist guessed from the parent folder: ``Claude_Monet/x.jpg`` -> ``Claude Monet``.

    Returns ``None`` for files at the top level of the collection.
    """
    parent = PurePosixPath(relpath.replace("\\", "/")).parent.name
    name = " ".join(parent.replace("_", " ").split())
    return name or None


def find_default_labels_csv(root: Path) -> Path | None:
    """``root/labels.csv`` (any letter case) if it exists; it is only ever read."""
    candidate = Path(root) / "labels.csv"
    if candidate.is_file():
        return candidate
    try:
        with os.scandir(root) as it:
            for entry in it:
                if entry.name.lower() == "labels.csv" and entry.is_file():
                    return Path(entry.path)
    except OSError:
        return None
    return None


def warnings_summary(warnings: list[str], csv_path: object = None, shown: int = 3) -> list[str]:
    """The notes of :attr:`Labels.warnings` for the user: other notes as they are, then the skipped rows as one
    line (how many, the first ``shown`` reasons). Empty when there is nothing to say."""
    skipped = [w for w in warnings if w.startswith("line ")]
    out = [w for w in warnings if not w.startswith("line ")]
    if skipped:
        more = f"; ... and {len(skipped) - shown:,} more" if len(skipped) > shown else ""
        where = f" of the labels file {csv_path}" if csv_path else " of the labels file"
        out.append(f"{len(skipped):,} row{'s' if len(skipped) != 1 else ''}{where} skipped: "
                   + "; ".join(skipped[:shown]) + more)
    return out


def _rows(lines: list[str], delimiter: str, csv_path: Path):
    """(first line number, cells) of each row; a row the csv module cannot read (a cell over its size
    limit, a quote opened and never closed) is an :class:`ArtStyleError` naming the file and the line,
    never the content."""
    reader = csv.reader(iter(lines), delimiter=delimiter)
    start = end = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            why = str(e)
            if "field larger than field limit" in why:
                why = (f"a cell is longer than {csv.field_size_limit():,} characters (a quote \" that is "
                       "never closed makes the rest of the file one cell)")
            raise ArtStyleError(f"Labels file {csv_path}: the row starting at line {end + 1} cannot be read: "
                                f"{why}.") from None
        start, end = end + 1, reader.line_num
        yield start, row
    if end > start:  # the last row spans lines: read to the end of the file inside a quote?
        try:
            list(csv.reader(iter(lines[start - 1: end]), delimiter=delimiter, strict=True))
        except csv.Error as e:
            if "unexpected end of data" in str(e):
                raise ArtStyleError(f"Labels file {csv_path}: the row starting at line {start} opens a quote "
                                    "(\") that is never closed, so the rest of the file would be one cell. "
                                    "Close the quote (a quote inside a cell is written twice: \"\").") from None


def _short(value: str, limit: int = 80) -> str:
    """A cell quoted for a message: control characters escaped, at most ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def _guess_delimiter(text: str) -> str:
    """Judged from the header line only (cells are free text): ',' unless ';' or tab dominate."""
    header = text.split("\n", 1)[0]
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > counts[","] else ","


def _absolute(path: Path) -> str:
    """Absolute, normalised POSIX form of ``path`` (symlinks resolved when possible)."""
    try:
        resolved = Path(path).resolve()
    except OSError:
        resolved = Path(os.path.abspath(path))
    return resolved.as_posix()


def _normalise_path(value: str, root_abs: str) -> str | None:
    """CSV path cell -> POSIX relpath under the root, or ``None`` if unusable."""
    if not value:
        return None
    value = value.replace("\\", "/")
    if not value.startswith("/") and ":" not in value[:3]:  # a plain relative path (the common case: fast)
        rel = posixpath.normpath(value)
        return None if rel in (".", "") or rel == ".." or rel.startswith("../") else rel
    is_abs = value.startswith("/") or PureWindowsPath(value).is_absolute()
    if is_abs:
        candidates = {posixpath.normpath(value)}
        try:  # also compare the resolved form (symlinked roots, /private on macOS)
            candidates.add(Path(value).resolve().as_posix())
        except OSError:
            pass
        for cand in candidates:
            for base in {root_abs, posixpath.normpath(root_abs)}:
                prefix = base.rstrip("/") + "/"
                if cand.startswith(prefix) or (os.name == "nt" and cand.lower().startswith(prefix.lower())):
                    return cand[len(prefix):] or None
        return None
    rel = posixpath.normpath(value)
    if rel in (".", "") or rel == ".." or rel.startswith("../"):
        return None
    return rel
