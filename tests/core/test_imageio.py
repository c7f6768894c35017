"""Tests for artstyle_gui.core.imageio: every input is generated in tmp_path with Pillow."""

from __future__ import annotations

import io
import os
import struct
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import PIL.JpegImagePlugin as jpeg_plugin
import pytest
from PIL import Image, ImageCms, ImageOps

from artstyle_gui.core.ingest import imageio
from artstyle_gui.core.errors import DecodeError
from artstyle_gui.core.ingest.imageio import IMAGE_EXTENSIONS, DecodedImage, decode_image, heif_available, load_rgb, trim_uniform_borders

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


# --------------------------------------------------------------------------- helpers


def noise(w: int, h: int, seed: int = 0) -> Image.Image:
    """Busy RGB content whose edges are never uniform."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def quadrants(w: int = 96, h: int = 64) -> Image.Image:
    """Asymmetric image: every flip/rotation of it is distinguishable."""
    img = Image.new("RGB", (w, h), (20, 20, 20))
    img.paste(RED, (0, 0, w // 2, h // 2))
    img.paste(GREEN, (w // 2, 0, w, h // 2))
    img.paste(BLUE, (0, h // 2, w // 3, h))
    return img


def pixel(img: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    return img.convert("RGB").getpixel(xy)  # type: ignore[return-value]


def close(a, b, tol: int = 12) -> bool:
    return all(abs(int(x) - int(y)) <= tol for x, y in zip(a, b))


def mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    assert a.size == b.size
    return float(np.abs(np.asarray(a, np.int16) - np.asarray(b.convert("RGB"), np.int16)).mean())


def decode(src, **kw) -> DecodedImage:
    kw.setdefault("trim_borders", False)
    kw.setdefault("target_side", 4096)
    return decode_image(src, **kw)


def srgb_to_lab8(rgb: tuple[float, float, float]) -> tuple[int, int, int]:
    """sRGB -> ICC v2 8-bit Lab encoding (D50 PCS)."""
    lin = [((c / 255 + 0.055) / 1.055) ** 2.4 if c / 255 > 0.04045 else c / 255 / 12.92 for c in rgb]
    m = [(0.4360747, 0.3850649, 0.1430804), (0.2225045, 0.7168786, 0.0606169), (0.0139322, 0.0971045, 0.7141733)]
    xyz = [sum(m[i][j] * lin[j] for j in range(3)) for i in range(3)]
    f = [t ** (1 / 3) if t > 216 / 24389 else (24389 / 27 * t + 16) / 116 for t in (
        xyz[0] / 0.9642, xyz[1] / 1.0, xyz[2] / 0.8249)]
    lab = (116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2]))
    enc = (lab[0] * 255 / 100, lab[1] + 128, lab[2] + 128)
    return tuple(max(0, min(255, round(v))) for v in enc)  # type: ignore[return-value]


def cmyk_icc(swap_red_green: bool = False) -> bytes:
    """A minimal but valid ICC v2 CMYK output profile (lut8 A2B0, Lab PCS).

    Corners follow the naive CMYK->RGB formula; with ``swap_red_green`` the
    profile deliberately maps red ink to green, proving that it is applied.
    """
    def s15(v: float) -> bytes:
        return struct.pack(">i", round(v * 65536))

    clut = b""
    for c in (0, 1):
        for m in (0, 1):
            for y in (0, 1):
                for k in (0, 1):
                    rgb = [255 * (1 - v) * (1 - k) for v in (c, m, y)]
                    if swap_red_green:
                        rgb[0], rgb[1] = rgb[1], rgb[0]
                    clut += bytes(srgb_to_lab8(tuple(rgb)))
    ramp = bytes(range(256))
    identity = b"".join(s15(1.0 if i == j else 0.0) for i in range(3) for j in range(3))
    a2b0 = b"mft1" + bytes(4) + bytes([4, 3, 2, 0]) + identity + ramp * 4 + clut + ramp * 3
    desc_text = b"test CMYK\0"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(desc_text)) + desc_text + bytes(4 + 4 + 2 + 1 + 67)
    wtpt = b"XYZ " + bytes(4) + s15(0.9642) + s15(1.0) + s15(0.8249)
    tags = [(b"desc", desc), (b"wtpt", wtpt), (b"A2B0", a2b0)]
    offset = 128 + 4 + 12 * len(tags)
    table, data = struct.pack(">I", len(tags)), b""
    for sig, body in tags:
        body += bytes(-len(body) % 4)
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (struct.pack(">I", size) + b"lcms" + bytes([2, 0x10, 0, 0]) + b"prtr" + b"CMYK" + b"Lab "
              + bytes(12) + b"acsp" + bytes(4 + 4 + 4 + 4 + 8 + 4) + s15(0.9642) + s15(1.0) + s15(0.8249)
              + bytes(4 + 16 + 28))
    assert len(header) == 128
    return header + table + data


def png_header_only(width: int, height: int) -> bytes:
    """A PNG declaring huge dimensions but holding (almost) no pixel data."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


