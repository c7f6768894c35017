"""GUI measurements for benchmarks/perf.py, each run in its own process (offscreen Qt).

    python benchmarks/perf_gui.py index  ROOT INDEX_DIR   # stall while indexing + click to panel
    python benchmarks/perf_gui.py reopen ROOT INDEX_DIR   # re-open an indexed collection
    python benchmarks/perf_gui.py rss    ROOT INDEX_DIR   # memory with the collection in the gallery

Prints one JSON object on its last line.  QSettings go to a temporary folder.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")


def rss_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MiB, from /proc."""
    cur = peak = 0.0
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                cur = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    return round(cur, 1), round(peak, 1)


def _app():
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    tmp = tempfile.mkdtemp(prefix="artstyle-bench-qs-")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tmp)
    import artstyle_gui.app  # noqa: F401 - PySide6 guard

    return QApplication.instance() or QApplication(["artstyle-bench"])


def _window(settings=None):
    from artstyle_gui.app import controller as _controller
    from artstyle_gui.app.controller import Controller
    from artstyle_gui.app.main_window import MainWindow

    if os.environ.get("ARTSTYLE_BENCH_NO_PRELOAD"):  # the "before" figure of the pre-import fix
        _controller.preload_engine_modules = lambda *a: 0.0

    c = Controller(settings)
    win = MainWindow(c)
    win.resize(1400, 900)
    win.show()
    return c, win


def _wait(app, cond, timeout: float) -> bool:
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        app.processEvents()
        if cond():
            return True
        time.sleep(0.001)
    return False


def click_to_panel(app, c, win, n: int = 40) -> dict:
    """Select paintings as a gallery click does; time until the detail panel (neighbours, bar chart)
    has been updated and painted."""
    import numpy as np

    rng = np.random.default_rng(0)
    rels = [c.analysis.relpaths[i] for i in rng.choice(c.analysis.n, size=min(n, c.analysis.n), replace=False)]
    times = []
    for rel in rels:
        t = time.perf_counter()
        c.select(rel)
        app.processEvents()
        win.detail.repaint()
        assert win.detail.neighbour_relpaths(), "no neighbours shown"
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {"click_to_panel_ms_p50": round(times[len(times) // 2], 1),
            "click_to_panel_ms_max": round(times[-1], 1), "clicks": len(times)}


def cmd_index(root: str, index_dir: str) -> dict:
    from PySide6.QtCore import QTimer

    app = _app()
    c, win = _window()
    gaps: dict[str, float] = {}
    stage = ["open"]
    last = [time.perf_counter()]
    ticks = [0]

    def tick() -> None:
        now = time.perf_counter()
        g = now - last[0]
        gaps[stage[0]] = max(gaps.get(stage[0], 0.0), g)
        last[0] = now
        ticks[0] += 1

    c.progress_changed.connect(lambda p, *_: stage.__setitem__(0, p.stage) if p is not None else None)
    done = []
    c.job_finished.connect(lambda *a: done.append(a))
    timer = QTimer(interval=10)
    timer.timeout.connect(tick)
    t0 = time.perf_counter()
    timer.start()
    assert win.open_folder(root, index_dir=index_dir)
    ok = _wait(app, lambda: bool(done), 3600)
    timer.stop()
    seconds = time.perf_counter() - t0
    assert ok and c.analysis is not None and c.analysis.topics is not None, "indexing did not finish"
    out = {"images": c.analysis.n, "seconds": round(seconds, 1), "ticks": ticks[0],
           "longest_stall_ms": round(max(gaps.values()) * 1000),
           "longest_stall_ms_by_stage": {k: round(v * 1000) for k, v in gaps.items()}}
    out.update(click_to_panel(app, c, win))
    win.shutdown()
    return out


def cmd_reopen(root: str, index_dir: str) -> dict:
    from artstyle_gui.core.index.collection import Collection

    # the core alone: open the store, read records, load the saved analysis (what `artstyle similar` does)
    t = time.perf_counter()
    col = Collection(root, index_dir=index_dir)
    col.settings = col.files.saved_settings() or col.settings
    recs = col.records()
    an = col.load_analysis()
    core_s = time.perf_counter() - t
    assert an is not None and an.n == len(recs), "the saved analysis was not usable"
    col.close()

    app = _app()
    c, win = _window()
    done = []
    c.job_finished.connect(lambda *a: done.append(a))
    t0 = time.perf_counter()
    assert win.open_folder(root, index_dir=index_dir)
    app.processEvents()
    t_rows = time.perf_counter() - t0
    rows = win.gallery.model.rowCount()
    _wait(app, lambda: c.analysis is not None, 600)
    t_an = time.perf_counter() - t0
    _wait(app, lambda: bool(done), 600)
    t_done = time.perf_counter() - t0
    out = {"paintings": an.n, "core_open_and_load_s": round(core_s, 3), "gallery_rows": rows,
           "gallery_filled_s": round(t_rows, 3), "neighbours_ready_s": round(t_an, 3),
           "background_check_done_s": round(t_done, 3)}
    out.update(click_to_panel(app, c, win, 20))
    win.shutdown()
    return out


def cmd_rss(root: str, index_dir: str) -> dict:
    app = _app()
    before = rss_mb()[0]
    c, win = _window()
    app.processEvents()
    window_only = rss_mb()[0]
    done = []
    c.job_finished.connect(lambda *a: done.append(a))
    assert win.open_folder(root, index_dir=index_dir)
    _wait(app, lambda: bool(done), 1200)
    assert c.analysis is not None
    # scroll through the gallery so thumbnails load and the view is exercised
    view = win.gallery.view if hasattr(win.gallery, "view") else None
    if view is not None:
        bar = view.verticalScrollBar()
        for i in range(20):
            bar.setValue(bar.maximum() * i // 20)
            _wait(app, lambda: False, 0.05)
    clicks = click_to_panel(app, c, win, 20)
    cur, peak = rss_mb()
    import gc  # the app collects cyclic garbage on the GUI thread (app/background.py): a full collection's cost
    t = time.perf_counter()
    gc.collect()
    gc_ms = (time.perf_counter() - t) * 1000
    out = {"paintings": c.analysis.n, "rss_before_window_mb": before, "rss_empty_window_mb": window_only,
           "rss_loaded_mb": cur, "peak_rss_mb": peak, "gc_full_collection_ms": round(gc_ms, 1)}
    out.update(clicks)
    win.shutdown()
    return out


if __name__ == "__main__":
    cmd, root, index_dir = sys.argv[1], sys.argv[2], sys.argv[3]
    res = {"index": cmd_index, "reopen": cmd_reopen, "rss": cmd_rss}[cmd](root, index_dir)
    print(json.dumps(res))
    sys.stdout.flush()
    os._exit(0)
