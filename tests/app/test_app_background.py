"""Background work must not take the GUI thread's CPU, and must never destroy Qt objects."""

from __future__ import annotations

import os
import sys
import threading

import pytest


class _Witness:
    """Records the thread that finalised it."""

    def __init__(self, log: list[str]):
        self.log = log
        self.me = self  # a reference cycle: only the cyclic collector frees it

    def __del__(self):
        self.log.append(threading.current_thread().name)


def test_cyclic_garbage_is_collected_on_the_gui_thread_only(window, qtbot):
    from artstyle_gui.app.background import GC_INTERVAL, gui_collects_garbage

    assert gui_collects_garbage()  # the window's Controller turned automatic collection off
    log: list[str] = []
    _Witness(log)  # unreachable now, but in a cycle

    def allocate():  # like a worker reading 10,000 records: far past every collection threshold
        junk = []
        for i in range(300_000):
            d = {"i": i}
            d["self"] = d
            junk.append(d)
            if len(junk) > 1000:
                junk.clear()

    t = threading.Thread(target=allocate, name="worker")
    t.start()
    t.join()
    assert log == [], "the worker thread ran the cyclic collector"
    qtbot.waitUntil(lambda: bool(log), timeout=int(GC_INTERVAL * 1000 * 3 + 2000))
    assert log == [threading.main_thread().name]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_background_threads_run_below_the_gui_thread(window):
    from artstyle_gui.app.background import BACKGROUND_NICE, lower_this_thread

    main_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen = {}

    def job():
        lower_this_thread()
        seen["job"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        inner = threading.Thread(target=lambda: seen.__setitem__(
            "child", os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
        inner.start()
        inner.join()

    t = threading.Thread(target=job)
    t.start()
    t.join()
    lower_this_thread()  # on the GUI thread: no effect
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main_nice
    assert seen["job"] == max(main_nice, BACKGROUND_NICE)
    assert seen["child"] == seen["job"]  # threads a job starts (decoders, torch) inherit it
