"""Background threads run below the GUI thread's CPU priority.

The engine's jobs (and the decode and torch threads they start) and the thumbnail decoders are
CPU-bound; on a machine with few cores they used to take the CPU from the GUI thread, so a
repaint that needs 40 ms of CPU took 160 ms while a folder was indexed (docs/benchmarks.md,
"longest main-thread stall").  A background thread lowers its own priority when it starts a job
or a decode: on Linux its nice value (per thread there; threads it starts inherit it), on other
systems the QThread priority.  The throughput of the jobs is unchanged while the GUI thread
is idle, which it is nearly all the time.

The GUI thread also needs the GIL for every slot and delegate written in Python; while a job runs
Python code (the topic sweep, batch bookkeeping) it got the GIL only after waiting out the
interpreter's 5 ms switch interval, several times per event, so a 10 ms timer measured gaps of
30-65 ms during the topic sweep; with a 1 ms interval none over 30 ms (:func:`favour_gui_thread`).
"""

from __future__ import annotations

import gc
import os
import sys
import threading

BACKGROUND_NICE = 10  # Linux nice value of background threads; CFS then gives the GUI thread ~10x their share


def lower_this_thread() -> None:
    """Lower the calling thread's CPU priority (idempotent, a few microseconds; never the main thread)."""
    if threading.current_thread() is threading.main_thread():
        return  # e.g. a job run synchronously in tests: the GUI thread keeps its priority
    try:
        if sys.platform.startswith("linux"):
            tid = threading.get_native_id()
            if os.getpriority(os.PRIO_PROCESS, tid) < BACKGROUND_NICE:  # on Linux the nice value is per thread
                os.setpriority(os.PRIO_PROCESS, tid, BACKGROUND_NICE)
        else:
            from PySide6.QtCore import QThread

            th = QThread.currentThread()
            if th is not None:
                th.setPriority(QThread.Priority.LowPriority)
    except (OSError, AttributeError, RuntimeError):
        pass  # not allowed or not supported: the thread keeps its priority


GUI_SWITCH_INTERVAL = 0.001  # seconds; CPython's default is 0.005
GC_INTERVAL = 1.0  # seconds between the GUI thread's checks of the collector's counts
_frozen = False
_collector = None


def favour_gui_thread() -> None:
    """Process-wide settings that keep the GUI thread responsive next to busy worker threads, and
    the process alive (the app calls this once, on the GUI thread, after the engine's libraries are
    imported and before its window shows):

    * a 1 ms GIL switch interval;
    * the objects that exist now (modules, classes and functions of torch, scikit-learn, SciPy,
      PySide6: about 330,000) move to the collector's permanent generation (``gc.freeze``). A full
      collection walked all of them, 210-250 ms during which no Python thread ran; it happens every
      so often while a job allocates (model loading, the topic sweep), and froze the window;
    * cyclic garbage is collected on the GUI thread only (pyqtgraph's ``GarbageCollector``: automatic
      collection off, a 1 s timer collects the generations whose counts passed their thresholds).
      Otherwise whichever thread allocates when a threshold is passed collects - the worker reading
      the index, say - and a Qt object in a reference cycle (a closed dialog, a chart item) is then
      destroyed on that thread, which crashed the process (seen as "Garbage-collecting" in the
      worker's stack of a segfault in the app tests).
    """
    global _frozen, _collector
    if sys.getswitchinterval() > GUI_SWITCH_INTERVAL:
        sys.setswitchinterval(GUI_SWITCH_INTERVAL)
    if not _frozen:  # once: later objects (a collection's records, views) are collected as usual
        _frozen = True
        gc.collect()
        gc.freeze()
    if _collector is None and threading.current_thread() is threading.main_thread():
        from pyqtgraph.util.garbage_collector import GarbageCollector

        _collector = GarbageCollector(interval=GC_INTERVAL)


def restore_automatic_gc() -> None:
    """Undo the GUI-thread-only collection (for a process that stops showing windows, e.g. a test
    run that goes on with engine tests): automatic collection on again, frozen objects thawed."""
    global _frozen, _collector
    if _collector is not None:
        _collector.timer.stop()
        _collector = None
        gc.enable()
    if _frozen:
        _frozen = False
        gc.unfreeze()


def gui_collects_garbage() -> bool:
    """Whether cyclic garbage is collected on the GUI thread only (see :func:`favour_gui_thread`)."""
    return _collector is not None and not gc.isenabled()
