"""Decompression bombs in every mode and bit depth, written in milliseconds without pixels in memory.

Each file claims a large image but is small on disk: the pixel data is one compressed block of flat
rows repeated as often as needed (PNG: one zlib stream of repeated full-flush deflate blocks; TIFF: every
strip points at the same compressed strip; JPEG: every block is "DC difference 0, end of block").

``BOMBS`` names one bomb per decoded mode: ``write_bomb(kind, path, width, height)`` writes it. Used by
tests/core/test_hostile_files.py and benchmarks/decode_memory.py (the figures in docs/robustness.md).
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

# kind -> (format, Pillow mode once opened, description)
BOMBS: dict[str, tuple[str, str, str]] = {
    "png-1bit": ("PNG", "1", "1-bit greyscale PNG"),
    "png-grey8": ("PNG", "L", "8-bit greyscale PNG"),
    "png-grey16": ("PNG", "I;16", "16-bit greyscale PNG"),
    "png-la8": ("PNG", "LA", "8-bit grey + alpha PNG"),
    "png-palette": ("PNG", "P", "8-bit palette PNG with a transparent index"),
    "png-rgb8": ("PNG", "RGB", "8-bit RGB PNG"),
    "png-rgb16": ("PNG", "RGB", "16-bit RGB PNG"),
    "png-rgba8": ("PNG", "RGBA", "8-bit RGBA PNG"),
    "png-rgba16": ("PNG", "RGBA", "16-bit RGBA PNG"),
    "tiff-cmyk": ("TIFF", "CMYK", "8-bit CMYK TIFF (deflate, strips of 64 rows)"),
    "tiff-cmyk-1strip": ("TIFF", "CMYK", "8-bit CMYK TIFF (deflate, one strip)"),
    "tiff-float32": ("TIFF", "F", "32-bit float greyscale TIFF (deflate, strips of 64 rows)"),
    "jpeg-cmyk": ("JPEG", "CMYK", "CMYK JPEG (Adobe)"),
    "jpeg-rgb": ("JPEG", "RGB", "YCbCr 4:2:0 JPEG"),
}

# PNG: (colour type, bit depth, samples per pixel)
_PNG = {"png-1bit": (0, 1, 1), "png-grey8": (0, 8, 1), "png-grey16": (0, 16, 1), "png-la8": (4, 8, 2),
        "png-palette": (3, 8, 1), "png-rgb8": (2, 8, 3), "png-rgb16": (2, 16, 3), "png-rgba8": (6, 8, 4),
        "png-rgba16": (6, 16, 4)}


def write_bomb(kind: str, path: Path, width: int, height: int) -> Path:
    """Write the bomb ``kind`` (a key of :data:`BOMBS`) of ``width`` x ``height`` pixels to ``path``."""
    path = Path(path)
    if kind in _PNG:
        ct, depth, spp = _PNG[kind]
        path.write_bytes(_png(width, height, ct, depth, spp))
    elif kind == "tiff-cmyk":
        path.write_bytes(_tiff(width, height, spp=4, bits=8, photometric=5, sample_format=1, rows_per_strip=64))
    elif kind == "tiff-cmyk-1strip":
        path.write_bytes(_tiff(width, height, spp=4, bits=8, photometric=5, sample_format=1, rows_per_strip=height))
    elif kind == "tiff-float32":
        path.write_bytes(_tiff(width, height, spp=1, bits=32, photometric=1, sample_format=3, rows_per_strip=64))
    elif kind == "jpeg-cmyk":
        path.write_bytes(_jpeg(width, height, cmyk=True))
    elif kind == "jpeg-rgb":
        path.write_bytes(_jpeg(width, height, cmyk=False))
    else:
        raise KeyError(kind)
    return path


def _zlib_repeated(unit: bytes, count: int, tail: bytes = b"") -> bytes:
    """A zlib stream of ``unit * count + tail``, compressing ``unit`` once (full-flush blocks reference
    nothing before them, so the compressed block can be repeated)."""

    def deflate(data: bytes) -> bytes:
        z = zlib.compressobj(9, zlib.DEFLATED, -15)
        return z.compress(data) + z.flush(zlib.Z_FULL_FLUSH)

    adler = 1
    for _ in range(count):
        adler = zlib.adler32(unit, adler)
    parts = [b"\x78\xda", deflate(unit) * count if count else b""]
    if tail:
        parts.append(deflate(tail))
        adler = zlib.adler32(tail, adler)
    parts += [b"\x03\x00", struct.pack(">I", adler)]  # an empty final block (fixed codes), the checksum
    return b"".join(parts)


def _png(width: int, height: int, colour_type: int, depth: int, spp: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = b"\x00" + bytes([0x55]) * math.ceil(width * spp * depth / 8)  # filter 0 + a grey-ish value
    per = max(1, (1 << 20) // len(row))
    full, rest = divmod(height, per)
    out = [b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0))]
    if colour_type == 3:
        out.append(chunk(b"PLTE", bytes(range(256)) * 3))
        out.append(chunk(b"tRNS", bytes([255] * 0x55 + [0])))  # index 0x55 (every pixel) transparent
    out.append(chunk(b"IDAT", _zlib_repeated(row * per, full, row * rest)))
    out.append(chunk(b"IEND", b""))
    return b"".join(out)


def _tiff(width: int, height: int, *, spp: int, bits: int, photometric: int, sample_format: int,
          rows_per_strip: int) -> bytes:
    """A little-endian baseline TIFF, deflate-compressed (tag 259 = 8); every strip shares one
    compressed strip of flat rows (the last strip is a full one too: libtiff reads only what it needs)."""
    row = bytes([0x40]) * (width * spp * bits // 8)
    rps = min(rows_per_strip, height)
    if rps == height:  # one strip: one long zlib stream of repeated ~1 MB blocks
        per = max(1, (1 << 20) // len(row))
        full, rest = divmod(height, per)
        data = _zlib_repeated(row * per, full, row * rest)
    else:
        data = zlib.compress(row * rps, 9)
    nstrips = math.ceil(height / rps)
    entries: list[tuple[int, int, int, bytes | int]] = []  # (tag, type, count, value or bytes)
    SHORT, LONG = 3, 4
    entries.append((256, LONG, 1, width))
    entries.append((257, LONG, 1, height))
    entries.append((258, SHORT, spp, struct.pack(f"<{spp}H", *([bits] * spp)) if spp > 2 else bits))
    entries.append((259, SHORT, 1, 8))
    entries.append((262, SHORT, 1, photometric))
    entries.append((273, LONG, nstrips, b""))  # filled in below
    entries.append((277, SHORT, 1, spp))
    entries.append((278, LONG, 1, rps))
    entries.append((279, LONG, nstrips, b""))
    entries.append((284, SHORT, 1, 1))
    entries.append((339, SHORT, spp, struct.pack(f"<{spp}H", *([sample_format] * spp)) if spp > 2 else sample_format))
    header = 8
    ifd_size = 2 + 12 * len(entries) + 4
    extra_at = header + ifd_size
    data_at = extra_at + 4 * nstrips * 2 + 16 * len(entries)  # room for the out-of-line values
    offsets = struct.pack(f"<{nstrips}I", *([data_at] * nstrips))
    counts = struct.pack(f"<{nstrips}I", *([len(data)] * nstrips))
    extra = b""
    ifd = struct.pack("<H", len(entries))
    for tag, typ, count, value in entries:
        if tag == 273:
            value = offsets
        elif tag == 279:
            value = counts
        if isinstance(value, bytes):
            if len(value) <= 4:
                ifd += struct.pack("<HHI", tag, typ, count) + value.ljust(4, b"\0")
            else:
                ifd += struct.pack("<HHII", tag, typ, count, extra_at + len(extra))
                extra += value
        else:
            fmt = "<HHIHH" if typ == SHORT else "<HHII"
            ifd += struct.pack(fmt, tag, typ, count, value, 0) if typ == SHORT else struct.pack(fmt, tag, typ, count,
                                                                                                   value)
    ifd += struct.pack("<I", 0)
    head = b"II*\x00" + struct.pack("<I", header) + ifd + extra
    assert len(head) <= data_at
    return head.ljust(data_at, b"\0") + data


def _jpeg(width: int, height: int, *, cmyk: bool) -> bytes:
    """A valid baseline JPEG of flat grey (YCbCr 4:2:0, or Adobe CMYK without subsampling)."""

    def seg(marker: int, body: bytes) -> bytes:
        return b"\xff" + bytes([marker]) + struct.pack(">H", len(body) + 2) + body

    dqt = seg(0xDB, b"\x00" + bytes([1] * 64))
    one_code = bytes([1] + [0] * 15)  # a single Huffman code of length 1 ("0") ...
    dht = seg(0xC4, b"\x00" + one_code + b"\x00" + b"\x10" + one_code + b"\x00")  # ... for DC cat 0 / AC EOB
    if cmyk:
        adobe = seg(0xEE, b"Adobe" + struct.pack(">HHHB", 100, 0, 0, 0))  # transform 0: plain CMYK
        sof = seg(0xC0, struct.pack(">BHHB", 8, height, width, 4) + b"".join(bytes([i, 0x11, 0]) for i in range(1, 5)))
        sos = seg(0xDA, bytes([4]) + b"".join(bytes([i, 0x00]) for i in range(1, 5)) + bytes([0, 63, 0]))
        nbits = math.ceil(width / 8) * math.ceil(height / 8) * 4 * 2
        head = adobe
    else:
        sof = seg(0xC0, struct.pack(">BHHB", 8, height, width, 3) + bytes([1, 0x22, 0, 2, 0x11, 0, 3, 0x11, 0]))
        sos = seg(0xDA, bytes([3, 1, 0x00, 2, 0x00, 3, 0x00, 0, 63, 0]))
        nbits = math.ceil(width / 16) * math.ceil(height / 16) * 6 * 2
        head = b""
    data = bytes(nbits // 8) + (bytes([(1 << (8 - nbits % 8)) - 1]) if nbits % 8 else b"")
    return b"\xff\xd8" + head + dqt + sof + dht + sos + data + b"\xff\xd9"
