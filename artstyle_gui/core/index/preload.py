"""Load the engine's heavy native modules ahead of time (the app calls this before its window shows)."""

from __future__ import annotations

from ..ingest.backbones import REGISTRY

#: native libraries the engine's worker would otherwise load mid-run (``import`` of a C extension
#: holds the GIL while it is loaded: torch alone froze the window for 0.6-1 s when the first folder
#: was indexed, sklearn.cluster for 0.3 s when the topics started; benchmarks/perf.py, docs/benchmarks.md).
#: torchvision (170 MB of RSS) only for the backbone that needs it; it is optional (the CPU bundle has none).
PRELOAD = ("torch", "efficientnet_lite_pytorch", "sklearn.cluster", "sklearn.decomposition",
           "scipy.linalg", "hnswlib", "PIL.Image")


def preload_engine_modules(backbone: str | None = None) -> float:
    """Import the engine's heavy native modules now (the app calls this before its window shows);
    returns the seconds it took (0 once they are loaded)."""
    import importlib
    import sys
    import time

    t = time.perf_counter()
    info = REGISTRY.get(backbone or "")
    for name in PRELOAD + (info.preload if info is not None else ()):
        if name not in sys.modules:
            try:
                importlib.import_module(name)
            except Exception:  # missing or broken (a torchvision built for another torch raises
                pass           # RuntimeError): reported where the engine needs it, with its remedy
    try:  # Pillow imports its common format plugins at the first open: in a decode thread that held
        from PIL import (
            Image,  # the GIL while the first preview of a re-opened collection was shown
        )

        Image.preinit()
    except Exception:  # noqa: BLE001
        pass
    return time.perf_counter() - t
