"""From raw stored features to the search embedding and the style topics.

Parts of the search embedding (each L2-normalised, so a blend weight means what it says):

``deep``     pooled CNN features -> L2 -> PCA -> L2
``texture``  Gram matrices, per layer: signed sqrt -> L2 -> PCA, concatenated -> L2
``colour``   3-D colour histogram -> sqrt (Hellinger) -> PCA -> L2

The style topics are fitted in :mod:`.topics`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PARTS = ("deep", "texture", "colour")
#: how the app and the CLI name each part: a label (settings) and a short name ("why similar")
PART_LABELS = {"deep": "Content (deep CNN features)", "texture": "Texture (Gram matrices)",
               "colour": "Colour histogram"}
PART_NAMES = {"deep": "content (deep)", "texture": "texture", "colour": "colour"}


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
class PartModel:
    """Everything needed to turn raw features of a new image into embedding parts."""

    deep: Projection
    grams: list[Projection]
    colour: Projection

    def transform(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        deep = l2n(self.deep(l2n(raw["deep"])))
        tex = [p(l2n(ssqrt(raw[f"gram{i}"]))) for i, p in enumerate(self.grams)]
        texture = l2n(np.concatenate([l2n(t) for t in tex], axis=1))
        colour = l2n(self.colour(np.sqrt(np.maximum(raw["colour"], 0))))
        return {"deep": deep, "texture": texture, "colour": colour}

    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {"pm_deep_mean": self.deep.mean, "pm_deep_comp": self.deep.components,
               "pm_colour_mean": self.colour.mean, "pm_colour_comp": self.colour.components}
        for i, g in enumerate(self.grams):
            out[f"pm_gram{i}_mean"], out[f"pm_gram{i}_comp"] = g.mean, g.components
        return out

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> "PartModel":
        grams = []
        i = 0
        while f"pm_gram{i}_mean" in a:
            grams.append(Projection(a[f"pm_gram{i}_mean"], a[f"pm_gram{i}_comp"]))
            i += 1
        return cls(
            deep=Projection(a["pm_deep_mean"], a["pm_deep_comp"]), grams=grams,
            colour=Projection(a["pm_colour_mean"], a["pm_colour_comp"]),
        )


def fit_parts(raw: dict[str, np.ndarray], *, deep_components: int = 128, gram_components: int = 64,
              colour_components: int = 64, seed: int = 0) -> tuple[PartModel, dict[str, np.ndarray]]:
    deep = Projection.fit(l2n(raw["deep"]), deep_components, seed)
    grams = []
    i = 0
    while f"gram{i}" in raw:
        grams.append(Projection.fit(l2n(ssqrt(raw[f"gram{i}"])), gram_components, seed))
        i += 1
    colour = Projection.fit(np.sqrt(np.maximum(raw["colour"], 0)), colour_components, seed)
    model = PartModel(deep=deep, grams=grams, colour=colour)
    return model, model.transform(raw)


def blend(parts: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """Concatenate sqrt(w_p / sum w) * part_p: unit vectors whose dot product is the weighted mean of
    the per-part cosine similarities."""
    total = sum(max(0.0, float(weights.get(p, 0.0))) for p in PARTS)
    if total <= 0:
        raise ValueError("At least one blend weight must be positive.")
    cols = [np.sqrt(max(0.0, float(weights.get(p, 0.0))) / total) * parts[p] for p in PARTS]
    return np.ascontiguousarray(np.concatenate(cols, axis=1), dtype=np.float32)


def part_contributions(parts: dict[str, np.ndarray], i: np.ndarray | int, j: np.ndarray,
                       weights: dict[str, float], query: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """(len(j), 3): weighted cosine contribution of each part to the similarity between the
    query (row i, or an external ``query``) and rows j. Rows sum to the blended cosine similarity."""
    total = sum(max(0.0, float(weights.get(p, 0.0))) for p in PARTS)
    out = np.zeros((len(j), len(PARTS)), np.float32)
    for c, p in enumerate(PARTS):
        q = query[p][0] if query is not None else parts[p][i]
        out[:, c] = max(0.0, float(weights.get(p, 0.0))) / total * (parts[p][j] @ q)
    return out
