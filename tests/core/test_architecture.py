"""The house rules (issue 17), checked on the source: a core that is a tree, no reaching into other
modules' private names, immutable analyses, a small controller, and whole registries."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
PKG = REPO / "artstyle_gui"


def _modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        parts = list(p.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _imports(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """Every artstyle_gui module ``name`` imports, at the top or inside a function (lazy imports count)."""
    pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = pkg.split(".")
            if node.level:
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:
                full = f"{mod}.{a.name}"
                target = full if full in mods else mod
                if target in mods and target != name:
                    found.add(target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in mods and a.name != name)
    return found


def test_no_import_cycle_in_the_package():
    mods = _modules()
    graph = {m: _imports(m, p, mods) for m, p in mods.items()}
    # a package imports its own parent's __init__ implicitly; only explicit edges count here
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_module_reaches_into_another_modules_private_names():
    mods = _modules()
    defined: dict[str, set[str]] = {}
    trees = {}
    for m, p in mods.items():
        tree = trees[m] = ast.parse(p.read_text(encoding="utf-8"))
        names = set()
        for n in ast.walk(tree):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(n.name)
            elif isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store):
                names.add(n.attr)
            elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                names.add(n.id)
        defined[m] = {x for x in names if x.startswith("_") and not x.startswith("__")}
    ours = set().union(*defined.values())
    bad = []
    for m, tree in trees.items():
        for n in ast.walk(tree):
            if isinstance(n, ast.ImportFrom) and (n.level or (n.module or "").startswith("artstyle_gui")):
                bad += [f"{m}: from {n.module} import {a.name}" for a in n.names
                        if a.name.startswith("_") and not a.name.startswith("__")]
            if isinstance(n, ast.Attribute) and n.attr in ours and n.attr not in defined[m]:
                if not (isinstance(n.value, ast.Name) and n.value.id in ("self", "cls")):
                    bad.append(f"{m}: {ast.unparse(n)}")
    assert not bad, "private names used across modules:\n" + "\n".join(sorted(set(bad)))


def test_analysis_is_immutable():
    from artstyle_gui.core.model import Analysis

    assert Analysis.__dataclass_params__.frozen
    fields = {f.name for f in dataclasses.fields(Analysis)}
    bad = []
    for m, p in _modules().items():
        for n in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(n, ast.Assign):
                targets = n.targets
            elif isinstance(n, (ast.AugAssign, ast.AnnAssign)):
                targets = [n.target]
            flat = []
            for t in targets:
                flat += list(t.elts) if isinstance(t, (ast.Tuple, ast.List)) else [t]
            for x in flat:  # an Analysis is called an / analysis / base / adapted / shown / partial in the code
                if isinstance(x, ast.Attribute) and x.attr in fields and isinstance(x.value, ast.Name) \
                        and x.value.id in ("an", "analysis", "base", "adapted", "shown", "partial", "an2"):
                    bad.append(f"{m}: {ast.unparse(x)}")
    assert not bad, "assignments to Analysis fields:\n" + "\n".join(bad)


def test_an_analysis_refuses_assignment(indexed):
    an = indexed[0].require_analysis()
    with pytest.raises(dataclasses.FrozenInstanceError):
        an.weights = {}  # type: ignore[misc]
    before = an.index
    other = an.with_blend({"deep": 1.0, "texture": 0.0, "colour": 0.0}, "cosine", an.settings)
    assert other is not an and an.index is before and other.weights["texture"] == 0.0


def test_controller_is_small():
    lines = (PKG / "app" / "controller.py").read_text(encoding="utf-8").count("\n")
    assert lines < 350, f"app/controller.py has {lines} lines"


@pytest.fixture
def toy_backbone():
    from artstyle_gui.core.ingest.backbones import REGISTRY, register
    from toy_backbone import TOY

    register(TOY)  # the one registration line
    yield TOY
    REGISTRY.pop(TOY.name, None)


def test_a_toy_backbone_is_one_file_and_one_line(toy_backbone, tmp_path, capsys):
    from artstyle_gui.cli import main
    from artstyle_gui.core.index.collection import Collection
    from artstyle_gui.core.ingest.backbones import load_backbone
    from synth import make_collection

    with pytest.raises(SystemExit):
        main(["index", "--help"])
    assert toy_backbone.name in capsys.readouterr().out  # a --backbone choice
    out = load_backbone(toy_backbone.name).forward(np.zeros((2, 224, 224, 3), np.uint8))
    assert out["deep"].shape == (2, 32) and out["local"].shape == (2, 49, 16)

    root = tmp_path / "c"
    make_collection(root, n_per_style=3, size=(64, 48))
    assert main(["-q", "index", str(root), "--index-dir", str(tmp_path / "idx"), "--backbone", toy_backbone.name,
                 "--k", "2"]) == 0
    with Collection(root, index_dir=tmp_path / "idx") as col:
        saved = col.files.saved_settings()
        assert saved.backbone == toy_backbone.name
        col.settings = saved
        an = col.require_analysis()
        assert an.n > 0 and len(col.similar(0, 3)) == 3


@pytest.fixture
def toy_part():
    from artstyle_gui.core.analysis.parts import PART_REGISTRY, register_part
    from toy_part import TOY_PART

    register_part(TOY_PART)  # the one registration line
    yield TOY_PART
    PART_REGISTRY.pop(TOY_PART.name, None)


def test_a_toy_descriptor_part_is_one_file_and_one_line(toy_part, indexed, tmp_path, capsys):
    """Registered, the part is fitted with the others, saved and loaded with the analysis, blended, explained
    in "why similar", and the CLI's --blend takes it; at weight 0 (a new part's) it changes no ranking."""
    from artstyle_gui.cli import main
    from artstyle_gui.core.analysis.parts import PARTS
    from artstyle_gui.core.index.collection import Collection
    from artstyle_gui.core.model import Settings
    from artstyle_gui.core.progress import run

    col0 = indexed[0]
    before = [n.relpath for n in col0.similar(0, 5)]
    assert "toy" in PARTS and list(PARTS)[-1] == "toy"
    idx = tmp_path / "idx"
    with Collection(col0.root, settings=Settings(k=4), index_dir=idx, labels_csv=col0.labels_csv) as col:
        rep, an = run(col.index())
        assert an.parts["toy"].shape == (an.n, 8)
        np.testing.assert_allclose(np.linalg.norm(an.parts["toy"], axis=1), 1.0, atol=1e-4)
        assert [n.relpath for n in col.similar(0, 5)] == before  # weight 0: the same ranking
        an2 = col.set_blend({"deep": 1.0, "texture": 0.0, "colour": 0.0, "toy": 1.0})
        nb = col.similar(0, 5)
        assert all(abs(sum(n.shares.values()) - 1) < 1e-5 and n.shares["toy"] > 0 for n in nb)
        assert an2.weights["toy"] == 1.0
    with Collection(col0.root, settings=Settings(k=4, blend={"deep": 1.0, "texture": 0.0, "colour": 0.0,
                                                             "toy": 1.0}),
                    index_dir=idx, labels_csv=col0.labels_csv) as col:
        loaded = col.load_analysis()  # saved with the part, loaded back without refitting
        assert loaded is not None and np.array_equal(loaded.parts["toy"], an.parts["toy"])
    capsys.readouterr()
    assert main(["similar", str(col0.root), "--index-dir", str(idx), "--labels", str(col0.labels_csv), "--k", "4",
                 col0.records()[0].relpath, "--blend", "deep=1,texture=0,colour=0,toy=1"]) == 0
    out = capsys.readouterr().out
    assert "toy" in out.splitlines()[1]  # the "why similar" table has a column for it
