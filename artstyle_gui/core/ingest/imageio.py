"""Robust, memory-friendly image decoding for indexing and previews.

Public functions return 8-bit RGB images or raise
:class:`~artstyle_gui.core.errors.DecodeError` with a short user-readable
reason. Large images are decoded *reduced* (JPEG/HEIF ``draft``, else a box
``reduce``), colour is converted to sRGB (embedded ICC profiles, CMYK, 16-bit,
alpha on white) and the EXIF orientation is applied.

Thread safety and decompression bombs
-------------------------------------
Worker threads call :func:`decode_image` concurrently, so this module never
touches process-wide Pillow state (``Image.MAX_IMAGE_PIXELS``,
``ImageFile.LOAD_TRUNCATED_IMAGES``, warning filters). ``Image.open`` runs
Pillow's global bomb check right after parsing the header (a warning above
``MAX_IMAGE_PIXELS``, an error above twice that, ~179 MP). Instead we identify
the file through the very same plugin registry ``Image.open`` uses
(``Image.ID``/``Image.OPEN``) without that check, and compare the header size
against our own per-call cap (``max_megapixels``) before any pixel is decoded.
If the registry is not usable we fall back to plain ``Image.open``. A few
decoders (TIFF, GIF frames) repeat Pillow's check while loading; that error is
reported as "image too large" too. Colour transforms are cached per thread
because LittleCMS transforms are not safe to share between threads.

Decode memory
-------------
Pixels are not the whole story: Pillow holds 1 byte per pixel for modes
``1``/``L``/``P``, 2 for ``I;16``, 4 for ``I``/``F`` and for every multi-band
mode (``LA``, ``RGB``, ``RGBA``, ``CMYK``, ...), and some decoders hold a
second copy (a TIFF strip or tile buffer; libwebp, libheif and libavif decode
into a buffer of their own). :func:`decode_cost` computes what decoding one
file needs from its header (after ``draft``, so a JPEG costs its reduced
size), and everything after the decode (mode conversion, colour management,
the box reduction) runs in strips of about :data:`STRIP_PIXELS`, so it adds
a bounded amount whatever the image size. One process-wide budget
(:data:`DEFAULT_DECODE_MEMORY_MB`, ``ARTSTYLE_DECODE_MEMORY_MB``,
:func:`set_decode_memory_mb`) bounds the decoding threads together: an image
that alone needs more is refused with a reason ("image too large to decode
within the memory budget ..."), and a thread whose image does not fit next to
the ones being decoded waits for them (first come, first served). The cap is
per process, so more decode threads share it instead of multiplying it.
"""

from __future__ import annotations

import io
import math
import os
import struct
import threading
import zlib
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

import numpy as np
from PIL import Image, ImageCms, ImageFile, UnidentifiedImageError, features

from ..errors import DecodeError

try:  # optional HEIF/HEIC support
    import pillow_heif

    pillow_heif.register_heif_opener()
    _HEIF = True
except Exception:  # pragma: no cover - depends on the environment
    _HEIF = False

try:  # AVIF: Pillow >= 11.2 decodes it natively when built with libavif
    _AVIF = bool(features.check("avif"))
except Exception:  # pragma: no cover
    _AVIF = False

#: images larger than this (megapixels) are skipped with a reason (Settings.max_megapixels, --max-megapixels)
DEFAULT_MAX_MEGAPIXELS = 400.0
#: the memory (MB) all decoding threads of a process may use together (see "Decode memory" above); a
#: 400 MP PNG in any mode fits (RGB/RGBA/CMYK: about 1.7 GB), a 400 MP single-strip TIFF does not
DEFAULT_DECODE_MEMORY_MB = 2048
#: rows of about this many pixels are converted at a time after the decode
STRIP_PIXELS = 1 << 21
_BASE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif")
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    _BASE_EXTENSIONS + ((".heic", ".heif") if _HEIF else ()) + ((".avif",) if _AVIF else ())
)
"""Lower-case file extensions (with the dot) that the app tries to decode."""

