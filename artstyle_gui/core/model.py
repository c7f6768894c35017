"""Plain data of the engine: settings, reports, neighbours and the analysis a view shows.

No behaviour beyond validation and (de)serialisation; :class:`~.index.collection.Collection` produces these objects.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np

from .analysis.neighbors import NeighbourIndex
from .analysis.parts import BUILTIN_PARTS, PART_REGISTRY, PARTS, PartModel, blend
from .analysis.topics import TOPIC_INPUTS, TopicModel
from .errors import ArtStyleError, IndexCorrupt
from .ingest.backbones import DEFAULT_BACKBONE, IMAGENET_BACKBONE, REGISTRY, file_sha256
from .ingest.imageio import DEFAULT_MAX_MEGAPIXELS

#: the art style model's deep feature carries most of what the texture and colour parts add; with more of
#: them (the ImageNet default below) its precision@10 on wikiart7-dev fell from 0.59 to 0.58 (docs/quality.md)
DEFAULT_BLEND = {"deep": 1.0, "texture": 0.25, "colour": 0.1}
#: the defaults of the ImageNet backbone, the default before the art style model shipped (docs/quality.md)
IMAGENET_DEFAULTS = {"topic_input": "bovw", "blend": {"deep": 1.0, "texture": 0.5, "colour": 0.25}}
ANALYSIS_VERSION = 3
DEVICES = ("auto", "cpu", "cuda", "mps")
RUNTIMES = ("auto", "onnx", "torch")
#: (field, lowest, highest, name in messages) of the whole-number settings (Settings.validate)
_RANGES = (
    ("seed", 0, 2**32 - 1, "The seed"),  # numpy's generators take 0 .. 2**32 - 1
    ("batch_size", 1, 4096, "The batch size"),
    ("decode_threads", 0, 256, "The number of decode threads (0: automatic)"),
    ("deep_components", 1, 4096, "The PCA size of the deep part"),
    ("gram_components", 1, 4096, "The PCA size of the texture part"),
    ("colour_components", 1, 4096, "The PCA size of the colour part"),
    ("colour_bins", 2, 16, "The colour histogram bins per channel"),
    ("vocab_size", 2, 65536, "The visual vocabulary size"),
)
#: the largest --max-megapixels accepted (a 100,000 x 100,000 image; the default is far below)
MAX_MEGAPIXELS_LIMIT = 10_000


def _is_number(v: Any, integral: bool = False) -> bool:
    """A real number (an int where ``integral``); never a bool."""
    if isinstance(v, bool):
        return False
    return isinstance(v, int) if integral else isinstance(v, (int, float))


def parts_config() -> dict[str, Any]:
    """The registered descriptor parts, when they are not the built-in three (a saved analysis made
    with other parts is then another analysis, not a damaged one)."""
    if tuple(PARTS) == BUILTIN_PARTS:
        return {}
    return {"parts": [[p.name, p.components] for p in PART_REGISTRY.values()]}


@dataclass
class Settings:
    """Everything that shapes the results; plain data, persisted by the app."""

    backbone: str = DEFAULT_BACKBONE
    weights_file: str | None = None
    colour_bins: int = 8
    trim_borders: bool = True
    max_megapixels: float = DEFAULT_MAX_MEGAPIXELS
    batch_size: int = 16
    decode_threads: int = 0  # 0: automatic
    deep_components: int = 128
    gram_components: int = 64
    colour_components: int = 64
    blend: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_BLEND))
    metric: str = "cosine"
    topic_input: str = "style"
    k: int | None = None  # None: automatic (perplexity elbow over k_range)
    k_range: tuple[int, int] = (5, 20)
    vocab_size: int = 256
    seed: int = 0
    space: str = "base"  # "base" | "adapted": neighbours/topics in the style adapter's space (core/learn/adapt.py)
    #: where the network runs: "auto" (CUDA, then Apple MPS, else the CPU), "cpu", "cuda", "mps"; like
    #: ``runtime``, a choice of the machine: the app keeps it in its preferences, the index does not
    device: str = "auto"
    #: follow symbolic links that lead outside the collection folder (links inside it are always followed)
    follow_links: bool = False
    #: the CPU runtime of the network: "auto" (ONNX Runtime when installed, else torch), "onnx", "torch";
    #: both give the same features (cosine >= 0.9999 per part), so one feature set holds either
    runtime: str = "auto"

    def validate(self) -> None:
        if self.backbone not in REGISTRY:
            raise ArtStyleError(f"Unknown backbone {self.backbone!r}; choose one of {', '.join(REGISTRY)}.")
        if self.metric not in ("cosine", "euclidean"):
            raise ArtStyleError("metric must be 'cosine' or 'euclidean'.")
        if self.topic_input not in TOPIC_INPUTS:
            raise ArtStyleError(f"topic input must be one of {', '.join(TOPIC_INPUTS)}.")
        if self.k is not None and not (_is_number(self.k, integral=True) and 1 <= self.k <= 200):
            raise ArtStyleError("K must be between 1 and 200.")
        if self.space not in ("base", "adapted"):  # style adapter (core/learn/adapt.py)
            raise ArtStyleError("space must be 'base' or 'adapted'.")
        if self.device not in DEVICES:
            raise ArtStyleError(f"device must be one of {', '.join(DEVICES)}.")
        if self.runtime not in RUNTIMES:
            raise ArtStyleError(f"runtime must be one of {', '.join(RUNTIMES)}.")
        if not isinstance(self.blend, dict) or not all(
                _is_number(w) and math.isfinite(w) and w >= 0 for w in self.blend.values()):
            raise ArtStyleError("Blend weights must be finite numbers of 0 or more (got "
                                f"{', '.join(f'{p}={w!r}' for p, w in dict(self.blend).items())}).")
        if not any(self.blend.get(p, 0) > 0 for p in PARTS):
            raise ArtStyleError(f"At least one of the blend weights ({', '.join(PARTS)}) must be positive.")
        for name, lo, hi, what in _RANGES:
            v = getattr(self, name)
            if not (_is_number(v, integral=True) and lo <= v <= hi):
                raise ArtStyleError(f"{what} must be a whole number from {lo:,} to {hi:,} (got {v!r}).")
        mp = self.max_megapixels
        if not (_is_number(mp) and math.isfinite(mp) and 0 < mp <= MAX_MEGAPIXELS_LIMIT):
            raise ArtStyleError(f"The largest image read (max megapixels) must be above 0 and at most "
                                f"{MAX_MEGAPIXELS_LIMIT:,} (got {mp!r}).")
        kr = self.k_range
        if not (isinstance(kr, (tuple, list)) and len(kr) == 2 and all(_is_number(x, integral=True) for x in kr)
                and 1 <= kr[0] <= kr[1] <= 200):
            raise ArtStyleError(f"The range of K must be two whole numbers, 1 <= low <= high <= 200 (got {kr!r}).")

    def featureset_key(self) -> str:
        w = ""
        if self.weights_file:
            w = "-w" + file_sha256(self.weights_file)[:10]
        return f"{self.backbone}{w}-c{self.colour_bins}-t{int(self.trim_borders)}"

    def featureset_config(self) -> dict[str, Any]:
        return {"backbone": self.backbone, "weights_file": self.weights_file, "colour_bins": self.colour_bins,
                "trim_borders": self.trim_borders}

    def analysis_config(self) -> dict[str, Any]:
        return {"deep_components": self.deep_components, "gram_components": self.gram_components,
                "colour_components": self.colour_components, "topic_input": self.topic_input, "k": self.k,
                "k_range": list(self.k_range), "vocab_size": self.vocab_size, "seed": self.seed,
                "version": ANALYSIS_VERSION, **parts_config()}

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["k_range"] = list(self.k_range)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Settings":
        """Settings from saved JSON; unknown keys are ignored, wrong types raise IndexCorrupt."""
        if not isinstance(d, dict):
            raise IndexCorrupt(f"The saved settings are damaged (expected an object, got {type(d).__name__}).")
        known = {f for f in cls.__dataclass_fields__}
        d = {k: v for k, v in d.items() if k in known}
        defaults = cls()
        for k, v in d.items():
            want = getattr(defaults, k)
            ok = True
            if isinstance(want, bool):
                ok = isinstance(v, bool)
            elif isinstance(want, int) and not isinstance(want, bool):
                ok = isinstance(v, int) and not isinstance(v, bool)
            elif isinstance(want, float):
                ok = isinstance(v, (int, float)) and not isinstance(v, bool)
            elif isinstance(want, str):
                ok = isinstance(v, str)
            elif k == "blend":
                ok = isinstance(v, dict) and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                  for x in v.values())
            elif k == "k_range":
                ok = isinstance(v, (list, tuple)) and len(v) == 2 and all(
                    isinstance(x, int) and not isinstance(x, bool) for x in v)
            if k == "k" or k == "weights_file":  # optional fields
                ok = v is None or (isinstance(v, int) and not isinstance(v, bool) if k == "k" else isinstance(v, str))
            if not ok:
                raise IndexCorrupt(f"The saved settings are damaged ({k} = {v!r} has the wrong type).")
        if "k_range" in d:
            d["k_range"] = tuple(d["k_range"])
        return cls(**d)


def default_settings_for(backbone: str) -> Settings:
    """The default settings of a backbone: the art model's are :class:`Settings`' own; the ImageNet
    backbone keeps the topic input and blend it had as the default (measured best for it)."""
    if backbone == IMAGENET_BACKBONE:
        return Settings(backbone=backbone, topic_input=IMAGENET_DEFAULTS["topic_input"],
                        blend=dict(IMAGENET_DEFAULTS["blend"]))
    return Settings(backbone=backbone)


def with_backbone(s: Settings, backbone: str, weights_file: str | None = None) -> Settings:
    """``s`` moved to ``backbone``: a topic input or blend that was the old backbone's default becomes the
    new backbone's default (they are measured per backbone, docs/quality.md); anything the user chose
    (another topic input, other weights, K, PCA size, ...) is kept."""
    new = default_settings_for(backbone)
    old = default_settings_for(s.backbone)
    return replace(s, backbone=backbone, weights_file=weights_file,
                   topic_input=new.topic_input if s.topic_input == old.topic_input else s.topic_input,
                   blend=dict(new.blend) if s.blend == old.blend else dict(s.blend))


def upgraded_to_art_model(s: Settings) -> Settings:
    """``s`` moved to the art style model (the app's re-index offer, settings saved before it shipped)."""
    return with_backbone(s, DEFAULT_BACKBONE)


def is_old_default(s: Settings) -> bool:
    """Settings on the ImageNet backbone with its own weights: the default before the art model shipped."""
    return s.backbone == IMAGENET_BACKBONE and not s.weights_file


@dataclass
class UpdateReport:
    scanned: int = 0
    unchanged: int = 0
    extracted: int = 0
    reused: int = 0  # moved/renamed/duplicate content: features reused without extraction
    removed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"{self.scanned:,} images: {self.extracted:,} extracted, {self.reused:,} reused by content, "
                f"{self.unchanged:,} unchanged, {self.removed:,} removed, {len(self.failed):,} unreadable")


