"""Hostile input (issue 18): names with every control character and formula prefix, names that are not
UTF-8, the CSV and JSON exports of such names and labels, the index's lock file, symbolic links that
lead outside the collection, and decompression bombs in every mode and bit depth (peak RSS measured
in a subprocess). Figures are printed (run with ``-s``) and recorded in docs/robustness.md.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

import artstyle_gui
from artstyle_gui.core.errors import ArtStyleError, DecodeError, IndexLocked
from artstyle_gui.core.explore.duplicates import DuplicateGroup, export_duplicates_csv
from artstyle_gui.core.explore.stylemap import map_csv_bytes
from artstyle_gui.core.explore.summaries import (
    FORMULA_START,
    csv_safe,
    escape_text,
    json_safe,
    unescape_csv,
    unescape_text,
)
from artstyle_gui.core.index.collection import Collection
from artstyle_gui.core.ingest import imageio
from artstyle_gui.core.ingest.scan import iter_image_files
from artstyle_gui.core.ingest.store import LEGACY_LOCK_NAME, LOCK_NAME, IndexStore
from artstyle_gui.core.model import Settings
from artstyle_gui.core.progress import run
from bombs import BOMBS, write_bomb
from synth import make_painting

SMALL = dict(k=4, deep_components=16, gram_components=8, colour_components=8, vocab_size=16)
POSIX = sys.platform != "win32"
needs_posix = pytest.mark.skipif(not POSIX, reason="POSIX file names, symbolic links and /proc")
needs_proc = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak RSS is read from /proc")

# every ASCII control character a POSIX file name may hold (all but NUL; '/' is no control character)
CONTROL_NAMES = [f"ctl{c:02x}{chr(c)}x.jpg" for c in [*range(1, 32), 127]]
FORMULA_NAMES = ["=1+1.jpg", "+cmd.jpg", "-2+3.jpg", "@SUM(A1).jpg", "\t=tab.jpg", "\r=cr.jpg", " =space.jpg",
                 "'=quote.jpg", "\uff1dwide.jpg", "a\r=HYPERLINK(\"http:x\").jpg", "=cmd|' -C calc'!A0.jpg",
                 "\u200b=zero-width.jpg", "-0.5.jpg", "back\\slash\\x41.jpg"]
NON_UTF8_NAMES = [b"caf\xe9.jpg", b"\xff\xfe=.jpg", b"\x80\r\x9b.jpg"]
HOSTILE_LABELS = ["\r=1+1", '=HYPERLINK("http://x")', "Doe\nJane", "\x1b[31mred", "@x", "-1+2", "\t+tab", "ok"]
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _safe_cell(cell: str) -> bool:
    """No line break, and nothing a spreadsheet reads as a formula (numbers are data)."""
    if any(c in cell for c in "\r\n\x00\x85\u2028\u2029"):
        return False
    stripped = cell.lstrip(" \t\u200b\ufeff")
    return not (stripped[:1] in ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
                and not _NUMBER.fullmatch(stripped))


def _save(path: bytes | str, seed: int) -> None:
    img = make_painting(["swirl", "blocks", "stripes", "pointillist"][seed % 4], seed, (64, 48))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(buf.getvalue())


# =========================================================================== the hostile collection


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A collection whose names hold every control character, formula prefixes and bytes that are not
    UTF-8, with hostile labels; indexed once. A user's own file named ``lock`` sits in the index folder."""
    if not POSIX:
        pytest.skip("POSIX file names")
    base = tmp_path_factory.mktemp("hostile")
    root, idx = base / "c", base / "idx"
    root.mkdir()
    idx.mkdir()
    names: list[str] = []
    for i, name in enumerate(CONTROL_NAMES + FORMULA_NAMES):
        _save(os.fsencode(root / name), i)
        names.append(name)
    try:
        for j, raw in enumerate(NON_UTF8_NAMES):
            _save(os.path.join(os.fsencode(root), raw), 100 + j)
            names.append(os.fsdecode(raw))
    except OSError as e:  # a file system that only takes UTF-8 names
        pytest.skip(f"this file system refuses names that are not UTF-8 ({e})")
    labelled = []
    for k, lab in enumerate(HOSTILE_LABELS):
        _save(os.fsencode(root / f"plain_{k}.jpg"), 200 + k)
        labelled.append((f"plain_{k}.jpg", lab))
        names.append(f"plain_{k}.jpg")
    labels = base / "labels.csv"
    with open(labels, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "artist"])
        w.writerows(labelled)
    user_lock = b"my notes: not artstyle's\n"
    (idx / LEGACY_LOCK_NAME).write_bytes(user_lock)
    with Collection(root, settings=Settings(**SMALL), index_dir=idx, labels_csv=labels) as col:
        rep, an = run(col.index())
        recs = {r.relpath: r for r in col.records()}
        out = base / "export"
        written = col.export(out, topic_names={0: "\r=evil\x1b[2J topic", 1: "caf\udce9 \\x41"})
        yield dict(col=col, root=root, idx=idx, rep=rep, an=an, recs=recs, names=names, labels=dict(labelled),
                   out=out, written=written, user_lock=user_lock)


