"""A collection indexed with the old default (ImageNet Lite0) is offered the art style model (issue 14)."""

from __future__ import annotations

import json
import shutil

import pytest

from app_helpers import fast_settings, open_window

pytestmark = pytest.mark.gui


@pytest.fixture
def old_index(indexed, tmp_path):
    """The session's synthetic collection indexed with ImageNet Lite0 (the old default), its settings
    remembered in the index as the CLI and the app of that version did."""
    from artstyle_gui.core.index.collection import Collection
    from artstyle_gui.core.progress import run

    idx = tmp_path / "old-index"
    st = fast_settings(backbone="effnet-lite0", topic_input="bovw", k=4)
    col = Collection(indexed.root, settings=st, index_dir=idx)
    run(col.index())
    col.store.set_meta("settings", json.dumps(st.to_json()))
    col.close()
    return idx


def test_old_index_opens_and_reindex_offer_switches_to_the_art_model(qtbot, indexed, old_index):
    from artstyle_gui.core.ingest.backbones import DEFAULT_BACKBONE

    win = open_window(qtbot, indexed.root, old_index)
    try:
        c = win.controller
        assert c.collection.settings.backbone == "effnet-lite0" and c.analysis.n == 32
        assert win.upgrade_bar.isVisible() and "ImageNet" in win.upgrade_bar.text.text()
        with qtbot.waitSignal(c.job_finished, timeout=120000):
            win.upgrade_bar.reindex.click()
        assert not win.upgrade_bar.isVisible()
        assert c.collection.settings.backbone == DEFAULT_BACKBONE
        assert c.collection.settings.topic_input == "style"  # the old default input moved with it
        assert c.analysis is not None and c.analysis.n == 32
        assert c.analysis.settings.backbone == DEFAULT_BACKBONE
        saved = json.loads(c.collection.store.get_meta("settings"))
        assert saved["backbone"] == DEFAULT_BACKBONE
    finally:
        win.shutdown()


def test_not_now_is_remembered_per_collection(qtbot, indexed, old_index, tmp_path):
    win = open_window(qtbot, indexed.root, old_index)
    try:
        assert win.upgrade_bar.isVisible()
        win.upgrade_bar.later.click()
        assert not win.upgrade_bar.isVisible()
        assert win.controller.collection.settings.backbone == "effnet-lite0"  # nothing changed
    finally:
        win.shutdown()
    again = open_window(qtbot, indexed.root, old_index)
    try:
        assert not again.upgrade_bar.isVisible()
    finally:
        again.shutdown()


def test_a_collection_on_the_art_model_gets_no_offer(window):
    assert window.controller.collection.settings.backbone == "effnet-lite0-art"
    assert not window.upgrade_bar.isVisible()


def test_settings_saved_before_the_art_model_move_new_collections_to_it():
    from artstyle_gui.app import prefs
    from artstyle_gui.core.model import Settings

    old = Settings(backbone="effnet-lite0", topic_input="bovw", blend={"deep": 1.0, "texture": 0.5, "colour": 0.25},
                   k=9)
    prefs.qsettings().setValue("engine/settings", json.dumps(old.to_json()))  # as an older version saved them
    s = prefs.load_engine_settings()
    assert s.backbone == "effnet-lite0-art" and s.topic_input == "style" and s.k == 9  # the user's K is kept
    assert s.blend == Settings().blend  # the old default blend became the art model's
    chosen = Settings(backbone="effnet-lite0", topic_input="pca")
    prefs.save_engine_settings(chosen)  # chosen in this version: kept as it is
    s = prefs.load_engine_settings()
    assert s.backbone == "effnet-lite0" and s.topic_input == "pca"


def test_a_new_folder_opened_after_an_old_collection_starts_on_the_art_model(qtbot, indexed, old_index, tmp_path):
    fresh = tmp_path / "fresh"
    shutil.copytree(indexed.root, fresh)
    win = open_window(qtbot, indexed.root, old_index)
    try:
        c = win.controller
        assert c.settings.backbone == "effnet-lite0"  # the app follows the opened collection...
        with qtbot.waitSignal(c.job_finished, timeout=120000):
            assert win.open_folder(fresh, index_dir=tmp_path / "fresh-index")
        # ...but a folder indexed for the first time gets the default, not the old collection's backbone
        assert c.collection.settings.backbone == "effnet-lite0-art"
        assert c.collection.settings.topic_input == "style" and c.collection.settings.k_range == (3, 6)
        assert not win.upgrade_bar.isVisible()
    finally:
        win.shutdown()


def test_settings_dialog_moves_default_topic_input_and_blend_with_the_backbone(qtbot):
    from artstyle_gui.app.dialogs.settings import SettingsDialog
    from artstyle_gui.core.model import Settings
    from artstyle_gui.core.model import default_settings_for

    dlg = SettingsDialog(default_settings_for("effnet-lite0"), 160)
    qtbot.addWidget(dlg)
    assert dlg.topic_input.currentData() == "bovw"
    i = dlg.backbone.findData("effnet-lite0-art")
    dlg.backbone.setCurrentIndex(i)
    dlg.backbone.activated.emit(i)
    s, _ = dlg.values()
    assert s.backbone == "effnet-lite0-art" and s.topic_input == "style" and s.blend == Settings().blend
    dlg.topic_input.setCurrentIndex(dlg.topic_input.findData("pca"))  # a choice of the user's...
    i = dlg.backbone.findData("effnet-lite0")
    dlg.backbone.setCurrentIndex(i)
    dlg.backbone.activated.emit(i)
    s, _ = dlg.values()
    assert s.topic_input == "pca" and s.blend == default_settings_for("effnet-lite0").blend  # ...is kept
