"""From raw stored features to the search embedding: its descriptor parts, their registry, the blend.

Parts of the search embedding (each L2-normalised, so a blend weight means what it says):

``deep``     pooled CNN features -> L2 -> PCA -> L2
``texture``  Gram matrices, per layer: signed sqrt -> L2 -> PCA, concatenated -> L2
``colour``   3-D colour histogram -> sqrt (Hellinger) -> PCA -> L2

A part is a :class:`Part` in :data:`PART_REGISTRY`: how it is fitted on the raw stored features (the
ones every feature set stores: ``deep``, ``gram0``.., ``colour``, ``local``), how a fitted one is saved
and loaded, and how the app and the CLI name and draw it. Adding one is one module that defines a
``Part`` and one :func:`register_part` line; the blend, the settings dialog's sliders, the CLI's
``--blend`` and "why similar" read the registry (``tests/toy_part.py``). A new part starts with
blend weight 0, so it changes no ranking until the user gives it weight.

The style topics are fitted in :mod:`.topics`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np


class FittedPart(Protocol):
    """A part fitted on a collection: turns raw features into the part's (n, d) unit vectors."""

    def __call__(self, raw: dict[str, np.ndarray]) -> np.ndarray: ...

    def to_arrays(self) -> dict[str, np.ndarray]: ...


@dataclass(frozen=True)
class Part:
    """A descriptor part of the search embedding (see the module docstring)."""

    name: str
    label: str  # the settings dialog's name: "Texture (Gram matrices)"
    short: str  # "why similar": "texture"
    colour: str  # the app's colour for it (hex)
    fit: Callable[[dict[str, np.ndarray], int, int], FittedPart]  # (raw, PCA components, seed)
    load: Callable[[dict[str, np.ndarray]], FittedPart | None]  # from saved arrays (None: not there)
    components: int = 64  # PCA size (Settings.deep/gram/colour_components name the built-ins')


#: every descriptor part, in blend order, by name
PART_REGISTRY: dict[str, Part] = {}


def register_part(part: Part) -> Part:
    """Add ``part`` to the search embedding (replaces one of the same name)."""
    PART_REGISTRY[part.name] = part
    return part


class _Names(Sequence):
    """The registered parts' names, in registration order (a live view of :data:`PART_REGISTRY`)."""

    def __getitem__(self, i):
        return tuple(PART_REGISTRY)[i]

    def __len__(self) -> int:
        return len(PART_REGISTRY)

    def __repr__(self) -> str:
        return repr(tuple(PART_REGISTRY))


class _Field(Mapping):
    """{part name: one field of its Part} (a live view of :data:`PART_REGISTRY`)."""

    def __init__(self, attr: str) -> None:
        self._attr = attr

    def __getitem__(self, name: str) -> str:
        return getattr(PART_REGISTRY[name], self._attr)

    def __iter__(self):
        return iter(PART_REGISTRY)

    def __len__(self) -> int:
        return len(PART_REGISTRY)


PARTS: Sequence[str] = _Names()
#: how the app and the CLI name and draw each part: a label (settings), a short name ("why similar"), a colour
PART_LABELS: Mapping[str, str] = _Field("label")
PART_NAMES: Mapping[str, str] = _Field("short")
PART_COLOURS: Mapping[str, str] = _Field("colour")
BUILTIN_PARTS = ("deep", "texture", "colour")


def l2n(x: np.ndarray, axis: int = -1) -> np.ndarray:
    n = np.linalg.norm(x, axis=axis, keepdims=True)
    return (x / np.maximum(n, 1e-12)).astype(np.float32)