# --------------------------------------------------------------------------- basics


def test_extensions_and_heif_flag():
    assert {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif"} <= IMAGE_EXTENSIONS
    assert all(e == e.lower() and e.startswith(".") for e in IMAGE_EXTENSIONS)
    assert ({".heic", ".heif"} <= IMAGE_EXTENSIONS) == heif_available()


def test_path_and_bytes_give_same_result(tmp_path: Path):
    p = tmp_path / "a.png"
    quadrants().save(p)
    a, b = decode(p), decode(p.read_bytes())
    assert a.image.mode == "RGB" and a.original_size == (96, 64) and a.trimmed_box is None
    assert a.image.tobytes() == b.image.tobytes() == quadrants().tobytes()
    assert decode(str(p)).image.tobytes() == a.image.tobytes()


def test_resize_shortest_side_and_never_upscale(tmp_path: Path):
    p = tmp_path / "wide.png"
    noise(900, 300).save(p)
    out = decode_image(p, target_side=100, trim_borders=False)
    assert out.image.size == (300, 100) and out.original_size == (900, 300)
    small = decode_image(p, target_side=1000, trim_borders=False)
    assert small.image.size == (900, 300)
    prev = load_rgb(p, 90)
    assert prev.size == (90, 30) and prev.mode == "RGB"
    assert load_rgb(p).size == (900, 300)


# --------------------------------------------------------------------------- reduced decoding


def _spy_resize(monkeypatch) -> list[tuple[int, int]]:
    seen: list[tuple[int, int]] = []
    real = imageio._resize_to

    def spy(img, side, *, longest):
        seen.append(img.size)
        return real(img, side, longest=longest)

    monkeypatch.setattr(imageio, "_resize_to", spy)
    return seen


@pytest.mark.parametrize("trim", [False, True])
def test_jpeg_draft_decodes_reduced(tmp_path: Path, monkeypatch, trim: bool):
    p = tmp_path / "big.jpg"
    img = Image.new("RGB", (4000, 3000), (200, 120, 40))
    img.paste(noise(400, 300).resize((4000, 3000)), (0, 0))
    img.save(p, quality=80)
    drafts: list = []
    real_draft = jpeg_plugin.JpegImageFile.draft

    def draft_spy(self, mode, size):
        result = real_draft(self, mode, size)
        drafts.append(result)
        return result

    monkeypatch.setattr(jpeg_plugin.JpegImageFile, "draft", draft_spy)
    seen = _spy_resize(monkeypatch)
    out = decode_image(p, target_side=256, trim_borders=trim)
    assert drafts and drafts[0] is not None  # draft was honoured
    assert seen and seen[0][0] <= 1000 and seen[0][1] <= 750  # at most 1/4 of each side decoded
    assert min(seen[0]) >= 256
    assert min(out.image.size) == 256 and out.original_size == (4000, 3000)

    seen.clear()
    prev = load_rgb(p, 300)
    assert max(prev.size) == 300 and seen[0][0] <= 1000


def test_non_jpeg_is_box_reduced_before_resize(tmp_path: Path, monkeypatch):
    p = tmp_path / "big.png"
    noise(300, 200).resize((3000, 2000)).save(p, compress_level=1)
    seen = _spy_resize(monkeypatch)
    out = decode_image(p, target_side=256, trim_borders=False)
    assert seen[0][0] <= 1500 and min(seen[0]) >= 512
    assert out.image.size == (384, 256)


# --------------------------------------------------------------------------- orientation


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_jpeg(tmp_path: Path, orientation: int):
    p = tmp_path / f"o{orientation}.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    quadrants().save(p, quality=95, exif=exif.tobytes())
    expected = ImageOps.exif_transpose(Image.open(p))
    out = decode(p)
    assert out.image.size == expected.size
    assert out.original_size == expected.size
    assert mean_abs_diff(out.image, expected) < 2.0
    if orientation in (6, 8):
        assert out.image.size == (64, 96)


@pytest.mark.parametrize("orientation", [3, 6])
def test_exif_orientation_tiff_and_png(tmp_path: Path, orientation: int):
    exif = Image.Exif()
    exif[0x0112] = orientation
    for name in ("o.tif", "o.png"):
        p = tmp_path / name
        quadrants().save(p, exif=exif.tobytes())
        expected = ImageOps.exif_transpose(Image.open(p))
        assert expected.size != quadrants().size or orientation == 3
        assert mean_abs_diff(decode(p).image, expected) == 0.0


# --------------------------------------------------------------------------- colour


@pytest.mark.parametrize("with_icc", [False, True])
def test_cmyk_jpeg_red_stays_red(tmp_path: Path, with_icc: bool):
    p = tmp_path / "cmyk.jpg"
    img = Image.new("CMYK", (64, 64), (0, 255, 255, 0))
    kw = {"icc_profile": cmyk_icc()} if with_icc else {}
    img.save(p, quality=95, **kw)
    assert Image.open(p).mode == "CMYK"
    assert close(pixel(decode(p).image, (32, 32)), RED, 40)


def test_cmyk_icc_profile_is_really_applied(tmp_path: Path):
    p = tmp_path / "swapped.jpg"
    Image.new("CMYK", (32, 32), (0, 255, 255, 0)).save(p, quality=95, icc_profile=cmyk_icc(swap_red_green=True))
    r, g, b = pixel(decode(p).image, (16, 16))
    assert g > 180 and r < 80 and b < 80  # the profile says "red ink looks green"


def test_cmyk_tiff_without_profile(tmp_path: Path):
    p = tmp_path / "cmyk.tif"
    Image.new("CMYK", (16, 16), (255, 255, 0, 0)).save(p)
    assert close(pixel(decode(p).image, (4, 4)), BLUE, 2)


def test_embedded_srgb_profile_and_corrupt_profile(tmp_path: Path):
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for name, profile in (("good.png", srgb), ("bad.jpg", b"definitely not an ICC profile")):
        p = tmp_path / name
        Image.new("RGB", (16, 16), (200, 100, 50)).save(p, icc_profile=profile)
        assert close(pixel(decode(p).image, (8, 8)), (200, 100, 50), 4)


def test_16bit_grey_png_and_tiff_stay_mid_grey(tmp_path: Path):
    for name in ("g16.png", "g16.tif"):
        p = tmp_path / name
        Image.new("I;16", (32, 32), 32768).save(p)
        assert Image.open(p).mode.startswith("I")
        assert close(pixel(decode(p).image, (5, 5)), (128, 128, 128), 1)
    white = tmp_path / "w16.png"
    Image.new("I;16", (8, 8), 65535).save(white)
    assert pixel(decode(white).image, (1, 1)) == WHITE


def test_float_and_int32_modes_scaled(tmp_path: Path):
    p = tmp_path / "f.tif"
    Image.new("F", (8, 8), 0.5).save(p)
    assert close(pixel(decode(p).image, (1, 1)), (128, 128, 128), 1)
    arr = np.zeros((8, 8), np.int32)
    arr[:, 4:] = 1_000_000
    q = tmp_path / "i.tif"
    Image.fromarray(arr).save(q)
    img = decode(q).image
    assert pixel(img, (0, 0)) == (0, 0, 0) and pixel(img, (7, 0)) == WHITE


def test_bilevel_and_grey(tmp_path: Path):
    p = tmp_path / "bw.png"
    img = Image.new("1", (8, 8), 0)
    img.paste(1, (4, 0, 8, 8))
    img.save(p)
    out = decode(p).image
    assert pixel(out, (0, 0)) == (0, 0, 0) and pixel(out, (7, 0)) == WHITE
    q = tmp_path / "l.png"
    Image.new("L", (8, 8), 77).save(q)
    assert pixel(decode(q).image, (3, 3)) == (77, 77, 77)


def test_palette_with_and_without_transparency(tmp_path: Path):
    img = Image.new("P", (8, 8), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * (256 * 3 - 6))
    img.paste(1, (4, 0, 8, 8))
    plain, trns = tmp_path / "p.png", tmp_path / "pt.png"
    img.save(plain)
    img.save(trns, transparency=0)
    a, b = decode(plain).image, decode(trns).image
    assert pixel(a, (0, 0)) == (0, 0, 0) and pixel(a, (7, 0)) == RED
    assert pixel(b, (0, 0)) == WHITE and pixel(b, (7, 0)) == RED


def test_alpha_composited_on_white(tmp_path: Path):
    la = Image.new("LA", (8, 8), (0, 0))
    la.paste((0, 128), (4, 0, 8, 8))
    la.save(tmp_path / "la.png")
    out = decode(tmp_path / "la.png").image
    assert pixel(out, (0, 0)) == WHITE and close(pixel(out, (7, 0)), (127, 127, 127), 2)

    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    rgba.paste((0, 0, 255, 255), (4, 0, 8, 8))
    for name in ("rgba.png", "rgba.webp", "rgba.tif"):
        rgba.save(tmp_path / name, **({"lossless": True} if name.endswith("webp") else {}))
        out = decode(tmp_path / name).image
        assert pixel(out, (0, 0)) == WHITE and pixel(out, (7, 0)) == BLUE

    pa = Image.new("PA", (8, 8))
    pa.putpalette([0, 255, 0] * 256)
    pa.putalpha(0)
    assert pixel(imageio._to_srgb(imageio._normalise_mode(pa), None), (0, 0)) == WHITE


def test_animated_gif_first_frame(tmp_path: Path):
    p = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (16, 16), c) for c in (RED, GREEN, BLUE)]
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(p).n_frames == 3
    assert close(pixel(decode(p).image, (8, 8)), RED, 4)


