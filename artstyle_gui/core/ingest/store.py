"""The on-disk index of one collection: SQLite records + feature vectors + derived files.

Layout of an index directory (never inside the collection)::

    index.sqlite        records of every file (path relative to the root, size, mtime,
                        content hash, labels, error) and the extracted feature vectors,
                        keyed by (feature set, content hash) so moved/renamed files reuse
                        their features.  Every batch is one transaction: a run that is
                        interrupted keeps every finished batch.
    .artstyle-writer.lock  advisory lock held by the process that writes the index (holds its pid);
                        never followed if it is a link, never written if it is not artstyle's own
                        file (see :meth:`IndexStore.acquire_writer_lock`). Indexes made before it
                        may hold a file named ``lock``: it is locked too (never written), so an
                        older artstyle writing the same index is still kept out.
    derived/<fs>/       analysis results for one feature set (.npz arrays written with
                        allow_pickle=False, the hnswlib index, JSON metadata); each file
                        written to a temp name and renamed into place.

No pickle is used anywhere: arrays are raw float32/float16 bytes or .npz without
object arrays, everything else is JSON.

Failures are typed: a file-system or SQLite *write* problem (disk full, read-only
folder) is an :class:`ArtStyleError` that says so and leaves the existing index as it
was; a damaged or hostile file is :class:`IndexCorrupt`.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import os
import sqlite3
import stat
import tempfile
import threading
import time
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from ..errors import ArtStyleError, IndexCorrupt, IndexLocked, IndexMissing
from .remote import is_url

SCHEMA_VERSION = 1
APP_NAME = "artstyle_gui"

try:  # POSIX advisory locks; Windows falls back to msvcrt below
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]
try:
    import msvcrt
except ImportError:  # POSIX
    msvcrt = None  # type: ignore[assignment]

#: the index's writer lock file, and the name older versions used (a name a user may give a file)
LOCK_NAME = ".artstyle-writer.lock"
LEGACY_LOCK_NAME = "lock"
_WIN_LOCK_OFFSET = 1 << 30  # Windows: the locked byte lies past anything written (the pid stays writable)


def default_index_root() -> Path:
    """Where indexes live by default: the user data dir (platformdirs)."""
    env = os.environ.get("ARTSTYLE_DATA_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def index_dir_for(root: Path | str, base: Path | None = None) -> Path:
    """The default index directory of a collection folder, keyed by its absolute path (or its URL)."""
    if is_url(root):
        text = str(root).rstrip("/")
        key = hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()[:16]
        name = text.rsplit("/", 1)[-1] if "/" in text.partition("://")[2] else text.partition("://")[2]
    else:
        root = Path(root).resolve()
        key = hashlib.sha1(os.fsencode(str(root))).hexdigest()[:16]
        name = root.name
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:40] or "root"
    return (base or default_index_root()) / "collections" / f"{safe}-{key}"


def check_outside(root: Path, path: Path, *, what: str = "index directory") -> None:
    """Refuse a place to write (the index directory, an export) inside the collection: the collection
    is never written."""
    if is_url(root):  # a URL collection: only a file:// one can hold a local path
        head, _, rest = str(root).partition("://")
        if head != "file":
            return
        root = rest
    r, d = Path(root).resolve(), Path(path).expanduser().resolve()
    if d == r or r in d.parents:
        if what == "index directory":
            raise ArtStyleError(f"The index directory {d} is inside the collection {r}. "
                                "artstyle never writes into a collection; choose another --index-dir.")
        raise ArtStyleError(f"The {what} {d} is inside the collection {r}: artstyle never writes into a "
                            "collection. Choose a place outside it.")


def write_error(path: Path, exc: OSError) -> ArtStyleError:
    """A user-readable error for a failed write of ``path`` (disk full, read-only folder, ...)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    hint = ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = " Free some disk space and try again."
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = " The folder is read-only for you: choose another location or fix its permissions."
    return ArtStyleError(f"Could not write {path}: {reason}.{hint} Existing files were left as they were.")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a temp file next to ``path``, fsync it and rename it into place.

    A failure (raised as :class:`ArtStyleError`) leaves any existing ``path`` untouched.
    """
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path next to ``path``; on success rename it over ``path``.

    OSErrors (disk full, read-only folder) become :class:`ArtStyleError`; the temp file is
    removed and any existing ``path`` is left untouched.
    """
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:  # mkstemp makes 0600; give the file the permissions a plain open() would (exports!)
            os.fchmod(fd, 0o666 & ~_UMASK)
        except (AttributeError, OSError):  # pragma: no cover - Windows
            pass
        os.close(fd)
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        if isinstance(e, OSError):
            raise write_error(path, e) from e
        raise


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    import io

    buf = io.BytesIO()
    for k, v in arrays.items():
        if isinstance(v, np.ndarray) and v.dtype == object:
            raise TypeError(f"refusing to save object array {k!r} (no pickle)")
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def load_npz(path: Path, mapped: Iterable[str] = ()) -> dict[str, np.ndarray]:
    """Load an .npz written by :func:`save_npz`; never unpickles (object arrays are refused).

    ``mapped``: names whose arrays are memory-mapped read-only from the file instead of read (where the
    platform lets a mapped file be replaced: not on Windows), so only the rows used take memory: a large
    analysis's parts (:func:`map_npz_member`). Any other case reads them."""
    mapped = set(mapped) if os.name == "posix" else set()
    try:
        with np.load(path, allow_pickle=False) as z:
            if not isinstance(z, np.lib.npyio.NpzFile):  # a bare .npy where an .npz belongs
                raise ValueError("not an .npz archive")
            out = {}
            for k in z.files:
                m = map_npz_member(path, k) if k in mapped else None
                out[k] = z[k] if m is None else m
            return out
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as e:
        raise IndexCorrupt(f"The index file {path} is damaged ({e}). Re-index the collection.") from e