@dataclass
class Projection:
    """A fitted linear map (PCA) saved as plain arrays: y = (x - mean) @ components.T."""

    mean: np.ndarray
    components: np.ndarray

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) @ self.components.T).astype(np.float32)

    @classmethod
    def fit(cls, x: np.ndarray, n_components: int, seed: int = 0) -> "Projection":
        """PCA by an eigendecomposition of the (smaller) Gram/covariance matrix.

        The products run in float32 BLAS and the eigensolver is torch's (LAPACK, float64); both
        release the GIL, so fitting in a worker thread never freezes the GUI (scikit-learn's PCA goes
        through scipy's SVD, which holds it for seconds). Components match scikit-learn's up to
        sign; the sign is fixed as scikit-learn does (largest entry positive). ``seed`` is kept for
        API stability: the decomposition is deterministic.
        """
        n, d = x.shape
        k = int(min(n_components, d, max(1, n - 1)))
        mean = x.mean(0, dtype=np.float64)
        if n < 3:
            return cls(mean=mean.astype(np.float32), components=np.eye(d, dtype=np.float32)[:k])
        xc = (x - mean).astype(np.float32)
        if n <= d:  # Gram trick: eigenvectors of xc xc^T map to principal axes
            w, u = _eigh_desc(xc @ xc.T, k)
            comps = (xc.T.astype(np.float64) @ u / np.sqrt(np.maximum(w, 1e-12))).T
        else:
            _, v = _eigh_desc(xc.T @ xc, k)
            comps = v.T
        comps /= np.maximum(np.linalg.norm(comps, axis=1, keepdims=True), 1e-12)
        big = np.argmax(np.abs(comps), axis=1)
        comps *= np.sign(comps[np.arange(len(comps)), big])[:, None]
        return cls(mean=mean.astype(np.float32), components=comps.astype(np.float32))


