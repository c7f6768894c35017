"""The `artstyle` command line: exit codes, messages, outputs a script can rely on."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from artstyle_gui.core.ingest.backbones import DEFAULT_BACKBONE
from artstyle_gui.cli import main
from artstyle_gui.core.explore.summaries import csv_safe, unescape_csv


@pytest.fixture
def cli_collection(fresh_copy, tmp_path):
    root, rows, labels = fresh_copy
    idx = tmp_path / "idx"
    base = ["--index-dir", str(idx), "--labels", str(labels)]
    assert main(["-q", "index", str(root), *base, "--k", "4"]) == 0
    return root, rows, base


def test_index_similar_topics_evaluate(cli_collection, capsys, tmp_path):
    root, rows, base = cli_collection
    capsys.readouterr()
    assert main(["-q", "similar", str(root), "stripes/stripes_2.jpg", "-k", "5", "--json", *base]) == 0
    res = json.loads(capsys.readouterr().out)
    assert len(res) == 5 and sum(r["path"].startswith("stripes/") for r in res) >= 4
    assert all(abs(sum(r["shares"].values()) - 1) < 1e-3 for r in res)

    assert main(["-q", "topics", str(root), "--json", *base]) == 0
    t = json.loads(capsys.readouterr().out)
    assert t["k"] == 4 and sum(x["size"] for x in t["topics"]) == len(rows)

    assert main(["-q", "evaluate", str(root), "--label", "style", "--json", *base]) == 0
    ev = json.loads(capsys.readouterr().out)
    names = [r["name"] for r in ev["retrieval"]]
    assert names[:3] == ["deep only", "texture only", "colour only"] and names[3].startswith("blend")
    assert all(r["precision_at_k"] > 0.5 for r in ev["retrieval"])
    assert ev["topics_nmi"] > 0.5


def test_similar_to_an_external_image(cli_collection, capsys, tmp_path):
    root, _, base = cli_collection
    from synth import make_painting

    q = tmp_path / "outside.png"
    make_painting("swirl", seed=31337).save(q)
    capsys.readouterr()
    assert main(["-q", "similar", str(root), str(q), "-k", "3", *base]) == 0
    out = capsys.readouterr().out
    assert "external image" in out and out.count("swirl/") >= 2


def test_export_parses_and_carries_provenance(cli_collection, tmp_path, capsys):
    root, rows, base = cli_collection
    out = tmp_path / "export"
    assert main(["-q", "export", str(root), str(out), *base]) == 0
    with open(out / "paintings.csv", newline="", encoding="utf-8") as fh:
        prow = list(csv.DictReader(fh))
    assert len(prow) == len(rows)
    mix = [[float(r[f"topic_{t}"]) for t in range(1, 5)] for r in prow]
    assert all(abs(sum(m) - 1) < 1e-2 for m in mix)
    with open(out / "topics.csv", newline="", encoding="utf-8") as fh:
        trows = list(csv.DictReader(fh))
    assert sum(int(r["size"]) for r in trows) == len(rows)
    prov = json.loads((out / "provenance.json").read_text())
    for key in ("backbone", "weights_sha256", "blend_weights", "pca_components", "topic_input", "k", "seed",
                "created", "app_version"):
        assert key in prov
    assert prov["backbone"] == DEFAULT_BACKBONE and len(prov["weights_sha256"]) == 64


def test_export_inside_collection_is_refused(cli_collection, capsys):
    root, _, base = cli_collection
    assert main(["-q", "export", str(root), str(root / "out"), *base]) == 1
    assert "never writes" in capsys.readouterr().err
    assert not (root / "out").exists()


def test_formula_injection_is_escaped_and_round_trips():
    for evil in ["=HYPERLINK(\"http://x\")", "+cmd", "-2+3", "@SUM(A1)", "\t=1"]:
        assert csv_safe(evil).startswith("'")
        assert unescape_csv(csv_safe(evil)) == evil
    assert csv_safe("-0.25") == "-0.25"  # numbers stay numbers
    assert csv_safe('a, "quoted"\nline') == 'a, "quoted"\\x0aline'  # no line break inside a cell
    assert unescape_csv(csv_safe('a, "quoted"\nline')) == 'a, "quoted"\nline'


def test_labels_with_commas_quotes_newlines_round_trip(fresh_copy, tmp_path):
    root, rows, _ = fresh_copy
    labels = tmp_path / "labels.csv"
    evil = {rows[0][0]: 'Doe, "Jane"\nII', rows[1][0]: "=1+1"}
    with open(labels, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "artist"])
        for p, a in evil.items():
            w.writerow([p, a])
    base = ["--index-dir", str(tmp_path / "idx"), "--labels", str(labels)]
    assert main(["-q", "index", str(root), *base, "--k", "4"]) == 0
    assert main(["-q", "export", str(root), str(tmp_path / "out"), *base]) == 0
    with open(tmp_path / "out" / "paintings.csv", newline="", encoding="utf-8") as fh:
        got = {r["path"]: unescape_csv(r["artist"]) for r in csv.DictReader(fh)}
    for p, a in evil.items():
        assert got[p] == a


def test_missing_index_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["similar", str(tmp_path / "empty"), "x.jpg", "--index-dir", str(tmp_path / "i")]) == 1
    assert "artstyle index" in capsys.readouterr().err


def test_not_a_folder(tmp_path, capsys):
    assert main(["index", str(tmp_path / "nope"), "--index-dir", str(tmp_path / "i")]) == 1
    assert "not a folder" in capsys.readouterr().err


def test_resnet50_offline_without_weights_names_both_remedies(fresh_copy, tmp_path, capsys):
    root, _, _ = fresh_copy
    code = main(["-q", "index", str(root), "--index-dir", str(tmp_path / "i"), "--backbone", "resnet50"])
    err = capsys.readouterr().err
    assert code == 1
    assert "--weights" in err and "internet" in err and "Traceback" not in err


def test_resnet50_with_a_weights_file(fresh_copy, tmp_path, capsys):
    """A local weights file is used (random-initialised here: the network is not reachable in tests)."""
    import torch
    from torchvision.models import resnet50

    root, rows, _ = fresh_copy
    w = tmp_path / "resnet50-test.pth"
    torch.manual_seed(0)
    torch.save(resnet50(weights=None).state_dict(), w)
    idx = tmp_path / "i"
    assert main(["-q", "index", str(root), "--index-dir", str(idx), "--backbone", "resnet50", "--weights", str(w),
                 "--k", "4", "--no-analysis"]) == 0
    assert f"{len(rows)} extracted" in capsys.readouterr().out


def test_hostile_weights_file_is_refused(fresh_copy, tmp_path, capsys):
    import pickle

    class Evil:
        def __reduce__(self):
            return (exec, ("open(%r, 'w').write('pwned')" % str(tmp_path / "pwned"),))

    root, _, _ = fresh_copy
    w = tmp_path / "evil.pth"
    w.write_bytes(pickle.dumps(Evil()))
    code = main(["-q", "index", str(root), "--index-dir", str(tmp_path / "i"), "--weights", str(w)])
    assert code == 1 and not (tmp_path / "pwned").exists()
    assert "safely" in capsys.readouterr().err


def test_console_script_help():
    out = subprocess.run([sys.executable, "-m", "artstyle_gui.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for cmd in ("index", "similar", "topics", "export", "evaluate", "problems"):
        assert cmd in out.stdout


def test_layers_are_respected():
    """import-linter contracts from pyproject: core imports no Qt and is a tree of layers, the app and the
    CLI sit on it, the CLI never imports the app."""
    root = Path(__file__).resolve().parents[2]
    exe = Path(sys.executable).with_name("lint-imports")
    cmd = [str(exe)] if exe.exists() else ["lint-imports"]
    res = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "core is a tree of layers" in res.stdout and "4 kept, 0 broken" in res.stdout, res.stdout


def test_exported_files_have_normal_permissions(cli_collection, tmp_path):
    import os
    import stat

    root, _, base = cli_collection
    out = tmp_path / "export"
    assert main(["-q", "export", str(root), str(out), *base]) == 0
    mask = os.umask(0)
    os.umask(mask)
    for f in out.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o666 & ~mask, f
