"""Fixtures for the desktop-app tests (pytest-qt, offscreen).

Settings and data dirs point at tmp paths; one synthetic collection is indexed once per session
and reused; every test must leave no thread-pool work running.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import pytest  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/synth.py
from synth import make_collection  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from app_helpers import fast_settings, open_window, write_labels  # noqa: E402

import artstyle_gui.app  # noqa: E402,F401 - applies the PySide6 6.12 refcount guard (see app/_compat.py)


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path, monkeypatch):
    from PySide6.QtCore import QSettings

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "qsettings"))
    monkeypatch.setenv("ARTSTYLE_DATA_DIR", str(tmp_path / "data"))
    yield


@pytest.fixture(scope="package", autouse=True)
def _gui_thread_gc_only_for_app_tests():
    """The app's Controller collects cyclic garbage on the GUI thread only (app/background.py) and
    fits topics in worker processes; the engine tests that run after these get the interpreter's
    automatic collection and in-thread fits back."""
    yield
    from artstyle_gui.app.background import restore_automatic_gc
    from artstyle_gui.core.analysis.topics import set_topic_processes

    restore_automatic_gc()
    set_topic_processes(0)


@pytest.fixture(autouse=True)
def _no_thread_pool_work_left(qapp):
    yield
    from PySide6.QtCore import QThreadPool

    from artstyle_gui.app.widgets.thumbnails import thumbnail_pool

    for pool in (QThreadPool.globalInstance(), thumbnail_pool()):
        assert pool.waitForDone(60000), "thread-pool work still running after the test"
        assert pool.activeThreadCount() == 0


class Indexed:
    """A synthetic collection with labels, indexed once by the core (the reference for the GUI)."""

    def __init__(self, root: Path, index_dir: Path, settings) -> None:
        from artstyle_gui.core.index.collection import Collection
        from artstyle_gui.core.progress import run

        self.root, self.index_dir, self.settings = root, index_dir, settings
        self.col = Collection(root, settings=settings, index_dir=index_dir)
        self.report, self.an = run(self.col.index())

    def reference(self):
        """A fresh core Collection over the same index (what the app must agree with)."""
        from artstyle_gui.core.index.collection import Collection

        col = Collection(self.root, settings=self.settings, index_dir=self.index_dir)
        col.load_analysis()
        return col


@pytest.fixture(scope="session")
def indexed(tmp_path_factory):
    base = tmp_path_factory.mktemp("indexed")
    root = base / "paintings"
    rows = make_collection(root, n_per_style=8, size=(128, 104))
    write_labels(root / "labels.csv", rows)
    ix = Indexed(root, base / "index", fast_settings())
    assert ix.an is not None and ix.an.n == 32 and ix.an.topics is not None
    ix.col.close()
    return ix


@pytest.fixture
def window(qtbot, indexed, tmp_path):
    """A main window on (a copy of the index of) the indexed collection, after its quick open job."""
    import shutil

    index = tmp_path / "index"
    shutil.copytree(indexed.index_dir, index)  # tests may re-fit or re-rank: keep the reference pristine
    win = open_window(qtbot, indexed.root, index)
    yield win
    win.shutdown()