def map_npz_member(path: Path, name: str) -> np.ndarray | None:
    """The array ``name`` of an uncompressed .npz as a read-only array over a memory map (None: it cannot be mapped:
    compressed, not a plain C-ordered numeric array). The files are only ever replaced by a rename
    (:func:`atomic_path`), never rewritten in place, so a mapping stays valid while the analysis lives."""
    from numpy.lib import format as npformat

    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name + ".npy")
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        local = fh.read(30)
        if len(local) != 30 or local[:4] != b"PK\x03\x04":
            raise ValueError(f"bad zip member {name!r}")
        start = info.header_offset + 30 + int.from_bytes(local[26:28], "little") + int.from_bytes(local[28:30], "little")
        fh.seek(start)
        version = npformat.read_magic(fh)
        read = npformat.read_array_header_1_0 if version == (1, 0) else npformat.read_array_header_2_0
        shape, fortran, dtype = read(fh)
        offset = fh.tell()
    if fortran or dtype.hasobject or not np.issubdtype(dtype, np.number) or len(shape) != 2 \
            or offset + int(np.prod(shape)) * dtype.itemsize != start + info.file_size:
        return None
    import mmap

    nbytes = int(np.prod(shape)) * dtype.itemsize
    with open(path, "rb") as fh:
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        if hasattr(os, "posix_fadvise"):  # what a recent write left cached comes in huge pages: map pages read
            try:                            # from the disk (4 KB each) instead
                os.posix_fadvise(fh.fileno(), offset, nbytes, os.POSIX_FADV_DONTNEED)
            except OSError:
                pass
    # a row is a few hundred bytes: without these, reading one pulls the device's read-ahead (8 MB here) into
    # the page cache, and a huge page of it (2 MB) into this process's RSS
    for advice in ("MADV_RANDOM", "MADV_NOHUGEPAGE"):
        if hasattr(mm, "madvise") and hasattr(mmap, advice):
            try:
                mm.madvise(getattr(mmap, advice))
            except OSError:
                pass
    return np.frombuffer(mm, dtype=dtype, count=int(np.prod(shape)), offset=offset).reshape(shape)


def save_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=2, sort_keys=True).encode("utf-8"))


def load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise IndexCorrupt(f"The index file {path} is damaged ({e}). Re-index the collection.") from e


def _db_relpath(relpath: str) -> str | bytes:
    """SQLite stores text as UTF-8; a non-UTF-8 file name (surrogate-escaped str, PEP 383)
    is stored as a BLOB of its raw bytes instead, so it round-trips exactly."""
    try:
        relpath.encode("utf-8")
        return relpath
    except UnicodeEncodeError:
        return relpath.encode("utf-8", "surrogateescape")


