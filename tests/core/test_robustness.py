"""Robustness (issue 4): bad input, crashes mid-run, write errors, concurrent use, hostile index files.

Everything goes through the real engine (``Collection.index()``/``update()``) with the real offline
backbone. Costly inputs are built cheaply (see :mod:`badcorpus`), the kill -9 trials fork from a
server that loaded torch once (see :mod:`forkserver`). Figures are printed (run with ``-s``) and
recorded in docs/robustness.md.
"""

from __future__ import annotations

import ast
import builtins
import csv
import errno
import io
import json
import os
import pickle
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import artstyle_gui
import artstyle_gui.core.index.collection as engine
import artstyle_gui.core.ingest.extract as extract
import artstyle_gui.core.ingest.store as store
from artstyle_gui.core.index.collection import Collection
from artstyle_gui.core.model import Settings
from artstyle_gui.core.errors import ArtStyleError, IndexCorrupt, IndexLocked
from artstyle_gui.core.ingest.features import content_hash
from artstyle_gui.core.progress import run
from artstyle_gui.core.ingest.store import LOCK_NAME, IndexStore
from artstyle_gui.core.explore.summaries import export, unescape_csv
from badcorpus import (HUGE_JPEG_SIZE, NON_UTF8_NAME, build_static_corpus, chmod_tree, colour_bin, colour_hist,
                       flat_jpeg, mean_local, tree_digest)
from forkserver import ForkServer, kill9
from synth import make_collection, make_painting

# small analysis settings: the robustness tests are about the plumbing, not the quality of the topics
SMALL = {"k": 2, "vocab_size": 16, "deep_components": 16, "gram_components": 8, "colour_components": 8}
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


_BACKBONES: dict = {}


@pytest.fixture(autouse=True)
def _load_the_backbone_once(monkeypatch):
    """In-process tests share one loaded backbone (loading it is slow on a busy machine)."""
    real = engine.load_backbone

    def cached(name, weights=None):
        if (name, weights) not in _BACKBONES:
            _BACKBONES[(name, weights)] = real(name, weights)
        return _BACKBONES[(name, weights)]

    monkeypatch.setattr(engine, "load_backbone", cached)


def small_settings(**kw) -> Settings:
    return Settings(**{**SMALL, **kw})


def integrity(db: Path) -> str:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        return c.execute("PRAGMA integrity_check").fetchone()[0]


def ok_paths(col: Collection) -> set[str]:
    return {r.relpath for r in col.records() if r.status == "ok"}


def deny(monkeypatch, name: str) -> None:
    """Make the engine's open() of files called ``name`` fail with EACCES (root ignores file modes); the
    files of an index run are opened in :mod:`artstyle_gui.core.ingest.extract`."""
    real = builtins.open

    def fake_open(path, *args, **kwargs):
        if os.path.basename(os.fspath(path)) == name:
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(extract, "open", fake_open, raising=False)


def no_network(monkeypatch) -> None:
    import socket

    def refuse(*_a, **_k):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


# =========================================================================== the bad-input corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The static corpus, made read-only, indexed, exported and indexed again (network refused)."""
    base = tmp_path_factory.mktemp("corpus")
    root = base / "collection"
    t0 = time.monotonic()
    cases = build_static_corpus(root)
    built = time.monotonic() - t0
    chmod_tree(root, writable=False)
    before = tree_digest(root)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ARTSTYLE_OFFLINE", "1")
        no_network(mp)
        if IS_ROOT:
            deny(mp, "locked.jpg")
        col = Collection(root, settings=small_settings(), index_dir=base / "index")
        t0 = time.monotonic()
        rep, an = run(col.index())
        first = time.monotonic() - t0
        written = export(an, base / "export")
        rep2, an2 = run(col.index())
    after = tree_digest(root)
    print(f"\n[corpus] {len(cases)} cases built in {built:.1f}s, indexed in {first:.1f}s: {rep.summary()}")
    yield SimpleNamespace(root=root, cases=cases, col=col, rep=rep, an=an, rep2=rep2, an2=an2, before=before,
                          after=after, export=written, recs={r.relpath: r for r in col.records()})
    col.close()
    chmod_tree(root, writable=True)


def case(corpus, relpath):
    return next(c for c in corpus.cases if c.relpath == relpath)


def test_every_case_has_its_expected_outcome(corpus):
    failed = dict(corpus.rep.failed)
    assert len(failed) == len(corpus.rep.failed), "a file was reported twice"
    problems = []
    for c in corpus.cases:
        rec = corpus.recs.get(c.relpath)
        if c.expect == "ok":
            if rec is None or rec.status != "ok" or c.relpath in failed:
                problems.append(f"{c.relpath!r}: expected indexed, got {rec and (rec.status, rec.error)}")
            elif c.relpath not in corpus.an.relpaths:
                problems.append(f"{c.relpath!r}: indexed but missing from the analysis")
        else:
            reason = failed.get(c.relpath) or (rec.error if rec else None)
            if reason is None or c.reason not in reason:
                problems.append(f"{c.relpath!r}: expected skipped with {c.reason!r}, got {reason!r}")
            if c.relpath in corpus.an.relpaths:
                problems.append(f"{c.relpath!r}: skipped but in the analysis")
    assert not problems, "\n".join(problems)
    # nothing else was reported, and every readable image is in the analysis exactly once
    expected_skips = {c.relpath for c in corpus.cases if c.expect == "skip"}
    assert set(failed) == expected_skips
    assert sorted(corpus.an.relpaths) == sorted(c.relpath for c in corpus.cases if c.expect == "ok")


