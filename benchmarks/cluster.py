"""Indexing on a Ray cluster against the single-process path, and the single writer's limit (docs/cluster.md).

    python benchmarks/cluster.py [--images 400] [--rounds 3] [--out docs/cluster.json]

1. ``Collection.update()`` over N/2 and N large JPEGs (2400x1800, made from wikiart7-dev paintings into the user
   cache folder, as benchmarks/perf.py makes them), a new index each time, in alternating rounds:
   *local*: the single-process path (decode threads + ONNX Runtime in this process);
   *ray, running cluster*: ``--ray`` against a local Ray cluster of this machine's CPUs that is already
   running (what a user of a standing cluster sees; the workers' start-up, model load included, is in);
   *ray, started for the run*: ``--ray`` with no cluster: Ray is started and shut down by the command.
   Times run from the start of the update (the scan) to the last commit, the network's load included on
   both paths (here for the local run, in the worker for Ray). Also the steady rate: images committed per
   second from the first committed batch to the last (bursty with Ray: blocks of batches arrive together).
   From the two sizes: time = start-up + N x per-image time, for each path.
2. The driver's writer: one SQLite transaction per batch (``put_vectors`` + ``upsert_files``) of records
   and real-sized feature blobs, as ``Collection.update`` commits them: commits/s and images/s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("ARTSTYLE_OFFLINE", "1")

from synthcoll import large_jpegs  # noqa: E402

from artstyle_gui.core.index.cluster import ray_extractor  # noqa: E402
from artstyle_gui.core.index.collection import Collection  # noqa: E402
from artstyle_gui.core.ingest.backbones import REGISTRY  # noqa: E402
from artstyle_gui.core.ingest.features import FeatureLayout  # noqa: E402
from artstyle_gui.core.ingest.store import FileRecord, IndexStore  # noqa: E402
from artstyle_gui.core.model import Settings  # noqa: E402


def timed_update(root: Path, extractor=None) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="cluster-bench-"))
    try:
        t0 = time.perf_counter()  # from the command's start: each path loads its network once (the local run
        col = Collection(root, settings=Settings(), index_dir=tmp / "idx")  # here, the Ray path in its worker)
        first = last = None
        first_done = 0
        gen = col.update(extractor=extractor)
        try:
            while True:
                p = next(gen)
                if p.stage == "extract" and p.done:
                    last = time.perf_counter()
                    if first is None:
                        first, first_done = last, p.done
        except StopIteration as stop:
            rep = stop.value
        total = time.perf_counter() - t0
        col.close()
        steady = (rep.extracted - first_done) / (last - first) if last and first and last > first else None
        return {"seconds": round(total, 2), "img_s": round(rep.extracted / total, 1),
                "steady_img_s": round(steady, 1) if steady else None, "extracted": rep.extracted,
                "failed": len(rep.failed)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def writer_rate(n: int, batch: int) -> dict:
    """Commits of ``batch`` records + feature blobs of the default layout, one transaction each."""
    layout = FeatureLayout.for_backbone(REGISTRY["effnet-lite0-art"], 8)
    rng = np.random.default_rng(0)
    tmp = Path(tempfile.mkdtemp(prefix="writer-bench-"))
    try:
        store = IndexStore(tmp)
        fs = store.featureset_id("bench", {})
        blob = rng.normal(0, 1, layout.size).astype(np.float16).tobytes()
        t0 = time.perf_counter()
        for s in range(0, n, batch):
            recs, vecs = [], []
            for i in range(s, min(n, s + batch)):
                h = f"{i:032x}"
                recs.append(FileRecord(0, f"{i // 1000:04d}/p{i:07d}.jpg", 1_000_000 + i, 1_700_000_000_000_000_000 + i,
                                       h, "ok", None, {"style": "Baroque"}, 2400, 1800))
                vecs.append((h, blob))
            with store.transaction():
                store.put_vectors(fs, vecs)
                store.upsert_files(recs)
        secs = time.perf_counter() - t0
        db_mb = os.path.getsize(tmp / "index.sqlite") / 2**20
        store.close()
        return {"images": n, "batch": batch, "seconds": round(secs, 2), "commits_s": round(n / batch / secs, 1),
                "img_s": round(n / secs), "MB_s": round(n * len(blob) / 2**20 / secs, 1), "db_MiB": round(db_mb)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--wikiart", default=str(ROOT.parent / "shared" / "data" / "wikiart7-dev"))
    ap.add_argument("--work", default=None)
    ap.add_argument("--writer-n", type=int, default=20000)
    ap.add_argument("--out", default=str(ROOT / "docs" / "cluster.json"))
    args = ap.parse_args()
    import ray

    if args.work is None:
        from platformdirs import user_cache_dir

        args.work = os.path.join(user_cache_dir("artstyle-gui"), "bench")
    wiki = sorted((Path(args.wikiart) / "images").rglob("*.jpg"))
    rng = np.random.default_rng(0)
    wiki = [wiki[i] for i in rng.permutation(len(wiki))]
    src = Path(args.work) / "large-2400x1800"
    large = large_jpegs(wiki, src, args.images)
    sizes = sorted({args.images // 2, args.images})
    roots = {}
    for n in sizes:  # exactly n files (perf.py's folder may hold more)
        roots[n] = Path(args.work) / f"cluster-{n}"
        roots[n].mkdir(parents=True, exist_ok=True)
        for p in large[:n]:
            if not (roots[n] / p.name).exists():
                os.link(p, roots[n] / p.name)
    cpus = os.cpu_count() or 2
    paths = ("local", "ray, running cluster", "ray, started for the run")
    rounds: dict[str, dict[int, list[dict]]] = {k: {n: [] for n in sizes} for k in paths}
    timed_update(roots[sizes[0]])  # warm-up: the ONNX export cache, the page cache
    for r in range(args.rounds):
        for n in sizes:
            root = roots[n]
            rounds["local"][n].append({**timed_update(root), "load": round(os.getloadavg()[0], 2)})
            ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
            try:
                rounds["ray, running cluster"][n].append({**timed_update(root, ray_extractor()),
                                                          "load": round(os.getloadavg()[0], 2)})
            finally:
                ray.shutdown()
            rounds["ray, started for the run"][n].append(
                {**timed_update(root, ray_extractor(init_kwargs={"num_cpus": cpus})),
                 "load": round(os.getloadavg()[0], 2)})
            print(r, n, {k: v[n][-1]["seconds"] for k, v in rounds.items()}, flush=True)
    # time = start-up + n x per-image time: fitted on the medians of the two sizes
    summary = {}
    for k in paths:
        med = {n: statistics.median(x["seconds"] for x in rounds[k][n]) for n in sizes}
        per = (med[sizes[-1]] - med[sizes[0]]) / (sizes[-1] - sizes[0]) if len(sizes) > 1 else None
        summary[k] = {"median_seconds": {str(n): med[n] for n in sizes},
                      "img_s_end_to_end": round(sizes[-1] / med[sizes[-1]], 1),
                      "per_image_ms": round(per * 1000, 2) if per else None,
                      "img_s_after_start": round(1 / per, 1) if per else None,
                      "start_s": round(med[sizes[-1]] - per * sizes[-1], 2) if per else None}
    base = summary["local"]
    for k in paths:
        summary[k]["time_vs_local"] = round(summary[k]["median_seconds"][str(sizes[-1])]
                                            / base["median_seconds"][str(sizes[-1])], 3)
        if base["per_image_ms"]:
            summary[k]["per_image_vs_local"] = round(summary[k]["per_image_ms"] / base["per_image_ms"], 3)
    writer = [writer_rate(args.writer_n, b) for b in (16, 64)]
    out = {"machine": {"cpus": cpus, "python": platform.python_version(), "ray": ray.__version__,
                       "date": time.strftime("%Y-%m-%d %H:%M")},
           "sizes": sizes, "rounds": {k: {str(n): v for n, v in d.items()} for k, d in rounds.items()}, "summary": summary, "writer": writer}
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({"summary": summary, "writer": writer}, indent=1))


if __name__ == "__main__":
    main()
