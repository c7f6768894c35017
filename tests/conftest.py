"""Session-wide: nothing a test run writes goes to the user's data folder, not even from session-scoped
fixtures that run before the per-test isolation (core/conftest.py, app/conftest.py): the ONNX export
cache and indexes land in a temporary folder."""

from __future__ import annotations

import os
import shutil
import tempfile

_made: list[str] = []


def pytest_configure(config) -> None:
    if not os.environ.get("ARTSTYLE_DATA_DIR"):
        _made.append(tempfile.mkdtemp(prefix="artstyle-test-data-"))
        os.environ["ARTSTYLE_DATA_DIR"] = _made[-1]


def pytest_unconfigure(config) -> None:
    for d in _made:
        shutil.rmtree(d, ignore_errors=True)
