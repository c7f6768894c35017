"""Tests for artstyle_gui.core.scan (tree built in tmp_path; no images need decoding)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from artstyle_gui.core.errors import ArtStyleError
from artstyle_gui.core.ingest.scan import ScannedFile, iter_image_files


def touch(root: Path, rel: str, data: bytes = b"x") -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def rels(root: Path, **kw) -> list[str]:
    return [f.relpath for f in iter_image_files(root, **kw)]


needs_symlinks = pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")


def test_finds_images_sorted_and_ignores_other_files(tmp_path: Path):
    for rel in ("b.png", "a.jpg", "Monet/z.webp", "Monet/a.tif", "notes.txt", "x.jpg.txt", "Monet/readme.md",
                "Zed/a.gif", "c/d/e/deep.bmp", "noext"):
        touch(tmp_path, rel)
    assert rels(tmp_path) == ["Monet/a.tif", "Monet/z.webp", "Zed/a.gif", "a.jpg", "b.png", "c/d/e/deep.bmp"]
    assert rels(tmp_path) == rels(tmp_path)  # deterministic


def test_scanned_file_fields(tmp_path: Path):
    p = touch(tmp_path, "sub/pic.jpg", b"12345")
    os.utime(p, ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    (f,) = iter_image_files(tmp_path)
    assert f == ScannedFile("sub/pic.jpg", 5, 1_600_000_000_123_456_789)
    with pytest.raises(AttributeError):
        f.size = 3  # type: ignore[misc]


def test_extension_match_is_case_insensitive(tmp_path: Path):
    for rel in ("A.JPG", "b.Jpeg", "c.PNG", "d.TiFf"):
        touch(tmp_path, rel)
    assert rels(tmp_path) == ["A.JPG", "b.Jpeg", "c.PNG", "d.TiFf"]
    assert rels(tmp_path, extensions={"PNG", ".jpg"}) == ["A.JPG", "c.PNG"]


def test_hidden_files_and_folders_skipped(tmp_path: Path):
    for rel in (".hidden.jpg", ".thumbs/a.jpg", "ok/.b.png", "ok/c.png", ".git/objects/x.png"):
        touch(tmp_path, rel)
    assert rels(tmp_path) == ["ok/c.png"]


def test_unicode_and_odd_names(tmp_path: Path):
    names = ["Ŝtyle/Café Ñoño.jpg", "日本/浮世絵 1.png", "space dir/a b.jpg", "emoji/🎨.webp", "semi;colon,#1.png"]
    for rel in names:
        touch(tmp_path, rel)
    found = rels(tmp_path)
    assert sorted(found) == sorted(names)
    for rel in found:
        assert (tmp_path / rel).is_file()


@pytest.mark.skipif(sys.platform == "win32" or sys.platform == "darwin", reason="needs a byte-oriented file system")
def test_non_utf8_name_does_not_crash(tmp_path: Path):
    raw = os.fsencode(str(tmp_path)) + b"/bad\xff\xfename.jpg"
    with open(raw, "wb") as fh:
        fh.write(b"x")
    (f,) = iter_image_files(tmp_path)
    assert f.relpath == os.fsdecode(b"bad\xff\xfename.jpg")  # surrogate-escaped str
    assert (tmp_path / f.relpath).is_file() and f.size == 1


@needs_symlinks
def test_symlink_loop_terminates_and_no_duplicates(tmp_path: Path):
    touch(tmp_path, "a/x.jpg")
    touch(tmp_path, "b/y.jpg")
    os.symlink(tmp_path, tmp_path / "a" / "loop")  # points back to the root
    os.symlink(tmp_path / "b", tmp_path / "alias_of_b")
    os.symlink(tmp_path / "a", tmp_path / "b" / "up")
    found = rels(tmp_path)
    assert found == ["a/x.jpg", "alias_of_b/y.jpg"]  # b reached first through its alias
    assert len(found) == len(set(found))


@needs_symlinks
def test_symlinked_folder_outside_root_followed_or_not(tmp_path: Path):
    outside = tmp_path / "outside"
    touch(outside, "o.png")
    root = tmp_path / "root"
    touch(root, "r.png")
    os.symlink(outside, root / "linked")
    os.symlink(outside / "o.png", root / "file_link.png")
    os.symlink(root / "r.png", root / "inside_link.png")
    errors: list[tuple[str, str]] = []
    assert rels(root, on_error=lambda r, why: errors.append((r, why))) == ["inside_link.png", "r.png"]
    assert [r for r, _ in errors] == ["file_link.png", "linked"]  # outside: skipped and reported
    assert all("outside the collection" in why for _, why in errors)
    assert rels(root, follow_outside_links=True) == ["file_link.png", "inside_link.png", "linked/o.png", "r.png"]
    assert rels(root, follow_symlinks=False) == ["r.png"]


@needs_symlinks
def test_broken_symlink_reported(tmp_path: Path):
    touch(tmp_path, "ok.jpg")
    os.symlink(tmp_path / "missing.jpg", tmp_path / "dangling.jpg")
    errors: list[tuple[str, str]] = []
    assert rels(tmp_path, on_error=lambda r, why: errors.append((r, why))) == ["ok.jpg"]
    assert errors == [("dangling.jpg", "broken symbolic link")]


@pytest.mark.skipif(sys.platform == "win32" or (hasattr(os, "geteuid") and os.geteuid() == 0),
                    reason="permissions are not enforced for root / on Windows")
def test_unreadable_folder_reported_and_skipped(tmp_path: Path):
    touch(tmp_path, "a.jpg")
    touch(tmp_path, "locked/b.jpg")
    (tmp_path / "locked").chmod(0)
    errors: list[tuple[str, str]] = []
    try:
        assert rels(tmp_path, on_error=lambda r, why: errors.append((r, why))) == ["a.jpg"]
    finally:
        (tmp_path / "locked").chmod(0o755)
    assert errors == [("locked", "permission denied")]


def test_unreadable_folder_reported_via_monkeypatch(tmp_path: Path, monkeypatch):
    touch(tmp_path, "a.jpg")
    touch(tmp_path, "locked/b.jpg")
    touch(tmp_path, "z/c.jpg")
    real = os.scandir

    def fake_scandir(path):
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(os, "scandir", fake_scandir)
    errors: list[tuple[str, str]] = []
    assert rels(tmp_path, on_error=lambda r, why: errors.append((r, why))) == ["a.jpg", "z/c.jpg"]
    assert errors == [("locked", "permission denied")]


def test_bad_root_raises(tmp_path: Path):
    with pytest.raises(ArtStyleError, match="not found"):
        list(iter_image_files(tmp_path / "missing"))
    f = touch(tmp_path, "file.jpg")
    with pytest.raises(ArtStyleError, match="Not a folder"):
        list(iter_image_files(f))


def test_many_non_image_files_are_fast(tmp_path: Path, monkeypatch):
    for d in range(10):
        sub = tmp_path / f"d{d:02}"
        sub.mkdir()
        for i in range(1000):
            (sub / f"f{i}.txt").touch()
        (sub / "pic.jpg").touch()
    stat_calls: list[str] = []
    real_stat = os.stat

    def counting_stat(path, *args, **kwargs):
        stat_calls.append(os.fspath(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", counting_stat)
    start = time.perf_counter()
    found = rels(tmp_path)
    elapsed = time.perf_counter() - start
    assert len(found) == 10
    assert len(stat_calls) <= 11  # root + folders only: non-image files are never stat'ed
    assert elapsed < 3.0, f"10k entries took {elapsed:.2f}s"
