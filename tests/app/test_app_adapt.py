"""The style adapter in the app: Learn Style from Labels (job, progress, cancel, result), the
learned-space toggle, Compare ("same hand?") and the no-labels explanation (app/adapt_view.py,
app/compare_view.py, StyleJobs in app/dialogs/adapt.py)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app_helpers import fast_settings, open_window  # noqa: E402
from synth import tree_digest  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def adapted_index(indexed, tmp_path_factory):
    """A copy of the indexed collection's index with a style adapter + verifier trained on 'style'
    by the core (the base space is still the saved setting)."""
    from artstyle_gui.core.learn.adapt import AdapterConfig
    from artstyle_gui.core.index.collection import Collection
    from artstyle_gui.core.progress import run

    index = tmp_path_factory.mktemp("adapted") / "index"
    shutil.copytree(indexed.index_dir, index)
    col = Collection(indexed.root, settings=fast_settings(), index_dir=index)
    try:
        run(col.adapt("style", AdapterConfig(label="style")))
        assert col.adapter_info() is not None and col.settings.space == "base"
    finally:
        col.close()
    return index


@pytest.fixture
def adapted_window(qtbot, indexed, adapted_index, tmp_path):
    index = tmp_path / "index"
    shutil.copytree(adapted_index, index)
    win = open_window(qtbot, indexed.root, index)
    yield win
    win.shutdown()


def reference(win, space: str):
    """A core Collection over the window's index, showing ``space`` (what the app must agree with)."""
    from artstyle_gui.core.index.collection import Collection

    col = Collection(win.controller.collection.root, settings=fast_settings(space=space),
                     index_dir=win.controller.collection.index_dir)
    an = col.load_analysis()
    assert an is not None and an.space == space
    return col


def wait_idle(qtbot, c):
    qtbot.waitUntil(lambda: not c.busy, timeout=120000)


# --------------------------------------------------------------------------- learn
def test_learn_style_trains_in_a_job_and_shows_the_adapted_space(window, qtbot):
    from artstyle_gui.app.dialogs.adapt import AdaptDialog
    from artstyle_gui.core.learn.split import precision_at, stratified_holdout, usable_labels
    from artstyle_gui.core.analysis.parts import blend

    c, tools = window.controller, window.style_tools
    s = tools.jobs
    assert s.adapter_info() is None and s.space == "base"
    assert not tools.act_space.isEnabled() and "Learn Style from Labels" in tools.act_space.toolTip()
    assert tools.act_learn.isEnabled() and tools.act_learn.shortcut().toString() == "Ctrl+Shift+L"
    assert not tools.chip.isVisible()  # nothing to switch to yet

    dlg = tools.learn_style()
    assert isinstance(dlg, AdaptDialog) and dlg.isVisible()
    offered = [dlg.label.itemData(i) for i in range(dlg.label.count())]
    assert set(offered) == {"artist", "style"}  # titles are unique: not offered
    dlg.label.setCurrentIndex(offered.index("style"))
    dlg.holdout.setValue(25)
    assert dlg.values() == ("style", "linear", 0.25)

    stages: dict[str, str] = {}

    def on_progress(p, *_):
        if p is not None:
            stages.setdefault(p.stage, window.progress.stage.text())

    c.progress_changed.connect(on_progress)
    with qtbot.waitSignal(s.style_learned, timeout=120000) as sig:
        dlg.accept()
    wait_idle(qtbot, c)
    res = sig.args[0]
    assert {"adapt", "verify", "adapted-space"} <= set(stages)
    assert "Learning style" in stages["adapt"]  # a readable stage name in the status bar

    # the collection is in the adapted space, remembered with the index's settings
    info = s.adapter_info()
    assert info is not None and info["label"] == "style" and info["config"]["holdout"] == 0.25
    assert c.analysis.space == "adapted" and c.analysis.adapter.id == info["id"]
    assert c.collection.settings.space == "adapted" and c.settings.space == "adapted"
    assert c.collection.files.saved_settings().space == "adapted"
    assert s.verifier_info()["adapter_id"] == info["id"]
    assert tools.act_space.isEnabled() and tools.act_space.isChecked()
    assert tools.chip.isVisible() and "learned style (style)" in tools.chip.text()

    # the neighbours the views show are the core's in the adapted space
    ref = reference(window, "adapted")
    try:
        rel = c.analysis.relpaths[3]
        want = [n.relpath for n in ref.similar(ref.analysis.row_of(rel), 12)]
        assert [n.relpath for n in c.neighbours(rel)] == want
    finally:
        ref.close()

    # the report: the core's figures, plus the base figure of the training paintings on the
    # core's own split (the same split also gives the core's base held-out figure)
    rep = res.report
    an = c.analysis
    lab = np.array(an.label_column("style"), dtype=object).astype(str)
    rows = np.flatnonzero(usable_labels(list(lab)))
    _, y = np.unique(lab[rows], return_inverse=True)
    _, ho = stratified_holdout(y, 0.25, c.collection.settings.seed)
    emb = blend(an.base_space.parts, an.weights)
    assert precision_at(emb, lab, rows[ho], rows[ho], rep.k) == pytest.approx(rep.base_heldout_p10)
    train = np.setdiff1d(rows, rows[ho])
    assert res.base_train_p == pytest.approx(precision_at(emb, lab, train, train, rep.k))
    assert rep.n_heldout == len(ho) and rep.label == "style"
    box = tools.last_box
    assert box is not None and box.isVisible() and "'style'" in box.text()
    text = box.informativeText()
    auc = res.verifier["figures"]["heldout_pair_auc"]
    for figure in (rep.base_heldout_p10, rep.heldout_p10, rep.train_p10, res.base_train_p, auc):
        assert f"{figure:.3f}" in text
    assert f"precision@{rep.k}" in text and "AUC" in text and "F1" in text
    box.close()