def test_every_hostile_name_is_indexed(hostile):
    assert not hostile["rep"].failed
    assert sorted(hostile["recs"]) == sorted(hostile["names"])
    assert all(r.status == "ok" for r in hostile["recs"].values())
    for name in hostile["names"]:  # each relpath still opens its file
        assert os.path.isfile(os.path.join(os.fsencode(hostile["root"]), os.fsencode(name)))


def _read_csv(data: bytes) -> list[list[str]]:
    text = data.decode("utf-8")  # strict: every export is valid UTF-8
    assert "\r" not in text and text.count("\n") == len(text.splitlines())
    return list(csv.reader(io.StringIO(text, newline="")))


def _check_rows(rows: list[list[str]], n: int) -> None:
    assert len(rows) == n + 1, "a row was split (or merged)"
    assert all(len(r) == len(rows[0]) for r in rows)
    bad = [c for r in rows for c in r if not _safe_cell(c)]
    assert not bad, f"unsafe cells: {bad[:5]}"


def test_exports_round_trip_and_are_safe(hostile):
    an, names = hostile["an"], hostile["names"]
    out = hostile["out"]
    rows = _read_csv((out / "paintings.csv").read_bytes())
    _check_rows(rows, an.n)
    header = rows[0]
    paths = [unescape_csv(r[header.index("path")]) for r in rows[1:]]
    assert sorted(paths) == sorted(names) == sorted(an.relpaths)  # exact, every control character included
    for raw in NON_UTF8_NAMES:  # the escaped form gives back the original bytes
        assert raw in {os.fsencode(p) for p in paths}
    assert b"caf\\xe9.jpg" in (out / "paintings.csv").read_bytes()
    artists = {unescape_csv(r[0]): unescape_csv(r[header.index("artist")]) for r in rows[1:]}
    stored = {p: lab.get("artist", "") for p, lab in zip(an.relpaths, an.labels)}
    assert artists == stored  # the labels as the index holds them (the labels reader may trim white space)
    assert len({v for v in stored.values() if v}) == len(HOSTILE_LABELS)
    for name in ("topics.csv", "artists.csv"):
        trows = _read_csv((out / name).read_bytes())
        assert all(len(r) == len(trows[0]) for r in trows)
        assert all(_safe_cell(c) for r in trows for c in r)
    trows = _read_csv((out / "topics.csv").read_bytes())
    assert unescape_csv(trows[1][1]) == "\r=evil\x1b[2J topic"
    # provenance JSON: valid UTF-8, no lone surrogates, the odd topic name in its escaped form
    text = (out / "provenance.json").read_bytes().decode("utf-8")
    prov = json.loads(text)
    assert "\\udc" not in text.lower()
    assert unescape_text(prov["topic_names"]["2"]) == "caf\udce9 \\x41"


