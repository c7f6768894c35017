"""A bad-input corpus for the robustness tests, generated with Pillow/numpy/zlib (no fixtures on disk).

:func:`build_static_corpus` writes every case that can sit in a folder as it is; each
:class:`Case` says what indexing it must give: ``ok`` (indexed) or ``skip`` with a
specific reason. The cases that need a moment in time (a file deleted between scan and
decode, a file that changes while indexed, a file unreadable for permissions as root)
are staged by the tests themselves. Memory-heavy images are cheap to make:

* :func:`flat_jpeg` writes a valid baseline JPEG of any size by hand (every 8x8 block is
  "DC diff 0, end of block", with one-symbol Huffman tables, so the scan is just zero
  bytes): 20,000 x 15,000 px in 1.8 MB and a few milliseconds;
* :func:`flat_png` streams the zlib data row by row, so a 600 MP decompression bomb never
  exists in memory while it is written.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import stat
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from synth import make_painting
from test_imageio import cmyk_icc  # the minimal valid CMYK ICC profile built for the decoder tests

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)
HUGE_JPEG_SIZE = (20_000, 15_000)
BOMB_PNG_SIZE = (30_000, 20_000)  # 600 MP: over Pillow's limit (179 MP) and over the default 400 MP cap
OVER_PILLOW_PNG_SIZE = (13_500, 13_500)  # 182 MP: over Pillow's limit, under the default cap
NON_UTF8_NAME = b"caf\xe9 (latin-1).jpg"  # not valid UTF-8
_T = Image.Transpose
# pixels to store so that applying EXIF orientation N gives back the upright picture
_INVERSE_ORIENTATION = {1: None, 2: _T.FLIP_LEFT_RIGHT, 3: _T.ROTATE_180, 4: _T.FLIP_TOP_BOTTOM,
                        5: _T.TRANSPOSE, 6: _T.ROTATE_90, 7: _T.TRANSVERSE, 8: _T.ROTATE_270}


@dataclass
class Case:
    """One corpus entry and the outcome indexing must give."""

    relpath: str
    what: str  # the case, in words (for docs/robustness.md)
    expect: str  # "ok" (indexed) or "skip" (reported with a reason)
    reason: str | None = None  # substring of the reported reason for "skip"
    colour: tuple[int, int, int] | None = None  # RGB whose histogram bin must dominate (colour correctness)
    colour2: tuple[int, int, int] | None = None  # a second colour that must hold a large share too
    size: tuple[int, int] | None = None  # expected (width, height) recorded, after EXIF orientation
    tags: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- cheap huge images


def flat_jpeg(width: int, height: int) -> bytes:
    """A valid baseline YCbCr 4:2:0 JPEG of mid-grey, any size, built without pixels in memory."""

    def seg(marker: int, body: bytes) -> bytes:
        return b"\xff" + bytes([marker]) + struct.pack(">H", len(body) + 2) + body

    dqt = seg(0xDB, b"\x00" + bytes([1] * 64))
    sof = seg(0xC0, struct.pack(">BHHB", 8, height, width, 3) + bytes([1, 0x22, 0, 2, 0x11, 0, 3, 0x11, 0]))
    one_code = bytes([1] + [0] * 15)  # a single Huffman code of length 1 ("0") ...
    dht = seg(0xC4, b"\x00" + one_code + b"\x00" + b"\x10" + one_code + b"\x00")  # ... for DC cat 0 / AC EOB
    sos = seg(0xDA, bytes([3, 1, 0x00, 2, 0x00, 3, 0x00, 0, 63, 0]))
    mcus = math.ceil(width / 16) * math.ceil(height / 16)
    nbits = mcus * 6 * 2  # 4 Y + Cb + Cr blocks per MCU, 2 bits each
    data = bytes(nbits // 8) + (bytes([(1 << (8 - nbits % 8)) - 1]) if nbits % 8 else b"")
    return b"\xff\xd8" + dqt + sof + dht + sos + data + b"\xff\xd9"


def flat_png(path: Path, width: int, height: int, value: int = 0) -> None:
    """A valid 8-bit greyscale PNG of one value, written in milliseconds whatever its size.

    The zlib stream is one deflate chunk of ~1 MB of rows (compressed once, ending with a
    full flush, so it references nothing before it) repeated as often as needed, a last
    chunk for the remaining rows, an empty final block and the Adler-32 of the whole data.
    """

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    def deflate(data: bytes) -> bytes:
        z = zlib.compressobj(9, zlib.DEFLATED, -15)
        return z.compress(data) + z.flush(zlib.Z_FULL_FLUSH)

    row = b"\x00" + bytes([value]) * width  # filter type 0 + pixels
    per = max(1, (1 << 20) // len(row))
    full, rest = divmod(height, per)
    block = row * per
    adler = 1
    for _ in range(full):
        adler = zlib.adler32(block, adler)
    stream = [b"\x78\xda", deflate(block) * full]
    if rest:
        stream.append(deflate(row * rest))
        adler = zlib.adler32(row * rest, adler)
    stream += [b"\x03\x00", struct.pack(">I", adler)]  # empty final block (fixed codes), checksum
    with open(path, "wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)))
        fh.write(chunk(b"IDAT", b"".join(stream)))
        fh.write(chunk(b"IEND", b""))


# --------------------------------------------------------------------------- the corpus


def _quarters(mode: str, a, b, size=(64, 64)) -> Image.Image:
    """Top-left and bottom-right quarters ``a``, the other two ``b`` (no uniform border to trim)."""
    w, h = size
    img = Image.new(mode, size, b)
    img.paste(a, (0, 0, w // 2, h // 2))
    img.paste(a, (w // 2, h // 2, w, h))
    return img


def upright() -> Image.Image:
    """The picture every EXIF-orientation file must decode to (asymmetric, textured)."""
    return make_painting("swirl", seed=5, size=(192, 128))


def build_static_corpus(root: Path) -> list[Case]:
    """Write the static bad-input corpus under ``root``; return the cases (symlink loops included)."""
    root.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []

    def add(rel: str, what: str, expect: str, **kw) -> Path:
        cases.append(Case(rel, what, expect, **kw))
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    # ordinary paintings, so the analysis has something to fit
    for i, style in enumerate(("pointillist", "stripes", "blocks", "swirl")):
        make_painting(style, seed=100 + i).save(add(f"good/{style}.jpg", "ordinary painting", "ok"), quality=90)

    # broken files
    buf = io.BytesIO()
    make_painting("blocks", seed=7, size=(320, 256)).save(buf, "JPEG", quality=92)
    add("bad/truncated.jpg", "truncated JPEG (first half of the file)", "skip",
        reason="truncated or corrupt image data").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    add("bad/empty.jpg", "zero-byte file", "skip", reason="empty file (0 bytes)").write_bytes(b"")
    add("bad/notes.jpg", "text file named .jpg", "skip",
        reason="not a recognised image format (looks like a text file)").write_text(
        "Shopping list:\n- linseed oil\n- cadmium red\n", encoding="utf-8")
    add("bad/page.png", "HTML page named .png", "skip",
        reason="not a recognised image format (looks like an HTML page)").write_text(
        "<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body>Not Found</body></html>\n")

    # huge images
    flat_png(add("big/bomb_30000x20000.png", "decompression-bomb PNG, 30,000 x 20,000 (600 MP, 0.6 MB file)",
                 "skip", reason="image too large (600 MP > cap 400 MP)"), *BOMB_PNG_SIZE)
    w, h = OVER_PILLOW_PNG_SIZE
    flat_png(add("big/over_pillow_limit_13500x13500.png",
                 "PNG over Pillow's bomb limit (182 MP) but under the 400 MP cap", "ok", size=(w, h)), w, h, 200)
    add("big/huge_20000x15000.jpg", "20,000 x 15,000 JPEG (300 MP)", "ok", size=HUGE_JPEG_SIZE,
        colour=(128, 128, 128)).write_bytes(flat_jpeg(*HUGE_JPEG_SIZE))
    Image.new("RGB", (1, 20_000), (200, 30, 30)).save(
        add("big/strip_1x20000.png", "1 x 20,000 strip (extreme aspect ratio)", "ok", size=(1, 20_000),
            colour=(200, 30, 30)))

    # colour handling
    cmyk_red = Image.new("CMYK", (64, 64), (0, 255, 255, 0))
    cmyk_red.save(add("colour/cmyk_icc.jpg", "CMYK JPEG with an ICC profile", "ok", colour=RED),
                  quality=95, icc_profile=cmyk_icc())
    cmyk_red.save(add("colour/cmyk_no_icc.jpg", "CMYK JPEG without a profile (Adobe inverted)", "ok", colour=RED),
                  quality=95)
    Image.new("I;16", (64, 64), 32768).save(
        add("colour/grey16.png", "16-bit greyscale PNG (mid-grey)", "ok", colour=(128, 128, 128)))
    pal = _quarters("P", 1, 0)
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * (256 * 3 - 6))
    pal.save(add("colour/palette_transparent.png", "palette PNG with a transparent index", "ok",
                 colour=RED, colour2=WHITE), transparency=0)
    _quarters("LA", (60, 255), (0, 0)).save(
        add("colour/la.png", "LA image (grey + alpha)", "ok", colour=(60, 60, 60), colour2=WHITE))

    # orientation: every file decodes to the same upright 192 x 128 picture
    base = upright()
    for o in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = o
        inv = _INVERSE_ORIENTATION[o]
        img = base.transpose(inv) if inv is not None else base
        img.save(add(f"exif/orientation_{o}.jpg", f"EXIF orientation {o}", "ok", size=base.size, tags=["exif"]),
                 quality=95, exif=exif.tobytes())
    base.transpose(_T.ROTATE_90).save(
        add("exif/control_rotated_no_tag.jpg", "control: rotated pixels, no EXIF tag", "ok",
            size=(base.height, base.width)), quality=95)

    # containers and formats
    frames = [Image.new("RGB", (64, 64), c) for c in (RED, GREEN, BLUE)]
    frames[0].save(add("formats/animated.gif", "animated GIF (3 frames: first is red)", "ok", colour=RED),
                   save_all=True, append_images=frames[1:], duration=100, loop=0)
    pages = [Image.new("RGB", (64, 64), c) for c in (BLUE, GREEN)]
    pages[0].save(add("formats/multipage.tif", "multi-page TIFF (first page blue)", "ok", colour=BLUE),
                  save_all=True, append_images=pages[1:])
    Image.new("RGB", (64, 64), GREEN).save(
        add("formats/lossless.webp", "WebP (lossless)", "ok", colour=GREEN), lossless=True)
    make_painting("stripes", seed=9).save(add("formats/lossy.webp", "WebP (lossy painting)", "ok"), quality=80)

    # names and links
    weird = root / "names"
    weird.mkdir()
    name = os.fsdecode(NON_UTF8_NAME)  # surrogate-escaped str, as os.scandir gives it
    cases.append(Case(f"names/{name}", "non-UTF-8 file name", "ok"))
    make_painting("pointillist", seed=11).save(os.path.join(os.fsencode(weird), NON_UTF8_NAME), "JPEG")
    make_painting("swirl", seed=12).save(add('=HYPERLINK("x"), "quoted".jpg',
                                             "name starting with a formula, with commas and quotes", "ok"),
                                         "JPEG", quality=90)
    make_painting("blocks", seed=15).save(add("names/two\nlines.jpg", "name with a newline", "ok"), "JPEG")
    loop = root / "loop"
    loop.mkdir()
    make_painting("blocks", seed=13).save(add("loop/inside.jpg", "painting inside a folder with link loops", "ok"))
    os.symlink("..", loop / "up")  # folder loop: loop/up -> corpus root -> loop -> ...
    os.symlink(".", loop / "self")
    os.symlink("b.jpg", loop / "a.jpg")
    os.symlink("a.jpg", loop / "b.jpg")
    cases.append(Case("loop/a.jpg", "symlink loop between two file links", "skip", reason="symbolic link loop"))
    cases.append(Case("loop/b.jpg", "symlink loop between two file links", "skip", reason="symbolic link loop"))
    (root / "empty folder").mkdir()

    # unreadable for permissions (root ignores mode 000: the test then simulates EACCES at open())
    p = add("locked.jpg", "file unreadable for permissions", "skip", reason="permission denied")
    make_painting("stripes", seed=14).save(p, "JPEG")
    p.chmod(0)
    return cases


# --------------------------------------------------------------------------- helpers


def colour_bin(rgb: tuple[int, int, int], bins: int = 8) -> int:
    """Index of ``rgb`` in the engine's bins^3 colour histogram."""
    r, g, b = (c * bins // 256 for c in rgb)
    return (r * bins + g) * bins + b


def chmod_tree(root: Path, writable: bool) -> None:
    """Make every folder and file below ``root`` read-only (a-w) or writable again (u+w); links untouched."""
    for dirpath, dirnames, filenames in os.walk(os.fsencode(root)):
        for name in [*dirnames, *filenames, None]:
            p = dirpath if name is None else os.path.join(dirpath, name)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode) or stat.S_IMODE(st.st_mode) == 0:
                continue  # links have no mode of their own; the unreadable file stays 000
            mode = stat.S_IMODE(st.st_mode)
            os.chmod(p, mode | stat.S_IWUSR if writable else mode & ~0o222)