def test_cancel_while_training_leaves_no_adapter(window, qtbot):
    """Deterministic: the job runs in this thread, cancelled at the second epoch."""
    c, s = window.controller, window.style_tools.jobs
    derived = c.collection.files.dir
    before = tree_digest(derived)
    parts = c.analysis.parts
    c.synchronous = True
    epochs: list[int] = []
    outcome: list[tuple] = []
    learned: list = []

    def on_progress(p, *_):
        if p is not None and p.stage == "adapt" and p.done >= 2 and not epochs:
            epochs.append(p.done)
            c.cancel()

    c.progress_changed.connect(on_progress)
    c.job_finished.connect(lambda *a: outcome.append(a))
    s.style_learned.connect(learned.append)
    assert s.learn_style("style", "linear", 0.2, epochs=60, patience=60)
    assert epochs == [2] and outcome == [("adapt", "cancelled")] and not learned
    assert not c.busy
    assert s.adapter_info() is None and s.verifier_info() is None
    assert c.analysis.space == "base" and c.analysis.parts is parts and c.collection.settings.space == "base"
    assert tree_digest(derived) == before  # nothing written
    assert "Cancelled" in window.statusBar().currentMessage()
    assert not window.style_tools.act_space.isEnabled()


# --------------------------------------------------------------------------- the space toggle
def test_toggle_switches_the_space_and_is_remembered(adapted_window, qtbot, indexed):

    win = adapted_window
    c, tools = win.controller, win.style_tools
    s = tools.jobs
    assert s.space == "base" and s.adapter_info()["label"] == "style"
    assert tools.act_space.isEnabled() and not tools.act_space.isChecked()
    assert "learned from 'style'" in tools.act_space.toolTip()
    assert tools.chip.isVisible() and "base" in tools.chip.text()
    rel = c.analysis.relpaths[5]
    base_ref, ad_ref = reference(win, "base"), reference(win, "adapted")
    try:
        want_base = [n.relpath for n in base_ref.similar(base_ref.analysis.row_of(rel), 12)]
        want_adapted = [n.relpath for n in ad_ref.similar(ad_ref.analysis.row_of(rel), 12)]
        assert [n.relpath for n in c.neighbours(rel)] == want_base
        base_topics = c.analysis.topics

        with qtbot.waitSignal(s.space_changed, timeout=60000) as sig:
            tools.act_space.trigger()
        wait_idle(qtbot, c)
        assert sig.args == ["adapted"]
        assert c.analysis.space == "adapted" and tools.act_space.isChecked()
        assert c.analysis.topics is not base_topics and c.analysis.topics.input_kind == "adapted"
        assert [n.relpath for n in c.neighbours(rel)] == want_adapted
        assert "learned style" in tools.chip.text()
        assert c.collection.files.saved_settings().space == "adapted"

        with qtbot.waitSignal(s.space_changed, timeout=60000) as sig:
            tools.chip.click()  # the status-bar chip switches too
        wait_idle(qtbot, c)
        assert sig.args == ["base"] and c.analysis.space == "base" and not tools.act_space.isChecked()
        assert c.analysis.topics is base_topics
        assert [n.relpath for n in c.neighbours(rel)] == want_base
        assert c.collection.files.saved_settings().space == "base"
    finally:
        base_ref.close()
        ad_ref.close()

    with qtbot.waitSignal(s.space_changed, timeout=60000):
        tools.act_space.trigger()
    wait_idle(qtbot, c)
    index = c.collection.index_dir
    win.shutdown()
    again = open_window(qtbot, indexed.root, index)  # the choice is remembered with the index
    try:
        assert again.controller.analysis.space == "adapted"
        assert again.style_tools.act_space.isChecked()
    finally:
        again.shutdown()