def test_multipage_tiff_first_page(tmp_path: Path):
    p = tmp_path / "pages.tif"
    pages = [Image.new("RGB", (16, 16), c) for c in (RED, BLUE)]
    pages[0].save(p, save_all=True, append_images=pages[1:])
    assert Image.open(p).n_frames == 2
    assert pixel(decode(p).image, (8, 8)) == RED


def test_webp_bmp(tmp_path: Path):
    for name, kw in (("q.webp", {"lossless": True}), ("q.bmp", {})):
        quadrants().save(tmp_path / name, **kw)
        assert mean_abs_diff(decode(tmp_path / name).image, quadrants()) < 1.0


def test_avif_if_available(tmp_path: Path):
    if ".avif" not in IMAGE_EXTENSIONS:
        pytest.skip("no AVIF support in this Pillow build")
    p = tmp_path / "q.avif"
    try:
        quadrants(128, 96).save(p, quality=95)
    except Exception as exc:  # encoder may be missing
        pytest.skip(f"cannot write AVIF here: {exc}")
    assert mean_abs_diff(decode(p).image, quadrants(128, 96)) < 12


def test_heif_if_available(tmp_path: Path):
    if not heif_available():
        pytest.skip("pillow-heif not installed")
    p = tmp_path / "q.heic"
    try:
        quadrants(128, 96).save(p, quality=95)
    except Exception as exc:  # encoder may be missing from the wheel
        pytest.skip(f"cannot write HEIF here: {exc}")
    out = decode(p)
    assert out.image.size == (128, 96) and mean_abs_diff(out.image, quadrants(128, 96)) < 12


