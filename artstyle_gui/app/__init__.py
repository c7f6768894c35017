"""The PySide6 desktop app: a gallery explorer over :mod:`artstyle_gui.core`.

Layers: ``core`` is Qt-free; everything Qt lives here.  PySide6 is imported before
pyqtgraph anywhere in this package (``PYQTGRAPH_QT_LIB`` pins the binding).
"""

import os

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

from ._compat import guard_singleton_refcounts  # noqa: E402

guard_singleton_refcounts()