# --------------------------------------------------------------------------- compare
def test_compare_shows_the_cores_probability(adapted_window, qtbot):
    from PySide6.QtWidgets import QMenu

    from artstyle_gui.app.dialogs.compare import CompareDialog, percent_text

    win = adapted_window
    c, tools = win.controller, win.style_tools
    s = tools.jobs
    rels = c.analysis.relpaths
    a, b, other = rels[0], rels[1], rels[-1]
    assert tools.act_compare.shortcut().toString() == "Ctrl+Shift+C"
    assert not tools.act_compare.isEnabled()  # nothing selected
    c.select(a)
    assert tools.act_compare.isEnabled()
    dlg = tools.open_compare()
    assert isinstance(dlg, CompareDialog) and dlg.a == a and dlg.b is None and tools.compare_a == a
    assert dlg.comparison is None and "Pick two" in dlg.headline.text()

    with qtbot.waitSignal(s.compared, timeout=60000):
        c.select(b)  # B follows the selection
    ref = reference(win, "base")
    try:
        for x, y in ((a, b), (a, other)):
            if (x, y) != (dlg.a, dlg.b):
                with qtbot.waitSignal(s.compared, timeout=60000):
                    c.select(y)
            want = ref.compare(ref.analysis.row_of(x), ref.analysis.row_of(y))
            got = dlg.comparison
            assert got is not None and (dlg.a, dlg.b) == (x, y)
            assert got.probability == pytest.approx(want.probability, abs=1e-9)
            assert got.same == want.same and got.threshold == pytest.approx(want.threshold)
            assert got.contributions == pytest.approx(want.contributions)
            assert dlg.bars.contributions == pytest.approx(want.contributions)
            assert dlg.bars.cosine == pytest.approx(want.cosine)
            assert f"{percent_text(want.probability)} likely the same style" == dlg.headline.text()
            assert f"probability {want.probability:.3f}" in dlg.verdict.text()
            assert f"threshold {want.threshold:.3f}" in dlg.verdict.text()
            assert ("Same style" if want.same else "Not the same style") in dlg.verdict.text()
    finally:
        ref.close()
    assert [percent_text(x) for x in (0.001, 0.5, 0.734, 0.999)] == ["<1%", "50%", "73%", ">99%"]
    grab = dlg.grab()
    assert not grab.isNull() and grab.width() > 300

    # swap: A and B exchange (the verifier is symmetric), B stops following the selection
    p = dlg.comparison.probability
    with qtbot.waitSignal(s.compared, timeout=60000):
        dlg.swap.click()
    assert (dlg.a, dlg.b) == (other, a) and tools.compare_a == other and not dlg.follow.isChecked()
    assert dlg.comparison.probability == pytest.approx(p, abs=1e-9)

    # the gallery's context menu offers A / compare-with-A
    menu = QMenu()
    for extend in win.gallery.context_menu_extenders:
        extend(menu, b)
    texts = [act.text() for act in menu.actions()]
    assert "Set as Painting A for Compare" in texts and any(t.startswith("Compare with A") for t in texts)
    dlg.close()


# --------------------------------------------------------------------------- no labels
def test_no_labels_explains_how_to_add_them(qtbot, indexed, tmp_path):
    index = tmp_path / "index"
    shutil.copytree(indexed.index_dir, index)
    empty = tmp_path / "nolabels.csv"
    empty.write_text("path\n", encoding="utf-8")
    win = open_window(qtbot, indexed.root, index, labels_csv=empty)
    c, tools = win.controller, win.style_tools
    s = tools.jobs
    try:
        errors: list = []
        c.error_raised.connect(lambda *a: errors.append(a))
        assert s.label_choices() == []
        box = tools.learn_style()
        assert box is tools.last_box and box.isVisible() and not c.busy
        assert "no labels" in box.text()
        info = box.informativeText()
        assert "labels CSV" in info and "subfolders" in info
        names = [btn.text() for btn in box.buttons()]
        assert "Use Labels CSV…" in names and "Artist from Subfolders" in names
        assert not errors and not win.message_bar.isVisible()

        # Compare without a verifier explains too (no exception, no job)
        c.select(c.analysis.relpaths[0])
        dlg = tools.open_compare()
        assert dlg.learn.isVisible() and "verifier" in dlg.headline.text() and dlg.comparison is None
        dlg.close()

        # "Artist from Subfolders" opens the folder again with the folder names as artists
        sub = next(btn for btn in box.buttons() if btn.text() == "Artist from Subfolders")
        with qtbot.waitSignal(c.job_finished, timeout=60000):
            sub.click()
        wait_idle(qtbot, c)
        choices = {col: (n, k) for col, n, k in s.label_choices()}
        assert choices == {"artist": (32, 4)}  # blocks, pointillist, stripes, swirl
    finally:
        win.shutdown()