# --------------------------------------------------------------------------- errors


def test_truncated_jpeg(tmp_path: Path):
    p = tmp_path / "cut.jpg"
    noise(300, 200).save(p, quality=90)
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(DecodeError) as info:
        decode_image(p)
    assert "truncated" in info.value.reason and str(p) in str(info.value)


def test_truncated_png(tmp_path: Path):
    buf = io.BytesIO()
    noise(300, 200).save(buf, "PNG")
    with pytest.raises(DecodeError, match="truncated or corrupt"):
        decode_image(buf.getvalue()[:3000])


def test_empty_file_and_empty_bytes(tmp_path: Path):
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    for src in (p, b""):
        with pytest.raises(DecodeError) as info:
            decode_image(src)
        assert info.value.reason == "empty file (0 bytes)"


def test_text_and_html_are_not_images(tmp_path: Path):
    txt, html = tmp_path / "notes.jpg", tmp_path / "page.png"
    txt.write_text("hello, this is not a JPEG\n")
    html.write_text("<!DOCTYPE html><html><body>404 Not Found</body></html>")
    with pytest.raises(DecodeError) as a:
        decode_image(txt)
    with pytest.raises(DecodeError) as b:
        load_rgb(html, 100)
    assert a.value.reason.startswith("not a recognised image format") and "text" in a.value.reason
    assert b.value.reason.startswith("not a recognised image format") and "HTML" in b.value.reason
    with pytest.raises(DecodeError, match="not a recognised"):
        decode_image(bytes(range(256)) * 4)


