"""Helpers shared by the app tests (kept out of conftest.py so they can be imported)."""

from __future__ import annotations

import csv
from pathlib import Path

ARTISTS = {"pointillist": ["Seurat", "Signac"], "stripes": ["Riley", "Riley"], "blocks": ["Mondrian", "Doesburg"],
           "swirl": ["Munch", "Kandinsky"]}


def write_labels(path: Path, rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["path", "artist", "title", "style"])
        for i, (rel, style) in enumerate(rows):
            w.writerow([rel, ARTISTS[style][i % 2], f"{style.capitalize()} study {i}", style])


def fast_settings(**kw):
    """Engine settings that keep the tests quick (small K range, small batches)."""
    from artstyle_gui.core.model import Settings

    base = dict(k_range=(3, 6), batch_size=8)
    base.update(kw)
    return Settings(**base)


def open_window(qtbot, root, index, **kw):
    """A shown main window (fast settings) that has opened ``root`` with its index in ``index``."""
    from artstyle_gui.app.controller import Controller
    from artstyle_gui.app.main_window import MainWindow

    c = Controller(fast_settings())
    win = MainWindow(c)
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    with qtbot.waitSignal(c.job_finished, timeout=60000):
        assert win.open_folder(root, index_dir=index, **kw)
    assert c.analysis is not None
    return win
