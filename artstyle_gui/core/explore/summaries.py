"""Topic (cluster) summaries and CSV/JSON export with provenance."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ... import __version__
from ..errors import ArtStyleError
from ..ingest.store import atomic_write_bytes
from ..model import Analysis

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# what a spreadsheet may take as the start of a formula (the full-width forms too: some Excel locales convert
# them), once the leading characters an importer may drop (white space, control and format characters) are gone
_FORMULA_CHARS = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
# escaped by escape_text: the backslash (the escape character), C0 and C1 control characters, DEL, the Unicode
# line and paragraph separators, and lone surrogates (a file name that is not valid UTF-8, PEP 383)
_NEEDS_ESCAPE = re.compile("[\\\\\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_ESCAPE = re.compile(r"\\(\\|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4})")
_ESCAPE_START = re.compile(r"\\|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}")  # what makes a backslash before it an escape


def _escape_char(ch: str) -> str:
    o = ord(ch)
    if 0xDC80 <= o <= 0xDCFF:  # surrogateescape: the raw byte of a name that is not UTF-8
        return f"\\x{o - 0xDC00:02x}"
    if o < 0x20 or o == 0x7F:
        return f"\\x{o:02x}"
    return f"\\u{o:04x}"  # C1 controls, U+2028/U+2029, other lone surrogates


def _unescape_seq(m: re.Match) -> str:
    s = m.group(1)
    if s == "\\":
        return "\\"
    n = int(s[1:], 16)
    if s[0] == "x":
        return chr(n) if n < 0x80 else chr(0xDC00 + n)  # \x80-\xff: a raw byte (surrogate-escaped)
    return chr(n)


def escape_text(s: str) -> str:
    """``s`` with every control character and every byte that is not UTF-8 as a visible, reversible escape:

    - C0 control characters and DEL become ``\\xHH`` (a carriage return: ``\\x0d``, a newline ``\\x0a``);
    - a byte of a file name that is not valid UTF-8 (Python's surrogate escape ``\\udcHH``, PEP 383) becomes
      ``\\xHH``: the byte itself, 0x80-0xFF, so ``caf\\xe9.jpg`` is the Latin-1 name ``café.jpg``;
    - C1 control characters, U+2028, U+2029 and other lone surrogates become ``\\uHHHH``;
    - a backslash becomes ``\\\\`` only where it would otherwise read as the start of an escape (before
      another backslash, or before ``x`` and two hex digits or ``u`` and four): ``C:\\Users\\Ann`` and other
      text with backslashes stays as it is.

    Everything else is kept, so ordinary text (any script, emoji) reads as it is. The result is valid
    Unicode (encodes to UTF-8) and holds no line break. :func:`unescape_text` is the exact inverse."""
    if not _NEEDS_ESCAPE.search(s):
        return s
    pieces: list[str] = []  # right to left: whether a backslash is doubled depends on what follows it
    tail = ""
    for ch in reversed(s):
        if ch == "\\":
            piece = "\\\\" if _ESCAPE_START.match(tail) else "\\"
        elif _NEEDS_ESCAPE.match(ch):
            piece = _escape_char(ch)
        else:
            piece = ch
        pieces.append(piece)
        tail = (piece + tail)[:6]
    return "".join(reversed(pieces))


def unescape_text(s: str) -> str:
    """The inverse of :func:`escape_text` (``\\xHH`` of 0x80-0xFF gives back the surrogate-escaped byte, so
    ``os.fsencode`` of the result is the original file name)."""
    return _ESCAPE.sub(_unescape_seq, s) if "\\" in s else s


def _looks_like_formula(s: str) -> bool:
    """Whether a spreadsheet may read ``s`` as a formula: its first character, after the white space, control
    and format characters an importer may drop, starts one (= + - @, tab, CR, LF or their full-width forms)
    and ``s`` is not simply a number such as -0.25."""
    i = 0
    while i < len(s) and (s[i].isspace() or unicodedata.category(s[i]) in ("Cc", "Cf", "Cs", "Zl", "Zp")):
        i += 1
    t = s[i:]
    return bool(t) and t[0] in _FORMULA_CHARS and not _NUMBER.fullmatch(t)


def csv_safe(value) -> str:
    """One CSV cell, safe to open in a spreadsheet and lossless: control characters and bytes that are not
    UTF-8 escaped (:func:`escape_text`: no cell holds a line break, every export is valid UTF-8), then a
    ``'`` put before a cell that could be read as a formula (= + - @, tab, CR once leading white space and
    control characters are skipped; numbers such as -0.5 stay numbers) and before a cell that starts with
    ``'`` itself, so :func:`unescape_csv` can always take one off."""
    s = "" if value is None else str(value)
    e = escape_text(s)
    if s.startswith("'") or _looks_like_formula(s):
        return "'" + e
    return e


