"""The app's own house rules, checked on the source: views share nothing but through widgets/ (or
the core), every loop over the descriptor parts uses core's PARTS, and the gallery's thumbnail size
policy lives in prefs."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "artstyle_gui" / "app"


def _imported_modules(path: Path) -> set[str]:
    """The artstyle_gui.app modules ``path`` imports (absolute names), lazy imports included."""
    pkg = ["artstyle_gui", "app"] + list(path.relative_to(APP).parent.parts)
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = pkg[: len(pkg) - (node.level - 1)] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            if node.module:
                out.add(mod)
            else:  # ``from . import x``: x is a module
                out.update(f"{mod}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m.startswith("artstyle_gui.app")}


def test_views_and_dialogs_import_nothing_from_the_views():
    bad = []
    for folder in ("views", "dialogs"):
        for p in sorted((APP / folder).glob("*.py")):
            me = f"artstyle_gui.app.{folder}.{p.stem}"
            bad += [f"{me} imports {m}" for m in _imported_modules(p)
                    if m.startswith("artstyle_gui.app.views.") and not m.startswith(me)]
    assert not bad, "views share helpers through app/widgets/, not through each other:\n" + "\n".join(bad)


def test_widgets_import_no_view_and_no_dialog():
    bad = [f"widgets/{p.name} imports {m}" for p in sorted((APP / "widgets").glob("*.py"))
           for m in _imported_modules(p)
           if m.startswith(("artstyle_gui.app.views", "artstyle_gui.app.dialogs", "artstyle_gui.app.main_window"))]
    assert not bad, "\n".join(bad)


def test_no_literal_list_of_the_parts():
    parts = {"deep", "texture", "colour"}
    bad = []
    for p in sorted(APP.rglob("*.py")):
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and len(node.elts) >= 2 and all(
                    isinstance(e, ast.Constant) and e.value in parts for e in node.elts):
                bad.append(f"{p.relative_to(APP)}:{node.lineno}: {ast.unparse(node)}")
    assert not bad, "loop over core.analysis.parts.PARTS instead:\n" + "\n".join(bad)


def test_the_part_names_and_topic_inputs_are_the_cores():
    from artstyle_gui.app.dialogs import settings
    from artstyle_gui.app.views import topic_browser
    from artstyle_gui.app.widgets import colors, thumbstrip
    from artstyle_gui.core.analysis import parts, topics

    assert list(colors.PART_COLOURS) == list(parts.PARTS)  # a colour for every part
    assert settings.PART_LABELS is parts.PART_LABELS and thumbstrip.PART_NAMES is parts.PART_NAMES
    assert settings.TOPIC_INPUTS is topic_browser.TOPIC_INPUTS is topics.TOPIC_INPUTS


def test_thumbnail_size_policy():
    from artstyle_gui.app import prefs

    lo, hi = prefs.THUMB_RANGE
    assert (lo, hi) == (64, 320) and lo <= prefs.DEFAULT_THUMB <= hi
    assert prefs.clamp_thumb_size(10) == lo and prefs.clamp_thumb_size(10_000) == hi
    assert prefs.clamp_thumb_size("224") == 224 and prefs.clamp_thumb_size(prefs.DEFAULT_THUMB) == prefs.DEFAULT_THUMB
    assert prefs.THUMB_STEP % prefs.THUMB_SNAP == 0
