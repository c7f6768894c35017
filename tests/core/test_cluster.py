"""Indexing on a Ray cluster (core/index/cluster.py, `artstyle index --ray`): a real local Ray cluster of
2 CPUs started inside the test module, a real actor pool, the real offline backbone.

CI installs the ``cluster`` extra and sets ARTSTYLE_REQUIRE_CLUSTER, so these run there (a missing Ray fails);
without Ray (a desktop install) they are skipped, except the one that checks the message --ray gives then."""

from __future__ import annotations

import os
import shutil
import signal
import sys
from pathlib import Path

import pytest

from artstyle_gui.core.errors import ArtStyleError
from artstyle_gui.core.index.collection import Collection
from artstyle_gui.core.model import Settings
from artstyle_gui.core.progress import run

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "sample_paintings"


@pytest.fixture(scope="module")
def ray_cluster():
    if os.environ.get("ARTSTYLE_REQUIRE_CLUSTER"):  # CI installs the extra: these tests are never skipped there
        import ray
        import ray.data  # noqa: F401
    else:
        ray = pytest.importorskip("ray", reason="the cluster extra is not installed")
        pytest.importorskip("ray.data")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def _extractor(**kw):
    from artstyle_gui.core.index.cluster import ray_extractor

    return ray_extractor(**kw)


def _features(col: Collection) -> dict[str, bytes]:
    """relpath -> stored feature blob of every readable painting."""
    fs, _ = col.files.featureset()
    recs = [r for r in col.records() if r.status == "ok"]
    blobs = col.store.get_vectors(fs, [r.hash for r in recs])
    return {r.relpath: blobs[r.hash] for r in recs}


def _records(col: Collection) -> dict[str, tuple]:
    return {r.relpath: (r.hash, r.status, r.error, r.width, r.height, tuple(sorted(r.labels.items())))
            for r in col.records()}


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The sample collection indexed by the local (single-process) path: the reference."""
    idx = tmp_path_factory.mktemp("local-index")
    col = Collection(SAMPLE, settings=Settings(), index_dir=idx)
    rep = run(col.update())
    yield col, rep
    col.close()


def test_ray_features_equal_the_local_run(ray_cluster, local_run, tmp_path):
    local, local_rep = local_run
    col = Collection(SAMPLE, settings=Settings(), index_dir=tmp_path / "ray-index")
    plans = []
    rep = run(col.update(extractor=_extractor(on_plan=plans.append)))
    assert rep.extracted == local_rep.extracted == 48 and not rep.failed
    assert plans and plans[0].actors >= 1 and plans[0].cpus >= 1
    # the same bytes: same backbone, same runtime, the same images in each network pass
    assert _features(col) == _features(local)
    assert _records(col) == _records(local)
    # the index written by the driver is a normal index: the analysis runs on it as on a local one
    an = run(col.analyse())
    assert an is not None and an.n == 48
    col.close()


def test_second_run_extracts_nothing_and_resumes_an_interrupted_one(ray_cluster, tmp_path):
    idx = tmp_path / "index"
    st = Settings(batch_size=4)
    col = Collection(SAMPLE, settings=st, index_dir=idx)
    gen = col.update(extractor=_extractor())
    committed = 0
    for p in gen:  # stop the run after its first committed batch (Ctrl-C, a lost driver)
        if p.stage == "extract" and p.done:
            committed = p.done
            break
    gen.close()
    col.close()
    assert 0 < committed < 48
    col = Collection(SAMPLE, settings=st, index_dir=idx)
    kept = len([r for r in col.records() if r.status == "ok"])
    assert kept >= committed  # every committed batch survived the interruption
    rep = run(col.update(extractor=_extractor()))
    assert rep.extracted == 48 - kept and rep.unchanged == kept  # only the rest is extracted
    assert len(_features(col)) == 48
    rep = run(col.update(extractor=_extractor()))  # nothing left to do: the cluster is not even asked
    assert rep.extracted == 0 and rep.unchanged == 48
    col.close()


def _ppid(pid: int) -> int | None:
    try:
        return int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _actor_pids() -> list[int]:
    """Processes of this test's Ray actors that run the extractor: Ray names the process after it, and its
    parent is the raylet this process started (other Ray clusters on the machine are left alone)."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes()
            except OSError:
                continue
            pid = int(d.name)
            if b"_BatchExtractor" in cmd and pid != os.getpid() and _ppid(_ppid(pid) or 0) == os.getpid():
                pids.append(pid)
    return pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the actor's process in /proc")
