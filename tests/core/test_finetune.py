"""Backbone fine-tuning (core/learn/finetune.py, `artstyle finetune`): a couple of CPU steps on tiny data.

What must hold whatever the data: only the last stages change (texture and local features stay the
ImageNet ones, the pooled deep feature moves), the weights land in the data folder with provenance
and load as a backbone (a new feature set), the collection is never written, Cancel writes nothing.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from artstyle_gui.cli import main as cli_main
from artstyle_gui.core.ingest.backbones import DEFAULT_BACKBONE, file_sha256, load_backbone
from artstyle_gui.core.index.collection import Collection
from artstyle_gui.core.model import Settings
from artstyle_gui.core.errors import ArtStyleError
from artstyle_gui.core.ingest.features import center_crop
from artstyle_gui.core.learn.finetune import FinetuneConfig, finetune, finetuned_dir, finetuned_info, list_finetuned, resolve_weights
from artstyle_gui.core.ingest.imageio import decode_image
from artstyle_gui.core.progress import collect, run
from synth import STYLES, make_collection, tree_digest, write_labels_csv

TINY = dict(epochs=1, batch_size=4, max_steps=2, holdout=0.34)


@pytest.fixture
def labelled(tmp_path):
    root = tmp_path / "paintings"
    rows = make_collection(root, n_per_style=6, styles=STYLES[:3], size=(96, 80), seed=3)
    csv_path = tmp_path / "labels.csv"  # beside the collection, never in it
    write_labels_csv(csv_path, rows, column="style")
    return root, rows, csv_path


def _crops(root, rows, n=4):
    return np.stack([center_crop(decode_image(str(root / rel)).image) for rel, _ in rows[:n]])


@pytest.mark.slow
def test_finetune_changes_only_the_last_stages_and_saves_a_loadable_backbone(labelled, tmp_path):
    root, rows, csv_path = labelled
    before = tree_digest(root)
    col = Collection(root, index_dir=tmp_path / "idx", labels_csv=csv_path)
    events, rep = collect(finetune(col, FinetuneConfig(label="style", name="tiny-style", **TINY)))
    col.close()
    assert tree_digest(root) == before  # nothing written into the collection

    stages = [e.stage for e in events]
    assert stages[0] == "finetune-read" and "finetune" in stages and stages[-1] == "finetune-save"
    assert rep.classes == sorted(STYLES[:3]) and rep.n_train + rep.n_heldout == len(rows)
    assert rep.stopped == "steps" and rep.epochs_run == 1

    pt = finetuned_dir() / "tiny-style.pt"
    assert rep.weights_path == str(pt) and pt.is_file()
    assert str(tmp_path) in str(pt)  # the test's data dir (ARTSTYLE_DATA_DIR), not the user's
    meta = finetuned_info(pt)
    assert meta is not None and meta["weights_sha256"] == file_sha256(pt)
    assert meta["config"]["label"] == "style" and meta["figures"]["classes"] == rep.classes
    assert [m["name"] for m in list_finetuned()] == ["tiny-style"]
    assert resolve_weights("tiny-style") == str(pt)

    x = _crops(root, rows)
    assert meta["backbone"] == DEFAULT_BACKBONE  # fine-tuned from the default (the art model)
    base = load_backbone(DEFAULT_BACKBONE).forward(x)
    tuned = load_backbone(DEFAULT_BACKBONE, str(pt)).forward(x)
    for g0, g1 in zip(base["grams"], tuned["grams"]):  # blocks 4 and 7: frozen
        np.testing.assert_allclose(g0, g1, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(base["local"], tuned["local"], rtol=1e-4, atol=1e-5)  # block 10: frozen
    assert np.abs(base["deep"] - tuned["deep"]).max() > 1e-3  # the trained head stages moved

    # a fine-tuned backbone is its own feature set: both can live in one index
    assert Settings(weights_file=str(pt)).featureset_key() != Settings().featureset_key()


@pytest.mark.slow
def test_cancel_writes_nothing(labelled, tmp_path):
    root, _, csv_path = labelled
    col = Collection(root, index_dir=tmp_path / "idx", labels_csv=csv_path)
    gen = finetune(col, FinetuneConfig(label="style", name="never", **TINY))
    for p in gen:
        if p.stage == "finetune":  # training has started
            break
    gen.close()  # what the app's Cancel does
    col.close()
    assert not (finetuned_dir() / "never.pt").exists() and list_finetuned() == []
    d = finetuned_dir()
    assert not d.exists() or not any(d.iterdir())


def test_needs_two_labels_and_says_where_labels_come_from(labelled, tmp_path):
    root, rows, _ = labelled
    one = tmp_path / "one.csv"
    write_labels_csv(one, [(rel, "same") for rel, _ in rows[:5]], column="style")
    col = Collection(root, index_dir=tmp_path / "idx", labels_csv=one)
    with pytest.raises(ArtStyleError, match="at least two 'style' labels.*labels.csv"):
        run(finetune(col, FinetuneConfig(label="style", **TINY)))
    col.close()
    with pytest.raises(ArtStyleError, match="stages"):
        FinetuneConfig(stages=17).validate()
    with pytest.raises(ArtStyleError, match="No weights file or fine-tuned backbone named 'nope'"):
        resolve_weights("nope")


@pytest.mark.slow
def test_cli_finetune_then_index_with_the_fine_tuned_backbone(labelled, tmp_path, capsys):
    root, _, csv_path = labelled
    idx = tmp_path / "cli-idx"
    common = [str(root), "--index-dir", str(idx), "--labels", str(csv_path)]
    assert cli_main(["-q", "finetune", *common, "--label", "style", "--epochs", "1", "--train-batch", "4",
                     "--holdout", "0.34", "--name", "cli-tuned", "--max-seconds", "1"]) == 0
    out = capsys.readouterr().out
    assert "Saved as 'cli-tuned'" in out and "--weights cli-tuned" in out
    assert cli_main(["backbones"]) == 0
    assert "cli-tuned" in capsys.readouterr().out
    assert cli_main(["-q", "index", *common, "--weights", "cli-tuned", "--k", "3"]) == 0
    capsys.readouterr()
    settings = Collection(root, index_dir=idx, labels_csv=csv_path).store.get_meta("settings")
    saved = json.loads(settings)
    assert os.path.samefile(saved["weights_file"], finetuned_dir() / "cli-tuned.pt")