DEFAULT_TRIM_MAX_FRACTION = 0.95
"""Bars may take up to this share of a side (a 62% pillarbox around a tall painting is still a
pillarbox) when they are balanced and what remains is a real picture; see :func:`trim_uniform_borders`."""
SAFE_TRIM_FRACTION = 0.35
"""Bars up to this share of a side are trimmed without further checks (scan margins, one-sided bars)."""
_DECODE_TRIM_HEADROOM = 0.35  # decode with headroom for this much trim; a larger trim is upscaled a little
_BORDER_PIXEL_SHARE = 0.995  # a border line may hold a few stray pixels (noise, JPEG ringing)
_RINGING_LINES, _RINGING_PIXEL_SHARE = 8, 0.85  # JPEG ringing: up to one 8x8 block of noisy bar lines
_MIN_CONTENT_SIDE = 8  # a large trim must leave at least this many pixels per side
_MIN_CONTENT_SPREAD = 4.0  # ... and content whose pixel values spread (std of a channel) at least this much
_MIN_CONTENT_AWAY = 0.05  # ... with at least this share of its pixels away from every bar colour
# EXIF orientation -> transpose, exactly as PIL.ImageOps.exif_transpose. We apply
# it ourselves at the end because mode conversions drop TIFF tags (and EXIF).
_T = Image.Transpose
_ORIENTATION = {2: _T.FLIP_LEFT_RIGHT, 3: _T.ROTATE_180, 4: _T.FLIP_TOP_BOTTOM,
                5: _T.TRANSPOSE, 6: _T.ROTATE_270, 7: _T.TRANSVERSE, 8: _T.ROTATE_90}
_tls = threading.local()


def heif_available() -> bool:
    """True when HEIC/HEIF files can be decoded (``pillow-heif`` is installed)."""
    return _HEIF


# ---------------------------------------------------------------------------
# Decode memory