def test_a_killed_actor_loses_nothing_and_duplicates_nothing(ray_cluster, local_run, tmp_path):
    """SIGKILL the worker after the first committed batch: Ray restarts it and retries what it held. The run
    must end with every file once, the same bytes, and batches written by the new worker (so the kill did
    land mid-run); a machine fast enough to finish before the kill gets another try."""
    from artstyle_gui.core.index.cluster import ray_extractor

    local, _ = local_run
    st = Settings(batch_size=1)  # 48 batches, 4 per call: the run is still going when the worker dies
    for attempt in range(3):
        col = Collection(SAMPLE, settings=st, index_dir=tmp_path / f"index{attempt}")
        runs = []
        killed: list[int] = []

        def extractor(c, todo, known):
            runs.append(ray_extractor()(c, todo, known))
            return runs[-1]

        gen = col.update(extractor=extractor)
        last = None
        try:
            while True:
                last = next(gen)
                if last.stage == "extract" and last.done and not killed:
                    pids = _actor_pids()
                    assert pids, "no extractor actor process found"
                    for pid in pids:
                        os.kill(pid, signal.SIGKILL)
                    killed.extend(pids)
        except StopIteration as stop:
            rep = stop.value
        assert killed
        assert rep.extracted == 48 and not rep.failed  # Ray restarted the worker and retried its batches
        assert rep.reused == 0 and last.done == last.total == 48  # no batch committed twice
        recs = col.records()
        assert len(recs) == 48 and all(r.status == "ok" for r in recs)
        assert _features(col) == _features(local)  # nothing lost, nothing changed
        col.close()
        after = {w for w in runs[0].workers if int(w.rsplit(":", 1)[1]) not in killed}
        if after:  # a new worker wrote batches after the kill
            return
    pytest.fail("the worker finished every batch before it could be killed, three times")


def test_unreadable_files_end_up_in_the_problems_list(ray_cluster, tmp_path):
    root = tmp_path / "paintings"
    shutil.copytree(SAMPLE / "baroque", root / "baroque")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "empty.png").write_bytes(b"")
    col = Collection(root, settings=Settings(), index_dir=tmp_path / "index")
    rep = run(col.update(extractor=_extractor()))
    problems = dict(col.problems())
    assert set(problems) == {"broken.jpg", "empty.png"} == {p for p, _ in rep.failed}
    assert all(problems.values())
    assert rep.extracted == len(list((root / "baroque").iterdir()))
    col.close()


def test_a_collection_the_workers_cannot_see_stops_the_run_with_a_message(ray_cluster, tmp_path):
    """A URL only this process can read (fsspec's in-memory filesystem): the workers cannot, and say so;
    nothing is marked unreadable."""
    fsspec = pytest.importorskip("fsspec")
    mfs = fsspec.filesystem("memory")
    mfs.pipe_file("/only-here/paintings/a.jpg", (SAMPLE / "baroque" / "0001.jpg").read_bytes())
    col = Collection("memory://only-here/paintings", settings=Settings(), index_dir=tmp_path / "index")
    with pytest.raises(ArtStyleError, match=r"The Ray workers failed: On the Ray node .*: memory://only-here/paintings "
                                            r"is not a folder.*the same command resumes"):
        run(col.update(extractor=_extractor()))
    assert not col.records()
    col.close()
    mfs.rm("/only-here", recursive=True)


def test_cli_index_with_ray(ray_cluster, local_run, tmp_path, capsys):
    from artstyle_gui.cli import main

    local, _ = local_run
    idx = tmp_path / "index"
    assert main(["index", str(SAMPLE), "--index-dir", str(idx), "--ray", "--no-analysis"]) == 0
    err = capsys.readouterr().err
    assert "extracting on the Ray cluster: 1 worker (2 CPUs each) on 1 node" in err
    with Collection(SAMPLE, index_dir=idx, readonly=True) as col:
        assert _features(col) == _features(local)
    assert main(["index", str(SAMPLE), "--index-dir", str(idx), "--ray"]) == 0
    out = capsys.readouterr().out
    assert "0 extracted" in out and "48 unchanged" in out and "48 paintings indexed" in out


def test_ray_options_need_ray_flag(tmp_path, capsys):
    from artstyle_gui.cli import main

    assert main(["index", str(SAMPLE), "--index-dir", str(tmp_path / "i"), "--ray-workers", "2"]) != 0
    assert "--ray-workers, --ray-cpus and --ray-gpus go with --ray" in capsys.readouterr().err
    assert not (tmp_path / "i").exists()


def test_without_ray_the_command_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    from artstyle_gui.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as on a desktop install
    with pytest.raises(ArtStyleError, match=r'pip install "artstyle-gui\[cluster\]"'):
        _extractor()
    assert main(["index", str(SAMPLE), "--index-dir", str(tmp_path / "i"), "--ray"]) != 0
    assert 'pip install "artstyle-gui[cluster]"' in capsys.readouterr().err


