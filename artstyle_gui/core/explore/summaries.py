"""Topic (cluster) summaries and CSV/JSON export with provenance."""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ... import __version__
from ..ingest.store import atomic_write_bytes
from ..model import Analysis

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value) -> str:
    """Neutralise spreadsheet formula injection: prefix cells starting with = + - @ (or tab/CR) with '."""
    s = "" if value is None else str(value)
    if s.startswith(FORMULA_START):
        # numbers like -0.5 are data, not formulas
        try:
            float(s)
            return s
        except ValueError:
            return "'" + s
    return s


def unescape_csv(value: str) -> str:
    """Inverse of :func:`csv_safe` for reading exports back."""
    if value.startswith("'") and value[1:2] in FORMULA_START:
        return value[1:]
    return value


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
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([csv_safe(h) for h in header])
    for r in rows:
        w.writerow([csv_safe(v) for v in r])
    # surrogateescape: a non-UTF-8 file name is written as its original bytes (round-trips exactly)
    return buf.getvalue().encode("utf-8", "surrogateescape")


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
    outdir.mkdir(parents=True, exist_ok=True)
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
    atomic_write_bytes(p, json.dumps(prov, indent=2, sort_keys=True).encode("utf-8"))
    written.append(p)
    return written


def entropy_bits(p: np.ndarray) -> float:
    p = np.asarray(p, float)
    return float(-(p * np.log2(np.maximum(p, 1e-12))).sum()) if p.size else math.nan
