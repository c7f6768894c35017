"""The index's derived files, as one public handle: what the satellites (learn, explore) need from it.

A :class:`~.index.collection.Collection` owns one :class:`DerivedFiles`. It gives:

- the folder of the current feature set's derived files (analysis, neighbour index, maps, adapter),
- the write-lock step every derived-file write goes through (:meth:`write_if_unlocked`,
  :meth:`write_locked`): only the process that holds the index's writer lock writes,
- the settings the collection runs with, and their one save/load place (:meth:`save_settings`,
  :meth:`saved_settings`),
- the stored raw features of content hashes (:meth:`load_raw`),
- the topic names' storage (:meth:`topic_names_raw`, :meth:`save_topic_names_raw`),
- the problems of the last scan (:meth:`scan_problems`, :meth:`save_scan_problems`),
- where the labels come from, remembered with the index (:meth:`labels_source`, :meth:`save_labels_source`;
  :func:`choose_labels` picks a run's labels from what is given and what is remembered).

The collection folder itself is only ever read (``root``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import ArtStyleError, IndexLocked
from .ingest.backbones import REGISTRY
from .ingest.features import FeatureLayout
from .ingest.labels import find_default_labels_csv
from .ingest.remote import is_url
from .ingest.store import IndexStore
from .model import Settings

SETTINGS_META_KEY = "settings"
TOPIC_NAMES_META_KEY = "topic_names"
SCAN_PROBLEMS_META_KEY = "scan_problems"
LABELS_META_KEY = "labels_source"


@dataclass(frozen=True)
class LabelsSource:
    """Where an index's labels come from, remembered with it: labels given once stay until replaced or
    cleared (``artstyle ... --labels CSV``, ``--artist-from-folder``, ``--no-labels``; the app's File >
    Labels).

    ``csv``: the labels CSV (absolute path); None: the folder's own ``labels.csv`` when there is one.
    ``cleared``: no labels CSV at all, not even the folder's (``--no-labels``)."""

    csv: str | None = None
    artist_from_folder: bool = False
    cleared: bool = False

    def to_json(self) -> dict:
        return {"csv": self.csv, "artist_from_folder": self.artist_from_folder, "cleared": self.cleared}

    @classmethod
    def from_json(cls, d: object) -> LabelsSource | None:
        if not isinstance(d, dict):
            return None
        csv, afs, cleared = d.get("csv"), d.get("artist_from_folder", False), d.get("cleared", False)
        if not (csv is None or isinstance(csv, str)) or not isinstance(afs, bool) or not isinstance(cleared, bool):
            return None
        return cls(csv=csv or None, artist_from_folder=afs, cleared=cleared)


@dataclass
class LabelsChoice:
    """The labels a run uses (:func:`choose_labels`)."""

    csv: Path | None  # the labels CSV to read (None: none)
    artist_from_folder: bool
    keep_stored: bool  # the labels stored with the records stay as they are (no source, or its CSV is gone)
    remember: LabelsSource | None  # what to remember with the index when the labels are applied (None: as is)
    note: str | None = None  # something the user should hear once (the remembered CSV is gone)