def test_recorded_sizes_are_the_originals(corpus):
    for c in corpus.cases:
        if c.size:
            rec = corpus.recs[c.relpath]
            assert (rec.width, rec.height) == c.size, c.relpath


def test_broken_files_are_skipped_with_specific_reasons(corpus):
    failed = dict(corpus.rep.failed)
    assert failed["bad/truncated.jpg"] == "truncated or corrupt image data"
    assert failed["bad/empty.jpg"] == "empty file (0 bytes)"
    assert failed["bad/notes.jpg"] == "not a recognised image format (looks like a text file)"
    assert failed["bad/page.png"] == "not a recognised image format (looks like an HTML page)"
    assert dict(corpus.col.problems())["bad/page.png"] == failed["bad/page.png"]  # what `artstyle problems` lists


def test_decompression_bomb_is_refused_from_its_header(corpus):
    assert dict(corpus.rep.failed)["big/bomb_30000x20000.png"] == "image too large (600 MP > cap 400 MP)"
    assert (corpus.root / "big/bomb_30000x20000.png").stat().st_size < 1_000_000  # 0.6 MB -> 600 MB of pixels
    # over Pillow's own limit (179 MP) but under the user's cap: indexed, Pillow's global left alone
    from PIL import Image

    assert corpus.recs["big/over_pillow_limit_13500x13500.png"].status == "ok"
    assert Image.MAX_IMAGE_PIXELS == 89_478_485


def test_huge_jpeg_is_indexed_reduced(corpus):
    rec = corpus.recs["big/huge_20000x15000.jpg"]
    assert rec.status == "ok" and (rec.width, rec.height) == HUGE_JPEG_SIZE


def test_colours_are_correct(corpus):
    """CMYK with and without ICC (not inverted), 16-bit grey, palette + transparency, LA, first
    frame/page of GIF/TIFF, WebP: checked on the colour histogram the engine stored."""
    checked = 0
    for c in corpus.cases:
        if c.colour is None:
            continue
        hist = colour_hist(corpus.col, c.relpath)
        if c.colour2 is None:
            assert hist[colour_bin(c.colour)] > 0.95, (c.relpath, int(hist.argmax()))
        else:  # half opaque colour, half transparent -> white
            assert hist[colour_bin(c.colour)] > 0.35 and hist[colour_bin(c.colour2)] > 0.35, c.relpath
            assert hist[colour_bin((0, 0, 0))] < 0.05, f"{c.relpath}: transparency became black"
        checked += 1
    assert checked >= 10
    cyan = colour_bin((0, 255, 255))
    assert colour_hist(corpus.col, "colour/cmyk_no_icc.jpg")[cyan] == 0  # the classic inverted-CMYK bug


def test_all_eight_exif_orientations_decode_upright(corpus):
    grids = {o: mean_local(corpus.col, f"exif/orientation_{o}.jpg") for o in range(1, 9)}
    control = mean_local(corpus.col, "exif/control_rotated_no_tag.jpg")

    def cos(a, b):
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    sims = [cos(grids[o], grids[1]) for o in range(1, 9)]
    wrong = cos(control, grids[1])
    print(f"\n[exif] local-grid cosine to orientation 1: {[round(s, 3) for s in sims]}; untagged rotation: {wrong:.3f}")
    assert min(sims) > 0.97 and wrong < min(sims) - 0.2


def test_file_names_round_trip_through_index_and_export(corpus):
    odd = f"names/{os.fsdecode(NON_UTF8_NAME)}"
    formula = '=HYPERLINK("x"), "quoted".jpg'
    assert corpus.recs[odd].status == corpus.recs[formula].status == corpus.recs["names/two\nlines.jpg"].status == "ok"
    assert os.path.exists(os.path.join(os.fsencode(corpus.root), os.fsencode(odd)))  # relpath -> the real file
    with open(corpus.export[1], encoding="utf-8", newline="") as fh:  # strict UTF-8 whatever the names
        rows = list(csv.reader(fh))
    paths = [unescape_csv(r[0]) for r in rows[1:]]
    assert sorted(paths) == sorted(corpus.an.relpaths)
    assert [r[0] for r in rows[1:] if "HYPERLINK" in r[0]] == ["'" + formula]  # neutralised in the file
    assert corpus.export[1].read_bytes().count(b"caf\\xe9 (latin-1).jpg") == 1  # the byte 0xE9 as \xe9


def test_symlink_loops_terminate_without_duplicates(corpus):
    failed = dict(corpus.rep.failed)
    assert failed["loop/a.jpg"] == failed["loop/b.jpg"] == "symbolic link loop"
    assert "loop/inside.jpg" in corpus.an.relpaths
    assert not [p for p in corpus.recs if "/up/" in p or "/self/" in p]  # looped folders scanned once


def test_unreadable_file_is_skipped(corpus):
    """Mode 000; as root (who ignores modes) the engine's open() gets the EACCES it would get."""
    assert dict(corpus.rep.failed)["locked.jpg"] == "permission denied"
    assert corpus.recs["locked.jpg"].status == "error"


def test_reindex_is_a_no_op_and_keeps_reporting_skips(corpus):
    rep2 = corpus.rep2
    assert rep2.extracted == rep2.reused == rep2.removed == 0
    assert rep2.unchanged == rep2.scanned == corpus.rep.scanned
    assert dict(rep2.failed) == dict(corpus.rep.failed)
    assert corpus.an2.relpaths == corpus.an.relpaths


