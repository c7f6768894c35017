"""Work around binding bugs that would otherwise crash the app.

PySide6 6.12.0 on CPython < 3.12 returns some singletons without a new reference:
``SignalInstance.emit()`` / ``disconnect()`` return ``True``, and ``QModelIndex.data()`` returns
``None`` for a model's ``None`` -- each call from Python drops one reference.  After a few hundred
calls (pyqtgraph emits on every mouse move, delegates read roles on every paint) CPython aborts with
"Fatal Python error: bool_dealloc / none_dealloc".  Python 3.12+ made these singletons immortal,
which hides the bug; on 3.11 we do the same by giving them a huge reference count, once, and only
when a probe shows the leak.
"""

from __future__ import annotations

import ctypes
import sys

_applied: bool | None = None


def _leaks() -> bool:
    from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, Signal

    class _Probe(QObject):
        probed = Signal()

    class _Model(QAbstractListModel):
        def rowCount(self, parent=QModelIndex()):  # noqa: N802
            return 1

        def data(self, index, role=0):
            return None

    probe, model = _Probe(), _Model()
    ix = model.index(0, 0)
    t0, n0 = sys.getrefcount(True), sys.getrefcount(None)
    for _ in range(16):
        probe.probed.emit()
        ix.data(0x200)
    return t0 - sys.getrefcount(True) >= 8 or n0 - sys.getrefcount(None) >= 8


def guard_singleton_refcounts() -> bool:
    """Apply the work-around if this PySide6 leaks references to True/None; return whether it did."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if sys.version_info >= (3, 12) or not hasattr(sys, "getrefcount"):
        return False
    if _leaks():
        for obj in (None, True, False, Ellipsis, NotImplemented):
            # ob_refcnt is the first field of every CPython object: make them effectively immortal
            ctypes.c_ssize_t.from_address(id(obj)).value += 1 << 40
        _applied = True
    return _applied