def test_map_and_duplicates_csv_round_trip(hostile, tmp_path):
    an = hostile["an"]
    xy = np.random.default_rng(0).normal(size=(an.n, 2))
    rows = _read_csv(map_csv_bytes(an, xy, {0: "=topic"}))
    _check_rows(rows, an.n)
    assert [unescape_csv(r[0]) for r in rows[1:]] == an.relpaths
    group = DuplicateGroup(rows=list(range(an.n)), relpaths=list(an.relpaths), similarity=0.9, max_hamming=3,
                           similarities=[1.0] * an.n, hammings=[0] * an.n, crops=[False] * an.n)
    path = export_duplicates_csv([group], tmp_path / "dups.csv", hostile["root"])
    rows = _read_csv(path.read_bytes())
    _check_rows(rows, an.n)
    assert [unescape_csv(r[2]) for r in rows[1:]] == an.relpaths
    assert [unescape_csv(r[3]) for r in rows[1:]] == [str(hostile["root"] / p) for p in an.relpaths]


def test_csv_cells_every_ascii_character_and_prefix():
    """Each ASCII character alone, first, last and in the middle, after every formula prefix and after
    leading white space: csv_safe is safe and unescape_csv gives back the exact value."""
    values = []
    for c in map(chr, range(128)):
        values += [c, c + "x", "x" + c, "a" + c + "=b", c + "=1+1"]
    for p in [*FORMULA_START, " ", "'", "\\", "\uff1d"]:
        values += [p + "cmd", " " + p + "cmd", "\r" + p, "\ud800" + p, "\udce9" + p + "x"]
    values += ["-0.25", "+3", "1e5", "\\x41", "\\\\", "\\u0041", "a\\", "C:\\Users\\Ann\\x.jpg"]
    text = csv_bytes_of(values)
    rows = _read_csv(text)
    _check_rows(rows, len(values))
    assert [unescape_csv(r[0]) for r in rows[1:]] == values
    assert csv_safe("-0.25") == "-0.25" and csv_safe("C:\\Users\\Ann") == "C:\\Users\\Ann"
    assert escape_text("a\rb") == "a\\x0db" and escape_text("caf\udce9") == "caf\\xe9"
    assert json_safe({"k": ["caf\udce9"]}) == {"k": ["caf\\xe9"]}


def csv_bytes_of(values: list[str]) -> bytes:
    from artstyle_gui.core.explore.summaries import csv_bytes

    return csv_bytes(["value"], [[v] for v in values])


# =========================================================================== the lock file


def test_users_file_named_lock_is_left_alone(hostile):
    """A file the user keeps in the index folder named ``lock`` was overwritten with a pid: it is byte
    for byte what it was after indexing, and the writer lock is artstyle's own file."""
    idx = hostile["idx"]
    assert (idx / LEGACY_LOCK_NAME).read_bytes() == hostile["user_lock"]
    assert (idx / LOCK_NAME).is_file() and not (idx / LOCK_NAME).is_symlink()


@needs_posix
def test_symlinked_lock_is_refused_and_its_target_untouched(tmp_path):
    idx = tmp_path / "idx"
    target = tmp_path / "precious.txt"
    target.write_bytes(b"precious data\n")
    store = IndexStore(idx)
    try:
        os.symlink(target, idx / LOCK_NAME)
        with pytest.raises(ArtStyleError, match=r"lock file .* is a symbolic link; artstyle neither follows"):
            store.acquire_writer_lock()
        assert not store.holds_writer_lock
        os.unlink(idx / LOCK_NAME)
        os.link(target, idx / LOCK_NAME)  # a hard link: locked, never written
        store.acquire_writer_lock()
        store.release_writer_lock()
        os.unlink(idx / LOCK_NAME)
        os.mkdir(idx / LOCK_NAME)
        with pytest.raises(ArtStyleError, match="is a folder"):
            store.acquire_writer_lock()
        os.rmdir(idx / LOCK_NAME)
        os.mkfifo(idx / LOCK_NAME)  # opening a pipe must not hang either
        with pytest.raises(ArtStyleError, match="not a regular file"):
            store.acquire_writer_lock()
        os.unlink(idx / LOCK_NAME)
        os.symlink(target, idx / LEGACY_LOCK_NAME)  # an old-style `lock` that is a link: ignored, not written
        store.acquire_writer_lock()
        assert (idx / LOCK_NAME).read_text().strip() == str(os.getpid())
        assert oct((idx / LOCK_NAME).stat().st_mode & 0o777) == oct(0o644 & ~_umask())
        store.release_writer_lock()
    finally:
        store.close()
    assert target.read_bytes() == b"precious data\n"


