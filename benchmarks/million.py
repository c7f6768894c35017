"""Analysis and the app at a million paintings (issue 19, part 2).

    python benchmarks/million.py hnsw     [--n 1000000]   # hnswlib build with 1 thread vs all threads
    python benchmarks/million.py build    [--n 1000000]   # the synthetic 1M collection + its index (cached)
    python benchmarks/million.py analysis [--n 1000000]   # Collection.analyse() at 1M: time, peak RSS
    python benchmarks/million.py app      [--n 1000000]   # the app opens it: RSS, clicks, scrolling, open time

Each command merges its figures into ``--json`` (default docs/million.json); ``report`` re-renders the
section of docs/benchmarks.md from it. Run each in its own process (peak RSS is per process).

What is synthetic and what is measured:

* **hnsw**: vectors shaped like the search embedding (clusters over a decaying PCA spectrum, as in
  docs/benchmarks.md section 2), dim 256, hnswlib with the engine's M=16, ef_construction=200; built
  once with ``num_threads=1`` and once with every core; recall@10 against exact search for both.
* **build / analysis / app**: a collection of ``n`` real (tiny) image files whose index is written
  straight into the store with synthetic feature vectors (benchmarks/synthcoll.py), as the 100k
  figures of section 4 are. The real layout is 22.7 KB of float16 per painting (22 GB at 1M: more than
  this machine's disk holds beside everything else), so the blobs use a *bench layout*, a backbone
  registered only here (``bench-1m``): deep 256, two Gram layers of 12 channels (78 values each),
  the colour histogram of the default 8 bins (512), a 7x7 local map of 8 channels, the log aspect.
  Every raw part is wider than its PCA (deep 128, texture 2 x 64, colour 64), so the analysis has its
  real part sizes (an embedding of 320 floats) and everything after the PCA (the neighbour index, the
  topics, the saved analysis, the app) holds and does exactly what it would with the real layout; only
  the reads from SQLite and the PCA transform are cheaper per painting (2.6 KB instead of 22.7 KB).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

DEFAULT_WORK = Path(os.environ.get("ARTSTYLE_BENCH_WORK", "/work/cache/bench"))


def peak_rss_mb() -> float:
    """Peak RSS of this process (ru_maxrss, KiB on Linux) in MiB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _merge(path: Path, key: str, value: dict) -> None:
    res = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    res[key] = value
    res.setdefault("machine", {}).update({"cores": os.cpu_count(), "python": sys.version.split()[0]})
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
    except OSError:
        commit = ""
    value.setdefault("commit", commit)
    value.setdefault("date", time.strftime("%Y-%m-%d %H:%M"))
    value.setdefault("load_at_start", round(os.getloadavg()[0], 2))
    path.write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------- hnsw: 1 thread vs all
def cmd_hnsw(args) -> dict:
    import hnswlib

    from perf import _structured_vectors  # the vectors of docs/benchmarks.md section 2

    from artstyle_gui.core.analysis.parts import l2n

    n, d = args.n, 256
    rng = np.random.default_rng(0)
    spec = (1.0 / np.sqrt(np.arange(1, d + 1))).astype(np.float32)
    centres = rng.standard_normal((2000, d)).astype(np.float32) * spec
    x = _structured_vectors(n, d, rng, centres)
    q = _structured_vectors(200, d, rng, centres)
    xn, qn = l2n(x), l2n(q)
    exact = np.empty((len(q), 10), np.int64)
    for s in range(0, len(q), 50):
        sims = qn[s : s + 50] @ xn.T
        exact[s : s + 50] = np.argpartition(-sims, 10, axis=1)[:, :10]
    del xn
    out = {"vectors": n, "dim": d, "M": 16, "ef_construction": 200, "rows": []}
    threads = args.threads or ([1, os.cpu_count() or 1] if (os.cpu_count() or 1) > 1 else [1])
    old = json.loads(args.json.read_text(encoding="utf-8")).get("hnsw", {}) if args.json.is_file() else {}
    if old.get("vectors") == n:  # thread counts not re-run keep their figures
        out["rows"] = [r for r in old.get("rows", []) if r["threads"] not in threads]
    for t in threads:
        idx = hnswlib.Index(space="cosine", dim=d)
        idx.init_index(max_elements=n, ef_construction=200, M=16, random_seed=0)
        load = round(os.getloadavg()[0], 2)  # this machine is shared: other work shows here
        t0 = time.perf_counter()
        idx.add_items(x, np.arange(n), num_threads=t)
        build = time.perf_counter() - t0
        idx.set_ef(100)
        lab, _ = idx.knn_query(q, k=10, num_threads=1)
        recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(lab, exact)]))
        row = {"threads": t, "build_s": round(build, 1 if n >= 100_000 else 3), "recall_at_10": round(recall, 4),
               "load_before": load, "load_after": round(os.getloadavg()[0], 2)}
        print("  ", row, flush=True)
        out["rows"].append(row)
        del idx
    out["rows"].sort(key=lambda r: r["threads"])
    if len(out["rows"]) > 1 and out["rows"][-1]["build_s"] > 0:
        out["speedup"] = round(out["rows"][0]["build_s"] / out["rows"][-1]["build_s"], 2)
    return out


