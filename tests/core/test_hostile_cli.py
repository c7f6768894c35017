"""Hostile and careless input to the `artstyle` command line (issue 18, items 5, 7, 8, 10, 13, 14):
options out of range, missing and broken labels CSVs, labels kept across runs and cleared on purpose,
read-only commands that must not write (a read-only or full disk), file names and labels with control
characters and terminal escapes, a reader that goes away (`| head -1`), and hints that keep the options
given. Small on purpose: 8 tiny paintings, small PCA sizes (the CLI reuses the settings saved in the index)."""

from __future__ import annotations

import csv
import errno
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from artstyle_gui.cli import main, printable
from artstyle_gui.core.errors import ArtStyleError
from artstyle_gui.core.index.collection import Collection
from artstyle_gui.core.ingest import store
from artstyle_gui.core.ingest.labels import read_labels_csv
from artstyle_gui.core.ingest.store import IndexStore, index_dir_for
from artstyle_gui.core.model import Settings
from artstyle_gui.core.progress import Progress, collect, run
from synth import make_collection, make_painting, write_labels_csv

SMALL = dict(k=2, deep_components=8, gram_components=4, colour_components=4, vocab_size=8)
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """8 tiny paintings (4 styles x 2), a labels CSV outside the folder, indexed once with small settings."""
    base = tmp_path_factory.mktemp("hostile")
    root, idx, labels = base / "c", base / "idx", base / "labels.csv"
    rows = make_collection(root, n_per_style=2, size=(64, 48))
    write_labels_csv(labels, rows, column="style")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ARTSTYLE_OFFLINE", "1")
        with Collection(root, settings=Settings(**SMALL), index_dir=idx, labels_csv=labels) as col:
            col.files.save_settings()  # the CLI reopens it with these
            run(col.index())
    return root, idx, labels, rows


@pytest.fixture
def indexed(pristine, tmp_path):
    """A private copy of the indexed collection: (root, index dir, labels CSV, rows, --index-dir args)."""
    root0, idx0, labels0, rows = pristine
    root, idx, labels = tmp_path / "c", tmp_path / "idx", tmp_path / "labels.csv"
    shutil.copytree(root0, root)
    shutil.copytree(idx0, idx)
    shutil.copy(labels0, labels)
    _relocate(idx, root, labels)
    return root, idx, labels, rows, ["--index-dir", str(idx)]


def _relocate(idx: Path, root: Path, labels: Path) -> None:
    """The copied index remembers the original labels CSV: point it at the copy (as `index --labels` would)."""
    from artstyle_gui.core.derived import LABELS_META_KEY, LabelsSource

    st = IndexStore(idx)
    try:
        st.set_meta(LABELS_META_KEY, json.dumps(LabelsSource(csv=str(labels.resolve())).to_json()))
        st.set_meta("root", str(root.resolve()))
    finally:
        st.close()


def stored_labels(idx: Path) -> dict[str, dict[str, str]]:
    st = IndexStore(idx, readonly=True)
    try:
        return {r.relpath: r.labels for r in st.records()}
    finally:
        st.close()


#: SQLite's reader files (a reader of a WAL database keeps its read marks there) and the writer lock
TRANSIENT = ("index.sqlite-wal", "index.sqlite-shm")
LOCKS = ("lock", ".artstyle-writer.lock")


