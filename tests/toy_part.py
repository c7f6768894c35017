"""A toy descriptor part: what adding a part takes (this file, and one ``register_part(TOY_PART)`` line).

"Layout": the mid-level local feature map averaged over its 7x7 cells, PCA-reduced, L2-normalised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from artstyle_gui.core.analysis.parts import Part, Projection, l2n


def _pooled(raw: dict[str, np.ndarray]) -> np.ndarray:
    return l2n(np.asarray(raw["local"], np.float32).mean(axis=1))


@dataclass
class LayoutPart:
    projection: Projection

    def __call__(self, raw: dict[str, np.ndarray]) -> np.ndarray:
        return l2n(self.projection(_pooled(raw)))

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"pm_toy_mean": self.projection.mean, "pm_toy_comp": self.projection.components}

    @classmethod
    def fit(cls, raw: dict[str, np.ndarray], components: int, seed: int) -> "LayoutPart":
        return cls(Projection.fit(_pooled(raw), components, seed))

    @classmethod
    def load(cls, a: dict[str, np.ndarray]) -> "LayoutPart | None":
        return cls(Projection(a["pm_toy_mean"], a["pm_toy_comp"])) if "pm_toy_mean" in a else None


TOY_PART = Part("toy", "Layout (pooled local features)", "layout", "#2a9d8f", LayoutPart.fit, LayoutPart.load,
                components=8)
