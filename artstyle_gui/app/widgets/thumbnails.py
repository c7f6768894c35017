"""Thumbnails off the GUI thread: LIFO requests, QImage in workers, QPixmap in the GUI thread.

Ideas from calibre's cover grid: a cell asks for its thumbnail only when it is painted;
requests go on a stack so what the user looks at *now* is decoded first, and old requests
beyond a limit are forgotten (the cell will ask again when painted again).  Workers decode
with :func:`core.imageio.load_rgb` to a ``QImage``; the GUI thread turns it into a
``QPixmap`` and keeps it in a RAM LRU.  Decoded thumbnails are also written to a disk
cache that lives in the collection's *index* directory (never in the collection).

Pictures are shown as the engine sees them: letterbox / pillarbox bars trimmed with the core's
:func:`core.ingest.imageio.trim_uniform_borders` (the pref ``view/show_original`` or
:meth:`ThumbnailLoader.set_show_original` shows the original file instead; the disk cache keys the
two apart).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict, deque
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal
from PySide6.QtGui import QImage, QPixmap

from ...core.errors import DecodeError
from ...core.ingest.imageio import DEFAULT_TRIM_MAX_FRACTION, load_rgb, trim_uniform_borders
from ..background import lower_this_thread

THUMB_SIDE = 256  # decoded/cached size; cells draw it scaled
PREVIEW_SIDE = 2048
MAX_PENDING = 400
RAM_BUDGET = 192 * 1024 * 1024
#: the pref (QSettings key) that shows pictures with their bars (default: trimmed, as the engine sees them)
SHOW_ORIGINAL_KEY = "view/show_original"

_pool: QThreadPool | None = None


def thumbnail_pool() -> QThreadPool:
    """The dedicated pool for image decoding (the global pool runs the engine's jobs)."""
    global _pool
    if _pool is None:
        _pool = QThreadPool()
        _pool.setMaxThreadCount(max(2, min(4, QThreadPool.globalInstance().maxThreadCount())))
        _pool.setExpiryTimeout(2000)
    return _pool


def pil_to_qimage(im) -> QImage:
    im = im.convert("RGB") if im.mode != "RGB" else im
    w, h = im.size
    data = im.tobytes()
    return QImage(data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def load_picture(path: str, max_side: int | None, original: bool = False):
    """The picture of ``path`` fitting a ``max_side`` square (PIL RGB): without its letterbox bars (the
    engine's trim) unless ``original``. Raises DecodeError / OSError like :func:`load_rgb`."""
    im = load_rgb(path, max_side)
    if not original:
        im, _box = trim_uniform_borders(im, max_fraction=DEFAULT_TRIM_MAX_FRACTION)
    return im


def _cache_file(cache_dir: Path, path: str, original: bool = False) -> Path | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    kind = "orig" if original else "trim"  # trimmed and original thumbnails never share a file
    key = hashlib.sha1(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\0{THUMB_SIDE}\0{kind}".encode("utf-8", "surrogateescape"))
    h = key.hexdigest()
    return cache_dir / h[:2] / f"{h}.jpg"


def make_thumbnail(path: str, cache_dir: Path | None, original: bool = False) -> tuple[QImage | None, str | None]:
    """Worker side: (QImage, None) or (None, reason).  Uses and fills the disk cache. The picture is
    trimmed of its bars unless ``original``."""
    cf = _cache_file(cache_dir, path, original) if cache_dir is not None else None
    if cf is not None and cf.exists():
        img = QImage(str(cf))
        if not img.isNull():
            return img, None
    try:
        im = load_picture(path, THUMB_SIDE, original)
    except DecodeError as e:
        return None, e.reason
    except OSError as e:
        return None, str(e.strerror or e)
    if cf is not None:
        try:
            cf.parent.mkdir(parents=True, exist_ok=True)
            tmp = cf.with_suffix(f".{threading.get_ident()}.tmp")
            im.save(tmp, "JPEG", quality=85)
            os.replace(tmp, cf)
        except OSError:
            pass  # a read-only cache only costs speed
    return pil_to_qimage(im), None


class _Bridge(QObject):
    """Lives in the GUI thread; workers emit on it (queued connections)."""

    decoded = Signal(int, str, object, object)  # generation, path, QImage | None, reason | None
    preview_decoded = Signal(int, str, object, object)


class _ThumbRunner(QRunnable):
    def __init__(self, loader: "ThumbnailLoader") -> None:
        super().__init__()
        self.loader = loader
        self.setAutoDelete(True)

    def run(self) -> None:  # worker thread
        lower_this_thread()
        lo = self.loader
        while True:
            item = lo._pop()
            if item is None:
                return
            gen, path, cache_dir, original = item
            try:
                img, reason = make_thumbnail(path, cache_dir, original)
            except Exception as e:  # never let a worker die silently
                img, reason = None, f"{type(e).__name__}: {e}"
            lo._bridge.decoded.emit(gen, path, img, reason)


class _PreviewRunner(QRunnable):
    def __init__(self, loader: "ThumbnailLoader") -> None:
        super().__init__()
        self.loader = loader
        self.setAutoDelete(True)

    def run(self) -> None:  # worker thread
        lower_this_thread()
        lo = self.loader
        while True:
            with lo._lock:
                req, lo._preview_req = lo._preview_req, None
                if req is None:
                    lo._preview_running = False
                    return
            gen, path, side, original = req
            try:
                img, reason = pil_to_qimage(load_picture(path, side, original)), None
            except DecodeError as e:
                img, reason = None, e.reason
            except Exception as e:
                img, reason = None, f"{type(e).__name__}: {e}"
            lo._bridge.preview_decoded.emit(gen, path, img, reason)


class ThumbnailLoader(QObject):
    """Asynchronous thumbnail + preview source shared by every view.

    Signals:
        thumbnail_ready(path: str): the thumbnail of ``path`` is now in the RAM cache.
        thumbnail_failed(path: str, reason: str): it cannot be decoded.
        preview_ready(path: str, image: QImage): a large preview requested with request_preview.
        preview_failed(path: str, reason: str)
    """

    thumbnail_ready = Signal(str)
    thumbnail_failed = Signal(str, str)
    preview_ready = Signal(str, object)
    preview_failed = Signal(str, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._stack: deque[str] = deque()
        self._pending: set[str] = set()
        self._running = 0
        self._gen = 0
        self._cache_dir: Path | None = None
        self._ram: OrderedDict[str, QPixmap] = OrderedDict()
        self._ram_bytes = 0
        self._failed: dict[str, str] = {}
        self._preview_req: tuple[int, str, int, bool] | None = None
        self._preview_running = False
        self._show_original = _pref_show_original()
        self._closed = False
        self._start_queued = False
        self._bridge = _Bridge()
        self._bridge.decoded.connect(self._on_bridge_decoded)
        self._bridge.preview_decoded.connect(self._on_bridge_preview_decoded)

    # ---------------------------------------------------------------- API (GUI thread)
    def set_cache_dir(self, cache_dir: str | os.PathLike | None) -> None:
        """Start over for a new collection: forget queued requests and cached pixmaps."""
        with self._lock:
            self._gen += 1
            self._stack.clear()
            self._pending.clear()
            self._cache_dir = Path(cache_dir) if cache_dir else None
            self._preview_req = None
        self._ram.clear()
        self._ram_bytes = 0
        self._failed.clear()

    def show_original(self) -> bool:
        return self._show_original

    def set_show_original(self, on: bool) -> None:
        """Show the original pictures (with their bars) or the trimmed ones; saved as the pref
        ``view/show_original``. The cached thumbnails are decoded again: the ones in RAM are queued
        anew and each view repaints a cell when ``thumbnail_ready`` says so; a preview asks again."""
        on = bool(on)
        try:
            from ..prefs import qsettings

            qsettings().setValue(SHOW_ORIGINAL_KEY, on)
        except Exception:
            pass  # an unwritable settings store only costs the choice at the next start
        if on == self._show_original:
            return
        again = list(self._ram)[-MAX_PENDING:]
        with self._lock:
            self._show_original = on
            self._gen += 1
            self._stack.clear()
            self._pending.clear()
            self._preview_req = None
        self._ram.clear()
        self._ram_bytes = 0
        self._failed.clear()
        for path in again:  # oldest first: the most recently used are decoded first (LIFO)
            self.pixmap(path)

    def cached(self, path: str) -> QPixmap | None:
        pm = self._ram.get(path)
        if pm is not None:
            self._ram.move_to_end(path)
        return pm

    def failure(self, path: str) -> str | None:
        return self._failed.get(path)

    def pixmap(self, path: str) -> QPixmap | None:
        """The thumbnail if cached; otherwise queue it (newest first) and return None."""
        pm = self.cached(path)
        if pm is not None or path in self._failed or self._closed:
            return pm
        with self._lock:
            if path in self._pending:
                try:  # move to the top of the stack: it is being looked at again
                    self._stack.remove(path)
                    self._stack.append(path)
                except ValueError:
                    pass  # already being decoded
                return None
            self._stack.append(path)
            self._pending.add(path)
            while len(self._stack) > MAX_PENDING:
                self._pending.discard(self._stack.popleft())
        if not self._start_queued:  # workers start once the paint asking for them has finished
            self._start_queued = True
            QTimer.singleShot(0, self._start_workers)
        return None

    def _start_workers(self) -> None:
        """Start as many decoders as the stack needs (at most the pool's size). Deferred to the next
        event-loop turn: a repaint asks for up to ~30 thumbnails, and starting a pool thread per
        request cost 0.2-0.3 ms each on the GUI thread (docs/benchmarks.md, click to panel)."""
        self._start_queued = False
        if self._closed:
            return
        with self._lock:
            n = max(0, min(len(self._stack), thumbnail_pool().maxThreadCount() - self._running))
            self._running += n
        for _ in range(n):
            thumbnail_pool().start(_ThumbRunner(self))

    def request_preview(self, path: str, max_side: int = PREVIEW_SIDE) -> None:
        """Decode a large preview; only the latest request is served."""
        if self._closed:
            return
        with self._lock:
            self._preview_req = (self._gen, path, max_side, self._show_original)
            start = not self._preview_running
            self._preview_running = True
        if start:
            thumbnail_pool().start(_PreviewRunner(self), 1)

    def pending(self) -> int:
        with self._lock:
            return len(self._pending) + (1 if self._preview_running else 0)

    def shutdown(self, msecs: int = 10000) -> None:
        """Drop queued work and wait for the workers (call before the app quits)."""
        self._closed = True
        with self._lock:
            self._gen += 1
            self._stack.clear()
            self._pending.clear()
            self._preview_req = None
        thumbnail_pool().waitForDone(msecs)

    # ---------------------------------------------------------------- workers
    def _pop(self) -> tuple[int, str, Path | None, bool] | None:
        with self._lock:
            if not self._stack:
                self._running -= 1
                return None
            return self._gen, self._stack.pop(), self._cache_dir, self._show_original

    def _on_bridge_decoded(self, gen: int, path: str, img, reason) -> None:
        with self._lock:
            if gen != self._gen:
                return
            self._pending.discard(path)
        if img is None:
            self._failed[path] = reason or "unreadable"
            self.thumbnail_failed.emit(path, self._failed[path])
            return
        pm = QPixmap.fromImage(img)
        self._ram[path] = pm
        self._ram_bytes += pm.width() * pm.height() * 4
        while self._ram_bytes > RAM_BUDGET and len(self._ram) > 1:
            _, old = self._ram.popitem(last=False)
            self._ram_bytes -= old.width() * old.height() * 4
        self.thumbnail_ready.emit(path)

    def _on_bridge_preview_decoded(self, gen: int, path: str, img, reason) -> None:
        if gen != self._gen:
            return
        if img is None:
            self.preview_failed.emit(path, reason or "unreadable")
        else:
            self.preview_ready.emit(path, img)


def _pref_show_original() -> bool:
    """The saved ``view/show_original`` pref (False: trimmed pictures)."""
    try:
        from ..prefs import qsettings

        v = qsettings().value(SHOW_ORIGINAL_KEY, False)
    except Exception:
        return False
    return v is True or str(v).strip().lower() in ("1", "true", "yes", "on")