def test_missing_file_directory_and_permissions(tmp_path: Path):
    with pytest.raises(DecodeError, match="vanished"):
        decode_image(tmp_path / "nope.jpg")
    with pytest.raises(DecodeError, match="folder"):
        decode_image(tmp_path)
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        p = tmp_path / "locked.png"
        quadrants().save(p)
        p.chmod(0)
        try:
            with pytest.raises(DecodeError, match="permission denied"):
                decode_image(p)
        finally:
            p.chmod(0o644)


def test_over_cap_is_too_large(tmp_path: Path):
    p = tmp_path / "big.png"
    noise(200, 200).save(p)
    with pytest.raises(DecodeError) as info:
        decode_image(p, max_megapixels=0.01)
    assert "too large" in info.value.reason and "cap" in info.value.reason
    with pytest.raises(DecodeError, match="too large"):
        load_rgb(p, 64, max_megapixels=0.01)


def test_huge_declared_png_header_is_rejected_cheaply():
    with pytest.raises(DecodeError) as info:
        decode_image(png_header_only(30000, 30000))  # 900 MP > default 400 MP cap
    assert "too large" in info.value.reason and "900" in info.value.reason


def test_pillow_bomb_limit_is_bypassed_without_touching_globals(tmp_path: Path, monkeypatch):
    """Our cap replaces Pillow's global check; the global itself is never changed."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    png, jpg, tif = tmp_path / "a.png", tmp_path / "a.jpg", tmp_path / "a.tif"
    for p in (png, jpg, tif):
        quadrants(100, 100).save(p)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(png)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        assert decode(png).image.size == (100, 100)
        assert decode(jpg).image.size == (100, 100)
        assert load_rgb(jpg, 50).size == (50, 50)
    with pytest.raises(DecodeError, match="too large"):  # TIFF re-checks while loading
        decode(tif)
    assert Image.MAX_IMAGE_PIXELS == 1000


def test_only_decode_error_escapes(tmp_path: Path, monkeypatch):
    p = tmp_path / "ok.png"
    quadrants().save(p)

    def boom(*_a, **_k):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(imageio, "_normalise_mode", boom)
    with pytest.raises(DecodeError) as info:
        decode_image(p)
    assert info.value.reason == "could not decode: RuntimeError: kaboom"


# --------------------------------------------------------------------------- trimming


def letterboxed(w: int, h: int, bar: int, colour=(0, 0, 0), seed: int = 1) -> Image.Image:
    img = Image.new("RGB", (w, h), colour)
    img.paste(noise(w, h - 2 * bar, seed), (0, bar))
    return img


def assert_box(box, expected, tol: int = 2):
    assert box is not None
    assert all(abs(a - b) <= tol for a, b in zip(box, expected)), (box, expected)


@pytest.mark.parametrize("size,bar", [((400, 300), 40), ((2000, 1500), 150)])
def test_trim_black_bars(size, bar):
    w, h = size
    out, box = trim_uniform_borders(letterboxed(w, h, bar))
    assert_box(box, (0, bar, w, h - bar))
    assert out.size == (box[2] - box[0], box[3] - box[1])


def test_trim_coloured_pillarbox_and_letterbox():
    img = Image.new("RGB", (1200, 900), (250, 250, 245))
    img.paste(noise(1000, 800), (110, 40))
    _out, box = trim_uniform_borders(img)
    assert_box(box, (110, 40, 1110, 840))


def test_no_bars_and_uniform_and_large_uniform_area_untouched():
    busy = noise(300, 200)
    assert trim_uniform_borders(busy) == (busy, None)
    flat = Image.new("RGB", (300, 200), (30, 60, 90))
    out, box = trim_uniform_borders(flat)
    assert box is None and out.size == (300, 200)
    sky = Image.new("RGB", (300, 200), (0, 0, 0))
    sky.paste(noise(300, 100), (0, 100))  # top half uniform: picture content, not a bar
    assert trim_uniform_borders(sky)[1] is None


def test_decode_trims_and_maps_box_to_original(tmp_path: Path):
    p = tmp_path / "film.png"
    letterboxed(1600, 1200, 150).save(p)
    out = decode_image(p, target_side=256)
    assert_box(out.trimmed_box, (0, 150, 1600, 1050), tol=4)
    assert min(out.image.size) == 256 and out.image.size[0] > 256
    assert decode_image(p, target_side=256, trim_borders=False).trimmed_box is None


# Shape-blind features (issue 14): bars of any size go when what remains is a real picture.


def painting(w: int, h: int, seed: int = 0, dark: bool = False) -> Image.Image:
    """Painting-like texture (smooth blobs plus grain), edges never uniform."""
    rng = np.random.default_rng(seed)
    blobs = Image.fromarray(rng.integers(0, 256, (max(2, h // 16), max(2, w // 16), 3), dtype=np.uint8))
    arr = np.asarray(blobs.resize((w, h), Image.Resampling.BICUBIC), np.int16) + rng.integers(-25, 26, (h, w, 3))
    if dark:  # a genuinely dark background: values 0..~50, still textured
        arr = arr // 5
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def framed(size: tuple[int, int], box: tuple[int, int, int, int], colour=(0, 0, 0), **kw) -> Image.Image:
    img = Image.new("RGB", size, colour)
    img.paste(painting(box[2] - box[0], box[3] - box[1], **kw), box[:2])
    return img


SHAPES = {  # name: canvas, content box, bar colour
    "tall, 62% black pillarbox": ((600, 600), (186, 0, 414, 600), (0, 0, 0)),
    "wide, 70% white letterbox": ((600, 600), (0, 180, 600, 420), (255, 255, 255)),
    "all four sides, coloured": ((800, 600), (250, 150, 550, 450), (40, 90, 200)),
    "tall in a wide grey canvas, 80% pillarbox": ((1000, 400), (400, 0, 600, 400), (128, 128, 128)),
    "tiny picture, 90% bars both ways": ((500, 500), (225, 225, 275, 275), (0, 0, 0)),
    "large file, both sides": ((3000, 2400), (1100, 300, 1900, 2100), (250, 250, 245)),
}


@pytest.mark.parametrize("name", SHAPES)
def test_trim_large_bars_of_any_colour(name):
    size, box, colour = SHAPES[name]
    out, got = trim_uniform_borders(framed(size, box, colour))
    assert_box(got, box)
    assert out.size == (got[2] - got[0], got[3] - got[1])
    # the old limit (a third of a side) left these bars in place
    assert trim_uniform_borders(framed(size, box, colour), max_fraction=0.35)[1] != got


@pytest.mark.parametrize("name", SHAPES)
def test_decoded_jpeg_keeps_the_pictures_aspect_ratio(tmp_path: Path, name):
    size, box, colour = SHAPES[name]
    p = tmp_path / "framed.jpg"
    framed(size, box, colour).save(p, quality=85)
    out = decode_image(p, target_side=224, trim_borders=True)
    assert_box(out.trimmed_box, box, tol=max(3, size[0] // 200))  # JPEG ringing at the bar edge
    want = (box[2] - box[0]) / (box[3] - box[1])
    slack = max(0.05, 6 / min(box[2] - box[0], box[3] - box[1]))  # a few pixels of a small picture
    assert out.image.width / out.image.height == pytest.approx(want, rel=slack)
    assert min(out.image.size) <= 224
    if name.startswith("large"):  # headroom stays modest: decoded reduced, then (at most) a little upscale later
        assert min(out.image.size) >= 150


def test_large_trim_keeps_a_dark_textured_background():
    box = (190, 0, 410, 600)
    _out, got = trim_uniform_borders(framed((600, 600), box, (0, 0, 0), dark=True))
    assert_box(got, box)


@pytest.mark.parametrize("quality", [75, 95])
def test_jpeg_ringing_at_the_bar_edge_is_bar(tmp_path: Path, quality: int):
    p = tmp_path / "ring.jpg"
    framed((224, 224), (70, 0, 153, 224)).save(p, quality=quality)
    assert_box(decode_image(p, target_side=224).trimmed_box, (70, 0, 153, 224), tol=2)


def test_large_trims_need_a_real_picture_balanced_bars_and_room():
    # a flat (or nearly flat) centre inside big bars: a design, not a letterboxed picture
    flat = Image.new("RGB", (600, 600), (0, 0, 0))
    flat.paste((120, 60, 30), (200, 0, 400, 600))
    assert trim_uniform_borders(flat)[1] is None
    faint = Image.new("RGB", (600, 600), (0, 0, 0))
    faint.paste(Image.fromarray(np.random.default_rng(0).integers(20, 26, (600, 200, 3), dtype=np.uint8)), (200, 0))
    assert trim_uniform_borders(faint)[1] is None
    # a big one-sided uniform area (a dark sky) is part of the picture
    sky = framed((400, 400), (0, 160, 400, 400))
    assert trim_uniform_borders(sky)[1] is None
    lopsided = framed((400, 400), (0, 40, 400, 200))  # bars 10% and 50%
    assert trim_uniform_borders(lopsided)[1] is None
    # a slightly off-centre picture is still letterboxed
    assert_box(trim_uniform_borders(framed((400, 400), (0, 110, 400, 260)))[1], (0, 110, 400, 260))
    # fewer than a few pixels left: not trimmed
    sliver = framed((600, 600), (297, 0, 302, 600))
    assert trim_uniform_borders(sliver)[1] is None


def test_textured_border_region_and_uniform_images_are_never_trimmed(tmp_path: Path):
    frame = painting(600, 600, seed=3, dark=True)  # dark but textured all the way to the edge
    frame.paste(painting(200, 600, seed=4), (200, 0))
    assert trim_uniform_borders(frame)[1] is None
    for colour in ((0, 0, 0), (255, 255, 255), (90, 140, 60)):
        flat = Image.new("RGB", (500, 300), colour)
        assert trim_uniform_borders(flat)[1] is None
        p = tmp_path / "flat.jpg"
        flat.save(p, quality=70)
        assert decode_image(p, target_side=224).trimmed_box is None


def test_concurrent_decoding_is_consistent(tmp_path: Path):
    paths = []
    for i in range(12):
        p = tmp_path / f"c{i}.jpg"
        kw = {"icc_profile": cmyk_icc()} if i % 2 else {}
        Image.new("CMYK", (600, 400), (0, 255, 255, 0)).save(p, quality=90, **kw)
        paths.append(p)
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda q: decode_image(q, target_side=128), paths * 3))
    for res in results:
        assert res.image.size == (192, 128) and close(pixel(res.image, (50, 50)), RED, 40)