def unescape_csv(value: str) -> str:
    """The exact inverse of :func:`csv_safe` for reading exports back: ``unescape_csv(csv_safe(x)) == x`` for
    every string ``x`` (a file name that is not UTF-8 comes back surrogate-escaped, as ``os.fsdecode`` gives it)."""
    return unescape_text(value[1:] if value.startswith("'") else value)


def json_safe(obj):
    """``obj`` (dicts, lists, strings, numbers) with every string that holds bytes that are not UTF-8 (a file
    name, PEP 383) in the escaped form of :func:`escape_text`: the JSON written from it is valid UTF-8 without
    lone surrogates. Other strings are kept (JSON escapes control characters itself)."""
    if isinstance(obj, str):
        return escape_text(obj) if _has_surrogate(obj) else obj
    if isinstance(obj, dict):
        return {json_safe(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def _has_surrogate(s: str) -> bool:
    try:
        s.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


@dataclass
class TopicSummary:
    topic: int
    name: str
    size: int
    share: float
    mean_probability: float
    top_paintings: list[tuple[str, float]]
    top_artists: list[tuple[str, int]]
    distinct_artists: int


def topic_summaries(an: Analysis, top_n: int = 10, artist_column: str = "artist",
                    names: dict[int, str] | None = None) -> list[TopicSummary]:
    """Per topic: size, share, top paintings and artists. ``name`` is the user's name of the topic
    (``names``, e.g. Collection.topic_names()) or "Topic N"."""
    names = names or {}
    if an.topics is None:
        return []
    mix = an.topics.mixtures
    dom = mix.argmax(1)
    artists = an.label_column(artist_column)
    out = []
    for t in range(an.topics.k):
        members = np.flatnonzero(dom == t)
        order = np.argsort(-mix[:, t], kind="stable")[:top_n]
        counts = Counter(artists[i] for i in members if artists[i])
        out.append(TopicSummary(
            topic=t, name=names.get(t) or f"Topic {t + 1}", size=int(len(members)),
            share=float(len(members) / max(1, an.n)),
            mean_probability=float(mix[:, t].mean()),
            top_paintings=[(an.relpaths[i], float(mix[i, t])) for i in order],
            top_artists=counts.most_common(5), distinct_artists=len(counts),
        ))
    return out


def artist_summaries(an: Analysis, artist_column: str = "artist") -> list[tuple[str, int, np.ndarray, float]]:
    """(artist, count, mean mixture, entropy of the mean mixture in bits) per artist."""
    if an.topics is None:
        return []
    artists = an.label_column(artist_column)
    groups: dict[str, list[int]] = {}
    for i, a in enumerate(artists):
        if a:
            groups.setdefault(a, []).append(i)
    out = []
    for a in sorted(groups):
        m = an.topics.mixtures[groups[a]].mean(0)
        ent = float(-(m * np.log2(np.maximum(m, 1e-12))).sum())
        out.append((a, len(groups[a]), m, ent))
    return out


def label_columns(labels, skip: tuple[str, ...] = ()) -> list[str]:
    """The label columns present in ``labels`` (dicts), in export order: artist, title, year, style
    first, then the others alphabetically."""
    cols = sorted({c for lab in labels for c, v in lab.items() if c not in skip})
    std = [c for c in ("artist", "title", "year", "style") if c in cols]
    return std + [c for c in cols if c not in std]


FOLDER = "folder"  # the pseudo label column "top-level folder" of group_columns / group_values


def group_columns(an: Analysis) -> list[str]:
    """Label columns worth grouping by (artist first), plus the top-level folder."""
    seen: dict[str, set] = {}
    for lab in an.labels:
        for k, v in lab.items():
            if v and k not in ("title", "path", "source"):
                seen.setdefault(k, set()).add(v)
    cols = [c for c in ("artist", "style", "year") if 1 <= len(seen.get(c, ())) < an.n]
    cols += sorted(c for c, vals in seen.items() if c not in cols and 1 < len(vals) < max(2, an.n * 0.8))
    return cols + [FOLDER]


def group_values(an: Analysis, column: str) -> list[str]:
    """Each painting's value of ``column`` (a label column, or :data:`FOLDER`)."""
    if column == FOLDER:
        return [p.split("/", 1)[0] if "/" in p else "(top level)" for p in an.relpaths]
    return an.label_column(column)


def csv_bytes(header: list[str], rows) -> bytes:
    """The CSV file (UTF-8, ``\\n`` line ends, cells quoted where they hold a comma or a quote) of every
    export: the topics, paintings and artists files, the map CSV and the near-duplicates CSV. Each cell is
    :func:`csv_safe`, so a row is one line whatever the file names and labels hold, the bytes are valid
    UTF-8, and Python's ``csv`` reader plus :func:`unescape_csv` gives back the exact values."""
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([csv_safe(h) for h in header])
    for r in rows:
        w.writerow([csv_safe(v) for v in r])
    # every cell is escaped (csv_safe): strict UTF-8, a non-UTF-8 file name is in its \xHH form
    return buf.getvalue().encode("utf-8")


def provenance(an: Analysis, backbone_sha256: str | None = None) -> dict:
    st = an.settings
    return {
        "app": "artstyle_gui", "app_version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "backbone": st.backbone, "weights_file": st.weights_file, "weights_sha256": backbone_sha256,
        "featureset": an.featureset, "blend_weights": an.weights, "metric": an.metric,
        "pca_components": {p: int(v.shape[1]) for p, v in an.parts.items()},
        "topic_input": an.topics.input_kind if an.topics else None, "k": an.topics.k if an.topics else None,
        "k_mode": "fixed" if st.k else "auto (held-out perplexity elbow over %d-%d)" % tuple(st.k_range),
        "perplexity_curve": ({"k": an.topics.curve_k, "perplexity": an.topics.curve_perplexity}
                             if an.topics else None),
        "seed": st.seed, "trim_borders": st.trim_borders, "colour_bins": st.colour_bins, "paintings": an.n,
    }


def export(an: Analysis, outdir: Path, *, backbone_sha256: str | None = None, top_n: int = 10,
           topic_names: dict[int, str] | None = None) -> list[Path]:
    """Write topics.csv, paintings.csv, artists.csv and provenance.json into ``outdir``."""
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise ArtStyleError(f"{outdir} is a file: the export writes a folder of files (topics.csv, paintings.csv, "
                            "artists.csv, provenance.json). Give a folder (new or existing).")
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a parent that is a file, a read-only place, a full disk
        raise ArtStyleError(f"Cannot create the export folder {outdir}: {e.strerror or e}.") from e
    names = topic_names or {}
    written: list[Path] = []
    k = an.topics.k if an.topics else 0
    label_cols = label_columns(an.labels)

    rows = []
    for s in topic_summaries(an, top_n, names=names):
        rows.append([s.topic + 1, s.name, s.size, f"{s.share:.4f}", f"{s.mean_probability:.4f}",
                     s.distinct_artists, "; ".join(f"{a} ({c})" for a, c in s.top_artists),
                     "; ".join(p for p, _ in s.top_paintings), "; ".join(f"{v:.3f}" for _, v in s.top_paintings)])
    p = outdir / "topics.csv"
    atomic_write_bytes(p, csv_bytes(["topic", "name", "size", "share", "mean_probability", "distinct_artists",
                                      "top_artists", "top_paintings", "top_painting_probabilities"], rows))
    written.append(p)

    dom = an.dominant_topics()
    prow = []
    for i in range(an.n):
        mix = an.topics.mixtures[i] if an.topics else []
        prow.append([an.relpaths[i], *[an.labels[i].get(c, "") for c in label_cols],
                     int(dom[i]) + 1 if an.topics else "", names.get(int(dom[i]), "") if an.topics else "",
                     *[f"{v:.4f}" for v in mix]])
    p = outdir / "paintings.csv"
    atomic_write_bytes(p, csv_bytes(["path", *label_cols, "dominant_topic", "dominant_topic_name",
                                      *[f"topic_{t + 1}" for t in range(k)]], prow))
    written.append(p)

    arows = [[a, n, f"{e:.4f}", *[f"{v:.4f}" for v in m]] for a, n, m, e in artist_summaries(an)]
    p = outdir / "artists.csv"
    atomic_write_bytes(p, csv_bytes(["artist", "paintings", "entropy_bits",
                                      *[f"topic_{t + 1}" for t in range(k)]], arows))
    written.append(p)

    p = outdir / "provenance.json"
    prov = provenance(an, backbone_sha256)
    prov["topic_names"] = {str(t + 1): n for t, n in names.items()}
    prov["files"] = [w.name for w in written]
    atomic_write_bytes(p, json.dumps(json_safe(prov), indent=2, sort_keys=True).encode("utf-8"))
    written.append(p)
    return written


def entropy_bits(p: np.ndarray) -> float:
    p = np.asarray(p, float)
    return float(-(p * np.log2(np.maximum(p, 1e-12))).sum()) if p.size else math.nan