def test_plan_follows_the_cluster(ray_cluster):
    from artstyle_gui.core.index.cluster import plan

    p = plan(ray_cluster)
    assert (p.actors, p.cpus, p.gpus, p.batch_size) == (1, 2.0, 0.0, 16)
    p = plan(ray_cluster, cpus_per_actor=1)
    assert (p.actors, p.cpus) == (2, 1.0)
    with pytest.raises(ArtStyleError, match="GPUs"):
        plan(ray_cluster, gpus_per_actor=1)
    with pytest.raises(ArtStyleError, match="largest node"):
        plan(ray_cluster, cpus_per_actor=8)


def _described(*nodes):
    """A stand-in for the ``ray`` module that describes a cluster of ``nodes`` ((CPUs, GPUs) each)."""
    from types import SimpleNamespace

    res = {"CPU": sum(c for c, _ in nodes), "GPU": sum(g for _, g in nodes)}
    return SimpleNamespace(cluster_resources=lambda: res,
                           nodes=lambda: [{"Alive": True, "Resources": {"CPU": c, "GPU": g}} for c, g in nodes])


def test_plan_on_uneven_clusters():
    from artstyle_gui.core.index.cluster import plan

    p = plan(_described((0.0, 0.0), (16.0, 0.0), (16.0, 0.0)))  # a head node with --num-cpus=0 runs no worker
    assert (p.actors, p.cpus, p.nodes) == (2, 16.0, 2)
    p = plan(_described((4.0, 0.0), (64.0, 0.0)))  # workers of the smallest node's size, as many as fit
    assert (p.actors, p.cpus) == (17, 4.0)
    p = plan(_described((32.0, 0.0), (8.0, 1.0)))  # GPU workers take their GPU node's share, not the head's
    assert (p.actors, p.cpus, p.gpus) == (1, 8.0, 1.0)
    with pytest.raises(ArtStyleError, match="no node of the Ray cluster has that"):
        plan(_described((32.0, 0.0), (8.0, 1.0)), cpus_per_actor=16)
    with pytest.raises(ArtStyleError, match="no CPUs"):
        plan(_described((0.0, 0.0)))


def test_the_device_asked_for_is_the_device_used(ray_cluster, tmp_path):
    """On a cluster with no GPU, --device cuda is an error before any work; --device cpu and --runtime onnx
    plan CPU workers (on a GPU cluster they keep the network on the CPU, as a local run does)."""
    from artstyle_gui.core.index.cluster import RayRun

    def started(**kw):
        return RayRun(str(SAMPLE), Settings(**kw), [], set(), address=None, actors=None, cpus_per_actor=None,
                      gpus_per_actor=None).start()

    assert started(device="cpu").plan.gpus == 0 and started(runtime="onnx").plan.gpus == 0
    with pytest.raises(ArtStyleError, match="GPUs"):
        started(device="cuda")
    with pytest.raises(ArtStyleError, match="--ray-gpus 0"):
        RayRun(str(SAMPLE), Settings(device="cuda"), [], set(), address=None, actors=None, cpus_per_actor=None,
               gpus_per_actor=0.0).start()


def test_plan_on_a_gpu_cluster():
    """Two nodes of 16 CPUs and 2 GPUs each (described as Ray describes them): one worker per GPU, each with
    its share of the CPUs, in the GPU batches of a local GPU run."""
    from types import SimpleNamespace

    from artstyle_gui.core.index.cluster import GPU_BATCH, plan

    node = {"Alive": True, "Resources": {"CPU": 16.0, "GPU": 2.0}}
    fake = SimpleNamespace(cluster_resources=lambda: {"CPU": 32.0, "GPU": 4.0}, nodes=lambda: [node, dict(node)])
    p = plan(fake)
    assert (p.actors, p.cpus, p.gpus, p.batch_size, p.nodes) == (4, 8.0, 1.0, GPU_BATCH, 2)
    assert "4 workers (1 GPU + 8 CPUs each) on 2 nodes" == p.describe()
    p = plan(fake, gpus_per_actor=0)
    assert (p.actors, p.cpus, p.gpus, p.batch_size) == (2, 16.0, 0.0, 16)


def test_known_hashes_set():
    from artstyle_gui.core.ingest.extract import KnownHashes

    hs = [f"{i:032x}" for i in (0, 1, 255, 2**100)]
    k = KnownHashes(hs + [""])
    assert len(k) == 4 and all(h in k for h in hs)
    assert f"{2:032x}" not in k and "zz" not in k and None not in k and "" not in k
    assert f"{1:032x}" not in KnownHashes([])


def test_ray_reads_a_collection_by_url(ray_cluster, local_run, tmp_path):
    """The workers read through fsspec (a file:// URL here: what every node of a cluster can open)."""
    local, _ = local_run
    col = Collection(f"file://{SAMPLE}", settings=Settings(), index_dir=tmp_path / "index")
    assert col.remote is not None
    rep = run(col.update(extractor=_extractor()))
    assert rep.extracted == 48
    assert _features(col) == _features(local)
    col.close()