# ---------------------------------------------------------------------------- the 1M collection
def _load_bench(info, weights, allow_random=False):  # never called: the bench index is written, not extracted
    raise RuntimeError("bench-1m has no network: its features are synthetic (benchmarks/million.py)")


def register_bench_backbone():
    """The bench layout (see the module docstring), registered in this process only."""
    from artstyle_gui.core.ingest.backbones import BackboneInfo, register

    return register(BackboneInfo(name="bench-1m", description="synthetic features of a small layout (benchmarks)",
                                 deep_dim=256, gram_channels=(12, 12), local_channels=8, offline=True,
                                 family="bench", shape_part=True, load=_load_bench))


def _paths(args) -> tuple[Path, Path]:
    return args.work / f"million-{args.n}", args.work / f"million-{args.n}-index"


def _settings():
    from artstyle_gui.core.model import Settings

    return Settings(backbone="bench-1m")  # every other setting the default (automatic K, style topics)


def cmd_build(args) -> dict:
    """The collection's files and its synthetic index (features only; ``analysis`` analyses it)."""
    from synthcoll import synthetic_index

    register_bench_backbone()
    root, idx = _paths(args)
    t = time.perf_counter()
    out = synthetic_index(root, idx, args.n, settings=_settings(), chunk=5000, analyse=False)
    out["seconds"] = round(time.perf_counter() - t, 1)
    out["paintings"] = args.n
    if (idx / "index.sqlite").is_file():
        out["db_mb"] = round((idx / "index.sqlite").stat().st_size / 2**20)
    return out


def cmd_analysis(args) -> dict:
    """``Collection.analyse(force=True)`` on the collection, in this process: seconds per stage, peak RSS,
    the most vectors asked of SQLite at once."""
    from artstyle_gui.core.index import sampled
    from artstyle_gui.core.index.collection import Collection

    register_bench_backbone()
    root, idx = _paths(args)
    col = Collection(root, settings=_settings(), index_dir=idx)
    asked: list[int] = []
    real = col.store.get_vectors

    def spy(fs, hashes):
        asked.append(len(hashes))
        return real(fs, hashes)

    col.store.get_vectors = spy
    rss0 = rss_mb()
    t0 = time.perf_counter()
    stages: dict[str, float] = {}
    last = [t0, None]
    stage_rss: dict[str, float] = {}  # the largest RSS seen in each stage (sampled every 0.2 s)
    running = [True]

    def watch() -> None:
        while running[0]:
            k = last[1] or "start"
            stage_rss[k] = max(stage_rss.get(k, 0.0), rss_mb())
            time.sleep(0.2)

    import threading

    threading.Thread(target=watch, daemon=True).start()
    gen = col.analyse(force=True)
    an = None
    try:
        while True:
            p = next(gen)
            now = time.perf_counter()
            if last[1] is not None:
                stages[last[1]] = stages.get(last[1], 0.0) + now - last[0]
            last[0], last[1] = now, p.stage
            if p.stage == "index" and p.total and p.done % 100_000 < sampled.CHUNK:
                print(f"  {p.message}  rss {rss_mb():.0f} MiB  {now - t0:.0f} s", flush=True)
    except StopIteration as e:
        an = e.value
    running[0] = False
    total = time.perf_counter() - t0
    if last[1] is not None:
        stages[last[1]] = stages.get(last[1], 0.0) + time.perf_counter() - last[0]
    d = col.files.dir
    out = {"paintings": an.n, "sample_n": an.sample_n, "chunk": sampled.CHUNK, "topics_k": an.topics.k,
           "seconds": round(total, 1), "seconds_by_stage": {k: round(v, 1) for k, v in stages.items()},
           "rss_before_mb": rss0, "rss_after_mb": rss_mb(), "peak_rss_mb": peak_rss_mb(),
           "max_rss_mb_by_stage": {k: round(v) for k, v in stage_rss.items()},
           "most_vectors_read_at_once": max(asked), "embedding_dim": sum(int(v.shape[1]) for v in an.parts.values()),
           "saved_mb": {f: round((d / f).stat().st_size / 2**20) for f in ("analysis.npz", "neighbours.hnsw",
                                                                         "analysis.json")}}
    col.close()
    return out


