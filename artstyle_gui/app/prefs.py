"""Persisted preferences (QSettings): engine settings, recent folders, view options."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QSettings

from ..core.model import Settings
from ..core.model import is_old_default, upgraded_to_art_model

ORG = "artstyle_gui"
APP = "artstyle-gui"
MAX_RECENT = 10
#: the gallery's thumbnail size (px): its range, default, the slider's snap and the Ctrl+= / Ctrl+- step
THUMB_RANGE = (64, 320)
DEFAULT_THUMB = 160
THUMB_SNAP = 16
THUMB_STEP = 32


def qsettings() -> QSettings:
    """The app's settings store (tests point the default format/path at tmp_path)."""
    return QSettings(QSettings.defaultFormat(), QSettings.Scope.UserScope, ORG, APP)


#: 2: the art style model became the default backbone. Settings saved before it name the ImageNet
#: backbone only because it was the default then, so new collections move to the art model.
SETTINGS_VERSION = 2


def load_engine_settings() -> Settings:
    q = qsettings()
    raw = q.value("engine/settings", "")
    if raw:
        try:
            s = Settings.from_json(json.loads(str(raw)))
            s.validate()
            try:
                version = int(q.value("engine/settings_version", 1))
            except (TypeError, ValueError):
                version = 1
            if version < 2 and is_old_default(s):
                s = upgraded_to_art_model(s)
            return s
        except Exception:  # corrupt or from another version: fall back to defaults
            pass
    return Settings()


def save_engine_settings(s: Settings) -> None:
    q = qsettings()
    q.setValue("engine/settings", json.dumps(s.to_json()))
    q.setValue("engine/settings_version", SETTINGS_VERSION)


def upgrade_declined(folder: str | Path) -> bool:
    """Whether "Not now" was chosen for the art-model re-index offer of this collection."""
    return str(Path(folder).resolve()) in _json_list("upgrade/declined")


def set_upgrade_declined(folder: str | Path) -> None:
    items = _json_list("upgrade/declined")
    p = str(Path(folder).resolve())
    if p not in items:
        qsettings().setValue("upgrade/declined", json.dumps((items + [p])[-200:]))


def _json_list(key: str) -> list[str]:
    raw = qsettings().value(key, "")
    try:
        items = json.loads(str(raw)) if raw else []
    except ValueError:
        items = []
    return [x for x in items if isinstance(x, str)] if isinstance(items, list) else []


def recent_folders() -> list[str]:
    return _json_list("recent/folders")


def add_recent_folder(path: str | Path) -> list[str]:
    p = str(Path(path).resolve())
    items = [x for x in recent_folders() if x != p]
    items.insert(0, p)
    items = items[:MAX_RECENT]
    s = qsettings()
    s.setValue("recent/folders", json.dumps(items))
    s.setValue("recent/last", p)
    return items


def clear_recent_folders() -> None:
    qsettings().setValue("recent/folders", "[]")


def last_folder() -> str | None:
    v = qsettings().value("recent/last", "")
    return str(v) if v else None


def clamp_thumb_size(size) -> int:
    """``size`` as an int within :data:`THUMB_RANGE`."""
    lo, hi = THUMB_RANGE
    return max(lo, min(hi, int(size)))


def thumb_size() -> int:
    try:
        return clamp_thumb_size(qsettings().value("gallery/thumb_size", DEFAULT_THUMB))
    except (TypeError, ValueError):
        return DEFAULT_THUMB


def set_thumb_size(size: int) -> None:
    qsettings().setValue("gallery/thumb_size", int(size))


def topic_names(fingerprint: str) -> dict[int, str]:
    raw = qsettings().value(f"topic_names/{fingerprint}", "")
    try:
        d = json.loads(str(raw)) if raw else {}
        return {int(k): str(v) for k, v in d.items() if str(v).strip()}
    except (ValueError, AttributeError):
        return {}


def set_topic_names(fingerprint: str, names: dict[int, str]) -> None:
    qsettings().setValue(f"topic_names/{fingerprint}", json.dumps({str(k): v for k, v in names.items()}))


def clear_topic_names(fingerprint: str) -> None:
    """Forget names kept here by older versions (they now live in the index)."""
    qsettings().remove(f"topic_names/{fingerprint}")


MAP_METHODS = ("auto", "tsne", "pca")


def map_method() -> str:
    v = str(qsettings().value("map/method", "auto"))
    return v if v in MAP_METHODS else "auto"


def set_map_method(method: str) -> None:
    qsettings().setValue("map/method", method)


def map_color_by() -> str:
    """'topic' or a label column (artist, style, ..., folder)."""
    return str(qsettings().value("map/color_by", "topic")) or "topic"


def set_map_color_by(key: str) -> None:
    qsettings().setValue("map/color_by", key)