class _DecodeBudget:
    """Bytes that the decodes of this process may hold together; reservations are granted first come,
    first served (a large image is not starved by a stream of small ones)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._used = 0
        self._cond = threading.Condition()
        self._queue: deque[object] = deque()

    @contextmanager
    def reserve(self, nbytes: int) -> Iterator[None]:
        nbytes = min(nbytes, self.limit)  # the caller refused larger ones; a lowered limit must not deadlock
        ticket = object()
        with self._cond:
            self._queue.append(ticket)
            try:
                while self._queue[0] is not ticket or (self._used and self._used + nbytes > self.limit):
                    self._cond.wait()
            except BaseException:
                self._queue.remove(ticket)
                self._cond.notify_all()
                raise
            self._queue.popleft()
            self._used += nbytes
            self._cond.notify_all()  # the next in line may fit too
        try:
            yield
        finally:
            with self._cond:
                self._used -= nbytes
                self._cond.notify_all()


def _budget_from_env() -> int:
    try:
        mb = float(os.environ.get("ARTSTYLE_DECODE_MEMORY_MB", "") or DEFAULT_DECODE_MEMORY_MB)
    except ValueError:
        mb = DEFAULT_DECODE_MEMORY_MB
    return int(max(mb, 1.0) * 2**20) if math.isfinite(mb) else DEFAULT_DECODE_MEMORY_MB * 2**20


_BUDGET = _DecodeBudget(_budget_from_env())


def decode_memory_mb() -> float:
    """The process-wide decode memory budget in MB (all decoding threads together)."""
    return _BUDGET.limit / 2**20


def set_decode_memory_mb(mb: float | None) -> None:
    """Set the process-wide decode memory budget (MB; None: ``ARTSTYLE_DECODE_MEMORY_MB`` or the default)."""
    if mb is not None and not (isinstance(mb, (int, float)) and math.isfinite(mb) and mb >= 1):
        raise ValueError(f"decode memory must be a number of MB >= 1, not {mb!r}")
    with _BUDGET._cond:
        _BUDGET.limit = _budget_from_env() if mb is None else int(mb * 2**20)
        _BUDGET._cond.notify_all()


_FOUR_BYTE_MODES = frozenset({"I", "F", "LA", "La", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"})


def bytes_per_pixel(mode: str) -> int:
    """What Pillow holds per pixel of an image in ``mode`` (multi-band 8-bit modes are padded to 4)."""
    if mode in ("1", "L", "P"):
        return 1
    if mode.startswith("I;16") or mode in ("BGR;15", "BGR;16"):
        return 2
    if mode == "BGR;24":
        return 3
    return 4 if mode in _FOUR_BYTE_MODES else 8  # an unknown mode: assume the worst


def _decoder_extra(im: Image.Image) -> int:
    """Bytes a decoder holds besides the image: a TIFF strip or tile, the whole picture for WebP (libwebp
    keeps two RGBA frames and hands over a third copy) and HEIF/AVIF (decoded into their own buffer)."""
    w, h = im.size
    fmt = (im.format or "").upper()
    if fmt == "WEBP":
        return 12 * w * h
    if fmt in ("HEIF", "HEIC", "AVIF"):
        return 8 * w * h
    if fmt != "TIFF":
        return 0
    tags = getattr(im, "tag_v2", None)
    try:
        spp = int(tags.get(277, 1)) if tags is not None else 4
        bits = tags.get(258, (8,)) if tags is not None else (32,)
        bits = tuple(bits) if isinstance(bits, (tuple, list)) else (int(bits),)
        pixel_bits = sum(bits) if len(bits) == spp else bits[0] * spp
        if tags is not None and 322 in tags and 323 in tags:  # tiled
            return math.ceil(int(tags[322]) * pixel_bits / 8) * int(tags[323])
        rows = int(tags.get(278, h)) if tags is not None else h
        return math.ceil(w * pixel_bits / 8) * max(1, min(rows, h))
    except (TypeError, ValueError, AttributeError):
        return 4 * w * h  # unreadable tags: as if one strip of 32-bit pixels


def decode_cost(im: Image.Image, factor: int = 1) -> int:
    """Bytes that decoding ``im`` (opened, not loaded; after ``draft``) and making the reduced RGB result
    needs: the decoded pixels, the decoder's own buffer, the result and its copies (transposed, trimmed,
    resized; reduced ``factor`` times), and the temporaries of one conversion strip."""
    w, h = im.size
    decoded = w * h * bytes_per_pixel(im.mode) + _decoder_extra(im)
    out = math.ceil(w / factor) * math.ceil(h / factor) * 4
    # one strip's temporaries: 32-bit and float data go through float64 copies, 16-bit through uint32 ones
    strip = min(w * h, max(w, STRIP_PIXELS)) * (48 if im.mode in ("I", "F") else 16)
    return decoded + 3 * out + strip


def _fmt_bytes(n: float) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"


@dataclass
class DecodedImage:
    """Result of :func:`decode_image`.

    ``original_size`` is the full-resolution (width, height) as displayed, i.e.
    after EXIF orientation. ``trimmed_box`` is the (left, top, right, bottom)
    content box in those coordinates when uniform borders were removed, else
    ``None``.
    """

    image: Image.Image
    original_size: tuple[int, int]
    trimmed_box: tuple[int, int, int, int] | None


def decode_image(
    source: str | os.PathLike[str] | bytes,
    *,
    target_side: int = 256,
    max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
    trim_borders: bool = True,
    trim_max_fraction: float = DEFAULT_TRIM_MAX_FRACTION,
) -> DecodedImage:
    """Decode ``source`` (a path or the file's raw bytes) for feature extraction.

    The result is RGB with its shortest side reduced to about ``target_side``
    (never upscaled); uniform borders are trimmed first when ``trim_borders``
    (``trim_max_fraction`` is passed to :func:`trim_uniform_borders`). Decoding
    keeps headroom for a trim of about a third of a side only, so the few
    pictures inside much larger bars come out a little under ``target_side``.
    Raises :class:`DecodeError` and nothing else.
    """
    return _decode(source, target_side, False, max_megapixels, trim_max_fraction if trim_borders else None)


def load_rgb(
    path: str | os.PathLike[str] | bytes, max_side: int | None = None, *, max_megapixels: float = DEFAULT_MAX_MEGAPIXELS
) -> Image.Image:
    """Decode an image for previews and thumbnails (no border trim).

    With ``max_side`` the result fits in a ``max_side`` square (longest side
    about ``max_side``; JPEGs are decoded reduced), otherwise it is full size.
    Raises :class:`DecodeError`.
    """
    return _decode(path, max_side, True, max_megapixels, None).image


# ---------------------------------------------------------------------------
# Border trimming


def trim_uniform_borders(
    img: Image.Image, tol: int = 12, max_fraction: float = DEFAULT_TRIM_MAX_FRACTION
) -> tuple[Image.Image, tuple[int, int, int, int] | None]:
    """Remove uniform bars (letterbox, pillarbox, scan margins; any colour) from the edges.

    A row/column is border when (nearly) all its pixels are within ``tol`` of
    the colour of that side's outermost line; left/right bars are measured over
    the rows that remain, so bars on all four sides are found. Detection runs
    on a downscaled copy and is refined at full resolution.

    The bars of one dimension are trimmed when they add up to at most
    :data:`SAFE_TRIM_FRACTION` of it (whatever their balance), or, up to
    ``max_fraction``, when they are balanced (the smaller bar about half the
    larger or more, as when a picture is centred on a canvas) and what remains
    is a real picture: at least :data:`_MIN_CONTENT_SIDE` pixels per side, pixel
    values that spread, and not mostly the bar colour. A big one-sided uniform
    area (a flat sky, a dark background) is therefore kept, and a uniform image
    is never trimmed. ``max_fraction <= SAFE_TRIM_FRACTION`` gives the plain
    "at most this share" rule. Returns ``(cropped, (left, top, right, bottom))``
    in ``img`` coordinates, or ``(img, None)`` when nothing was trimmed.
    """
    w, h = img.size
    if w < 4 or h < 4:
        return img, None
    rgb = img if img.mode in ("RGB", "L") else img.convert("RGB")
    k = max(1, math.ceil(max(w, h) / 512))
    small = _as_hwc(rgb.reduce(k) if k > 1 else rgb)
    box, refs, large = _find_box(rgb, small, k, tol, max_fraction)
    if large and not _real_picture(small, box, k, refs, tol):
        box, _, _ = _find_box(rgb, small, k, tol, min(max_fraction, SAFE_TRIM_FRACTION))
    if box == (0, 0, w, h):
        return img, None
    return img.crop(box), box


def _find_box(rgb: Image.Image, small: np.ndarray, k: int, tol: int, max_fraction: float
              ) -> tuple[tuple[int, int, int, int], list[np.ndarray], bool]:
    """Content box, the bar colours of the trimmed sides, and whether a dimension lost more than
    :data:`SAFE_TRIM_FRACTION` (then the caller checks that the content is a real picture)."""
    w, h = rgb.size

    def lines(x0: int, y0: int, x1: int, y1: int, columns: bool) -> np.ndarray:
        arr = _as_hwc(rgb.crop((x0, y0, x1, y1)))
        return arr.transpose(1, 0, 2) if columns else arr

    top, ref_t = _side_run(small, k, h, lambda a, b: lines(0, a, w, b, False), tol)
    bottom, ref_b = _side_run(small[::-1], k, h, lambda a, b: lines(0, h - b, w, h - a, False)[::-1], tol)
    ok_tb, large_tb = _bars_accepted(top, bottom, h, max_fraction)
    if not ok_tb:
        top = bottom = 0
    # Left/right only over the rows that remain (handles letterbox + pillarbox).
    y0, y1 = top, h - bottom
    sy0 = min(math.ceil(y0 / k), small.shape[0] - 1)
    cols = small[sy0 : max(y1 // k, sy0 + 1)].transpose(1, 0, 2)
    left, ref_l = _side_run(cols, k, w, lambda a, b: lines(a, y0, b, y1, True), tol)
    right, ref_r = _side_run(cols[::-1], k, w, lambda a, b: lines(w - b, y0, w - a, y1, True)[::-1], tol)
    ok_lr, large_lr = _bars_accepted(left, right, w, max_fraction)
    if not ok_lr:
        left = right = 0
    refs = [r for run, r in ((top, ref_t), (bottom, ref_b), (left, ref_l), (right, ref_r)) if run and r is not None]
    return (left, top, w - right, h - bottom), refs, (ok_tb and large_tb) or (ok_lr and large_lr)


def _bars_accepted(a: int, b: int, n: int, max_fraction: float) -> tuple[bool, bool]:
    """(trim these two opposite bars?, is it a large trim that needs a real picture inside?)."""
    total = a + b
    if total <= min(max_fraction, SAFE_TRIM_FRACTION) * n:
        return True, False
    if total > max_fraction * n or n - total < _MIN_CONTENT_SIDE:
        return False, False
    # Big bars come in pairs around a centred picture; a big one-sided uniform area is more likely
    # part of the picture (sky, background). Slack for a picture edge close to the bar colour.
    return abs(a - b) <= total / 3 + 2, True


def _real_picture(small: np.ndarray, box: tuple[int, int, int, int], k: int, refs: list[np.ndarray],
                  tol: int) -> bool:
    """Whether the content inside ``box`` (full-resolution coordinates) looks like a picture: its
    pixel values spread and a fair share of them is away from every bar colour."""
    x0, y0 = math.ceil(box[0] / k), math.ceil(box[1] / k)
    x1, y1 = max(box[2] // k, x0 + 1), max(box[3] // k, y0 + 1)
    region = small[y0:y1, x0:x1]
    step = max(1, math.ceil(math.sqrt(region.shape[0] * region.shape[1] / 65536)))
    px = region[::step, ::step].reshape(-1, region.shape[2]).astype(np.int16)
    if px.shape[0] == 0 or float(px.std(axis=0).max()) < _MIN_CONTENT_SPREAD:
        return False
    near = np.zeros(px.shape[0], bool)
    for ref in refs:
        near |= np.abs(px - ref).max(axis=1) <= tol
    return float(1.0 - near.mean()) >= _MIN_CONTENT_AWAY


def _side_run(small: np.ndarray, k: int, full_len: int, full_lines, tol: int) -> tuple[int, np.ndarray | None]:
    """Border thickness in full-resolution pixels of one side, and the bar colour.

    ``small`` holds the downscaled lines, outermost first, as (line, pixel,
    channel). The coarse count is refined on the next ``k`` full-resolution
    lines, which ``full_lines(a, b)`` returns (counted from the edge inward).
    """
    if 0 in small.shape[:2]:
        return 0, None
    ref = np.median(small[0], axis=0).astype(np.int16)
    coarse = _border_run(small, ref, tol)
    if coarse >= small.shape[0]:
        return full_len, ref  # everything matches: the caller rejects this dimension
    run = min(coarse * k, full_len)
    if k > 1:
        run += _border_run(full_lines(run, min(run + k, full_len)), ref, tol)
    if 2 <= run < full_len:  # a real bar: step over JPEG ringing where it meets the picture
        run += _ringing_run(full_lines(run, min(run + _RINGING_LINES, full_len)), ref, tol)
    return run, ref


def _border_run(lines: np.ndarray, ref: np.ndarray, tol: int) -> int:
    """Number of leading lines (axis 0) whose pixels are all close to ``ref``.

    Works in growing chunks from the edge, so typical images (no bar) cost
    only a few lines.
    """
    n, start, chunk = lines.shape[0], 0, 8
    if 0 in lines.shape[:2]:
        return 0
    while start < n:
        block = lines[start : start + chunk].astype(np.int16)
        ok = (np.abs(block - ref).max(axis=2) <= tol).mean(axis=1) >= _BORDER_PIXEL_SHARE
        if not ok.all():
            return start + int(np.argmin(ok))
        start, chunk = start + len(block), chunk * 2
    return n


def _ringing_run(lines: np.ndarray, ref: np.ndarray, tol: int) -> int:
    """Number of leading lines that are bar blurred by JPEG ringing: most pixels within ``tol`` of
    ``ref`` and a small mean deviation (the picture's first line, even a dark one, has more)."""
    if 0 in lines.shape[:2]:
        return 0
    dev = np.abs(lines.astype(np.int16) - ref).max(axis=2)
    ok = ((dev <= tol).mean(axis=1) >= _RINGING_PIXEL_SHARE) & (dev.mean(axis=1) <= 0.75 * tol)
    return len(ok) if ok.all() else int(np.argmin(ok))


def _as_hwc(img: Image.Image) -> np.ndarray:
    """Pixels as a (height, width, channels) array, also for single-band images."""
    arr = np.asarray(img)
    return arr[:, :, None] if arr.ndim == 2 else arr


def _scale_box(box: tuple[int, int, int, int], size: tuple[int, int], to: tuple[int, int]) -> tuple[int, int, int, int]:
    """Map ``box`` from an image of ``size`` to the same image at size ``to``."""
    sx, sy = to[0] / size[0], to[1] / size[1]
    return (max(0, round(box[0] * sx)), max(0, round(box[1] * sy)),
            min(to[0], round(box[2] * sx)), min(to[1], round(box[3] * sy)))


# ---------------------------------------------------------------------------
# Decoding pipeline


def _decode(
    source: str | os.PathLike[str] | bytes, side: int | None, longest: bool, max_mp: float, trim: float | None
) -> DecodedImage:
    """Shared pipeline; maps every failure to :class:`DecodeError`. ``trim``: the trim's max_fraction, None: no trim."""
    path = None if isinstance(source, (bytes, bytearray, memoryview)) else str(os.fspath(source))
    fp: IO[bytes] | None = None
    try:
        fp = _open_source(source, path)
        return _decode_stream(fp, path, side, longest, max_mp, trim)
    except DecodeError:
        raise
    except UnidentifiedImageError as exc:
        raise DecodeError(_unidentified_reason(fp) if fp else "not a recognised image format", path) from exc
    except Image.DecompressionBombError as exc:
        raise DecodeError("image too large (over Pillow's decompression-bomb limit)", path) from exc
    except MemoryError as exc:
        raise DecodeError("not enough memory to decode this image", path) from exc
    except (OSError, SyntaxError, EOFError, struct.error, zlib.error, IndexError) as exc:
        raise DecodeError("truncated or corrupt image data", path) from exc
    except Exception as exc:
        raise DecodeError(f"could not decode: {type(exc).__name__}: {exc}", path) from exc
    finally:
        if fp is not None:
            fp.close()


def _open_source(source: str | os.PathLike[str] | bytes, path: str | None) -> IO[bytes]:
    """A seekable binary stream over ``source``; file-system errors become DecodeError."""
    if path is None:
        if not len(source):  # type: ignore[arg-type]
            raise DecodeError("empty file (0 bytes)")
        return io.BytesIO(source)  # type: ignore[arg-type]
    try:
        fp = open(path, "rb")  # noqa: SIM115 - closed by _decode
        empty = os.fstat(fp.fileno()).st_size == 0
    except FileNotFoundError as exc:
        raise DecodeError("file vanished before it could be read", path) from exc
    except PermissionError as exc:
        raise DecodeError("permission denied", path) from exc
    except IsADirectoryError as exc:
        raise DecodeError("is a folder, not a file", path) from exc
    except OSError as exc:
        raise DecodeError(f"could not read file ({exc.strerror or exc})", path) from exc
    if empty:
        fp.close()
        raise DecodeError("empty file (0 bytes)", path)
    return fp


def _decode_stream(
    fp: IO[bytes], path: str | None, side: int | None, longest: bool, max_mp: float, trim: float | None
) -> DecodedImage:
    im = _open_image(fp)
    w, h = im.size
    mp = w * h / 1e6
    if mp > max_mp:
        raise DecodeError(f"image too large ({_fmt_mp(mp)} MP > cap {_fmt_mp(max_mp)} MP)", path)
    icc = im.info.get("icc_profile")
    # Headroom for a usual trim (a third of a side), not for the largest one: full-size decodes of
    # big JPEGs would cost far more than the slight upscale of a picture inside very large bars.
    need = math.ceil(side / (1.0 - _DECODE_TRIM_HEADROOM)) if side and trim is not None else side
    request = _draft_request(w, h, need, longest) if need else None
    if request is not None:
        try:  # JPEG (and pillow-heif) decode at 1/2, 1/4, 1/8 scale; a no-op elsewhere
            im.draft("RGB", request)
        except Exception:
            pass
    # the size and mode load() decodes (after draft) -> the memory it needs (see "Decode memory")
    factor = _reduce_factor(im.size, need, longest) if need else 1
    cost = decode_cost(im, factor)
    if cost > _BUDGET.limit:
        raise DecodeError(f"image too large to decode within the memory budget (needs about {_fmt_bytes(cost)} "
                          f"for {im.size[0]:,} x {im.size[1]:,} pixels of mode {im.mode}; the budget is "
                          f"{_fmt_bytes(_BUDGET.limit)})", path)
    with _BUDGET.reserve(cost):
        try:
            return _decode_loaded(im, path, w, h, mp, icc, need, side, longest, trim)
        finally:
            try:  # the decoded pixels go before the reservation does
                im.close()
            except Exception:
                pass


def _decode_loaded(im: ImageFile.ImageFile, path: str | None, w: int, h: int, mp: float, icc: bytes | None,
                   need: int | None, side: int | None, longest: bool, trim: float | None) -> DecodedImage:
    try:
        im.load()  # first frame of animated GIF / multi-page TIFF
    except Image.DecompressionBombError as exc:  # TIFF/GIF re-check Pillow's global limit
        limit = 2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6
        raise DecodeError(f"image too large ({_fmt_mp(mp)} MP > Pillow limit {_fmt_mp(limit)} MP)", path) from exc
    # Read after load(): PNG eXIf may follow the pixel data, and recent Pillow
    # applies TIFF orientation itself while loading (and then drops the tag).
    orientation = _orientation(im)
    img = _to_rgb_reduced(im, _reduce_factor(im.size, need, longest) if need else 1, icc)
    if orientation in _ORIENTATION:
        img = img.transpose(_ORIENTATION[orientation])
    original = (h, w) if orientation in (5, 6, 7, 8) else (w, h)
    box = None
    if trim is not None:
        decoded_size = img.size
        img, dec_box = trim_uniform_borders(img, max_fraction=trim)
        box = _scale_box(dec_box, decoded_size, original) if dec_box else None
    if side:
        img = _resize_to(img, side, longest=longest)
    return DecodedImage(_finish(img), original, box)


def _open_image(fp: IO[bytes]) -> ImageFile.ImageFile:
    """Identify ``fp`` like ``Image.open`` does, minus the global bomb check (see module doc)."""
    try:
        im = _identify(fp, Image.preinit) or _identify(fp, Image.init)
    except (AttributeError, KeyError, TypeError, ValueError):  # registry layout changed
        im = None
    if im is None:
        fp.seek(0)
        im = Image.open(fp)  # canonical UnidentifiedImageError (or a bomb error)
    return im


def _identify(fp: IO[bytes], loader) -> ImageFile.ImageFile | None:
    loader()
    fp.seek(0)
    prefix = fp.read(16)
    for fmt in list(Image.ID):
        factory, accept = Image.OPEN[fmt]
        try:
            result = not accept or accept(prefix)
            if result and not isinstance(result, str):
                fp.seek(0)
                return factory(fp, "")
        except (SyntaxError, IndexError, TypeError, struct.error):
            continue  # same exceptions Image.open treats as "not this format"
    return None


def _orientation(im: Image.Image) -> int:
    try:
        value = int(im.getexif().get(0x0112, 1))
    except Exception:  # corrupt EXIF must not make the image unreadable
        return 1
    return value if value in _ORIENTATION else 1


def _draft_request(w: int, h: int, side: int, longest: bool) -> tuple[int, int] | None:
    """Size to ask ``draft`` for so that the decoded (shortest|longest) side stays >= side."""
    ref = max(w, h) if longest else min(w, h)
    if ref <= side:
        return None
    return max(1, math.ceil(w * side / ref)), max(1, math.ceil(h * side / ref))


def _reduce_factor(size: tuple[int, int], side: int, longest: bool) -> int:
    """The integer box reduction that keeps >= 2x headroom for the final LANCZOS resize (1: none)."""
    ref = max(size) if longest else min(size)
    return max(1, ref // (2 * side))


def _reduce(img: Image.Image, factor: int) -> Image.Image:
    """Cheap integer box reduction by ``factor`` (unchanged for 1, or a mode without reduce support)."""
    try:
        return img.reduce(factor) if factor >= 2 else img
    except (ValueError, NotImplementedError):  # mode without reduce support
        return img


def _to_rgb_reduced(im: Image.Image, factor: int, icc: bytes | None) -> Image.Image:
    """The decoded ``im`` as sRGB RGB, reduced ``factor`` times: converted, reduced and colour-managed in
    strips of about :data:`STRIP_PIXELS` whose height is a multiple of ``factor``, so the result is exactly
    that of converting the whole image at once while the temporaries stay the size of one strip (a 16-bit
    or float image used to need 12-27 bytes per pixel on top of the decoded one)."""
    w, h = im.size
    extrema = _high_depth_extrema(im)  # 32-bit/float data is scaled by the whole image's range
    rows = max(factor, (STRIP_PIXELS // max(1, w)) // factor * factor)
    if rows >= h:
        return _to_srgb(_reduce(_normalise_mode(im, extrema), factor), icc)
    out: Image.Image | None = None
    fr = factor
    for y in range(0, h, rows):
        y1 = min(h, y + rows)
        strip = im.crop((0, y, w, y1))
        part = _to_srgb(_reduce(_normalise_mode(strip, extrema), factor), icc)
        if out is None:
            fr = factor if part.size != strip.size else 1  # 1: the mode could not be reduced
            out = Image.new("RGB", (part.size[0], -(-h // fr)))
        del strip
        out.paste(part, (0, y // fr))
    assert out is not None
    return out


def _normalise_mode(img: Image.Image, extrema: tuple[float, float] | None = None) -> Image.Image:
    """Map any Pillow mode to 8-bit L/LA/RGB/RGBA (or CMYK/YCbCr/LAB/... for _to_srgb). ``extrema``: the
    range of the whole image when ``img`` is a strip of a 32-bit or float one (:func:`_high_depth_extrema`)."""
    mode = img.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        return _high_depth_to_l(img, extrema)
    if mode == "1":
        return img.convert("L")
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in img.info
        return img.convert("RGBA" if has_alpha else "RGB")
    if mode in ("L", "RGB") and "transparency" in img.info:
        return img.convert("LA" if mode == "L" else "RGBA")
    return img.convert({"La": "LA", "RGBa": "RGBA", "RGBX": "RGB"}[mode]) if mode in ("La", "RGBa", "RGBX") else img


def _high_depth_extrema(im: Image.Image) -> tuple[float, float] | None:
    """(min, max) of a 32-bit integer or float image (NaN and infinities count as 0), read in strips;
    None for other modes."""
    if im.mode not in ("I", "F"):
        return None
    w, h = im.size
    rows = max(1, STRIP_PIXELS // max(1, w))
    lo, hi = math.inf, -math.inf
    for y in range(0, h, rows):
        arr = np.nan_to_num(np.asarray(im.crop((0, y, w, min(h, y + rows)))).astype(np.float64),
                            nan=0.0, posinf=0.0, neginf=0.0)
        if arr.size:
            lo, hi = min(lo, float(arr.min())), max(hi, float(arr.max()))
    return (lo, hi) if lo <= hi else (0.0, 0.0)


def _high_depth_to_l(img: Image.Image, extrema: tuple[float, float] | None = None) -> Image.Image:
    """16/32-bit integer or float greyscale -> 8-bit 'L', scaled rather than clipped (32-bit and float
    by ``extrema``, the value range of the whole image, when given)."""
    arr = np.asarray(img)
    if img.mode.startswith("I;16"):
        out = (arr.astype(np.uint32) * 255 + 32767) // 65535
    else:
        arr = np.nan_to_num(arr.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        if extrema is not None:
            lo, hi = extrema
        else:
            lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
        if img.mode == "F" and lo >= 0 and hi <= 1.0:
            out = arr * 255.0  # normalised float data
        elif lo >= 0 and hi <= 255:
            out = arr
        elif lo >= 0 and hi <= 65535:
            out = arr * (255.0 / 65535.0)  # 16-bit samples stored in a 32-bit image
        else:
            out = (arr - lo) * (255.0 / ((hi - lo) or 1.0))
        out = np.rint(out)
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))


def _to_srgb(img: Image.Image, icc: bytes | None) -> Image.Image:
    """Colour-manage to sRGB RGB (embedded ICC profile if usable) and composite alpha on white."""
    alpha = None
    if img.mode in ("LA", "RGBA"):
        alpha = img.getchannel("A")
        img = img.convert(img.mode[:-1])
    transform = _transform(bytes(icc), img.mode) if icc else None
    if transform is None and img.mode == "LAB":  # Pillow has no plain LAB -> RGB convert
        transform = _transform(b"<LAB>", "LAB")
    try:
        rgb = ImageCms.applyTransform(img, transform) if transform is not None else None
    except Exception:  # unusable embedded profile: plain conversion below
        rgb = None
    if rgb is None:
        rgb = img.convert("RGB")
    if alpha is not None and alpha.getextrema() != (255, 255):
        rgb = Image.composite(rgb, Image.new("RGB", rgb.size, (255, 255, 255)), alpha)
    return rgb


def _transform(profile: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """Per-thread cache of profile->sRGB transforms; ``None`` (also cached) if unusable."""
    cache: dict = _tls.__dict__.setdefault("transforms", {})
    key = (profile, mode)
    if key not in cache:
        if len(cache) >= 16:
            cache.clear()
        try:
            lab = profile == b"<LAB>"
            src = ImageCms.createProfile("LAB") if lab else ImageCms.ImageCmsProfile(io.BytesIO(profile))
            cache[key] = ImageCms.buildTransform(src, ImageCms.createProfile("sRGB"), mode, "RGB")
        except Exception:
            cache[key] = None
    return cache[key]


def _resize_to(img: Image.Image, side: int, *, longest: bool) -> Image.Image:
    """Resize so the shortest (or longest) side is ``side``; never upscales."""
    w, h = img.size
    ref = max(w, h) if longest else min(w, h)
    if ref <= side:
        return img
    scale = side / ref
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _finish(img: Image.Image) -> Image.Image:
    """Guarantee RGB and detach the result from its (closed) source file."""
    if img.mode != "RGB":
        return img.convert("RGB")
    return img.copy() if isinstance(img, ImageFile.ImageFile) else img


def _fmt_mp(mp: float) -> str:
    return f"{mp:.0f}" if mp >= 100 else f"{mp:.3g}"


def _unidentified_reason(fp: IO[bytes]) -> str:
    """'not a recognised image format', with a hint when the content is recognisable."""
    reason = "not a recognised image format"
    try:
        fp.seek(0)
        head = fp.read(512)
    except Exception:
        return reason
    text = head.decode("utf-8", "ignore")  # a multi-byte char may be cut at 512
    if head[4:8] == b"ftyp" and not _HEIF:
        return reason + " (HEIF/AVIF support needs pillow-heif)"
    if b"<html" in head.lower() or head.lstrip().lower().startswith(b"<!doctype html"):
        return reason + " (looks like an HTML page)"
    if text and len(text.encode()) >= len(head) - 3 and all(c.isprintable() or c in "\r\n\t" for c in text):
        return reason + " (looks like a text file)"
    return reason
