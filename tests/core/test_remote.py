"""Collections at an fsspec URL (core/ingest/remote.py): listed and read through fsspec, indexed like a
folder, never written; steps that read the images again say they need a local folder."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from artstyle_gui.core.errors import ArtStyleError
from artstyle_gui.core.index.collection import Collection
from artstyle_gui.core.ingest.remote import _mtime_ns, is_url
from artstyle_gui.core.ingest.store import check_outside, index_dir_for
from artstyle_gui.core.model import Settings
from artstyle_gui.core.progress import run

fsspec = pytest.importorskip("fsspec")
SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "sample_paintings"


@pytest.fixture
def bucket(request):
    """The sample collection copied into fsspec's in-memory filesystem (a stand-in for s3://: the same
    code path, listing with details and reading bytes), plus a file that is not an image and a hidden one."""
    mfs = fsspec.filesystem("memory")
    base = f"/bucket-{request.node.name[:40]}/paintings"
    for p in SAMPLE.rglob("*"):
        if p.is_file():
            mfs.pipe_file(f"{base}/{p.relative_to(SAMPLE).as_posix()}", p.read_bytes())
    mfs.pipe_file(f"{base}/notes.txt", b"not an image")
    mfs.pipe_file(f"{base}/.hidden/x.jpg", (SAMPLE / "baroque" / "0001.jpg").read_bytes())
    yield f"memory://{base.lstrip('/')}", mfs, base
    mfs.rm(base.rsplit("/", 1)[0], recursive=True)


def test_is_url():
    assert is_url("s3://bucket/prefix") and is_url("file:///tmp/x") and is_url("gcs://b")
    assert not is_url("/tmp/x") and not is_url("C:\\paintings") and not is_url("relative/path")
    assert not is_url("weird name://x") and not is_url("://x")


def test_a_url_collection_is_indexed_like_a_folder(bucket, tmp_path):
    url, mfs, base = bucket
    local = Collection(SAMPLE, settings=Settings(), index_dir=tmp_path / "local")
    run(local.update())
    col = Collection(url, settings=Settings(), index_dir=tmp_path / "remote", labels_csv=SAMPLE / "labels.csv")
    rep = run(col.update())
    assert rep.extracted == 48 and not rep.failed  # notes.txt and the hidden folder are not listed
    fs, _ = col.files.featureset()
    lfs, _ = local.files.featureset()
    recs = {r.relpath: r for r in col.records()}
    lrecs = {r.relpath: r for r in local.records()}
    assert set(recs) == set(lrecs)
    assert col.store.get_vectors(fs, [r.hash for r in recs.values()]) == \
        local.store.get_vectors(lfs, [r.hash for r in lrecs.values()])  # the same bytes as from the folder
    assert recs["baroque/0001.jpg"].labels == lrecs["baroque/0001.jpg"].labels != {}  # --labels works
    assert run(col.update()).extracted == 0  # unchanged objects are skipped
    # an object replaced (other content: reused by its hash), one removed
    mfs.pipe_file(f"{base}/baroque/0001.jpg", (SAMPLE / "romanticism" / "0014.jpg").read_bytes())
    mfs.rm(f"{base}/baroque/0182.jpg")
    rep = run(col.update())
    assert (rep.extracted, rep.reused, rep.removed, rep.unchanged) == (0, 1, 1, 46)
    an = run(col.analyse())
    assert an is not None and an.n == 47 and col.similar(0, 5)
    with pytest.raises(ArtStyleError, match="needs the collection in a local folder"):
        run(col.find_duplicates())
    col.close()
    local.close()


def test_unreadable_objects_are_problems(bucket, tmp_path):
    url, mfs, base = bucket
    mfs.pipe_file(f"{base}/broken.jpg", b"\xff\xd8\xff\xe0 truncated")
    col = Collection(url, settings=Settings(), index_dir=tmp_path / "idx")
    rep = run(col.update())
    assert dict(rep.failed).keys() == {"broken.jpg"} and dict(col.problems()).keys() == {"broken.jpg"}
    col.close()


def test_url_errors_are_clear(tmp_path):
    with pytest.raises(ArtStyleError, match="not a folder"):
        Collection("memory://no-such-bucket/x", index_dir=tmp_path / "i")
    with pytest.raises(ArtStyleError, match="Cannot read nosuchprotocol://x"):
        Collection("nosuchprotocol://x", index_dir=tmp_path / "i")
    assert not (tmp_path / "i").exists()


def test_index_dir_and_outside_check_for_urls(tmp_path):
    a, b = index_dir_for("s3://bucket/paintings"), index_dir_for("s3://bucket/paintings/")
    assert a == b and a.name.startswith("paintings-") and a != index_dir_for("s3://other/paintings")
    check_outside("s3://bucket/paintings", tmp_path / "idx")  # nothing local to protect
    (tmp_path / "coll").mkdir()
    with pytest.raises(ArtStyleError, match="inside the collection"):
        check_outside(f"file://{tmp_path / 'coll'}", tmp_path / "coll" / "idx")


def test_mtime_from_what_backends_list():
    t = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert _mtime_ns({"LastModified": t}) == int(t.timestamp() * 1e9)  # s3fs
    assert _mtime_ns({"mtime": 1.5}) == 1_500_000_000  # local
    assert _mtime_ns({"updated": "2026-01-02T03:04:05Z"}) == int(t.timestamp() * 1e9)  # gcsfs
    assert _mtime_ns({"ETag": "a"}) != _mtime_ns({"ETag": "b"}) != 0
    assert _mtime_ns({}) == 0


def test_cli_indexes_a_url(bucket, tmp_path, capsys):
    from artstyle_gui.cli import main

    url, _, _ = bucket
    idx = tmp_path / "idx"
    assert main(["index", url, "--index-dir", str(idx), "--no-analysis"]) == 0
    assert "48 extracted" in capsys.readouterr().out
    assert main(["index", url, "--index-dir", str(idx)]) == 0
    assert "48 paintings indexed" in capsys.readouterr().out
    assert main(["similar", url, "baroque/0001.jpg", "--index-dir", str(idx), "-k", "3"]) == 0
    assert "Nearest to baroque/0001.jpg" in capsys.readouterr().out
    assert main(["duplicates", url, "--index-dir", str(idx)]) == 1
    assert "needs the collection in a local folder" in capsys.readouterr().err


def test_a_file_url_collection_finds_its_paintings_by_local_path(tmp_path):
    col = Collection(f"file://{SAMPLE}", settings=Settings(), index_dir=tmp_path / "idx")
    run(col.index())
    row = col.find(str(SAMPLE / "baroque" / "0001.jpg"))  # the local path of a painting at a file:// URL
    assert row is not None and col.analysis.relpaths[row] == "baroque/0001.jpg"
    assert col.find("baroque/0001.jpg") == row
    assert col.find(str(tmp_path / "elsewhere.jpg")) is None
    col.close()


def test_a_storage_failure_stops_the_run_and_marks_nothing_unreadable(bucket, tmp_path, monkeypatch):
    """Throttling, expired credentials, a network outage: not a bad file. The run stops with the storage's
    message, keeps what it wrote, marks no file unreadable, and the next run resumes."""
    from artstyle_gui.core.ingest.remote import StorageError

    url, mfs, base = bucket
    real = type(mfs).cat_file
    calls = {"n": 0}

    def flaky(self, path, *a, **kw):
        calls["n"] += 1
        if calls["n"] > 20:
            raise TimeoutError("connection timed out")
        return real(self, path, *a, **kw)

    monkeypatch.setattr(type(mfs), "cat_file", flaky)
    col = Collection(url, settings=Settings(batch_size=4), index_dir=tmp_path / "idx")
    with pytest.raises(StorageError, match=r"Cannot read memory://.*TimeoutError: connection timed out.*resumes"):
        run(col.update())
    recs = col.records()
    assert 0 < len(recs) < 48 and all(r.status == "ok" for r in recs)  # the batches before it stay, none failed
    monkeypatch.setattr(type(mfs), "cat_file", real)
    rep = run(col.update())
    assert rep.extracted == 48 - len(recs) and not rep.failed
    col.close()