def cmd_app(args) -> dict:
    """The app opens the 1M collection (offscreen): open time, RSS, scrolling the gallery, clicks."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import perf_gui

    register_bench_backbone()
    root, idx = _paths(args)
    app = perf_gui._app()
    before = rss_mb()
    c, win = perf_gui._window()
    app.processEvents()
    window_only = rss_mb()
    done = []
    c.job_finished.connect(lambda *a: done.append(a))
    t0 = time.perf_counter()
    assert win.open_folder(root, index_dir=idx)
    app.processEvents()
    t_rows = time.perf_counter() - t0
    rows = win.gallery.model.rowCount()
    perf_gui._wait(app, lambda: c.analysis is not None, 1200)
    t_an = time.perf_counter() - t0
    perf_gui._wait(app, lambda: bool(done), 1800)
    t_done = time.perf_counter() - t0
    assert c.analysis is not None and c.analysis.n == args.n, "the saved analysis was not adopted"
    loaded = rss_mb()
    # scroll the gallery end to end: the longest frame (a scroll step until its events are processed)
    view = win.gallery.view if hasattr(win.gallery, "view") else None
    steps = []
    if view is not None:
        bar = view.verticalScrollBar()
        for i in range(41):
            t = time.perf_counter()
            bar.setValue(bar.maximum() * i // 40)
            app.processEvents()
            view.viewport().repaint()
            steps.append((time.perf_counter() - t) * 1000)
            perf_gui._wait(app, lambda: False, 0.05)  # thumbnails load between steps
    clicks = perf_gui.click_to_panel(app, c, win, 20)
    cur, peak = perf_gui.rss_mb()
    out = {"paintings": c.analysis.n, "sample_n": c.analysis.sample_n, "gallery_rows": rows,
           "gallery_filled_s": round(t_rows, 2), "neighbours_ready_s": round(t_an, 2),
           "background_check_done_s": round(t_done, 2), "rss_before_window_mb": before,
           "rss_empty_window_mb": window_only, "rss_loaded_mb": loaded, "rss_after_clicks_mb": cur,
           "peak_rss_mb": peak, "scroll_step_ms_max": round(max(steps), 1) if steps else None,
           "scroll_step_ms_p50": round(sorted(steps)[len(steps) // 2], 1) if steps else None}
    out.update(clicks)
    win.shutdown()
    return out


COMMANDS = {"hnsw": cmd_hnsw, "build": cmd_build, "analysis": cmd_analysis, "app": cmd_app}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=sorted(COMMANDS) + ["report"])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK)
    ap.add_argument("--threads", type=lambda v: [int(x) for x in v.split(",")],
                    help="hnsw: the thread counts to (re)run, e.g. 2 (default: 1 and every core)")
    ap.add_argument("--json", type=Path, default=ROOT / "docs" / "million.json")
    ap.add_argument("--sample-above", type=int, help="smoke runs: sampled.SAMPLE_ABOVE (and FIT_SAMPLE, CHUNK "
                                                     "scaled down with it)")
    args = ap.parse_args(argv)
    if args.sample_above:
        from artstyle_gui.core.index import sampled

        sampled.SAMPLE_ABOVE = args.sample_above
        sampled.FIT_SAMPLE = max(10, args.sample_above // 2)
        sampled.CHUNK = max(10, args.sample_above // 5)
    if args.command != "report":
        res = COMMANDS[args.command](args)
        res["peak_rss_mb"] = max(res.get("peak_rss_mb", 0), peak_rss_mb())
        print(json.dumps(res), flush=True)
        _merge(args.json, args.command, res)
        if args.command == "app":
            os._exit(0)  # as perf_gui does: no Qt teardown at exit
    else:  # docs/benchmarks.md again, with section 7 from --json (the other sections from docs/benchmarks.json)
        from report import render

        docs = ROOT / "docs"
        (docs / "benchmarks.md").write_text(render(json.loads((docs / "benchmarks.json").read_text(encoding="utf-8"))) + "\n",
                                            encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
