"""Core fixtures: a synthetic collection indexed once with the real offline backbone."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from artstyle_gui.core.index.collection import Collection
from artstyle_gui.core.model import Settings
from artstyle_gui.core.progress import run
from synth import STYLES, make_collection, write_labels_csv


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path, monkeypatch):
    """Indexes go to a temp dir, never to the user's data dir; offline mode for weights."""
    monkeypatch.setenv("ARTSTYLE_DATA_DIR", str(tmp_path / "artstyle-data"))
    monkeypatch.setenv("ARTSTYLE_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))


@pytest.fixture(scope="session")
def synth_src(tmp_path_factory) -> tuple[Path, list[tuple[str, str]]]:
    """A pristine synthetic collection (4 styles x 8) with a labels CSV beside it (read-only use)."""
    root = tmp_path_factory.mktemp("synth-src") / "paintings"
    rows = make_collection(root, n_per_style=8, size=(160, 128), seed=1)
    write_labels_csv(root.parent / "labels.csv", rows, column="style")
    return root, rows


@pytest.fixture(scope="session")
def indexed(synth_src, tmp_path_factory):
    """The synthetic collection indexed once (K fixed to the number of styles)."""
    root, rows = synth_src
    idx = tmp_path_factory.mktemp("synth-index")
    col = Collection(root, settings=Settings(k=len(STYLES)), index_dir=idx, labels_csv=root.parent / "labels.csv")
    rep, an = run(col.index())
    yield col, rep, an, rows
    col.close()


@pytest.fixture
def fresh_copy(synth_src, tmp_path):
    """A writable copy of the synthetic collection (for tests that change files) + its labels CSV."""
    root, rows = synth_src
    dst = tmp_path / "collection"
    shutil.copytree(root, dst)
    return dst, rows, root.parent / "labels.csv"
