"""Collections at an fsspec URL (``s3://bucket/prefix``, ``gs://...``, ``file:///shared/paintings``, ...):
listed and read through `fsspec <https://filesystem-spec.readthedocs.io>`_, read-only, like a folder.

fsspec is a dependency (torch and Ray Data use it too); the backend of a protocol is its own package
(``s3fs`` for ``s3://``, ``gcsfs`` for ``gs://``, ``adlfs`` for ``az://``): a missing one is named in the
message. Credentials come from the backend's usual places (environment, config files).

The index of a URL collection lives on the machine that runs the command, as for a folder. What reads the
images themselves again later (the app's thumbnails, near-duplicates, fine-tuning) needs a local folder;
indexing, the analysis, neighbours, topics, the map and the exports work from the index alone.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from collections.abc import Callable, Iterator
from datetime import datetime

from ..errors import ArtStyleError
from .imageio import IMAGE_EXTENSIONS
from .scan import ScannedFile


class StorageError(ArtStyleError):
    """The storage of a URL collection failed (not one bad file): the run stops and resumes later."""


def is_url(text: object) -> bool:
    """Whether ``text`` names a collection by URL (``protocol://...``) rather than a local folder."""
    s = str(text)
    head, sep, _ = s.partition("://")
    return bool(sep) and head.isascii() and head.replace("+", "").replace("-", "").isalnum() and len(head) > 1


def _mtime_ns(info: dict) -> int:
    """A modification time from what the backend lists (each names it differently); else 0."""
    for key in ("mtime", "LastModified", "last_modified", "updated", "modified", "created", "timeCreated"):
        v = info.get(key)
        if v is None:
            continue
        if isinstance(v, datetime):
            return int(v.timestamp() * 1e9)
        if isinstance(v, (int, float)):
            return int(v * 1e9) if v < 1e11 else int(v)  # seconds, else already ns
        if isinstance(v, str):
            try:
                return int(datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp() * 1e9)
            except ValueError:
                continue
    etag = info.get("ETag") or info.get("etag") or info.get("md5Hash")  # a changed object has a new tag
    return int.from_bytes(hashlib.blake2b(str(etag).encode(), digest_size=7).digest(), "big") if etag else 0


class RemoteFolder:
    """A collection at an fsspec URL: ``scan`` lists its images, ``read`` returns one file's bytes."""

    def __init__(self, url: str) -> None:
        try:
            import fsspec
        except ImportError:
            raise ArtStyleError(f"{url} is a URL: reading a collection by URL needs fsspec (pip install fsspec).") from None
        self.url = url.rstrip("/")
        try:
            self.fs, path = fsspec.core.url_to_fs(self.url)
        except (ImportError, ValueError) as e:
            raise ArtStyleError(f"Cannot read {url}: {e}") from None
        self.base = path.rstrip("/")
        try:
            ok = self.fs.isdir(self.base)
        except Exception as e:  # credentials, network, a bucket that is not there: the backend's own words
            raise ArtStyleError(f"Cannot read {url}: {type(e).__name__}: {e}") from None
        if not ok:
            raise ArtStyleError(f"{url} is not a folder (no files below it).")

    @property
    def name(self) -> str:
        return posixpath.basename(self.base) or "collection"

    def local_path(self) -> str | None:
        """The local path of a ``file://`` URL (None for other protocols)."""
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        return self.base if "file" in protocols or "local" in protocols else None

    def __str__(self) -> str:
        return self.url

    def scan(self, on_error: Callable[[str, str], None] | None = None) -> Iterator[ScannedFile]:
        """The image files below the URL, sorted by relative path (hidden names skipped, as in a folder)."""
        try:
            found = self.fs.find(self.base, withdirs=False, detail=True)
        except Exception as e:
            raise ArtStyleError(f"Cannot list {self.url}: {type(e).__name__}: {e}") from None
        prefix = self.base + "/"
        items = []
        for path, info in found.items():
            path = path.rstrip("/")
            if not path.startswith(prefix) and not ("/" + path).startswith(prefix):
                continue
            rel = path[len(prefix):] if path.startswith(prefix) else path[len(prefix) - 1:]
            if any(part.startswith(".") for part in rel.split("/")):
                continue
            if posixpath.splitext(rel)[1].lower() not in IMAGE_EXTENSIONS:
                continue
            items.append(ScannedFile(rel, int(info.get("size") or 0), _mtime_ns(info)))
        yield from sorted(items, key=lambda f: f.relpath)

    def read(self, relpath: str) -> bytes:
        """One object's bytes. Gone or forbidden: FileNotFoundError / PermissionError (that file is reported
        as unreadable); any other failure is the storage's (throttling, credentials, the network): a
        StorageError that stops the run, so that no file is marked unreadable because of it."""
        try:
            return self.fs.cat_file(f"{self.base}/{relpath}")
        except (FileNotFoundError, PermissionError, IsADirectoryError):
            raise
        except Exception as e:
            raise StorageError(f"Cannot read {self.url}/{relpath}: {type(e).__name__}: {e}. The files indexed "
                               "so far are kept: the same command resumes.") from None


def reader_for(root: str) -> Callable[[str], bytes]:
    """``read(relpath)`` for a collection root: a local folder's path or a URL (for cluster workers, which
    get the root as text)."""
    if is_url(root):
        return RemoteFolder(root).read
    from .extract import read_local

    return lambda rp: read_local(os.path.join(root, rp))