def test_the_collection_is_never_written(corpus):
    """Every entry (name, type, mode, size, mtime, ctime, inode, links, owner, link target, content)
    is the same after index + export + re-index of a read-only (a-w) collection."""
    assert corpus.before == corpus.after
    assert len(corpus.before) >= len(corpus.cases)
    assert all(not p.is_relative_to(corpus.root) for p in corpus.export)


def test_empty_collection(tmp_path, monkeypatch):
    root = tmp_path / "empty"
    root.mkdir()
    monkeypatch.setattr(engine.Collection, "backbone", lambda self: pytest.fail("no model needed"))
    with Collection(root, settings=small_settings(), index_dir=tmp_path / "idx") as col:
        rep, an = run(col.index())
    assert (rep.scanned, rep.extracted, rep.failed, an) == (0, 0, [], None)


def test_100k_non_image_files_scan_fast(tmp_path, monkeypatch):
    root = tmp_path / "documents"
    root.mkdir()
    t0 = time.monotonic()
    for i in range(100_000):
        os.mknod(root / f"scan_{i:06d}.txt")
    made = time.monotonic() - t0
    monkeypatch.setattr(engine.Collection, "backbone", lambda self: pytest.fail("no model needed"))
    t0 = time.monotonic()
    with Collection(root, settings=small_settings(), index_dir=tmp_path / "idx") as col:
        rep = run(col.update())
        took = time.monotonic() - t0
        assert rep.scanned == 0 and not rep.failed and not col.records()
    print(f"\n[100k] created in {made:.1f}s, scanned in {took:.2f}s")
    assert took < 10, f"scanning 100,000 non-image files took {took:.1f}s"
    shutil.rmtree(root)


def _mutating_scan(mp, after_scan):
    """Run ``after_scan()`` once the engine has scanned the folder, before it reads any file."""
    real = engine.iter_image_files

    def scan(*args, **kwargs):
        yield from real(*args, **kwargs)
        after_scan()

    mp.setattr(engine, "iter_image_files", scan)


def test_file_deleted_between_scan_and_decode(tmp_path):
    root = tmp_path / "c"
    make_collection(root, n_per_style=2, size=(96, 80), seed=2)
    victim = root / "swirl" / "swirl_1.jpg"
    with Collection(root, settings=small_settings(), index_dir=tmp_path / "idx") as col:
        with pytest.MonkeyPatch.context() as mp:
            _mutating_scan(mp, victim.unlink)
            rep, an = run(col.index())
        assert dict(rep.failed) == {"swirl/swirl_1.jpg": "file vanished before it could be read"}
        assert an.n == 7
        rep = run(col.update())
        assert rep.removed == 1 and rep.unchanged == 7 and not rep.failed
        assert "swirl/swirl_1.jpg" not in {r.relpath for r in col.records()}


