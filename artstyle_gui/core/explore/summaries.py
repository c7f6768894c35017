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


#: at most this many groups for a column that is not a known grouping field (Width, Md5, ... are not)
MAX_GROUPS = 40
_KNOWN_GROUPS = ("style", "artist", "genre", "movement", "school")


def group_columns(an: Analysis) -> list[str]:
    """Columns worth grouping by, the first of style / artist first: a column with 2 to half as many
    distinct values as paintings (a known grouping field: style, artist, genre, ...; any other column
    only up to :data:`MAX_GROUPS`), then the top-level folder when it has 2 or more. A column with one
    value (Source_repo), or with nearly one per painting (Md5, a bounding box, Width) is left out.
    Never empty: with nothing worth grouping by it is ``[FOLDER]``."""
    seen: dict[str, set] = {}
    for lab in an.labels:
        for k, v in lab.items():
            if v and k not in ("title", "path", "source"):
                seen.setdefault(k, set()).add(v)
    n = int(an.n)
    half = max(2, n // 2)

    def worth(col: str, count: int) -> bool:
        return 2 <= count <= (half if col.casefold() in _KNOWN_GROUPS else min(MAX_GROUPS, half))

    known = sorted((c for c in seen if c.casefold() in _KNOWN_GROUPS and worth(c, len(seen[c]))),
                   key=lambda c: (_KNOWN_GROUPS.index(c.casefold()), c))
    rest = sorted((c for c in seen if c not in known and worth(c, len(seen[c]))), key=str.casefold)
    folders = len({p.split("/", 1)[0] if "/" in p else "" for p in an.relpaths})
    cols = known + rest + ([FOLDER] if folders >= 2 and FOLDER not in seen else [])
    return cols or [FOLDER]


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


# --------------------------------------------------------------------------- metadata for people
#: the fields a visitor reads first, in this order (labels-CSV column names, any case)
KNOWN_FIELDS = ("title", "artist", "style", "year", "genre")


def fit_summary(an: Analysis) -> str:
    """"Topics fitted on N paintings, M added (, K removed) since": the incremental analysis in words, the
    one spelling of the CLI and the app ("" when the analysis is its fit). A large collection's fit on a
    sample (core/index/sampled.py) says so: "Topics fitted on a sample of 50,000 of 1,000,000 paintings"."""
    placed = bool(an.added_since or an.removed_since)
    if an.sample_n:
        head = f"Topics fitted on a sample of {an.sample_n:,} of {an.fitted_on:,} paintings"
    elif placed:
        head = f"Topics fitted on {an.fitted_on:,} paintings"
    else:
        return ""
    if not placed:
        return head
    gone = f", {an.removed_since:,} removed" if an.removed_since else ""
    return f"{head}, {an.added_since:,} added{gone} since"


def display_fields(labels: dict[str, str]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """A painting's labels as (known, more): ``known`` the fields of :data:`KNOWN_FIELDS` present, in
    that order, as ("Title", value); ``more`` every other non-empty column (Md5, Width,
    Content_bbox_x0_y0_x1_y1, Source_commit, ...) in column order, its name made readable
    ("Content bbox x0 y0 x1 y1"), for a collapsed "More details"."""
    by_key = {str(k).casefold(): (k, v) for k, v in (labels or {}).items()}
    known = [(f.capitalize(), str(by_key[f][1]).strip()) for f in KNOWN_FIELDS
             if f in by_key and str(by_key[f][1] or "").strip()]
    more = [(_readable_column(k), str(v).strip()) for k, v in (labels or {}).items()
            if str(k).casefold() not in KNOWN_FIELDS and str(v or "").strip()]
    return known, more


def _readable_column(name: str) -> str:
    words = str(name).replace("_", " ").split()
    text = " ".join(words)
    return text[:1].upper() + text[1:]


# --------------------------------------------------------------------------- automatic topic names
#: a label value names a topic when this share of the topic's dominant paintings carry it ...
NAME_SHARE = 0.4
#: ... and it is this much more common there than in the whole collection
NAME_LIFT = 1.25
_NAME_COLUMNS = ("style", "artist", "genre")
_TYPICAL = 60  # paintings that stand for a topic's colours


def gram_detail(gram0: np.ndarray) -> np.ndarray:
    """How busy (fine, detailed brushwork) each painting is: the log of the total energy of the first Gram
    layer's channels (the diagonal of the stored upper triangle). Flat, smooth pictures score low."""
    g = np.asarray(gram0, np.float64)
    length = g.shape[1]
    c = int(round((np.sqrt(8 * length + 1) - 1) / 2))
    if c * (c + 1) // 2 != length:
        raise ValueError("not an upper-triangle Gram vector")
    diag = np.array([i * c - i * (i - 1) // 2 for i in range(c)])
    return np.log(np.maximum(g[:, diag].sum(1), 1e-12))


def auto_topic_names(an: Analysis | None, detail=None) -> dict[int, str]:
    """Suggested names {topic (0-based): name} for every topic of ``an`` that can be described: from
    the labels when a style (else artist, else genre) value is a clear share (>= :data:`NAME_SHARE`) of
    the topic's dominant paintings and over-represented there ("Expressionism / Post-Impressionism"),
    else from the colours of its typical paintings ("Dark warm browns") and, when ``detail`` is given (rows ->
    :func:`gram_detail` scores, e.g. from the stored features), how detailed or smooth they are. Suggestions
    only: the user's names (:func:`names_with_auto`) win. {} without topics."""
    if an is None or an.topics is None or an.n == 0:
        return {}
    mix = an.topics.mixtures
    k = int(an.topics.k)
    dom = mix.argmax(1)
    members = [np.flatnonzero(dom == t) for t in range(k)]
    names: dict[int, str] = {}
    for col in _NAME_COLUMNS:
        values = an.label_column(col)
        if not any(values):
            continue
        overall = Counter(v for v in values if v)
        for t in range(k):
            if t in names or len(members[t]) < 2:
                continue
            name = _label_name(Counter(values[i] for i in members[t] if values[i]), len(members[t]), overall,
                               an.n)
            if name:
                names[t] = name
    missing = [t for t in range(k) if t not in names]
    if missing:
        visual = _visual_names(an, mix, dom, missing, detail=detail)
        for t in missing:
            if visual.get(t):
                names[t] = visual[t]
        used = Counter(names.values())
        if any(c > 1 for c in used.values()):  # the same label name twice: add a colour cue where one helps
            cues = _visual_names(an, mix, dom, [t for t in names if used[names[t]] > 1], short=True)
            for t, cue in cues.items():
                if cue and cue.casefold() not in names[t].casefold():
                    names[t] = f"{names[t]}, {cue.lower()}"
    return names


def names_with_auto(an: Analysis | None, names: dict[int, str], detail=None) -> dict[int, str]:
    """The user's ``names`` with an automatic one (:func:`auto_topic_names`) for each topic not named."""
    return {**auto_topic_names(an, detail=detail), **{t: n for t, n in (names or {}).items() if n}}


def _label_name(counts: Counter, size: int, overall: Counter, n: int) -> str:
    good = []
    for value, c in counts.most_common(3):
        share = c / max(1, size)
        lift = share / max(1e-9, overall[value] / max(1, n))
        if lift >= NAME_LIFT:
            good.append((value, share))
    if not good:
        return ""
    (v1, s1), rest = good[0], good[1:]
    if s1 >= NAME_SHARE:
        if rest and rest[0][1] >= NAME_SHARE / 2:
            return f"{v1} / {rest[0][0]}"
        return v1
    if rest and s1 + rest[0][1] >= 1.5 * NAME_SHARE and rest[0][1] >= NAME_SHARE / 2:
        return f"{v1} / {rest[0][0]}"
    return ""


def _colour_histograms(an: Analysis, rows: np.ndarray) -> np.ndarray | None:
    """Approximate colour histograms (len(rows), bins^3) of paintings, rebuilt from their ``colour``
    part (sqrt histogram -> PCA -> L2): the unit-length sqrt histogram on the PCA axes."""
    part = getattr(an.part_model, "fitted", {}).get("colour") if an.part_model is not None else None
    proj = getattr(part, "projection", None)
    x = an.parts.get("colour")
    if proj is None or x is None or an.space != "base":
        return None
    comp = np.asarray(proj.components, np.float64)
    mean = np.asarray(proj.mean, np.float64)
    if x.ndim != 2 or x.shape[1] != comp.shape[0] or len(mean) != comp.shape[1]:
        return None
    u = np.asarray(x[rows], np.float64) @ comp  # unit directions in sqrt-histogram space
    mu = u @ mean
    a = -mu + np.sqrt(np.maximum(mu * mu + 1.0 - float(mean @ mean), 0.0))  # |mean + a u| = 1
    s = np.maximum(mean[None, :] + a[:, None] * u, 0.0)
    h = s * s
    return h / np.maximum(h.sum(1, keepdims=True), 1e-12)


def _bin_colours(dim: int) -> np.ndarray | None:
    bins = round(dim ** (1 / 3))
    if bins ** 3 != dim or bins < 2:
        return None
    c = (np.arange(bins) + 0.5) / bins
    r, g, b = np.meshgrid(c, c, c, indexing="ij")
    return np.stack([r.ravel(), g.ravel(), b.ravel()], 1)


def _colour_word(rgb: np.ndarray) -> list[str]:
    out = []
    for r, g, b in rgb:
        mx, mn = max(r, g, b), min(r, g, b)
        sat = (mx - mn) / mx if mx > 0 else 0.0
        if mx < 0.22:
            out.append("black")
        elif sat < 0.2:
            out.append("white" if mx > 0.8 else "grey")
        else:
            d = mx - mn
            h = (60 * (((g - b) / d) % 6) if mx == r else 60 * ((b - r) / d + 2) if mx == g
                 else 60 * ((r - g) / d + 4))
            if h < 15 or h >= 340:
                out.append("red" if mx > 0.5 else "brown")
            elif h < 45:
                out.append("orange" if mx > 0.7 and sat > 0.5 else "brown")
            elif h < 70:
                out.append("yellow" if mx > 0.7 else "ochre")
            elif h < 165:
                out.append("green")
            elif h < 255:
                out.append("blue")
            elif h < 290:
                out.append("purple")
            else:
                out.append("pink")
    return out


def _visual_names(an: Analysis, mix: np.ndarray, dom: np.ndarray, topics: list[int],
                  short: bool = False, detail=None) -> dict[int, str]:
    """"Dark warm browns", "Light cool blues", "Vivid reds": what sets each topic's typical paintings
    apart in colour from the collection (lightness, warmth, saturation, an over-represented colour).
    ``short``: the one strongest cue ("Dark")."""
    if not topics:
        return {}
    ref_rows = np.unique(np.linspace(0, an.n - 1, min(an.n, 2000)).astype(np.int64))
    typical = {}
    for t in topics:
        m = np.flatnonzero(dom == t)
        if len(m) == 0:
            m = np.arange(an.n)
        typical[t] = m[np.argsort(-mix[m, t], kind="stable")][:_TYPICAL]
    rows = np.concatenate([ref_rows, *typical.values()])
    h = _colour_histograms(an, rows)
    if h is None:
        return {}
    cols = _bin_colours(h.shape[1])
    if cols is None:
        return {}
    words = _colour_word(cols)
    vocab = sorted(set(words))
    wmat = np.array([[w == v for v in vocab] for w in words], np.float64)  # bins x words

    def cues(hh: np.ndarray) -> tuple[float, float, float, np.ndarray]:
        mean_rgb = hh @ cols
        light = float(mean_rgb @ np.array([0.299, 0.587, 0.114]))
        warm = float(mean_rgb[0] - mean_rgb[2])
        mx, mn = cols.max(1), cols.min(1)
        sat = float(hh @ np.where(mx > 0, (mx - mn) / np.maximum(mx, 1e-9), 0.0))
        return light, warm, sat, hh @ wmat

    ref = cues(h[: len(ref_rows)].mean(0))
    busy = None
    if detail is not None:
        try:
            busy = np.asarray(detail(rows), np.float64)
        except Exception:  # noqa: BLE001 - a suggestion: without this cue, then
            busy = None
    busy_ref = (float(busy[: len(ref_rows)].mean()), float(busy[: len(ref_rows)].std()) or 1.0) \
        if busy is not None and len(busy) == len(rows) else None
    out: dict[int, str] = {}
    pos = len(ref_rows)
    for t in topics:
        n = len(typical[t])
        light, warm, sat, wshare = cues(h[pos : pos + n].mean(0))
        scored = []  # (strength, word)
        if busy_ref is not None:
            z = (float(busy[pos : pos + n].mean()) - busy_ref[0]) / busy_ref[1]
            if abs(z) >= 0.5:
                scored.append((abs(z) / 0.5, "detailed" if z > 0 else "smooth"))
        pos += n
        if abs(light - ref[0]) >= 0.05:
            scored.append((abs(light - ref[0]) / 0.05, "Light" if light > ref[0] else "Dark"))
        if abs(warm - ref[1]) >= 0.03:
            scored.append((abs(warm - ref[1]) / 0.03, "warm" if warm > ref[1] else "cool"))
        if abs(sat - ref[2]) >= 0.05:
            scored.append((abs(sat - ref[2]) / 0.05, "vivid" if sat > ref[2] else "muted"))
        scored.sort(key=lambda s: -s[0])
        lift = wshare / np.maximum(ref[3], 1e-6)
        ok = np.flatnonzero(wshare >= 0.08)
        colour = vocab[int(ok[np.argmax(lift[ok])])] if len(ok) else vocab[int(np.argmax(wshare))]
        if short:
            out[t] = scored[0][1].capitalize() if scored else ""
            continue
        adj = [w for _, w in scored[:2]]
        text = " ".join([*adj, colour + "s"]) if adj else f"Mostly {colour}s"
        out[t] = text[:1].upper() + text[1:]
    return out
