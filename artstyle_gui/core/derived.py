"""The index's derived files, as one public handle: what the satellites (learn, explore) need from it.

A :class:`~.index.collection.Collection` owns one :class:`DerivedFiles`. It gives:

- the folder of the current feature set's derived files (analysis, neighbour index, maps, adapter),
- the write-lock step every derived-file write goes through (:meth:`write_if_unlocked`,
  :meth:`write_locked`): only the process that holds the index's writer lock writes,
- the settings the collection runs with, and their one save/load place (:meth:`save_settings`,
  :meth:`saved_settings`),
- the stored raw features of content hashes (:meth:`load_raw`),
- the topic names' storage (:meth:`topic_names_raw`, :meth:`save_topic_names_raw`).

The collection folder itself is only ever read (``root``).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import ArtStyleError, IndexLocked
from .ingest.backbones import REGISTRY
from .ingest.features import FeatureLayout
from .ingest.store import IndexStore
from .model import Settings

SETTINGS_META_KEY = "settings"
TOPIC_NAMES_META_KEY = "topic_names"


class DerivedFiles:
    """The derived files of one indexed collection (kept outside the collection folder)."""

    def __init__(self, store: IndexStore, root: Path, settings_of: Callable[[], Settings]) -> None:
        self.store = store
        self.root = root
        self._settings_of = settings_of

    @property
    def index_dir(self) -> Path:
        return self.store.dir

    @property
    def settings(self) -> Settings:
        """The settings the collection runs with now."""
        return self._settings_of()

    @property
    def dir(self) -> Path:
        """The folder of the current feature set's derived files."""
        return self.store.derived_dir(self.settings.featureset_key())

    @property
    def layout(self) -> FeatureLayout:
        st = self.settings
        return FeatureLayout.for_backbone(REGISTRY[st.backbone], st.colour_bins)

    def featureset(self) -> tuple[int, str]:
        """(id, key) of the current feature set in the index database."""
        st = self.settings
        key = st.featureset_key()
        return self.store.featureset_id(key, st.featureset_config()), key

    def load_raw(self, hashes: list[str], keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        """Raw stored features of the given content hashes (in order)."""
        fs, _ = self.featureset()
        blobs = self.store.get_vectors(fs, hashes)
        missing = [h for h in hashes if h not in blobs]
        if missing:
            raise ArtStyleError(f"{len(missing)} paintings have no stored features; run `artstyle index` again.")
        raw = self.layout.unpack_many([blobs[h] for h in hashes])
        if keys is not None:
            raw = {k: v for k, v in raw.items() if k in keys}
        return raw

    # ------------------------------------------------------------------ the lock-then-write step
    def write_if_unlocked(self, write: Callable[[], None]) -> bool:
        """Run ``write()`` (a derived-file write) under the writer lock; if another process holds the
        lock it is indexing, and the result stays in memory only (False)."""
        try:
            self.write_locked(write)
            return True
        except IndexLocked:
            return False

    def write_locked(self, write: Callable[[], None]) -> None:
        """Run ``write()`` under the writer lock (taken here unless this process holds it already);
        :class:`~.errors.IndexLocked` if another process holds it."""
        held = self.store.holds_writer_lock
        if not held:
            self.store.acquire_writer_lock()
        try:
            write()
        finally:
            if not held:
                self.store.release_writer_lock()

    # ------------------------------------------------------------------ settings
    def save_settings(self, settings: Settings | None = None) -> None:
        """Remember ``settings`` (default: the current ones) in the index: the app and the CLI
        reopen the collection with them. Where the network runs (``device``, ``runtime``) belongs to the
        machine, not the collection (an index moved to a machine without a GPU must still open): it is
        saved as "auto"."""
        st = replace(settings or self.settings, device="auto", runtime="auto")
        self.store.set_meta(SETTINGS_META_KEY, json.dumps(st.to_json()))

    def saved_settings(self) -> Settings | None:
        """The settings remembered in the index (see :func:`read_saved_settings`)."""
        return read_saved_settings(self.store)

    # ------------------------------------------------------------------ topic names
    def topic_names_raw(self) -> str:
        """The stored topic names (JSON text, '' if none): see :mod:`.search`."""
        return self.store.get_meta(TOPIC_NAMES_META_KEY) or ""

    def save_topic_names_raw(self, raw: str) -> None:
        self.store.set_meta(TOPIC_NAMES_META_KEY, raw)


def read_saved_settings(store: IndexStore) -> Settings | None:
    """The settings remembered in the index of ``store``; None if there are none.

    Raises :class:`~.errors.ArtStyleError` with a plain message if they cannot be used (damaged, or
    naming something this version does not know); the caller then goes on with its own settings."""
    raw = store.get_meta(SETTINGS_META_KEY)
    if not raw:
        return None
    try:
        s = Settings.from_json(json.loads(raw))
        s.validate()
    except ArtStyleError as e:
        raise ArtStyleError(f"The settings saved in the index {store.dir} cannot be used: {e}") from e
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise ArtStyleError(f"The settings saved in the index {store.dir} are damaged "
                            f"({type(e).__name__}: {e}).") from e
    return s
