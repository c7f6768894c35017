"""The on-disk index of one collection: SQLite records + feature vectors + derived files.

Layout of an index directory (never inside the collection)::

    index.sqlite        records of every file (path relative to the root, size, mtime,
                        content hash, labels, error) and the extracted feature vectors,
                        keyed by (feature set, content hash) so moved/renamed files reuse
                        their features.  Every batch is one transaction: a run that is
                        interrupted keeps every finished batch.
    lock                advisory lock held by the process that writes the index
    derived/<fs>/       analysis results for one feature set (.npz arrays written with
                        allow_pickle=False, the hnswlib index, JSON metadata); each file
                        written to a temp name and renamed into place.

No pickle is used anywhere: arrays are raw float32/float16 bytes or .npz without
object arrays, everything else is JSON.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import sqlite3
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from .errors import ArtStyleError, IndexCorrupt, IndexLocked

SCHEMA_VERSION = 1
APP_NAME = "artstyle_gui"

try:  # POSIX advisory locks; Windows falls back to msvcrt below
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def default_index_root() -> Path:
    """Where indexes live by default: the user data dir (platformdirs)."""
    env = os.environ.get("ARTSTYLE_DATA_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def index_dir_for(root: Path, base: Path | None = None) -> Path:
    """The default index directory of a collection folder, keyed by its absolute path."""
    root = Path(root).resolve()
    key = hashlib.sha1(os.fsencode(str(root))).hexdigest()[:16]
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in root.name)[:40] or "root"
    return (base or default_index_root()) / "collections" / f"{safe}-{key}"


def check_outside(root: Path, index_dir: Path) -> None:
    """Refuse an index directory inside the collection: the collection is never written."""
    r, d = Path(root).resolve(), Path(index_dir).resolve()
    if d == r or r in d.parents:
        raise ArtStyleError(
            f"The index directory {d} is inside the collection {r}. "
            "artstyle never writes into a collection; choose another --index-dir."
        )


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path next to ``path``; on success rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    import io

    buf = io.BytesIO()
    for k, v in arrays.items():
        if isinstance(v, np.ndarray) and v.dtype == object:
            raise TypeError(f"refusing to save object array {k!r} (no pickle)")
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError, KeyError) as e:
        raise IndexCorrupt(f"The index file {path} is damaged ({e}). Re-index the collection.") from e


def save_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=2, sort_keys=True).encode("utf-8"))


def load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise IndexCorrupt(f"The index file {path} is damaged ({e}). Re-index the collection.") from e


@dataclass
class FileRecord:
    id: int
    relpath: str
    size: int
    mtime_ns: int
    hash: str | None
    status: str  # "ok" | "error"
    error: str | None
    labels: dict[str, str]
    width: int | None = None
    height: int | None = None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    relpath TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    hash TEXT,
    status TEXT NOT NULL,
    error TEXT,
    labels TEXT NOT NULL DEFAULT '{}',
    width INTEGER,
    height INTEGER,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS files_hash ON files(hash);
CREATE TABLE IF NOT EXISTS featuresets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    config TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS vectors (
    featureset INTEGER NOT NULL,
    hash TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (featureset, hash)
) WITHOUT ROWID;
"""