def _py_relpath(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return str(value)


def _parse_labels(text: Any) -> dict[str, str]:
    """Labels column -> dict of str. A damaged cell reads as no labels: labels are re-read from
    the labels CSV on every update, which repairs it."""
    try:
        d = json.loads(text or "{}")
    except (ValueError, TypeError):
        return {}
    if not isinstance(d, dict):
        return {}
    return {str(k): str(v) for k, v in d.items() if isinstance(v, (str, int, float)) and not isinstance(v, bool)}


def _not_a_lock_file(path: Path, st: os.stat_result | None) -> ArtStyleError:
    what = ("a symbolic link" if st is None or stat.S_ISLNK(st.st_mode) else
            "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file")
    return ArtStyleError(f"The index's lock file {path} is {what}; artstyle neither follows nor writes it. "
                         "Remove it (or move it away) and try again.")


def _open_lock_file(path: Path, *, create: bool) -> int:
    """A descriptor of the regular file at ``path`` (created with mode 0644 if ``create`` and missing),
    opened without following a link; a link, a folder, a pipe, ... is refused with a clear error."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise write_error(path, e) from e
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise _not_a_lock_file(path, st)
    flags = ((os.O_RDWR | os.O_CREAT if create else os.O_RDONLY) | getattr(os, "O_NOFOLLOW", 0)
             | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP:  # a link put there since the check (O_NOFOLLOW)
            raise _not_a_lock_file(path, None) from e
        raise write_error(path, e) from e
    try:  # what was opened is the regular file at path (no O_NOFOLLOW on Windows: checked here)
        opened, now = os.fstat(fd), os.lstat(path)
        if not stat.S_ISREG(opened.st_mode) or not os.path.samestat(opened, now):
            raise _not_a_lock_file(path, now)
    except BaseException as e:
        os.close(fd)
        if isinstance(e, OSError):
            raise write_error(path, e) from e
        raise
    return fd


def _open_legacy_lock(path: Path) -> int | None:
    """A read-only descriptor of an older version's lock file (``lock``) when it is a regular file that
    can be opened, else None (it is then nobody's lock: older versions could not have locked it either)."""
    if fcntl is None:  # older versions took no lock on Windows
        return None
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
        return _open_lock_file(path, create=False)
    except (OSError, ArtStyleError):
        return None


def _lock_fd(fd: int) -> bool:
    """Take an exclusive lock on ``fd`` without waiting: False if another process holds it."""
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return False
            raise
    if msvcrt is not None:  # pragma: no cover - Windows
        try:
            os.lseek(fd, _WIN_LOCK_OFFSET, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError as e:
            if e.errno in (errno.EACCES, getattr(errno, "EDEADLOCK", errno.EDEADLK)):
                return False
            raise
    return True  # pragma: no cover - no locking on this platform


def _unlock_close(fd: int) -> None:
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        elif msvcrt is not None:  # pragma: no cover - Windows
            os.lseek(fd, _WIN_LOCK_OFFSET, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    except OSError:
        pass
    finally:
        os.close(fd)


def _sqlite_write_error(where: Path, e: sqlite3.Error) -> ArtStyleError | None:
    """The user-facing error for an SQLite failure caused by the disk or the folder, else None."""
    msg = str(e)
    low = msg.lower()
    if "locked" in low or "busy" in low:
        return IndexLocked(f"The index at {where} is busy: another artstyle process is writing it ({msg}). "
                           "Wait for it to finish and try again.")
    if any(w in low for w in ("full", "readonly", "read-only", "disk", "i/o", "unable to open", "permission")):
        return ArtStyleError(f"Could not write the index at {where}: {msg}. Check free disk space and that the "
                             "folder is writable. Finished work up to the last batch is kept.")
    return None


def _guarded(fn):
    """Map SQLite failures inside an IndexStore method to clear errors (IndexCorrupt for a
    damaged database, ArtStyleError/IndexLocked for disk, permission and busy problems)."""

    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        try:
            return fn(self, *args, **kwargs)
        except sqlite3.ProgrammingError:  # a bug (e.g. a closed store), not a damaged index
            raise
        except sqlite3.OperationalError as e:
            err = _sqlite_write_error(self.dir, e)
            if err is not None:
                raise err from e
            raise IndexCorrupt(f"The index database {self.db_path} cannot be read ({e}). "
                               "Delete the index directory and index the collection again.") from e
        except sqlite3.DatabaseError as e:  # "database disk image is malformed", ...
            raise IndexCorrupt(f"The index database {self.db_path} is damaged ({e}). "
                               "Delete the index directory and index the collection again.") from e

    return wrapper


@dataclass(slots=True)  # a million of them in the app: no __dict__ each
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
-- the keys alone: listing the known hashes reads this small index, not every page of the vectors
-- (a cold re-open of 10,000 paintings read 240 MB for it; docs/benchmarks.md)
CREATE INDEX IF NOT EXISTS vectors_keys ON vectors(featureset, hash);
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
        if readonly and not self.db_path.is_file():  # a read-only open creates nothing (no folder, no file)
            raise IndexMissing(f"No index at {self.dir}. Run `artstyle index` on the collection first.")
        # one connection per thread (the app's GUI thread and its worker never share one; WAL lets a
        # reader and the writer work at the same time), all closed by close()
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._closed = False
        self._files_gen = 0  # bumped by every write to the files table (records() cache)
        self._records_cache: tuple | None = None
        #: a read-only open of a folder where SQLite cannot create its -wal/-shm files (a read-only folder, a
        #: full disk) reads the database file as it is ("immutable": nothing is created or written)
        self._immutable = False
        db = None
        try:
            db = self._connect()
            if not readonly:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(_SCHEMA)
            try:
                self._check_schema()
            except sqlite3.OperationalError:
                if not readonly:
                    raise
                self._close_all()
                self._local = threading.local()
                self._immutable = True
                self._connect()
                self._check_schema()
        except (sqlite3.DatabaseError, ArtStyleError) as e:
            self._close_all()
            if isinstance(e, ArtStyleError):
                raise
            if isinstance(e, sqlite3.OperationalError) and _sqlite_write_error(self.dir, e) is not None:
                raise _sqlite_write_error(self.dir, e) from e  # disk full / read-only: not a damaged index
            raise IndexCorrupt(
                f"The index database {self.db_path} cannot be read ({e}). "
                "Delete the index directory and index the collection again."
            ) from e

    def _connect(self) -> sqlite3.Connection:
        if self.readonly:
            from urllib.parse import quote

            uri = "file:" + quote(str(self.db_path)) + ("?mode=ro&immutable=1" if self._immutable else "?mode=ro")
            db = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30)
        else:
            db = sqlite3.connect(str(self.db_path), check_same_thread=False, timeout=30)
            db.execute("PRAGMA synchronous=NORMAL")
        with self._conns_lock:
            self._conns.append(db)
        self._local.db = db
        return db

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's connection to the index database (opened at its first use)."""
        db = getattr(self._local, "db", None)
        if db is None:
            if self._closed:
                raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
            db = self._connect()
        return db

    def _close_all(self) -> None:
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for db in conns:
            try:
                db.close()
            except sqlite3.Error:
                pass

    # -- locking ---------------------------------------------------------
    @property
    def lock_path(self) -> Path:
        """The writer lock file (:data:`LOCK_NAME` in the index directory)."""
        return self.dir / LOCK_NAME

    def acquire_writer_lock(self) -> None:
        """Take the single-writer lock, or raise IndexLocked if another process holds it.

        The lock is :data:`LOCK_NAME`, a name of artstyle's own, opened without following links
        (``O_NOFOLLOW``, and checked to be the same regular file as the path after opening): a link or
        anything but a regular file there is refused with a clear :class:`ArtStyleError`, nothing written.
        The pid is written into it only when it is artstyle's file alone (no other hard link). A file named
        ``lock`` (:data:`LEGACY_LOCK_NAME`: what older versions locked, or the user's own file) is locked too
        when it is a regular file, and never written. POSIX uses ``flock``, Windows ``msvcrt.locking``.
        """
        if self._lock_fh is not None:
            return
        path = self.lock_path
        fd = _open_lock_file(path, create=True)
        fds = [fd]
        try:
            if not _lock_fd(fd):
                raise IndexLocked(f"Another artstyle process is indexing this collection (lock {path}). "
                                  "Wait for it to finish, or close the other window.")
            legacy = _open_legacy_lock(self.dir / LEGACY_LOCK_NAME)
            if legacy is not None:
                fds.append(legacy)
                if not _lock_fd(legacy):
                    raise IndexLocked(f"Another (older) artstyle process is indexing this collection (lock "
                                      f"{self.dir / LEGACY_LOCK_NAME}). Wait for it to finish, or close the other "
                                      "window.")
            if os.fstat(fd).st_nlink == 1:  # artstyle's file alone: the pid, for people and tests
                try:
                    os.ftruncate(fd, 0)
                    os.lseek(fd, 0, os.SEEK_SET)
                    os.write(fd, f"{os.getpid()}\n".encode())
                except OSError as e:
                    raise write_error(path, e) from e
        except BaseException as e:
            for f in reversed(fds):
                _unlock_close(f)
            if isinstance(e, OSError):  # flock itself failed (ENOLCK on some network file systems, ...)
                raise ArtStyleError(f"Could not lock the index ({path}): {e.strerror or e}.") from e
            raise
        self._lock_fh = fds

    @property
    def holds_writer_lock(self) -> bool:
        return self._lock_fh is not None

    def release_writer_lock(self) -> None:
        if self._lock_fh is not None:
            fds, self._lock_fh = self._lock_fh, None
            for fd in reversed(fds):
                _unlock_close(fd)

    def close(self) -> None:
        self.release_writer_lock()
        self._closed = True
        self._close_all()

    # -- meta ------------------------------------------------------------
    def _check_schema(self) -> None:
        row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            if not self.readonly:
                with self.transaction():
                    self.db.execute(
                        "INSERT INTO meta(key, value) VALUES('schema_version', ?)", (str(SCHEMA_VERSION),)
                    )
            return
        try:
            version = int(row[0])
        except (TypeError, ValueError):
            raise IndexCorrupt(f"The index database {self.db_path} is damaged (schema version {row[0]!r}). "
                               "Delete the index directory and index the collection again.") from None
        if version > SCHEMA_VERSION:
            raise IndexCorrupt(
                f"The index at {self.dir} was written by a newer artstyle (schema {row[0]}). Upgrade artstyle."
            )

    @_guarded
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", (key, value))

    # -- records ---------------------------------------------------------
    _COLS = "id, relpath, size, mtime_ns, hash, status, error, labels, width, height"

    @_guarded
    def records(self) -> list[FileRecord]:
        """Every file record, by relpath. Read again only when the files table may have changed: a write
        through this store (any thread) or a commit by another connection (SQLite's data_version); the
        records themselves are shared between callers, which only read them.

        The cache serves every thread: another thread's connection asks the connection that read the records
        whether anything was committed since (data_version is per connection), so the app's worker thread
        shares the records its GUI thread read at open instead of holding a second copy (450 MB at a million
        paintings)."""
        db = self.db
        gen = self._files_gen
        cached = self._records_cache
        if cached is not None and cached[1] == gen and (cached[0] is db or sqlite3.threadsafety == 3):
            src, version, out = cached[0], cached[2], cached[3]
            try:  # another thread's connection only where SQLite is serialized; a closed one just misses
                same = src.execute("PRAGMA data_version").fetchone()[0] == version
            except sqlite3.Error:
                same = False
            if same:
                return list(out)
        version = db.execute("PRAGMA data_version").fetchone()[0]
        out = self._read_records(db)
        self._records_cache = (db, gen, version, out)
        return list(out)

    def _read_records(self, db: sqlite3.Connection) -> list[FileRecord]:
        """Every record, read a block of rows at a time (never all rows as tuples beside the records). Records
        are read-only, their labels too: paintings with the same labels share one dict (at a million
        paintings: 450 MB of records instead of 890 MB)."""
        cur = db.execute(f"SELECT {self._COLS} FROM files ORDER BY relpath")
        parsed: dict[str, dict[str, str]] = {}  # most paintings share a few label sets: parse each once
        out = []
        while rows := cur.fetchmany(8192):
            for r in rows:
                text = r[7]
                if not isinstance(text, str) or len(text) > 4096:
                    labels = _parse_labels(text)
                else:
                    labels = parsed.get(text)
                    if labels is None:
                        labels = parsed[text] = _parse_labels(text)
                out.append(FileRecord(id=r[0], relpath=_py_relpath(r[1]), size=r[2], mtime_ns=r[3], hash=r[4],
                                      status=r[5], error=r[6], labels=labels, width=r[8], height=r[9]))
        return out

    @_guarded
    def content_hashes(self) -> set[str]:
        """The content hashes of the files in the index."""
        return {h for (h,) in self.db.execute("SELECT DISTINCT hash FROM files WHERE hash IS NOT NULL")}

    def record_map(self) -> dict[str, FileRecord]:
        return {r.relpath: r for r in self.records()}

    def upsert_files(self, recs: Iterable[FileRecord]) -> None:
        self._files_gen += 1
        now = time.time()
        rows = [
            (_db_relpath(r.relpath), r.size, r.mtime_ns, r.hash, r.status, r.error,
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
        self._files_gen += 1
        cur = self.db.executemany("DELETE FROM files WHERE relpath=?", [(_db_relpath(p),) for p in relpaths])
        return cur.rowcount

    def update_labels(self, labels: dict[str, dict[str, str]]) -> None:
        self._files_gen += 1
        with self.transaction():
            self.db.executemany(
                "UPDATE files SET labels=? WHERE relpath=?",
                [(json.dumps(v, ensure_ascii=False, sort_keys=True), _db_relpath(k)) for k, v in labels.items()],
            )

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One SQLite transaction: committed as a whole or rolled back (then a clear error)."""
        try:
            with self.db:
                yield self.db
        except sqlite3.OperationalError as e:
            err = _sqlite_write_error(self.dir, e)
            if err is not None:
                raise err from e
            raise
        except sqlite3.DatabaseError as e:  # "database disk image is malformed", ...
            raise IndexCorrupt(f"The index database {self.db_path} is damaged ({e}). "
                               "Delete the index directory and index the collection again.") from e

    # -- feature sets and vectors ---------------------------------------
    @_guarded
    def featureset_id(self, key: str, config: dict[str, Any]) -> int:
        row = self.db.execute("SELECT id FROM featuresets WHERE key=?", (key,)).fetchone()
        if row:
            return int(row[0])
        if self.readonly:  # never indexed with these features: nothing is stored for them
            return -1
        with self.transaction():
            cur = self.db.execute(
                "INSERT INTO featuresets(key, config) VALUES(?, ?)", (key, json.dumps(config, sort_keys=True))
            )
        return int(cur.lastrowid)

    @_guarded
    def featuresets(self) -> list[tuple[int, str, dict[str, Any]]]:
        rows = self.db.execute("SELECT id, key, config FROM featuresets ORDER BY id").fetchall()
        out = []
        for r in rows:
            try:
                cfg = json.loads(r[2])
            except (ValueError, TypeError):
                cfg = None
            out.append((r[0], r[1], cfg if isinstance(cfg, dict) else {}))
        return out

    @_guarded
    def known_hashes(self, fs: int) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT hash FROM vectors WHERE featureset=?", (fs,))}

    def put_vectors(self, fs: int, items: Iterable[tuple[str, bytes]]) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO vectors(featureset, hash, data) VALUES(?,?,?)",
            [(fs, h, sqlite3.Binary(b)) for h, b in items],
        )

    @_guarded
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

    @_guarded
    def delete_vectors(self, fs: int, hashes: Iterable[str]) -> None:
        """Forget stored vectors (e.g. damaged ones): their files are extracted again by the next update."""
        with self.transaction():
            self.db.executemany("DELETE FROM vectors WHERE featureset=? AND hash=?", [(fs, h) for h in hashes])

    @_guarded
    def prune_vectors(self, fs: int, keep: set[str]) -> int:
        """Drop vectors of content no longer in the collection."""
        gone = self.known_hashes(fs) - keep
        with self.transaction():
            self.db.executemany("DELETE FROM vectors WHERE featureset=? AND hash=?", [(fs, h) for h in gone])
        return len(gone)

    def derived_dir(self, fs_key: str) -> Path:
        return self.dir / "derived" / fs_key