def snapshot(idx: Path, skip: tuple[str, ...] = TRANSIENT) -> dict[str, tuple[int, bytes]]:
    """(mtime, bytes) of every file of the index (but SQLite's transient reader files)."""
    return {str(p.relative_to(idx)): (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(idx.rglob("*"))
            if p.is_file() and p.name not in skip}


def no_control_characters(text: str) -> list[str]:
    """The characters of ``text`` a terminal would act on (newline and tab are ours)."""
    return sorted({repr(ch) for ch in text if not (ch in "\n\t" or ch.isprintable())})


# =========================================================================== item 8: options out of range
BAD_OPTIONS = [
    ["--seed", "-1"], ["--seed", "99999999999"], ["--seed", "x"],
    ["--blend", "deep=inf"], ["--blend", "deep=nan"], ["--blend", "deep=-1"], ["--blend", "deep=0,texture=0,colour=0"],
    ["--k", "0"], ["--k", "201"], ["--batch-size", "0"], ["--batch-size", "-3"], ["--pca", "0"],
    ["--max-megapixels", "0"], ["--max-megapixels", "nan"], ["--max-megapixels", "-1"],
]


def test_options_out_of_range_are_refused_before_anything_is_saved(indexed, tmp_path, capsys):
    root, idx, _, _, base = indexed
    before = snapshot(idx)
    fresh = tmp_path / "fresh-index"
    for bad in BAD_OPTIONS:
        for args in (["-q", "index", str(root), *base, *bad],
                     ["-q", "index", str(root), "--index-dir", str(fresh), *bad],
                     ["-q", "topics", str(root), *base, *bad]):
            with pytest.raises(SystemExit) as e:
                main(args)
            err = capsys.readouterr().err
            assert e.value.code == 2, (bad, err)
            assert "error:" in err and bad[0] in err and "Traceback" not in err, (bad, err)
    # past the parser, Settings.validate() refuses the rest (exit 1), still before anything is saved
    for args in (["-q", "index", str(root), *base, "--max-megapixels", "1e9"],
                 ["-q", "index", str(root), "--index-dir", str(fresh), "--max-megapixels", "1e9"]):
        assert main(args) == 1
        err = capsys.readouterr().err
        assert "max megapixels" in err and "Traceback" not in err, err
    assert snapshot(idx) == before and not fresh.exists()


def test_settings_validate_checks_every_range():
    ok = Settings()
    ok.validate()
    for bad in (dict(seed=-1), dict(seed=2**32), dict(seed=1.5), dict(batch_size=0), dict(decode_threads=-1),
                dict(deep_components=0), dict(gram_components=10**6), dict(colour_components=True),
                dict(colour_bins=1), dict(vocab_size=1), dict(max_megapixels=0.0), dict(max_megapixels=float("inf")),
                dict(max_megapixels=float("nan")), dict(k_range=(0, 5)), dict(k_range=(9, 3)), dict(k_range=(1,)),
                dict(k=0), dict(blend={"deep": float("inf")}), dict(blend={"deep": float("nan")}),
                dict(blend={"deep": -1.0, "texture": 1.0}), dict(blend={"deep": "1"})):
        with pytest.raises(ArtStyleError):
            Settings(**bad).validate()
    Settings(seed=2**32 - 1, max_megapixels=0.5, k_range=(3, 3), blend={"deep": 0.0, "texture": 2.0}).validate()


def test_an_index_with_invalid_saved_settings_still_opens(indexed, capsys):
    root, idx, _, _, base = indexed
    st = IndexStore(idx)
    try:
        raw = json.loads(st.get_meta("settings"))
        st.set_meta("settings", json.dumps({**raw, "seed": -1, "blend": {"deep": float("inf")}}))
    finally:
        st.close()
    assert main(["-q", "problems", str(root), *base]) == 0
    cap = capsys.readouterr()
    assert "ignoring the saved settings" in cap.err and "Traceback" not in cap.err
    assert "No problems" in cap.out


# =========================================================================== item 7: labels are user data
def test_a_missing_or_unreadable_labels_file_is_an_error_and_wipes_nothing(indexed, tmp_path, capsys):
    root, idx, labels, rows, base = indexed
    before = stored_labels(idx)
    assert sum(1 for v in before.values() if v.get("style")) == len(rows)
    snap = snapshot(idx)
    for bad in (tmp_path / "missing.csv", tmp_path):  # a path that does not exist, a folder
        for cmd in ("index", "similar", "evaluate"):
            extra = {"similar": [rows[0][0]], "evaluate": ["--label", "style"]}.get(cmd, [])
            assert main(["-q", cmd, str(root), *extra, *base, "--labels", str(bad)]) == 1
            err = capsys.readouterr().err
            assert str(bad) in err and any(w in err for w in ("No such file", "Is a directory", "does not exist",
                                                              "not a file")), err
            assert "Traceback" not in err
    assert stored_labels(idx) == before and snapshot(idx) == snap
    fresh = tmp_path / "fresh-index"  # nothing is created either
    assert main(["-q", "index", str(root), "--index-dir", str(fresh), "--labels", str(tmp_path / "missing.csv")]) == 1
    assert not fresh.exists()


SECRET = "sk-live-THIS-IS-A-SECRET-0123456789"


@pytest.mark.parametrize("case", ["unbalanced-quote", "huge-cell", "no-path-column", "huge-quoted-cell"])
def test_a_broken_labels_csv_is_a_clear_error_naming_the_file_and_row(indexed, tmp_path, capsys, case):
    root, idx, _, rows, base = indexed
    bad = tmp_path / f"{case}.csv"
    if case == "unbalanced-quote":
        bad.write_text(f"path,artist\n{rows[0][0]},Alice\n{rows[1][0]},\"Bob {SECRET}\n{rows[2][0]},Carol\n")
        where = "line 3"
    elif case == "huge-cell":
        bad.write_text(f"path,artist\n{rows[0][0]},Alice\n{rows[1][0]},{SECRET * 5000}\n")
        where = "line 3"
    elif case == "huge-quoted-cell":  # an unbalanced quote on a big file: the rest of the file in one cell
        bad.write_text(f"path,artist\n{rows[0][0]},\"Alice\n" + "".join(f"{r},{SECRET}\n" for r, _ in rows) * 500)
        where = "line 2"
    else:
        bad.write_text(f"{SECRET},{SECRET}\n{rows[0][0]},x\n")
        where = "no path column"
    before = stored_labels(idx)
    snap = snapshot(idx)
    assert main(["-q", "index", str(root), *base, "--labels", str(bad)]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and where in err, err
    assert SECRET not in err and "Traceback" not in err, err
    assert stored_labels(idx) == before and snapshot(idx) == snap
    with pytest.raises(ArtStyleError) as e:  # the core says the same, without the content
        read_labels_csv(bad, root)
    assert SECRET not in str(e.value)


def test_labels_are_remembered_until_replaced_or_cleared(indexed, tmp_path, capsys):
    root, idx, labels, rows, base = indexed
    styled = {p: s for p, s in rows}
    # a plain `index` keeps the labels given once (the remembered CSV is read again)
    assert main(["-q", "index", str(root), *base]) == 0
    assert {p: v.get("style") for p, v in stored_labels(idx).items()} == styled
    # the CSV changes: the next plain run picks the change up
    changed = dict(styled, **{rows[0][0]: "changed"})
    write_labels_csv(labels, list(changed.items()), column="style")
    assert main(["-q", "index", str(root), *base]) == 0
    assert stored_labels(idx)[rows[0][0]] == {"style": "changed"}
    # the remembered CSV disappears: the stored labels stay, with one warning
    labels.unlink()
    capsys.readouterr()
    assert main(["-q", "index", str(root), *base]) == 0
    err = capsys.readouterr().err
    assert err.count("is gone") == 1 and str(labels.resolve()) in err, err
    assert {p: v.get("style") for p, v in stored_labels(idx).items()} == changed
    # another CSV replaces them; --artist-from-folder adds the artist; both are remembered
    other = tmp_path / "other.csv"
    write_labels_csv(other, [(p, "school-" + s) for p, s in rows], column="school")
    assert main(["-q", "index", str(root), *base, "--labels", str(other), "--artist-from-folder"]) == 0
    assert main(["-q", "index", str(root), *base]) == 0
    got = stored_labels(idx)
    assert all(got[p] == {"school": "school-" + s, "artist": s} for p, s in rows), got
    # --no-artist-from-folder drops the artist only; --no-labels clears the CSV's labels, and stays cleared
    assert main(["-q", "index", str(root), *base, "--no-artist-from-folder"]) == 0
    assert all(v == {"school": "school-" + styled[p]} for p, v in stored_labels(idx).items())
    assert main(["-q", "index", str(root), *base, "--no-labels"]) == 0
    assert all(v == {} for v in stored_labels(idx).values())
    shutil.copy(other, root.parent / "labels.csv")  # even a labels.csv appearing in the folder's parent...
    write_labels_csv(root / "labels.csv", rows, column="style")  # ...or in the folder: cleared means none
    try:
        assert main(["-q", "index", str(root), *base]) == 0
        assert all(v == {} for v in stored_labels(idx).values())
    finally:
        (root / "labels.csv").unlink()
    capsys.readouterr()


def test_the_app_s_way_in_uses_the_remembered_labels(indexed, tmp_path):
    """The app opens a folder with no labels given (Controller.open_folder -> Collection): the remembered CSV
    is used; a CSV given that does not exist stops the opening before anything is created."""
    root, idx, labels, rows, _ = indexed
    with Collection(root, index_dir=idx, settings=Settings(**SMALL)) as col:
        assert col.labels_csv == labels.resolve()
        assert col.labels_choice.note is None and not col.labels_choice.keep_stored
    labels.rename(tmp_path / "moved.csv")
    with Collection(root, index_dir=idx, settings=Settings(**SMALL)) as col:
        assert col.labels_choice.keep_stored and "is gone" in col.labels_choice.note
        run(col.update())
    assert {p: v.get("style") for p, v in stored_labels(idx).items()} == dict(rows)
    with pytest.raises(ArtStyleError, match="does not exist"):
        Collection(root, index_dir=tmp_path / "new-index", labels_csv=tmp_path / "nope.csv")
    assert not (tmp_path / "new-index").exists()


def test_an_index_that_remembers_no_labels_source_keeps_its_labels(indexed):
    """An index made before labels were remembered (or by a run without labels): a plain run keeps them."""
    root, idx, labels, rows, base = indexed
    st = IndexStore(idx)
    try:
        st.db.execute("DELETE FROM meta WHERE key='labels_source'")
        st.db.commit()
    finally:
        st.close()
    assert main(["-q", "index", str(root), *base]) == 0
    assert {p: v.get("style") for p, v in stored_labels(idx).items()} == dict(rows)


def test_evaluate_uses_the_labels_given(indexed, tmp_path, capsys):
    root, idx, _, rows, base = indexed
    other = tmp_path / "schools.csv"
    write_labels_csv(other, [(p, "north" if i % 2 else "south") for i, (p, _) in enumerate(rows)], column="school")
    before = stored_labels(idx)
    capsys.readouterr()
    assert main(["-q", "evaluate", str(root), *base, "--label", "school", "--labels", str(other), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["label"] == "school" and res["n"] == len(rows)
    assert main(["-q", "evaluate", str(root), *base, "--label", "school"]) == 1  # not remembered: evaluate only reads
    assert "No painting has a 'school' label" in capsys.readouterr().err
    assert stored_labels(idx) == before


def test_skipped_label_rows_are_reported(indexed, tmp_path, capsys):
    root, idx, _, rows, base = indexed
    messy = tmp_path / "messy.csv"
    with open(messy, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "style"])
        for p, s in rows:
            w.writerow([p, s])
        w.writerow(["/elsewhere/x.jpg", "a"])
        w.writerow(["", "no path"])
        w.writerow([rows[0][0], "again"])
        w.writerow(["../up.jpg", "\x1b]0;pwned\x07"])
    capsys.readouterr()
    assert main(["-q", "index", str(root), *base, "--labels", str(messy)]) == 0
    err = capsys.readouterr().err
    assert "4 rows of the labels file" in err and "skipped" in err, err
    assert "line 10" in err and "line 11" in err and "and 1 more" in err, err
    assert not no_control_characters(err)


# =========================================================================== item 10: read-only commands
READ_ONLY = [
    ["similar", "{q}"], ["similar", "{q}", "--json"], ["topics"], ["topics", "--json"], ["problems"],
    ["evaluate", "--label", "style"], ["map"], ["map", "--method", "pca"], ["export", "{out}"],
]


def _read_only_commands(root, rows, base, out):
    for cmd in READ_ONLY:
        args = [a.format(q=rows[0][0], out=out) for a in cmd]
        yield ["-q", args[0], str(root), *args[1:], *base]


def test_read_only_commands_write_nothing(indexed, tmp_path, capsys):
    """Once the derived caches exist (the analysis, saved by `index`; a map layout, saved by the first `map`),
    the commands that only read change no file of the index: bytes and mtimes, the database included."""
    root, idx, _, rows, base = indexed
    for method in ("auto", "pca"):  # the map's layout cache (a derived file, saved at best)
        assert main(["-q", "map", str(root), "--method", method, *base]) == 0
    capsys.readouterr()
    before = snapshot(idx)
    for argv in _read_only_commands(root, rows, base, tmp_path / "out"):
        assert main(argv) == 0, (argv, capsys.readouterr().err)
    capsys.readouterr()
    assert snapshot(idx) == before


def test_read_only_commands_work_on_a_full_disk(indexed, tmp_path, capsys):
    """Every write fails with ENOSPC (SQLite and files): the read-only commands still answer."""
    root, idx, _, rows, base = indexed
    before = snapshot(idx)

    def disk_full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    real_connect = sqlite3.connect

    def full_connect(path, *args, **kwargs):  # the index database cannot grow: every write fails
        db = real_connect(path, *args, **kwargs)
        if "mode=ro" not in str(path):
            db.set_authorizer(lambda action, *_: sqlite3.SQLITE_DENY if action in (
                sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE) else sqlite3.SQLITE_OK)
        return db

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(store.os, "fsync", disk_full)
        mp.setattr(store.tempfile, "mkstemp", disk_full)
        mp.setattr(store.sqlite3, "connect", full_connect)
        for argv in _read_only_commands(root, rows, base, tmp_path / "out"):
            if argv[1] == "export":
                continue  # its output folder is on the full disk too: a clear error (test_robustness)
            assert main(argv) == 0, (argv, capsys.readouterr().err)
    capsys.readouterr()
    # the map's layout cache could not be saved (the lock was taken for it); nothing else was touched
    assert snapshot(idx, TRANSIENT + LOCKS) == {k: v for k, v in before.items() if k not in LOCKS}


def _make_immutable(paths: list[Path]) -> bool:
    if not shutil.which("chattr"):
        return False
    return subprocess.run(["chattr", "+i", *map(str, paths)], capture_output=True).returncode == 0


def test_read_only_commands_work_on_a_read_only_index_folder(indexed, tmp_path, capsys):
    """A really read-only index folder (chmod a-w; as root chattr +i, where the file system has it)."""
    root, idx, _, rows, base = indexed
    entries = sorted(idx.rglob("*"), reverse=True) + [idx]
    before = snapshot(idx)
    if IS_ROOT:
        if not _make_immutable(entries):
            pytest.skip("root ignores chmod and chattr +i is not available here "
                        "(test_read_only_commands_work_on_a_full_disk covers the same code path)")
    else:
        for p in entries:
            p.chmod(p.stat().st_mode & ~0o222)
    try:
        for argv in _read_only_commands(root, rows, base, tmp_path / "out"):
            assert main(argv) == 0, (argv, capsys.readouterr().err)
        assert main(["-q", "index", str(root), *base]) == 1  # a writing command: a clear error
        err = capsys.readouterr().err
        assert "Could not write" in err and "Traceback" not in err, err
    finally:
        if IS_ROOT:
            subprocess.run(["chattr", "-i", *map(str, entries)], check=True)
        else:
            for p in entries:
                p.chmod(p.stat().st_mode | 0o200)
    assert snapshot(idx) == before


def test_settings_given_to_a_reading_command_are_still_remembered(indexed, capsys):
    """A command given new settings changes the index as before (settings given once are remembered)."""
    root, idx, _, rows, base = indexed
    assert main(["-q", "topics", str(root), *base, "--k", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["k"] == 3
    st = IndexStore(idx, readonly=True)
    try:
        assert json.loads(st.get_meta("settings"))["k"] == 3
    finally:
        st.close()


# =========================================================================== item 5: hints and messages
def test_a_command_on_a_missing_index_creates_nothing_and_its_hint_keeps_the_options(indexed, tmp_path, capsys):
    root, _, labels, rows, _ = indexed
    missing = tmp_path / "no such index"
    default = index_dir_for(root)
    for cmd in (["similar", rows[0][0]], ["topics"], ["problems"], ["map"], ["duplicates"],
                ["export", str(tmp_path / "o")],
                ["evaluate", "--label", "style"], ["adapt", "--label", "style"], ["topics", "--name", "1=x"],
                ["similar", rows[0][0], "--blend", "deep=1"]):
        assert main(["-q", cmd[0], str(root), *cmd[1:], "--index-dir", str(missing), "--labels", str(labels)]) == 1
        err = capsys.readouterr().err
        assert "artstyle index" in err and f"--index-dir '{missing}'" in err and f"--labels {labels}" in err, err
        assert main(["-q", cmd[0], str(root), *cmd[1:]]) == 1  # the default index folder
        assert "Traceback" not in capsys.readouterr().err
    assert not missing.exists() and not default.exists()


def test_every_hint_keeps_the_options_that_pick_the_index():
    from artstyle_gui.cli import _hint, build_parser

    args = build_parser().parse_args(["similar", "/my paintings", "x.jpg", "--index-dir", "/idx", "--labels", "/l.csv",
                                      "--artist-from-folder", "--weights", "mine"])
    msg = _hint(ArtStyleError("Run `artstyle adapt FOLDER --label artist` (or style); `artstyle index` first; "
                              "run `artstyle index /my paintings --refit`."), args)
    common = "'/my paintings' --index-dir /idx --labels /l.csv --artist-from-folder --weights mine"
    assert f"`artstyle adapt {common} --label artist`" in msg, msg
    assert f"`artstyle index {common}` first" in msg, msg
    assert f"`artstyle index {common} --refit`" in msg, msg


def test_an_empty_index_hint_keeps_the_index_dir(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    idx = tmp_path / "idx"
    assert main(["-q", "index", str(empty), "--index-dir", str(idx)]) == 0
    assert main(["-q", "similar", str(empty), "x.jpg", "--index-dir", str(idx)]) == 1
    err = capsys.readouterr().err
    assert f"`artstyle index {empty} --index-dir {idx}`" in err, err


def test_progress_shows_a_rate_only_where_it_means_something(capsys):
    from artstyle_gui.cli import drive

    def gen():
        yield Progress("scan", 1000, None, "found 1,000 images")
        yield Progress("scan", 4096, 4096, "found 4,096 images")
        yield Progress("load-model", 0, 1, "loading \x1b]0;title\x07")
        for i in range(0, 9, 4):
            yield Progress("extract", i, 8, f"{i}/8 images")
        return 1

    assert drive(gen(), quiet=False) == 1
    err = capsys.readouterr().err
    scan = [part for part in err.split("\r") if part.startswith("Scanning")]
    assert scan and not any("/s" in part for part in scan), scan
    assert any("img/s" in part for part in err.split("\r") if part.startswith("Extracting"))
    assert "\x1b" not in err and "\\x1b]0;title\\x07" in err


def test_duplicates_says_how_many_paintings_it_looked_at(indexed):
    root, idx, _, rows, _ = indexed
    with Collection(root, index_dir=idx, readonly=True, settings=Settings(**SMALL)) as col:
        col.load_analysis()
        events, groups = collect(col.find_duplicates(threshold=0.999))
    msgs = [e.message for e in events if "candidate pair" in e.message]
    assert msgs == [f"0 candidate pairs (similarity >= 0.999) among {len(rows)} paintings"], msgs
    assert groups == []


# =========================================================================== item 14: no raw tracebacks
def test_similar_with_a_count_below_one_is_a_usage_error(indexed, capsys):
    root, _, _, rows, base = indexed
    for k in ("-5", "0", "x"):
        with pytest.raises(SystemExit) as e:
            main(["-q", "similar", str(root), rows[0][0], "-k", k, *base])
        assert e.value.code == 2
        assert "-k" in capsys.readouterr().err


def test_export_into_an_existing_file_is_a_clear_error(indexed, tmp_path, capsys):
    root, _, _, _, base = indexed
    f = tmp_path / "a-file.csv"
    f.write_text("keep me")
    assert main(["-q", "export", str(root), str(f), *base]) == 1
    err = capsys.readouterr().err
    assert "is a file" in err and "Traceback" not in err
    assert f.read_text() == "keep me"
    assert main(["-q", "export", str(root), str(f / "sub"), *base]) == 1  # a folder under a file
    err = capsys.readouterr().err
    assert "Traceback" not in err and str(f) in err, err


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "artstyle_gui.cli", *args]


def test_a_reader_that_goes_away_ends_the_command_quietly(indexed):
    """`artstyle topics ... | head -1`, and the same with the reader gone before the first write."""
    root, _, _, _, base = indexed
    env = dict(os.environ, ARTSTYLE_OFFLINE="1")
    cmd = " ".join(map(str, _cli("topics", str(root), *base, "--top", "8")))
    r = subprocess.run(["bash", "-c", f"set -o pipefail; {cmd} | head -1"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.stdout.count("\n") == 1 and "topics" in r.stdout, r.stdout
    for bad in ("Traceback", "BrokenPipe", "Exception ignored"):
        assert bad not in r.stderr, r.stderr
    assert r.returncode in (0, 141), r
    p = subprocess.Popen(_cli("topics", str(root), *base), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    p.stdout.close()  # gone before the command prints anything
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err, err


# =========================================================================== item 13: terminal escapes
HOSTILE = ["\x1b]0;pwned\x07title", "\x1b[2J\x1b[Hclear", "\x1b[31mred\x1b[0m", "\u009b31mC1", "rlo\u202egpj.exe",
           "lone\udcffbyte"]


def test_printable_escapes_everything_a_terminal_acts_on():
    for ch in [chr(c) for c in range(32)] + ["\x7f"] + [chr(c) for c in range(0x80, 0xa0)] + ["\ud800", "\u2028"]:
        assert printable(f"a{ch}b").isprintable(), repr(ch)
    assert printable("lone\udcffbyte") == "lone\\xffbyte"  # a byte of a non-UTF-8 name
    assert printable("\x1b]0;x\x07") == "\\x1b]0;x\\x07"
    assert printable("Café, 東京 ok") == "Café, 東京 ok"


@pytest.fixture
def hostile_names(tmp_path):
    """A collection whose file names hold every ASCII control character a file system allows (all but NUL
    and '/'), terminal escape sequences, a C1 control, a right-to-left override and a non-UTF-8 byte;
    one unreadable file with an escape in its name; a label with an escape."""
    root = tmp_path / "names"
    root.mkdir()
    names = [f"c{c:02x}{chr(c)}x.jpg" for c in [*range(1, 32), 0x7f]] + [f"{h}.jpg" for h in HOSTILE]
    for i, name in enumerate(names):
        path = os.path.join(os.fsencode(root), os.fsencode(name))
        make_painting(("swirl", "blocks", "stripes", "pointillist")[i % 4], i, (64, 48)).save(path.decode(
            "utf-8", "surrogateescape"), "JPEG")
    (root / "broken\x1b[31m.jpg").write_bytes(b"not an image \x1b]0;pwned\x07")
    labels = tmp_path / "labels.csv"
    with open(labels, "w", newline="", encoding="utf-8", errors="surrogateescape") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "artist"])
        for i, name in enumerate(names):
            w.writerow([name, f"\x1b[31mArtist{i % 2}\x1b]0;owned\x07"])
    return root, labels, names


def test_names_and_labels_with_control_characters_are_printed_escaped(hostile_names, tmp_path, capsys):
    root, labels, names = hostile_names
    base = ["--index-dir", str(tmp_path / "idx")]
    with Collection(root, settings=Settings(**SMALL), index_dir=tmp_path / "idx") as col:
        col.files.save_settings()  # small settings, reused by the CLI
    outputs = []
    assert main(["index", str(root), *base, "--labels", str(labels)]) == 0  # with progress bars
    outputs.append(capsys.readouterr())
    q = names[0]
    for argv in (["similar", str(root), q, "-k", "5"], ["problems", str(root)], ["topics", str(root), "--top", "40"],
                 ["duplicates", str(root), "--threshold", "0.01"], ["evaluate", str(root), "--label", "artist"],
                 ["similar", str(root), q, "--raise", "1"], ["similar", str(root), "nope\x1b[2J.jpg"]):
        code = main(["-q", *argv, *base])
        outputs.append(capsys.readouterr())
        assert code in (0, 1), argv
    for cap in outputs:
        assert not no_control_characters(cap.out), no_control_characters(cap.out)
        assert not no_control_characters(cap.err.replace("\r", "")), no_control_characters(cap.err)
        assert "Traceback" not in cap.err
    text = "".join(c.out + c.err for c in outputs)
    assert "\\x1b]0;pwned\\x07" in text and "broken\\x1b[31m.jpg" in text and "\\x1b[31mArtist" in text
    # --json is strict JSON (valid UTF-8): names come back exact, a name that is not UTF-8 in the escaped form
    # of the exports, which unescape_text turns back into the name
    from artstyle_gui.core.explore.summaries import unescape_text

    assert main(["-q", "similar", str(root), q, "-k", str(len(names)), "--json", *base]) == 0
    out = capsys.readouterr().out
    out.encode("utf-8")  # no lone surrogates
    got = {unescape_text(r["path"]) for r in json.loads(out)}
    assert got <= set(names) and len(got) >= len(names) - 1