def test_file_that_changes_while_indexed_is_picked_up_next_run(tmp_path):
    root = tmp_path / "c"
    make_collection(root, n_per_style=2, size=(96, 80), seed=2)
    changing = root / "blocks" / "blocks_0.jpg"
    copying = root / "stripes" / "copying.jpg"  # a half-copied file (network share), completed later
    full = io.BytesIO()
    make_painting("stripes", seed=77, size=(200, 160)).save(full, "JPEG", quality=92)
    copying.write_bytes(full.getvalue()[: len(full.getvalue()) // 3])

    def meanwhile():
        make_painting("swirl", seed=99, size=(120, 90)).save(changing, "JPEG")  # new content, size and mtime

    with Collection(root, settings=small_settings(), index_dir=tmp_path / "idx") as col:
        with pytest.MonkeyPatch.context() as mp:
            _mutating_scan(mp, meanwhile)
            rep = run(col.update())
        assert dict(rep.failed) == {"stripes/copying.jpg": "truncated or corrupt image data"}
        copying.write_bytes(full.getvalue())  # the copy finishes
        rep = run(col.update())  # no --retry-failed needed: size/mtime changed
        # the copy is extracted now; the changed file is read again and its (new) content is the one
        # the first run already extracted, so its vector is reused
        assert (rep.extracted, rep.reused, rep.unchanged) == (1, 1, 7) and not rep.failed
        recs = {r.relpath: r for r in col.records()}
        for p in (changing, copying):
            rel = p.relative_to(root).as_posix()
            st = p.stat()
            assert recs[rel].status == "ok"
            assert recs[rel].hash == content_hash(p.read_bytes()) and (recs[rel].size, recs[rel].mtime_ns) == (
                st.st_size, st.st_mtime_ns)
        assert (recs["blocks/blocks_0.jpg"].width, recs["blocks/blocks_0.jpg"].height) == (120, 90)
        rep = run(col.update())
        assert rep.extracted == 0 and rep.unchanged == 9


# =========================================================================== faults: kill -9


KILL_IMAGES, KILL_BATCH = 48, 4
KILL_SETTINGS = {**SMALL, "batch_size": KILL_BATCH}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("server-home")
    env = dict(os.environ, ARTSTYLE_DATA_DIR=str(home / "data"), TORCH_HOME=str(home / "torch"))
    srv = ForkServer(env)
    print(f"\n[fork server] torch + backbone + sklearn loaded in {srv.hello['load_s']}s")
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def kill_collection(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill") / "paintings"
    make_collection(root, n_per_style=KILL_IMAGES // 4, size=(96, 80), seed=3)
    return root


def test_kill9_at_random_points_loses_no_finished_batch(server, kill_collection, tmp_path):
    """Two kills during start-up, then seeds 0, 1, 2, ... (kill at 2-98 % of a measured full run)
    until 20 runs were really killed mid-way (a run that finishes first does not count). After
    each SIGKILL the index reopens intact with every reported batch, batches are all-or-nothing,
    and the next run extracts exactly the rest and analyses all images."""
    root = kill_collection
    t0 = time.monotonic()
    _status, _evs, last = server.run_to_end(root, tmp_path / "calibration", KILL_SETTINGS)
    full = time.monotonic() - t0  # one uninterrupted run (scan, extract, analyse, save)
    assert last["ev"] == "done" and last["n"] == KILL_IMAGES
    plan = iter([0.0, 0.01 * full] + [full * random.Random(seed).uniform(0.02, 0.98) for seed in range(40)])
    stages: dict[str, int] = {}
    t_start = time.monotonic()
    failures = []
    trials = mid_run = 0
    while mid_run < 20 and trials < 42:  # every planned kill point if needed (timing decides how many land mid-run)
        delay = next(plan)
        i, trials = trials, trials + 1
        idx = tmp_path / f"trial{i:02d}"
        rid, pid = server.start(root, idx, KILL_SETTINGS)
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and not server.finished(rid):
            server.pump(min(0.05, max(0.0, deadline - time.monotonic())))
        kill9(pid)
        status = server.wait(pid)
        evs = server.events(rid)
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        stage = (evs[-1]["stage"] if evs and evs[-1]["ev"] == "progress" else
                 "finished" if evs else "start-up") if killed else "finished"
        stages[stage] = stages.get(stage, 0) + 1
        mid_run += stage not in ("finished", "start-up")
        reported = {p for e in evs if e.get("paths") for p in e["paths"]}
        try:
            if (idx / "index.sqlite").exists():
                assert integrity(idx / "index.sqlite") == "ok"
            with Collection(root, settings=Settings.from_json(KILL_SETTINGS), index_dir=idx) as col:
                kept = ok_paths(col)
                fs, _ = col.files.featureset()
                known = col.store.known_hashes(fs)
                assert all(r.hash in known for r in col.records() if r.status == "ok"), "record without vector"
                col.load_analysis()  # whatever the kill left in derived/ must not break loading
            assert reported <= kept, f"reported batches lost: {sorted(reported - kept)[:4]}"
            assert len(kept) % KILL_BATCH == 0 or len(kept) == KILL_IMAGES, f"half a batch: {len(kept)}"
            status2, evs2, last = server.run_to_end(root, idx, KILL_SETTINGS)
            assert last["ev"] == "done", last
            rep = last["report"]
            assert rep["unchanged"] == len(kept) and rep["extracted"] == KILL_IMAGES - len(kept), rep
            assert rep["reused"] == 0 and not rep["failed"], rep
            again = {p for e in evs2 if e.get("paths") for p in e["paths"]}
            assert not again & kept, "finished images were extracted again"
            assert last["n"] == KILL_IMAGES
            assert not list(idx.rglob("*.tmp")), "temp files left behind"
        except AssertionError as e:
            failures.append(f"trial {i} (delay {delay:.2f}s, killed in {stage}, kept {len(reported)}+): {e}")
    took = time.monotonic() - t_start
    print(f"\n[kill -9] full run {full:.1f}s; {trials} trials in {took:.0f}s, {len(failures)} failures; "
          f"killed during: {dict(sorted(stages.items()))}")
    assert not failures, "\n".join(failures)
    assert mid_run >= 20


def test_huge_jpeg_peak_memory_is_bounded(server, tmp_path):
    """Index a 20,000 x 15,000 JPEG in a subprocess and measure its peak RSS above the baseline
    (torch + backbone loaded). Decoded at full size it would need 900 MB (RGB)."""
    root = tmp_path / "huge"
    root.mkdir()
    (root / "scan.jpg").write_bytes(flat_jpeg(*HUGE_JPEG_SIZE))
    status, _evs, last = server.run_to_end(root, tmp_path / "idx", {"batch_size": 16}, cmd="memory")
    assert last["ev"] == "done", last
    assert last["records"] == [["scan.jpg", "ok", *HUGE_JPEG_SIZE]]
    extra_mb = (last["peak_kb"] - last["rss_before_kb"]) / 1024
    print(f"\n[memory] 20,000 x 15,000 JPEG: peak RSS {last['peak_kb'] / 1024:.0f} MB, "
          f"{extra_mb:.0f} MB above the baseline {last['rss_before_kb'] / 1024:.0f} MB")
    assert extra_mb < 300


# =========================================================================== faults: write errors


@pytest.fixture
def small_copy(tmp_path):
    root = tmp_path / "paintings"
    make_collection(root, n_per_style=3, size=(96, 80), seed=4)
    return root


def test_disk_full_during_a_batch_keeps_finished_batches(small_copy, tmp_path):
    """A real SQLITE_FULL (max_page_count) in the middle of extraction."""
    idx = tmp_path / "idx"
    with Collection(small_copy, settings=small_settings(batch_size=4), index_dir=idx) as col:
        gen = col.update()
        for ev in gen:
            if ev.stage == "extract" and ev.done == 4:
                pages = col.store.db.execute("PRAGMA page_count").fetchone()[0]
                col.store.db.execute(f"PRAGMA max_page_count={pages + 2}")  # the disk is now "full"
                break
        with pytest.raises(ArtStyleError) as info:
            for _ in gen:
                pass
        msg = str(info.value)
        assert "database or disk is full" in msg and "Finished work up to the last batch is kept" in msg
        assert not isinstance(info.value, IndexCorrupt)
    assert integrity(idx / "index.sqlite") == "ok"
    with Collection(small_copy, settings=small_settings(batch_size=4), index_dir=idx) as col:
        kept = len(ok_paths(col))
        assert kept >= 4 and kept % 4 == 0
        rep = run(col.update())
        assert rep.unchanged == kept and rep.extracted == 12 - kept


def _disk_full(_fd):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_while_saving_the_analysis_keeps_the_old_one(small_copy, tmp_path):
    idx = tmp_path / "idx"
    with Collection(small_copy, settings=small_settings(), index_dir=idx) as col:
        run(col.index())
        derived = col.files.dir
    saved = {p.name: p.read_bytes() for p in derived.iterdir()}
    with pytest.MonkeyPatch.context() as mp, \
            Collection(small_copy, settings=small_settings(k=3), index_dir=idx) as col:
        mp.setattr(store.os, "fsync", _disk_full)  # every atomic write of the index fails with ENOSPC
        with pytest.raises(ArtStyleError, match=r"Could not write .*analysis\.npz: No space left on device\. "
                                                r"Free some disk space"):
            run(col.analyse())
    assert {p.name: p.read_bytes() for p in derived.iterdir()} == saved  # old files intact, no temp files
    with Collection(small_copy, settings=small_settings(), index_dir=idx) as col:
        assert col.load_analysis() is not None  # the previous analysis still loads


def test_export_to_a_full_disk_is_a_clear_error(small_copy, tmp_path, monkeypatch):
    with Collection(small_copy, settings=small_settings(), index_dir=tmp_path / "idx") as col:
        _rep, an = run(col.index())
    out = tmp_path / "out"
    export(an, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setattr(store.os, "fsync", _disk_full)
    with pytest.raises(ArtStyleError, match="topics.csv: No space left on device"):
        export(an, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def _make_immutable(paths: list[Path]) -> bool:
    """Really read-only, even for root: chattr +i (ext4 & co). False where that is impossible."""
    if not shutil.which("chattr"):
        return False
    r = subprocess.run(["chattr", "+i", *map(str, paths)], capture_output=True)
    return r.returncode == 0


def test_read_only_index_dir_is_a_clear_error_and_the_index_stays_intact(small_copy, tmp_path):
    """A real read-only index folder: chmod a-w for a normal user, chattr +i for root."""
    idx = tmp_path / "idx"
    with Collection(small_copy, settings=small_settings(), index_dir=idx) as col:
        run(col.index())
    make_painting("blocks", seed=500, size=(96, 80)).save(small_copy / "new.jpg")  # work to do
    entries = sorted(idx.rglob("*"), reverse=True) + [idx]
    before = {p: p.read_bytes() for p in entries if p.is_file()}
    if IS_ROOT:
        if not _make_immutable(entries):
            pytest.skip("root ignores chmod and chattr +i is not available here "
                        "(test_read_only_index_dir_simulated covers the same code path)")
        undo = ["chattr", "-i", *map(str, entries)]
    else:
        for p in entries:
            p.chmod(p.stat().st_mode & ~0o222)
        undo = None
    try:
        with pytest.raises(ArtStyleError) as info:
            with Collection(small_copy, settings=small_settings(), index_dir=idx) as col:
                run(col.index())
        msg = str(info.value)
        assert not isinstance(info.value, IndexCorrupt), msg
        assert "Could not write" in msg and str(idx) in msg, msg
    finally:
        if undo:
            subprocess.run(undo, check=True)
        else:
            for p in entries:
                p.chmod(p.stat().st_mode | 0o200)
    assert {p: p.read_bytes() for p in entries if p.is_file()} == before
    assert integrity(idx / "index.sqlite") == "ok"


def test_read_only_index_dir_simulated(small_copy, tmp_path):
    """The same at the boundary (works anywhere): SQLite opened read-only, file creation EROFS."""
    idx = tmp_path / "idx"
    with Collection(small_copy, settings=small_settings(), index_dir=idx) as col:
        run(col.index())
        derived = col.files.dir
        records = [(r.relpath, r.hash, r.status) for r in col.records()]
    saved = {p.name: p.read_bytes() for p in derived.iterdir()}
    real_connect = sqlite3.connect

    def ro_connect(path, *args, **kwargs):
        kwargs.pop("uri", None)
        return real_connect(f"file:{path}?mode=ro", *args, uri=True, **kwargs)

    def erofs(*_a, **_k):
        raise OSError(errno.EROFS, "Read-only file system")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(store.sqlite3, "connect", ro_connect)
        with pytest.raises(ArtStyleError, match=r"Could not write the index at .*folder is writable") as info:
            with Collection(small_copy, settings=small_settings(), index_dir=idx) as col:  # opening writes nothing
                col.files.save_settings()  # the first write
        assert not isinstance(info.value, IndexCorrupt)
    with pytest.MonkeyPatch.context() as mp:  # derived files on a read-only file system
        mp.setattr(store.tempfile, "mkstemp", erofs)
        with Collection(small_copy, settings=small_settings(k=3), index_dir=idx) as col:
            with pytest.raises(ArtStyleError, match="Read-only file system. The folder is read-only for you"):
                run(col.analyse())
    st = IndexStore(idx)
    try:  # the lock file on a read-only file system
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(store.os, "open", erofs)  # the lock file is opened with os.open (O_NOFOLLOW)
            with pytest.raises(ArtStyleError, match=r"Could not write .*lock: Read-only file system"):
                st.acquire_writer_lock()
    finally:
        st.close()
    assert {p.name: p.read_bytes() for p in derived.iterdir()} == saved
    with Collection(small_copy, settings=small_settings(), index_dir=idx) as col:
        assert [(r.relpath, r.hash, r.status) for r in col.records()] == records
        assert col.load_analysis() is not None
    assert integrity(idx / "index.sqlite") == "ok"


# =========================================================================== faults: concurrent use


def test_two_indexing_processes_the_second_is_locked_out(kill_collection, tmp_path):
    """Two real `artstyle index` processes on one collection: the second stops at once with
    IndexLocked's message; the first finishes; the index is complete and consistent."""
    idx = tmp_path / "idx"
    env = dict(os.environ, ARTSTYLE_OFFLINE="1", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "artstyle_gui.cli", "-q", "index", str(kill_collection), "--index-dir", str(idx),
           "--batch-size", "4", "--no-analysis"]
    a = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and a.poll() is None:
            lock = idx / LOCK_NAME
            if lock.exists() and lock.read_text().strip() == str(a.pid):
                break
            time.sleep(0.05)
        assert a.poll() is None, "the first process finished before the second could start"
        b = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert a.poll() is None, "the first process was not running any more when the second was refused"
        out, err = a.communicate(timeout=300)
    finally:
        if a.poll() is None:
            a.kill()
    assert b.returncode == 1, b.stderr
    assert "Another artstyle process is indexing this collection" in b.stderr and "Wait for it to finish" in b.stderr
    assert "Traceback" not in b.stderr
    assert a.returncode == 0, err
    assert integrity(idx / "index.sqlite") == "ok"
    with Collection(kill_collection, settings=small_settings(batch_size=4), index_dir=idx) as col:
        assert len(ok_paths(col)) == KILL_IMAGES
        rep = run(col.update())
        assert rep.unchanged == KILL_IMAGES and rep.extracted == 0


def test_locked_error_is_clear_and_analysis_is_not_saved_by_a_second_writer(small_copy, tmp_path):
    idx = tmp_path / "idx"
    with Collection(small_copy, settings=small_settings(), index_dir=idx) as first:
        run(first.update())
        first.store.acquire_writer_lock()  # "another process" holds the index
        with Collection(small_copy, settings=small_settings(), index_dir=idx) as second:
            with pytest.raises(IndexLocked, match="Another artstyle process is indexing this collection"):
                run(second.update())
            an = run(second.analyse())  # reading is fine; the derived files are left to the writer
            assert an is not None and an.n == 12
            assert not second.files.dir.exists()


def test_a_crash_between_derived_files_is_detected(small_copy, tmp_path):
    """npz written, crash before hnsw/json: the mismatch is seen and the analysis recomputed."""
    idx = tmp_path / "idx"
    extra = small_copy / "extra.jpg"
    with Collection(small_copy, settings=small_settings(), index_dir=idx) as col:
        run(col.index())  # analysis A (12 images) saved
        make_painting("stripes", seed=321, size=(96, 80)).save(extra)
        run(col.update())

        def crash(*_a, **_k):
            raise KeyboardInterrupt  # the process dies after analysis.npz of B was written

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(engine.NeighbourIndex, "save", crash)
            with pytest.raises(KeyboardInterrupt):
                run(col.analyse())
    extra.unlink()  # back to the records of A: analysis.json (A) matches, analysis.npz is B's
    with Collection(small_copy, settings=small_settings(), index_dir=idx) as col:
        run(col.update())
        assert col.load_analysis() is None and "does not match" in col.derived_problem
        an = run(col.analyse())
        assert an.n == 12 and len(col.similar(0, 3)) == 3


# =========================================================================== security


def test_no_pickle_and_safe_torch_load_in_the_package():
    """Source scan of artstyle_gui: no pickle-family modules, np.load never allows pickle,
    torch.load always weights_only=True."""
    bad = []
    for path in Path(artstyle_gui.__file__).parent.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                for n in names:
                    if n and n.split(".")[0] in ("pickle", "cPickle", "_pickle", "dill", "shelve", "marshal",
                                                 "joblib", "cloudpickle"):
                        bad.append(f"{path}:{node.lineno}: imports {n}")
            if isinstance(node, ast.Call):
                func = ast.unparse(node.func)
                kw = {k.arg: k.value for k in node.keywords}
                if func.endswith("torch.load") or func == "load" and "weights_only" in kw:
                    w = kw.get("weights_only")
                    if not (isinstance(w, ast.Constant) and w.value is True):
                        bad.append(f"{path}:{node.lineno}: {func}(...) without weights_only=True")
                if "allow_pickle" in kw and not (isinstance(kw["allow_pickle"], ast.Constant)
                                                 and kw["allow_pickle"].value is False):
                    bad.append(f"{path}:{node.lineno}: allow_pickle is not False")
        if re.search(r"allow_pickle\s*=\s*True", path.read_text(encoding="utf-8")):
            bad.append(f"{path}: allow_pickle=True")
    assert not bad, "\n".join(bad)


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    """A small collection with a complete index (derived files included), to copy and damage."""
    base = tmp_path_factory.mktemp("analysed")
    root = base / "paintings"
    make_collection(root, n_per_style=3, size=(96, 80), seed=6)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ARTSTYLE_OFFLINE", "1")
        with Collection(root, settings=small_settings(), index_dir=base / "index") as col:
            run(col.index())
            key = col.settings.featureset_key()
    return root, base / "index", key


@pytest.fixture
def damaged(analysed, tmp_path):
    root, idx, key = analysed
    copy = tmp_path / "index"
    shutil.copytree(idx, copy)
    return SimpleNamespace(root=root, idx=copy, derived=copy / "derived" / key)


class _Payload:
    """Pickles to "create the marker file"; anything that unpickles it runs that."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (builtins.exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def _npz_with_pickle(marker: Path) -> bytes:
    buf = io.BytesIO()
    good = np.zeros(3)
    np.savez(buf, file_ids=np.array([_Payload(marker)], dtype=object), part_deep=good)
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["object-array npz", "raw pickle", "npy with pickle"])
def test_hostile_analysis_file_never_executes_code(damaged, tmp_path, kind):
    marker = tmp_path / "pwned"
    target = damaged.derived / "analysis.npz"
    if kind == "object-array npz":
        target.write_bytes(_npz_with_pickle(marker))
    elif kind == "raw pickle":
        target.write_bytes(pickle.dumps(_Payload(marker)))
    else:
        buf = io.BytesIO()
        np.save(buf, np.array([_Payload(marker)], dtype=object), allow_pickle=True)
        target.write_bytes(buf.getvalue())
    with pytest.raises(IndexCorrupt, match="analysis.npz is damaged"):
        store.load_npz(target)
    with Collection(damaged.root, settings=small_settings(), index_dir=damaged.idx) as col:
        assert col.load_analysis() is None and "damaged" in col.derived_problem
        an = run(col.analyse())  # derived files are a cache: recomputed
        assert an.n == 12 and len(col.similar(0, 3)) == 3
    with Collection(damaged.root, settings=small_settings(), index_dir=damaged.idx) as col:
        assert col.load_analysis() is not None  # and saved again
    assert not marker.exists(), "the pickle payload was executed"


def _flip_bytes(path: Path, seed: int, count: int = 50) -> None:
    b = bytearray(path.read_bytes())
    rng = random.Random(seed)
    for _ in range(count):
        b[rng.randrange(100, len(b))] = rng.randrange(256)
    path.write_bytes(bytes(b))


DAMAGE = {
    "garbage npz": lambda d: (d / "analysis.npz").write_bytes(os.urandom(3000)),
    "truncated npz": lambda d: (d / "analysis.npz").write_bytes((d / "analysis.npz").read_bytes()[:5000]),
    "npz missing arrays": lambda d: np.savez(d / "analysis.npz", part_deep=np.zeros((12, 4))),
    "npz wrong shapes": lambda d: np.savez(d / "analysis.npz", **{
        **dict(np.load(d / "analysis.npz")), "part_colour": np.zeros((3, 2))}),
    "npz text arrays": lambda d: np.savez(d / "analysis.npz", **{
        **dict(np.load(d / "analysis.npz")), "mixtures": np.array([["a", "b"]] * 12)}),
    "truncated hnsw": lambda d: (d / "neighbours.hnsw").write_bytes((d / "neighbours.hnsw").read_bytes()[:100]),
    "empty hnsw": lambda d: (d / "neighbours.hnsw").write_bytes(b""),
    # byte flips that keep the size: hnswlib loads these and then crashes in a query (segfault)
    "bit-rotted hnsw (seed 3)": lambda d: _flip_bytes(d / "neighbours.hnsw", 3),
    "bit-rotted hnsw (seed 4)": lambda d: _flip_bytes(d / "neighbours.hnsw", 4),
    "garbage json": lambda d: (d / "analysis.json").write_text("{not json"),
    "json list": lambda d: (d / "analysis.json").write_text("[1, 2, 3]"),
    "json wrong types": lambda d: (d / "analysis.json").write_text(json.dumps({
        **json.loads((d / "analysis.json").read_text()), "weights": [1, 2], "metric": 7, "topic_input": {"x": 1},
        "neighbours_sha256": 12})),
    "json non-utf8": lambda d: (d / "analysis.json").write_bytes(b"\xff\xfe{"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_derived_files_are_recomputed(damaged, damage):
    DAMAGE[damage](damaged.derived)
    with Collection(damaged.root, settings=small_settings(), index_dir=damaged.idx) as col:
        an = col.load_analysis()
        if an is not None:  # only harmless damage may load: then the data must be intact and usable
            assert damage in ("json wrong types", "bit-rotted hnsw (seed 3)", "bit-rotted hnsw (seed 4)",
                              "truncated hnsw", "empty hnsw")
        else:
            assert col.derived_problem, damage
        an = run(col.analyse())
        assert an.n == 12
        for row in range(an.n):  # every query works (a trusted damaged hnsw would crash here)
            assert len(col.similar(row, 5)) == 5


@pytest.mark.parametrize("damage", ["garbage", "truncated", "zeroed header", "malformed pages"])
def test_damaged_index_database_is_index_corrupt(damaged, damage):
    db = damaged.idx / "index.sqlite"
    data = bytearray(db.read_bytes())
    if damage == "garbage":
        data = bytearray(os.urandom(len(data)))
    elif damage == "truncated":
        data = data[: len(data) // 3]
    elif damage == "zeroed header":
        data[:100] = bytes(100)
    else:
        rng = random.Random(1)
        for page in range(2, len(data) // 4096):
            data[page * 4096 + 8 : page * 4096 + 200] = rng.randbytes(192)
    db.write_bytes(bytes(data))
    with pytest.raises(IndexCorrupt) as info:
        with Collection(damaged.root, settings=small_settings(), index_dir=damaged.idx) as col:
            col.records()
            run(col.index())
    assert "Delete the index directory and index the collection again" in str(info.value)


def test_damaged_feature_vectors_are_discarded_and_extracted_again(damaged):
    with Collection(damaged.root, settings=small_settings(), index_dir=damaged.idx) as col:
        fs, _ = col.files.featureset()
        hashes = sorted(col.store.known_hashes(fs))
        nan = np.full(col.layout.size, np.nan, np.float16).tobytes()
        with col.store.transaction():
            col.store.put_vectors(fs, [(hashes[0], nan), (hashes[1], b"short")])
        events = []
        gen = col.analyse(force=True)
        while True:
            try:
                events.append(next(gen).message)
            except StopIteration as stop:
                an = stop.value
                break
        assert an.n == 10 and any("2 damaged feature vectors discarded" in m for m in events)
        rep, an = run(col.index())
        assert rep.extracted == 2 and an.n == 12


def test_damaged_labels_and_settings_in_the_database(damaged, capsys):
    from artstyle_gui.cli import main

    with sqlite3.connect(damaged.idx / "index.sqlite") as c:
        c.execute("UPDATE files SET labels='{oops' WHERE rowid=1")
        c.execute("UPDATE files SET labels='[1, 2]' WHERE rowid=2")
        c.execute("INSERT OR REPLACE INTO meta(key, value) VALUES('settings', ?)",
                  (json.dumps({"batch_size": "many", "k": "x"}),))
    with pytest.raises(IndexCorrupt, match="batch_size = 'many' has the wrong type"):
        Settings.from_json({"batch_size": "many"})
    with pytest.raises(IndexCorrupt, match="expected an object"):
        Settings.from_json([1, 2])
    with Collection(damaged.root, settings=small_settings(), index_dir=damaged.idx) as col:
        assert len(col.records()) == 12  # damaged label cells read as "no labels"
    assert main(["-q", "problems", str(damaged.root), "--index-dir", str(damaged.idx)]) == 0
    err = capsys.readouterr().err
    assert "ignoring the saved settings" in err and "wrong type" in err
    with sqlite3.connect(damaged.idx / "index.sqlite") as c:  # a command that only reads leaves them as they are
        assert json.loads(c.execute("SELECT value FROM meta WHERE key='settings'").fetchone()[0])["batch_size"] == "many"
    assert main(["-q", "index", str(damaged.root), "--index-dir", str(damaged.idx), "--no-analysis"]) == 0
    with sqlite3.connect(damaged.idx / "index.sqlite") as c:  # `index` replaces them by the effective settings
        assert json.loads(c.execute("SELECT value FROM meta WHERE key='settings'").fetchone()[0])["batch_size"] == 16


@pytest.mark.parametrize("failure", ["no network", "hash mismatch"])
def test_weights_download_is_hash_checked_and_its_failure_is_clear(monkeypatch, failure):
    """Only resnet50 downloads (effnet-lite0 ships with its package); torchvision checks the hash."""
    import torch

    from artstyle_gui.core.ingest.backbones import load_backbone
    from artstyle_gui.core.errors import BackboneUnavailable

    calls = []

    def fake_download(url, *args, **kwargs):
        calls.append((url, kwargs))
        if failure == "no network":
            raise OSError("[Errno -3] Temporary failure in name resolution")
        raise RuntimeError('invalid hash value (expected "11ad3fa6", got "deadbeef")')

    monkeypatch.delenv("ARTSTYLE_OFFLINE", raising=False)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake_download)
    with pytest.raises(BackboneUnavailable) as info:
        load_backbone("resnet50")
    assert calls and calls[0][1].get("check_hash") is True
    msg = str(info.value)
    assert "the download failed" in msg and "--weights" in msg and "effnet-lite0" in msg
    assert ("name resolution" if failure == "no network" else "invalid hash value") in msg


class _BrokenTorchvision:
    """A meta-path finder that makes ``import torchvision`` fail like PyPI's CUDA torchvision next to
    a CPU-only torch (the CPU bundle's situation)."""

    def find_spec(self, name, path=None, target=None):
        if name == "torchvision" or name.startswith("torchvision."):
            raise RuntimeError("operator torchvision::nms does not exist")
        return None


@pytest.mark.parametrize("how", ["missing", "broken"])
def test_without_torchvision_only_resnet50_is_unavailable(monkeypatch, tmp_path, how):
    """torchvision is optional: missing or broken, resnet50 says it needs it, the default backbone
    and the app's preload still work (the CPU-torch bundle has no torchvision)."""
    import artstyle_gui.core.index.preload as app_support
    from artstyle_gui.core.ingest.backbones import load_backbone
    from artstyle_gui.core.errors import BackboneUnavailable

    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        monkeypatch.delitem(sys.modules, name)
    if how == "missing":
        monkeypatch.setitem(sys.modules, "torchvision", None)  # import raises ModuleNotFoundError
    else:
        monkeypatch.setattr(sys, "meta_path", [_BrokenTorchvision(), *sys.meta_path])

    monkeypatch.setattr(app_support, "PRELOAD", ("torchvision",))
    app_support.preload_engine_modules()  # no exception, whatever the import raises

    weights = tmp_path / "resnet50.pth"
    weights.write_bytes(b"not read")
    for kwargs in ({}, {"weights": str(weights)}):
        with pytest.raises(BackboneUnavailable) as info:
            load_backbone("resnet50", **kwargs)
        msg = str(info.value)
        assert "needs torchvision" in msg and "pip install torchvision" in msg and "effnet-lite0" in msg
        assert ("ModuleNotFoundError" if how == "missing" else "torchvision::nms") in msg

    bb = load_backbone("effnet-lite0")
    assert bb.info.name == "effnet-lite0"
    assert not [m for m, mod in list(sys.modules.items()) if mod is not None and m.split(".")[0] == "torchvision"]
