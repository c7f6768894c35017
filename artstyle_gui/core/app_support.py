"""Small Qt-free helpers the desktop app needs on top of :mod:`.engine` (vectorised queries)."""

from __future__ import annotations

import numpy as np

from .analysis import PARTS, blend
from .engine import Analysis, Collection, Neighbour
from .errors import ArtStyleError


def blended(an: Analysis) -> np.ndarray:
    """The blended (N, D) vectors of the neighbour index, cached per weights/metric."""
    key = (tuple(sorted(an.weights.items())), an.metric)
    cache = getattr(an, "_blended_cache", None)
    if cache is None or cache[0] != key:
        cache = (key, blend(an.parts, an.weights))
        an._blended_cache = cache  # type: ignore[attr-defined]
    return cache[1]


def similarity_to_row(an: Analysis, row: int) -> np.ndarray:
    """Blended similarity of every painting to painting ``row`` (same scale as ``Neighbour.score``:
    cosine similarity, or minus the squared distance for the euclidean metric)."""
    x = blended(an)
    q = x[row]
    if an.metric == "cosine":
        return x @ q
    d = x - q[None, :]
    return -np.einsum("ij,ij->i", d, d)


def similar_in(col: Collection, an: Analysis, row: int, k: int = 10) -> list[Neighbour]:
    """``Collection.similar`` over a given Analysis, e.g. the partial one that ``analyse()`` yields
    (neighbour index ready, topics still fitting) before ``col.analysis`` is replaced."""
    if not 0 <= row < an.n:
        raise ArtStyleError(f"No painting number {row}.")
    q = blend({p: an.parts[p][row : row + 1] for p in PARTS}, an.weights)[0]
    return col._neighbours(an, q, k, exclude=row)


#: native libraries the engine's worker would otherwise load mid-run (``import`` of a C extension
#: holds the GIL while it is loaded: torch alone froze the window for 0.6-1 s when the first folder
#: was indexed, sklearn.cluster for 0.3 s when the topics started; benchmarks/perf.py, docs/benchmarks.md).
#: torchvision (170 MB of RSS) only for the backbone that needs it; it is optional (the CPU bundle has none).
PRELOAD = ("torch", "efficientnet_lite_pytorch", "sklearn.cluster", "sklearn.decomposition",
           "scipy.linalg", "hnswlib", "PIL.Image")
PRELOAD_FOR_BACKBONE = {"resnet50": ("torchvision",)}


def preload_engine_modules(backbone: str | None = None) -> float:
    """Import the engine's heavy native modules now (the app calls this before its window shows);
    returns the seconds it took (0 once they are loaded)."""
    import importlib
    import sys
    import time

    t = time.perf_counter()
    for name in PRELOAD + PRELOAD_FOR_BACKBONE.get(backbone or "", ()):
        if name not in sys.modules:
            try:
                importlib.import_module(name)
            except Exception:  # missing or broken (a torchvision built for another torch raises
                pass           # RuntimeError): reported where the engine needs it, with its remedy
    try:  # Pillow imports its common format plugins at the first open: in a decode thread that held
        from PIL import Image  # the GIL while the first preview of a re-opened collection was shown

        Image.preinit()
    except Exception:  # noqa: BLE001
        pass
    return time.perf_counter() - t