def tree_digest(root: Path) -> dict[bytes, tuple]:
    """Every entry below ``root`` (the root too): name, type, mode, size, mtime, ctime, inode,
    link count, owner, link target and content hash. Links are not followed; atime is left out
    (reading a file may update it)."""
    out: dict[bytes, tuple] = {}
    broot = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(broot):
        dirnames.sort()
        for name in [None, *sorted(dirnames), *sorted(filenames)]:
            p = dirpath if name is None else os.path.join(dirpath, name)
            st = os.lstat(p)
            extra: object = None
            if stat.S_ISLNK(st.st_mode):
                extra = os.readlink(p)
            elif stat.S_ISREG(st.st_mode):
                try:
                    with open(p, "rb") as fh:
                        extra = hashlib.sha256(fh.read()).hexdigest()
                except PermissionError:  # mode 000 for a non-root user: metadata only
                    extra = "unreadable"
            out[os.path.relpath(p, broot)] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_size,
                                              st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_nlink, st.st_uid,
                                              st.st_gid, extra)
    return out


def mean_local(col, relpath: str) -> np.ndarray:
    """The stored 7x7 grid of local CNN features of one indexed file, flattened (float32)."""
    rec = next(r for r in col.records() if r.relpath == relpath)
    fs, _ = col.files.featureset()
    raw = col.layout.unpack_many([col.store.get_vectors(fs, [rec.hash])[rec.hash]])
    return raw["local"][0].astype(np.float32).ravel()


def colour_hist(col, relpath: str) -> np.ndarray:
    """The stored colour histogram (bins^3) of one indexed file."""
    rec = next(r for r in col.records() if r.relpath == relpath)
    fs, _ = col.files.featureset()
    raw = col.layout.unpack_many([col.store.get_vectors(fs, [rec.hash])[rec.hash]])
    return raw["colour"][0]