def _umask() -> int:
    m = os.umask(0o022)
    os.umask(m)
    return m


@needs_posix
def test_old_index_with_its_lock_file_still_works_and_excludes_an_old_writer(tmp_path):
    """An index made by an older version has ``lock`` (holding a pid): it keeps working, and an older
    process that holds ``lock`` still keeps a new writer out (the new lock takes both)."""
    import fcntl

    idx = tmp_path / "idx"
    IndexStore(idx).close()
    (idx / LEGACY_LOCK_NAME).write_text("12345\n")
    store = IndexStore(idx)
    try:
        store.acquire_writer_lock()
        store.release_writer_lock()
        assert (idx / LEGACY_LOCK_NAME).read_text() == "12345\n"
        with open(idx / LEGACY_LOCK_NAME, "a+") as old_writer:  # what an older artstyle does
            fcntl.flock(old_writer.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            with pytest.raises(IndexLocked, match="older"):
                store.acquire_writer_lock()
        store.acquire_writer_lock()  # released: fine again
        other = IndexStore(idx)
        try:
            with pytest.raises(IndexLocked, match="Another artstyle process"):
                other.acquire_writer_lock()
        finally:
            other.close()
    finally:
        store.close()


# =========================================================================== symbolic links


@pytest.fixture
def linked(tmp_path):
    if not POSIX:
        pytest.skip("symbolic links need privileges on Windows")
    outside, root = tmp_path / "outside", tmp_path / "c"
    outside.mkdir()
    (root / "sub").mkdir(parents=True)
    for i in range(5):
        _save(os.fsencode(root / f"in_{i}.jpg"), i)
    _save(os.fsencode(outside / "out.jpg"), 10)
    os.symlink(outside, root / "outside_folder")
    os.symlink(outside / "out.jpg", root / "outside_file.jpg")
    os.symlink(root / "in_0.jpg", root / "sub" / "inside_file.jpg")
    os.symlink("..", root / "sub" / "loop")
    os.symlink("/", root / "everything")
    return root, tmp_path / "idx"


def test_links_outside_the_collection_are_skipped_and_reported(linked):
    root, idx = linked
    inside = ["in_0.jpg", "in_1.jpg", "in_2.jpg", "in_3.jpg", "in_4.jpg", "sub/inside_file.jpg"]
    with Collection(root, settings=Settings(**SMALL), index_dir=idx) as col:
        rep = run(col.update())
        assert sorted(r.relpath for r in col.records()) == inside
        failed = dict(rep.failed)
        assert set(failed) == {"everything", "outside_file.jpg", "outside_folder"}
        assert all("outside the collection" in why for why in failed.values())
    # a later process (`artstyle problems`) sees the scan problems too, with the unreadable files
    with Collection(root, settings=Settings(**SMALL), index_dir=idx) as col:
        assert dict(col.problems()) == failed
    with Collection(root, settings=Settings(**SMALL, follow_links=True), index_dir=idx) as col:
        errors: list = []
        got = [f.relpath for f in iter_image_files(root, on_error=lambda *e: errors.append(e))]
        assert got == inside and len(errors) == 3
        # follow_links: the links outside are followed (the "/" link is only scanned here, not indexed)
        os.unlink(root / "everything")
        rep = run(col.update())
        outside = ["outside_file.jpg", "outside_folder/out.jpg"]
        assert sorted(r.relpath for r in col.records()) == sorted(inside + outside)
        assert not rep.failed and col.problems() == []


# =========================================================================== decompression bombs

_CHILD = textwrap.dedent(r"""
    import json, os, sys, threading
    from artstyle_gui.core.ingest import imageio
    from artstyle_gui.core.errors import DecodeError

    def hwm_kb():
        with open("/proc/self/status") as fh:
            return next(int(l.split()[1]) for l in fh if l.startswith("VmHWM:"))

    def reset():  # the peak RSS starts again from the current RSS (Linux >= 4.0)
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
            return True
        except OSError:
            return False

    from PIL import Image
    import io
    buf = io.BytesIO(); Image.new("RGB", (300, 200), (9, 9, 9)).save(buf, "PNG")
    imageio.decode_image(buf.getvalue())  # warm up: imports, plugins
    out = []
    paths = json.loads(sys.argv[1])
    threads = int(sys.argv[2])
    if threads > 1:  # all at once: the process-wide budget makes them take turns
        reset(); base = hwm_kb()
        res = []
        def one(p):
            try:
                res.append("decoded %dx%d" % imageio.decode_image(p).image.size)
            except DecodeError as e:
                res.append("refused: " + e.reason)
        ts = [threading.Thread(target=one, args=(p,)) for p in paths]
        [t.start() for t in ts]; [t.join() for t in ts]
        out.append({"extra_mb": (hwm_kb() - base) / 1024, "outcome": res})
    else:
        for p in paths:
            fresh = reset(); base = hwm_kb()
            try:
                outcome = "decoded %dx%d" % imageio.decode_image(p).image.size
            except DecodeError as e:
                outcome = "refused: " + e.reason
            out.append({"path": p, "extra_mb": (hwm_kb() - base) / 1024, "outcome": outcome, "fresh": fresh})
    print(json.dumps(out))
""")


def _decode_in_child(paths: list[Path], *, budget_mb: float | None = None, threads: int = 1) -> list[dict]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(artstyle_gui.__file__).parents[1]),
                                                       os.environ.get("PYTHONPATH", "")]))
    env.pop("ARTSTYLE_DECODE_MEMORY_MB", None)
    if budget_mb is not None:
        env["ARTSTYLE_DECODE_MEMORY_MB"] = str(budget_mb)
    res = subprocess.run([sys.executable, "-c", _CHILD, json.dumps([str(p) for p in paths]), str(threads)],
                         env=env, capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


@needs_proc
def test_bombs_in_every_mode_decode_within_their_estimate(tmp_path):
    """16 MP of every mode and bit depth: decoded, and the peak RSS it adds stays under the estimate the
    budget is checked against (decode_cost); a 16-bit greyscale image costs 2 bytes per pixel plus a strip
    (it cost 12 bytes per pixel before: docs/robustness.md)."""
    side = 4000
    paths = [write_bomb(k, tmp_path / f"{k}.{BOMBS[k][0].lower()}", side, side) for k in BOMBS]
    rows = _decode_in_child(paths)
    if not all(r["fresh"] for r in rows):
        pytest.skip("/proc/self/clear_refs is not writable: peaks cannot be measured one by one")
    for kind, path, r in zip(BOMBS, paths, rows):
        with open(path, "rb") as fp:
            im = imageio._open_image(fp)
            mode, bound_mb = im.mode, imageio.decode_cost(im) / 2**20  # unreduced, no draft: an upper bound
        print(f"\n[bomb] {kind:17} {mode:5} {side * side / 1e6:.0f} MP {path.stat().st_size / 1024:7.0f} KB: "
              f"+{r['extra_mb']:.0f} MB, {r['outcome']}", end="")
        assert r["outcome"].startswith("decoded"), (kind, r)
        assert mode == BOMBS[kind][1]
        assert r["extra_mb"] < bound_mb + 20, (kind, r, bound_mb)
    grey16 = rows[list(BOMBS).index("png-grey16")]["extra_mb"]
    assert grey16 < 2 * 16 + 60, grey16  # was ~12 bytes per pixel (190 MB at 16 MP)
    rgba = rows[list(BOMBS).index("png-rgba8")]["extra_mb"]
    assert rgba < 4 * 16 + 60, rgba


@needs_proc
def test_16bit_grey_bomb_costs_two_bytes_per_pixel(tmp_path):
    """The issue's case, in a fresh process: a 16-bit greyscale PNG cost ~12.4 bytes per pixel above its
    file (4,959 MB at 400 MP); now its 2 bytes per pixel and a strip of temporaries."""
    (row,) = _decode_in_child([write_bomb("png-grey16", tmp_path / "g16.png", 5000, 5000)])
    print(f"\n[bomb] png-grey16 25 MP, fresh process: +{row['extra_mb']:.0f} MB", end="")
    assert row["outcome"] == "decoded 256x256"
    assert row["extra_mb"] < 2 * 25 + 60, row  # before: ~310 MB


def test_decode_cost_counts_bytes_per_pixel_of_each_mode(tmp_path):
    side = 1000
    costs = {}
    for kind in BOMBS:
        p = write_bomb(kind, tmp_path / kind, side, side)
        with open(p, "rb") as fp:
            im = imageio._open_image(fp)
            costs[kind] = imageio.decode_cost(im)
    base = costs["png-grey8"]
    assert costs["png-1bit"] == base == costs["png-palette"]  # Pillow holds 1 byte per pixel for 1, L and P
    assert costs["png-grey16"] == base + side * side  # 2 bytes per pixel
    assert costs["png-rgb8"] == costs["png-rgba8"] == costs["png-la8"] == base + 3 * side * side  # 4 bytes
    assert costs["tiff-cmyk-1strip"] > costs["tiff-cmyk"] + 3 * side * side  # the strip buffer
    assert imageio.bytes_per_pixel("I;16B") == 2 and imageio.bytes_per_pixel("F") == 4
    assert imageio.bytes_per_pixel("unknown") == 8


@needs_proc
def test_a_bomb_over_the_budget_is_refused_from_its_header(tmp_path):
    """Over the budget: refused with a reason before any pixel is decoded; other files go on."""
    paths = [write_bomb("png-grey16", tmp_path / "bomb.png", 20000, 20000),  # 400 MP: 0.8 GB of pixels
             write_bomb("png-rgba8", tmp_path / "ok.png", 500, 400)]
    rows = _decode_in_child(paths, budget_mb=256)
    assert rows[0]["outcome"].startswith("refused: image too large to decode within the memory budget")
    assert "I;16" in rows[0]["outcome"] and "256 MB" in rows[0]["outcome"]
    assert rows[0]["extra_mb"] < 30
    assert rows[1]["outcome"] == "decoded 320x256"


@needs_proc
def test_decoding_threads_share_one_process_budget(tmp_path):
    """Four threads decoding four 40 MP RGBA images at once (about 165 MB each) under a 300 MB budget
    take turns: the peak stays near one image instead of four."""
    paths = [write_bomb("png-rgba8", tmp_path / f"b{i}.png", 8000, 5000) for i in range(4)]
    (row,) = _decode_in_child(paths, budget_mb=300, threads=4)
    print(f"\n[bomb] 4 threads x 40 MP RGBA, budget 300 MB: +{row['extra_mb']:.0f} MB", end="")
    assert all(o.startswith("decoded") for o in row["outcome"]), row
    assert row["extra_mb"] < 300, row


def test_budget_setting_and_waiting_in_turn():
    old = imageio.decode_memory_mb()
    try:
        imageio.set_decode_memory_mb(100)
        assert imageio.decode_memory_mb() == 100
        with pytest.raises(ValueError):
            imageio.set_decode_memory_mb(float("nan"))
        budget = imageio._BUDGET
        order: list[str] = []

        def second():
            with budget.reserve(50 * 2**20):
                order.append("second")

        with budget.reserve(80 * 2**20):
            t = threading.Thread(target=second)
            t.start()
            t.join(0.2)
            assert order == []  # waits: 80 + 50 > 100
            order.append("first done")
        t.join(5)
        assert order == ["first done", "second"]
        assert budget._used == 0
    finally:
        imageio.set_decode_memory_mb(old)


def test_decode_error_for_a_bomb_in_process(tmp_path):
    p = write_bomb("png-grey16", tmp_path / "b.png", 20000, 20000)
    old = imageio.decode_memory_mb()
    try:
        imageio.set_decode_memory_mb(64)
        with pytest.raises(DecodeError, match="memory budget"):
            imageio.decode_image(p)
    finally:
        imageio.set_decode_memory_mb(old)
