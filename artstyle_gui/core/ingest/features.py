"""Per-image feature extraction: decode -> crop -> CNN parts + colour histogram -> one blob.

The raw parts of every image are stored (float16) so that the search blend, the PCA
sizes and the topic input can all change later without touching the images again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .backbones import INPUT_SIZE, LOCAL_GRID, BackboneInfo
from .imageio import DEFAULT_MAX_MEGAPIXELS, decode_image

#: bytes read per file are hashed with this (content identity for moved/renamed files)
HASH_NAME = "blake2b-128"


def content_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def colour_histogram(img: Image.Image, bins: int = 8) -> np.ndarray:
    """3-D RGB histogram with bins^3 cells, normalised to sum 1 (float32)."""
    small = img if max(img.size) <= 128 else img.resize(
        (max(1, img.width * 128 // max(img.size)), max(1, img.height * 128 // max(img.size))), Image.BILINEAR
    )
    a = np.asarray(small.convert("RGB"), dtype=np.uint16).reshape(-1, 3)
    q = (a * bins) // 256
    idx = (q[:, 0] * bins + q[:, 1]) * bins + q[:, 2]
    h = np.bincount(idx, minlength=bins**3).astype(np.float32)
    return h / max(1.0, float(h.sum()))


def center_crop(img: Image.Image, size: int = INPUT_SIZE) -> np.ndarray:
    """Resize the shortest side to ``size`` and take the central square (uint8 HxWx3)."""
    w, h = img.size
    s = size / min(w, h)
    nw, nh = max(size, round(w * s)), max(size, round(h * s))
    left, top = (nw - size) // 2, (nh - size) // 2
    if max(nw, nh) > 4 * size:
        # Extreme aspect ratio (e.g. a 1 x 20,000 strip): resizing the whole image first would need
        # nw x nh pixels (gigabytes). Resample only the source box of the central square instead: the
        # same sampling positions, memory O(size^2). Ordinary shapes keep the resize-then-crop below
        # so features stay bit-identical to existing indexes.
        sx, sy = w / nw, h / nh
        box = (left * sx, top * sy, (left + size) * sx, (top + size) * sy)
        img = img.resize((size, size), Image.BILINEAR, box=box, reducing_gap=None)
        return np.asarray(img.convert("RGB"), dtype=np.uint8)
    img = img.resize((nw, nh), Image.BILINEAR, reducing_gap=None)
    return np.asarray(img.crop((left, top, left + size, top + size)).convert("RGB"), dtype=np.uint8)


@dataclass
class Prepared:
    """One image, decoded and ready for the network (built in a worker thread)."""

    crop: np.ndarray  # (224, 224, 3) uint8
    colour: np.ndarray  # (bins^3,) float32
    width: int
    height: int
    aspect: float = 1.0  # width / height of the picture after the bars were trimmed (what the network saw)


def prepare(data: bytes, *, bins: int = 8, trim_borders: bool = True, max_megapixels: float = DEFAULT_MAX_MEGAPIXELS) -> Prepared:
    """Decode file bytes (reduced), trim letterbox bars, crop for the CNN, colour histogram.

    Raises DecodeError with a user-readable reason.
    """
    dec = decode_image(data, target_side=INPUT_SIZE, trim_borders=trim_borders, max_megapixels=max_megapixels)
    img = dec.image
    return Prepared(
        crop=center_crop(img), colour=colour_histogram(img, bins), width=dec.original_size[0],
        height=dec.original_size[1], aspect=img.width / max(1, img.height),
    )


@dataclass(frozen=True)
class FeatureLayout:
    """How the parts of one image are laid out in its stored float16 blob."""

    deep_dim: int
    gram_dims: tuple[int, ...]
    colour_dim: int
    local_shape: tuple[int, int]
    #: 1: the log aspect ratio of the trimmed picture is stored last (feature sets of backbones with
    #: ``BackboneInfo.shape_part``), so the analysis can keep the picture's shape out of the topics;
    #: 0 for the feature sets made before it existed (their blobs are unchanged)
    shape_dim: int = 0

    @classmethod
    def for_backbone(cls, info: BackboneInfo, bins: int) -> "FeatureLayout":
        return cls(
            deep_dim=info.deep_dim,
            gram_dims=tuple(c * (c + 1) // 2 for c in info.gram_channels),
            colour_dim=bins**3,
            local_shape=(LOCAL_GRID * LOCAL_GRID, info.local_channels),
            shape_dim=1 if info.shape_part else 0,
        )

    @property
    def size(self) -> int:
        return (self.deep_dim + sum(self.gram_dims) + self.colour_dim + self.local_shape[0] * self.local_shape[1]
                + self.shape_dim)

    def raw_of(self, out: dict, colour: np.ndarray, aspect: float = 1.0) -> dict[str, np.ndarray]:
        """The raw features of images just read (the network's ``out`` for a batch, their colour
        histograms and aspect ratios), named as :meth:`unpack_many` names the stored ones."""
        raw = {"deep": np.asarray(out["deep"], np.float32)}
        for i, g in enumerate(out["grams"]):
            raw[f"gram{i}"] = np.asarray(g, np.float32)
        raw["colour"] = np.asarray(colour, np.float32).reshape(len(raw["deep"]), -1)
        raw["local"] = out["local"]
        if self.shape_dim:
            raw["shape"] = np.log(np.maximum(np.atleast_1d(np.asarray(aspect, np.float32)), 1e-3))
        return raw

    def pack(self, deep: np.ndarray, grams: list[np.ndarray], colour: np.ndarray, local: np.ndarray,
             aspect: float = 1.0) -> bytes:
        parts = [deep.ravel(), *[g.ravel() for g in grams], colour.ravel(), local.ravel()]
        if self.shape_dim:
            parts.append(np.array([np.log(max(aspect, 1e-3))], np.float32))
        v = np.concatenate(parts).astype(np.float16)
        if v.size != self.size:
            raise ValueError(f"feature size {v.size} != layout {self.size}")
        return v.tobytes()

    def unpack_many(self, blobs: list[bytes]) -> dict[str, np.ndarray]:
        """Stack blobs into arrays: deep (N,D) f32, gram<i> (N,Gi) f32, colour (N,C) f32, local (N,49,L) f16,
        and, where the layout stores it, shape (N,) f32: the log aspect ratio of the trimmed picture."""
        n = len(blobs)
        m = np.frombuffer(b"".join(blobs), dtype=np.float16).reshape(n, self.size) if n else np.zeros(
            (0, self.size), np.float16
        )
        out: dict[str, np.ndarray] = {}
        o = 0
        out["deep"] = m[:, o : o + self.deep_dim].astype(np.float32)
        o += self.deep_dim
        for i, g in enumerate(self.gram_dims):
            out[f"gram{i}"] = m[:, o : o + g].astype(np.float32)
            o += g
        out["colour"] = m[:, o : o + self.colour_dim].astype(np.float32)
        o += self.colour_dim
        nl = self.local_shape[0] * self.local_shape[1]
        out["local"] = m[:, o : o + nl].reshape(n, *self.local_shape).copy()
        o += nl
        if self.shape_dim:
            out["shape"] = m[:, o].astype(np.float32)
        return out