def _eigh_desc(sym: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k eigenpairs of a symmetric matrix, largest first (float64)."""
    import torch

    w, v = torch.linalg.eigh(torch.from_numpy(np.ascontiguousarray(sym, dtype=np.float64)))
    w, v = w.numpy()[::-1][:k], v.numpy()[:, ::-1][:, :k]
    return np.ascontiguousarray(w), np.ascontiguousarray(v)


def ssqrt(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.sqrt(np.abs(x))


@dataclass
class DeepPart:
    """``deep``: pooled CNN features -> L2 -> PCA -> L2."""

    projection: Projection

    def __call__(self, raw: dict[str, np.ndarray]) -> np.ndarray:
        return l2n(self.projection(l2n(raw["deep"])))

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"pm_deep_mean": self.projection.mean, "pm_deep_comp": self.projection.components}

    @classmethod
    def fit(cls, raw: dict[str, np.ndarray], components: int, seed: int) -> "DeepPart":
        return cls(Projection.fit(l2n(raw["deep"]), components, seed))

    @classmethod
    def load(cls, a: dict[str, np.ndarray]) -> "DeepPart | None":
        return cls(Projection(a["pm_deep_mean"], a["pm_deep_comp"])) if "pm_deep_mean" in a else None


@dataclass
class TexturePart:
    """``texture``: Gram matrices, per layer: signed sqrt -> L2 -> PCA, concatenated -> L2."""

    grams: list[Projection]

    def __call__(self, raw: dict[str, np.ndarray]) -> np.ndarray:
        tex = [p(l2n(ssqrt(raw[f"gram{i}"]))) for i, p in enumerate(self.grams)]
        return l2n(np.concatenate([l2n(t) for t in tex], axis=1))

    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {}
        for i, g in enumerate(self.grams):
            out[f"pm_gram{i}_mean"], out[f"pm_gram{i}_comp"] = g.mean, g.components
        return out

    @classmethod
    def fit(cls, raw: dict[str, np.ndarray], components: int, seed: int) -> "TexturePart":
        grams = []
        i = 0
        while f"gram{i}" in raw:
            grams.append(Projection.fit(l2n(ssqrt(raw[f"gram{i}"])), components, seed))
            i += 1
        return cls(grams)

    @classmethod
    def load(cls, a: dict[str, np.ndarray]) -> "TexturePart | None":
        grams = []
        i = 0
        while f"pm_gram{i}_mean" in a:
            grams.append(Projection(a[f"pm_gram{i}_mean"], a[f"pm_gram{i}_comp"]))
            i += 1
        return cls(grams) if grams else None


@dataclass
class ColourPart:
    """``colour``: 3-D colour histogram -> sqrt (Hellinger) -> PCA -> L2."""

    projection: Projection

    def __call__(self, raw: dict[str, np.ndarray]) -> np.ndarray:
        return l2n(self.projection(np.sqrt(np.maximum(raw["colour"], 0))))

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"pm_colour_mean": self.projection.mean, "pm_colour_comp": self.projection.components}

    @classmethod
    def fit(cls, raw: dict[str, np.ndarray], components: int, seed: int) -> "ColourPart":
        return cls(Projection.fit(np.sqrt(np.maximum(raw["colour"], 0)), components, seed))

    @classmethod
    def load(cls, a: dict[str, np.ndarray]) -> "ColourPart | None":
        return cls(Projection(a["pm_colour_mean"], a["pm_colour_comp"])) if "pm_colour_mean" in a else None


register_part(Part("deep", "Content (deep CNN features)", "content (deep)", "#3f6fd8", DeepPart.fit,
                   DeepPart.load, components=128))
register_part(Part("texture", "Texture (Gram matrices)", "texture", "#e39b2d", TexturePart.fit, TexturePart.load))
register_part(Part("colour", "Colour histogram", "colour", "#cf4f8e", ColourPart.fit, ColourPart.load))


class PartModel:
    """Everything needed to turn raw features of a new image into embedding parts: one fitted
    transform per registered part."""

    def __init__(self, fitted: dict[str, FittedPart]) -> None:
        self.fitted = dict(fitted)

    def transform(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {p: f(raw) for p, f in self.fitted.items()}

    def to_arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for f in self.fitted.values():
            out.update(f.to_arrays())
        return out

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> "PartModel":
        fitted = {}
        for p in PARTS:
            f = PART_REGISTRY[p].load(a)
            if f is None:
                raise KeyError(f"the saved analysis has no {p!r} part")
            fitted[p] = f
        return cls(fitted)


def fit_parts(raw: dict[str, np.ndarray], *, deep_components: int = 128, gram_components: int = 64,
              colour_components: int = 64, seed: int = 0,
              components: dict[str, int] | None = None) -> tuple[PartModel, dict[str, np.ndarray]]:
    """Fit every registered part on the raw features; returns the model and the parts of these rows.
    ``components``: PCA sizes of other parts (default: each part's own)."""
    sizes = {"deep": deep_components, "texture": gram_components, "colour": colour_components, **(components or {})}
    model = PartModel({p.name: p.fit(raw, sizes.get(p.name, p.components), seed) for p in PART_REGISTRY.values()})
    return model, model.transform(raw)


BLEND_ROWS = 65_536


def blend(parts: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """Concatenate sqrt(w_p / sum w) * part_p over the parts given (in their order): unit vectors whose dot product is the weighted mean of
    the per-part cosine similarities."""
    total = sum(max(0.0, float(weights.get(p, 0.0))) for p in parts)
    if total <= 0:
        raise ValueError("At least one blend weight must be positive.")
    n = len(next(iter(parts.values())))
    out = np.empty((n, sum(v.shape[1] for v in parts.values())), np.float32)
    o = 0
    for p, v in parts.items():  # written into the result a block of rows at a time: no (n, D) float64 copies
        w = np.sqrt(max(0.0, float(weights.get(p, 0.0))) / total)  # (6 GB of them at a million paintings)
        for s in range(0, n, BLEND_ROWS):
            out[s : s + BLEND_ROWS, o : o + v.shape[1]] = w * v[s : s + BLEND_ROWS]
        o += v.shape[1]
    return out


def part_contributions(parts: dict[str, np.ndarray], i: np.ndarray | int, j: np.ndarray,
                       weights: dict[str, float], query: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """(len(j), len(PARTS)): weighted cosine contribution of each part to the similarity between the
    query (row i, or an external ``query``) and rows j. Rows sum to the blended cosine similarity."""
    total = sum(max(0.0, float(weights.get(p, 0.0))) for p in parts)
    out = np.zeros((len(j), len(parts)), np.float32)
    for c, p in enumerate(parts):
        q = query[p][0] if query is not None else parts[p][i]
        out[:, c] = max(0.0, float(weights.get(p, 0.0))) / total * (parts[p][j] @ q)
    return out