@dataclass
class Neighbour:
    row: int
    relpath: str
    score: float  # cosine similarity (cosine metric) or -squared distance (euclidean)
    parts: dict[str, float]  # contribution of deep/texture/colour to the cosine similarity
    shares: dict[str, float]  # the same as fractions summing to 1 ("why similar")


@dataclass(frozen=True, eq=False)
class Analysis:
    """Everything the views need, aligned by row. Immutable: a change (blend, space, topics) is a new
    Analysis (:meth:`with_blend`, ``dataclasses.replace``), so a view can keep the one it shows while a
    worker makes the next, and swap it in on the GUI thread."""

    relpaths: list[str]
    file_ids: np.ndarray
    hashes: list[str]
    labels: list[dict[str, str]]
    parts: dict[str, np.ndarray]
    part_model: PartModel
    topics: TopicModel | None
    index: NeighbourIndex
    weights: dict[str, float]
    metric: str
    fingerprint: str
    settings: Settings
    featureset: str
    # --- style adapter (core/learn/adapt.py): the space that parts/index/topics show
    space: str = "base"
    adapter: Any = None
    #: the base-space analysis an adapted one was made from (None in the base space)
    base: "Analysis | None" = field(default=None, repr=False)
    # --- incremental analysis: paintings placed into the fitted PCA / topics / index since the fit
    #: per row, its row in the fit (-1: placed since); None: fitted on exactly these rows
    fit_rows: np.ndarray | None = field(default=None, repr=False)
    fit_n: int = 0  # paintings the PCA and topics were fitted on (0: this analysis's n)
    fit_fingerprint: str = ""  # the fingerprint of the fit ("": this analysis's)
    #: a large collection's fit (core/index/sampled.py): the paintings of a seeded sample the PCA and the
    #: topics were fitted on, every painting of the fit then placed into them; 0: fitted on every painting
    sample_n: int = 0

    @property
    def n(self) -> int:
        return len(self.relpaths)

    @cached_property
    def _rows(self) -> dict[str, int]:
        return {p: i for i, p in enumerate(self.relpaths)}

    def row_of(self, relpath: str) -> int | None:
        return self._rows.get(relpath)

    @cached_property
    def blended(self) -> np.ndarray:
        """The blended (N, D) vectors the neighbour index holds (computed once, on first use)."""
        return blend(self.parts, self.weights)

    @property
    def fitted_on(self) -> int:
        """Paintings of the fit: the PCA and the topics were fitted on them (on a sample of them when
        :attr:`sample_n`; the others placed into that fit), the base of :data:`~.index.collection.REFIT_SHARE`."""
        return self.fit_n or self.n

    @property
    def models_fitted_on(self) -> int:
        """Paintings the PCA and the topic models saw while fitting: the sample of a sampled fit."""
        return self.sample_n or self.fitted_on

    @property
    def added_since(self) -> int:
        """Paintings placed into the fitted models since the fit (new or changed files)."""
        return 0 if self.fit_rows is None else int((self.fit_rows < 0).sum())

    @property
    def removed_since(self) -> int:
        """Paintings of the fit that are gone (deleted, or changed and placed again)."""
        return 0 if self.fit_rows is None else self.fitted_on - int((self.fit_rows >= 0).sum())

    @property
    def topics_fingerprint(self) -> str:
        """The fingerprint of the fit the topics come from (topic names are kept per fit)."""
        return self.fit_fingerprint or self.fingerprint

    @property
    def base_space(self) -> "Analysis":
        """The base-space analysis (itself unless it shows the adapted space)."""
        return self.base if self.space == "adapted" and self.base is not None else self

    def with_blend(self, weights: dict[str, float], metric: str, settings: Settings) -> "Analysis":
        """The same analysis ranked with other blend weights / metric (a new neighbour index, no
        extraction); an adapted analysis keeps its base as it is (re-ranked when shown again)."""
        w = {p: float(weights.get(p, 0.0)) for p in self.parts}
        index = NeighbourIndex.build(blend(self.parts, w), metric, seed=settings.seed)
        return replace(self, weights=w, metric=metric, index=index, settings=replace(settings))

    def dominant_topics(self) -> np.ndarray:
        if self.topics is None:
            return np.full(self.n, -1, np.int64)
        return self.topics.mixtures.argmax(1)

    def label_column(self, column: str) -> list[str]:
        return [lab.get(column, "") or "" for lab in self.labels]