def choose_labels(saved: LabelsSource | None, root: Path, csv: str | Path | None = None,
                  artist_from_folder: bool | None = None, clear: bool = False) -> LabelsChoice:
    """The labels of a run: what is given (``csv``, ``artist_from_folder``, ``clear``), else what the index
    remembers (``saved``), else the folder's ``labels.csv``. A given CSV must exist (:class:`ArtStyleError`);
    a remembered CSV that has gone keeps the stored labels (with a note). With no source at all (an index
    made before labels were remembered) the stored labels are kept too: labels are never dropped silently."""
    given = csv is not None or artist_from_folder is not None or clear
    afs = artist_from_folder if artist_from_folder is not None else (
        False if clear else bool(saved and saved.artist_from_folder))
    note = None
    keep = False
    if clear:
        path = None
    elif csv is not None:
        path = Path(csv).expanduser()
        if not path.is_file():
            why = "does not exist" if not path.exists() else "is not a file"
            raise ArtStyleError(f"The labels file {path} {why}. Stored labels are left as they are.")
        path = path.resolve()
    elif saved is not None and saved.cleared:
        path = None
    elif saved is not None and saved.csv:
        path = Path(saved.csv)
        if not path.is_file():
            keep, path = True, None
            note = (f"The labels file {saved.csv} remembered with the index is gone; the labels stored in the "
                    "index are kept (give the labels CSV again to replace them, or clear them).")
    else:
        path = None if is_url(root) else find_default_labels_csv(root)  # a URL collection: --labels only
        keep = path is None and not afs and saved is None
    remember = None
    if given:
        remember = LabelsSource(
            csv=str(path) if csv is not None and not clear else (None if clear else (saved.csv if saved else None)),
            artist_from_folder=afs,
            cleared=clear or (csv is None and bool(saved and saved.cleared)))
        if remember == saved:
            remember = None
    return LabelsChoice(csv=path, artist_from_folder=afs, keep_stored=keep, remember=remember, note=note)


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
        lock it is indexing, and the result stays in memory only (False).

        In an index opened read-only (a command that only reads) the derived files are a cache written
        at best: where they cannot be written (a read-only folder, a full disk) the result stays in
        memory and the command goes on (False)."""
        try:
            self.write_locked(write)
            return True
        except IndexLocked:
            return False
        except ArtStyleError:
            if self.store.readonly:
                return False
            raise

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

    # ------------------------------------------------------------------ labels
    def labels_source(self) -> LabelsSource | None:
        """Where the stored labels came from, as remembered with the index (None: never said)."""
        return read_labels_source(self.store)

    def save_labels_source(self, source: LabelsSource) -> None:
        """Remember where the labels come from (the labels given once stay until replaced or cleared)."""
        self.store.set_meta(LABELS_META_KEY, json.dumps(source.to_json()))

    # ------------------------------------------------------------------ topic names
    def topic_names_raw(self) -> str:
        """The stored topic names (JSON text, '' if none): see :mod:`.search`."""
        return self.store.get_meta(TOPIC_NAMES_META_KEY) or ""

    def save_topic_names_raw(self, raw: str) -> None:
        self.store.set_meta(TOPIC_NAMES_META_KEY, raw)

    # ------------------------------------------------------------------ scan problems
    def scan_problems(self) -> list[tuple[str, str]]:
        """(relpath, reason) of what the last scan could not read or left out (unreadable folders, broken
        links, link loops, links outside the collection): they have no record, so they are kept here for
        `artstyle problems` and the app in a later process. A damaged value reads as none."""
        try:
            raw = json.loads(self.store.get_meta(SCAN_PROBLEMS_META_KEY) or "[]")
        except ValueError:
            return []
        if not isinstance(raw, list):
            return []
        return [(p, r) for p, r in (x for x in raw if isinstance(x, list) and len(x) == 2)
                if isinstance(p, str) and isinstance(r, str)]

    def save_scan_problems(self, problems: list[tuple[str, str]]) -> None:
        """Remember the problems of this scan (replacing the last one's); written only when they changed."""
        value = [[p, r] for p, r in problems]
        if value != [list(x) for x in self.scan_problems()]:
            # ensure_ascii: a name that is not UTF-8 (surrogate-escaped) is stored as \\udcXX and read back as is
            self.store.set_meta(SCAN_PROBLEMS_META_KEY, json.dumps(value))


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


def read_labels_source(store: IndexStore) -> LabelsSource | None:
    """The labels source remembered in the index of ``store``; None if none (or unreadable)."""
    raw = store.get_meta(LABELS_META_KEY)
    if not raw:
        return None
    try:
        return LabelsSource.from_json(json.loads(raw))
    except ValueError:
        return None