class IndexStore:
    """SQLite-backed records and feature vectors of one collection."""

    def __init__(self, index_dir: Path, *, readonly: bool = False) -> None:
        self.dir = Path(index_dir)
        self.readonly = readonly
        self._lock_fh = None
        if not readonly:
            try:
                self.dir.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise ArtStyleError(f"Cannot create the index directory {self.dir}: {e.strerror or e}") from e
        self.db_path = self.dir / "index.sqlite"
        if readonly and not self.db_path.exists():
            raise ArtStyleError(f"No index at {self.dir}. Run `artstyle index` on the collection first.")
        try:
            if readonly:
                uri = "file:" + str(self.db_path) + "?mode=ro"
                self.db = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30)
            else:
                self.db = sqlite3.connect(str(self.db_path), check_same_thread=False, timeout=30)
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
                self.db.executescript(_SCHEMA)
            self._check_schema()
        except sqlite3.DatabaseError as e:
            raise IndexCorrupt(
                f"The index database {self.db_path} cannot be read ({e}). "
                "Delete the index directory and index the collection again."
            ) from e

    # -- locking ---------------------------------------------------------
    def acquire_writer_lock(self) -> None:
        """Take the single-writer lock, or raise IndexLocked if another process holds it."""
        if self._lock_fh is not None or fcntl is None:
            return
        fh = open(self.dir / "lock", "a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            fh.close()
            if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise IndexLocked(
                    f"Another artstyle process is indexing this collection (lock {self.dir / 'lock'}). "
                    "Wait for it to finish, or close the other window."
                ) from e
            raise
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._lock_fh = fh

    def release_writer_lock(self) -> None:
        if self._lock_fh is not None:
            try:
                fcntl.flock(self._lock_fh.fileno(), fcntl.LOCK_UN)  # type: ignore[union-attr]
            finally:
                self._lock_fh.close()
                self._lock_fh = None

    def close(self) -> None:
        self.release_writer_lock()
        try:
            self.db.close()
        except sqlite3.Error:
            pass

    # -- meta ------------------------------------------------------------
    def _check_schema(self) -> None:
        row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            if not self.readonly:
                with self.db:
                    self.db.execute(
                        "INSERT INTO meta(key, value) VALUES('schema_version', ?)", (str(SCHEMA_VERSION),)
                    )
            return
        if int(row[0]) > SCHEMA_VERSION:
            raise IndexCorrupt(
                f"The index at {self.dir} was written by a newer artstyle (schema {row[0]}). Upgrade artstyle."
            )

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", (key, value))

    # -- records ---------------------------------------------------------
    @staticmethod
    def _record(row: tuple) -> FileRecord:
        return FileRecord(
            id=row[0], relpath=row[1], size=row[2], mtime_ns=row[3], hash=row[4], status=row[5],
            error=row[6], labels=json.loads(row[7] or "{}"), width=row[8], height=row[9],
        )

    _COLS = "id, relpath, size, mtime_ns, hash, status, error, labels, width, height"

    def records(self) -> list[FileRecord]:
        rows = self.db.execute(f"SELECT {self._COLS} FROM files ORDER BY relpath").fetchall()
        return [self._record(r) for r in rows]

    def record_map(self) -> dict[str, FileRecord]:
        return {r.relpath: r for r in self.records()}

    def upsert_files(self, recs: Iterable[FileRecord]) -> None:
        now = time.time()
        rows = [
            (r.relpath, r.size, r.mtime_ns, r.hash, r.status, r.error,
             json.dumps(r.labels, ensure_ascii=False, sort_keys=True), r.width, r.height, now)
            for r in recs
        ]
        self.db.executemany(
            "INSERT INTO files(relpath, size, mtime_ns, hash, status, error, labels, width, height, updated) "
            "VALUES(?,?,?,?,?,?,?,?,?,?) ON CONFLICT(relpath) DO UPDATE SET size=excluded.size, "
            "mtime_ns=excluded.mtime_ns, hash=excluded.hash, status=excluded.status, error=excluded.error, "
            "labels=excluded.labels, width=excluded.width, height=excluded.height, updated=excluded.updated",
            rows,
        )

    def delete_files(self, relpaths: Iterable[str]) -> int:
        cur = self.db.executemany("DELETE FROM files WHERE relpath=?", [(p,) for p in relpaths])
        return cur.rowcount

    def update_labels(self, labels: dict[str, dict[str, str]]) -> None:
        with self.db:
            self.db.executemany(
                "UPDATE files SET labels=? WHERE relpath=?",
                [(json.dumps(v, ensure_ascii=False, sort_keys=True), k) for k, v in labels.items()],
            )

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            with self.db:
                yield self.db
        except sqlite3.OperationalError as e:
            msg = str(e)
            if "full" in msg or "readonly" in msg or "disk" in msg or "I/O" in msg:
                raise ArtStyleError(
                    f"Could not write the index at {self.dir}: {msg}. Finished work up to the last batch is kept."
                ) from e
            raise

    # -- feature sets and vectors ---------------------------------------
    def featureset_id(self, key: str, config: dict[str, Any]) -> int:
        row = self.db.execute("SELECT id FROM featuresets WHERE key=?", (key,)).fetchone()
        if row:
            return int(row[0])
        with self.db:
            cur = self.db.execute(
                "INSERT INTO featuresets(key, config) VALUES(?, ?)", (key, json.dumps(config, sort_keys=True))
            )
        return int(cur.lastrowid)

    def featuresets(self) -> list[tuple[int, str, dict[str, Any]]]:
        rows = self.db.execute("SELECT id, key, config FROM featuresets ORDER BY id").fetchall()
        return [(r[0], r[1], json.loads(r[2])) for r in rows]

    def known_hashes(self, fs: int) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT hash FROM vectors WHERE featureset=?", (fs,))}

    def put_vectors(self, fs: int, items: Iterable[tuple[str, bytes]]) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO vectors(featureset, hash, data) VALUES(?,?,?)",
            [(fs, h, sqlite3.Binary(b)) for h, b in items],
        )

    def get_vectors(self, fs: int, hashes: list[str]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        chunk = 500
        for i in range(0, len(hashes), chunk):
            part = hashes[i : i + chunk]
            q = ",".join("?" * len(part))
            for h, data in self.db.execute(
                f"SELECT hash, data FROM vectors WHERE featureset=? AND hash IN ({q})", (fs, *part)
            ):
                out[h] = bytes(data)
        return out

    def prune_vectors(self, fs: int, keep: set[str]) -> int:
        """Drop vectors of content no longer in the collection."""
        gone = self.known_hashes(fs) - keep
        with self.db:
            self.db.executemany("DELETE FROM vectors WHERE featureset=? AND hash=?", [(fs, h) for h in gone])
        return len(gone)

    def derived_dir(self, fs_key: str) -> Path:
        return self.dir / "derived" / fs_key
