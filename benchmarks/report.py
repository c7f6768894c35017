"""Render docs/benchmarks.md from the JSON written by benchmarks/perf.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

TARGETS = """\
| target | figure | met? |
|---|---|---|
"""


def _t(rows: list[dict], cols: list[tuple[str, str]]) -> str:
    head = "| " + " | ".join(h for _, h in cols) + " |\n|" + "---|" * len(cols) + "\n"
    body = ""
    for r in rows:
        body += "| " + " | ".join(str(r.get(k, "")) for k, _ in cols) + " |\n"
    return head + body


def _ok(b: bool | None) -> str:
    return "n/a" if b is None else ("yes" if b else "**no**")


def add_one_section(a: dict) -> str:
    """benchmarks/add_one.py's figures (docs/add_one.json): adding one painting, placed vs re-fitted."""
    s = "## 6. Adding one painting: placed into the fit (incremental analysis) vs fitted again\n\n"
    s += ("`python benchmarks/add_one.py` on synthetic collections (real files and feature layout, synthetic "
          "vectors, K = 12, a labels CSV). *app*: the saved analysis loaded, the network and native modules "
          "loaded and the folder checked once (as the app is after opening a collection); then one real painting "
          "is copied in and timed from `update()` (scan, extract it) through `analyse()` (placed, or re-fitted "
          "as before) until its neighbours are listed and the analysis saved. *cli*: `artstyle index` as a whole "
          "command (Python start-up, model load, scan, one extraction, placement, save).\n\n")
    s += "| paintings | placed: update s | placed: analyse s | placed: end to end s | re-fit: end to end s | CLI command s |\n"
    s += "|---|---|---|---|---|---|\n"
    for n, r in a.get("sizes", {}).items():
        p, f = r.get("placed", {}), r.get("refit", {})
        s += (f"| {int(n):,} | {p.get('update_s')} | {p.get('analyse_s')} | **{p.get('end_to_end_s')}** | "
              f"{f.get('end_to_end_s')} | {r.get('cli_s')} |\n")
    s += "\nTargets: add-one end to end <= 1 s at 10,000 and <= 3 s at 100,000 (placed).\n\n"
    return s


def cluster_section(c: dict) -> str:
    """benchmarks/cluster.py's figures (docs/cluster.json): the Ray path against the single-process path."""
    sizes = [str(n) for n in c.get("sizes", [])]
    m = c.get("machine", {})
    s = "## 8. Indexing on a Ray cluster (one machine) vs the single process\n\n"
    s += (f"`python benchmarks/cluster.py` ({m.get('date', '')}, Ray {m.get('ray', '')}, {m.get('cpus', '')} CPUs): "
          "`Collection.update()` over large JPEGs (2400x1800) from the scan to the last commit, the network's load "
          "included, a new index each time, alternating rounds, medians. *local*: the single-process path; *ray, "
          "running cluster*: `--ray` against a local Ray cluster of this machine's CPUs already running (the "
          "worker's start and model load are in the time); *ray, started for the run*: `--ray` with no cluster "
          "(Ray started and shut down by the command). Start-up and per-image time: time = start + N x per image, "
          "fitted on the two sizes. More: [cluster.md](cluster.md).\n\n")
    s += ("| path | " + " | ".join(f"{int(n):,} images s" for n in sizes)
          + " | start-up s | per image ms | img/s after start | end to end vs local | per image vs local |\n")
    s += "|---|" + "---|" * (len(sizes) + 5) + "\n"
    for k, r in c.get("summary", {}).items():
        s += (f"| {k} | " + " | ".join(str(r["median_seconds"].get(n)) for n in sizes)
              + f" | {r.get('start_s')} | {r.get('per_image_ms')} | {r.get('img_s_after_start')} | "
              f"{r.get('time_vs_local')} | {r.get('per_image_vs_local')} |\n")
    s += ("\nThe driver, the only writer: one SQLite transaction per batch of records + feature blobs of the "
          "default layout (22.7 KB each), as `Collection.update` commits them:\n\n")
    s += _t(c.get("writer", []), [("images", "images"), ("batch", "images per commit"), ("commits_s", "commits/s"),
                                  ("img_s", "images/s"), ("MB_s", "MB/s"), ("db_MiB", "index MiB")])
    s += "\nTarget: on 2 local CPUs, the Ray path within 15 % of the single-process path.\n\n"
    return s


def million_section(m: dict) -> str:
    """benchmarks/million.py's figures (docs/million.json): the analysis and the app at a million paintings."""
    s = "## 7. A million paintings: the analysis on a sample, the neighbour index on every core, the app\n\n"
    s += ("`python benchmarks/million.py hnsw|build|analysis|app` (each in a process of its own). *Synthetic*: the "
          "feature vectors. A million vectors of the real layout are 22.7 GB of float16, more than this machine's "
          "free disk beside the rest, so the 1,000,000 real (tiny) image files get vectors of a smaller layout "
          "registered only in the benchmark (deep 256, two Gram layers of 78, colour 512, local 7x7x8): every raw "
          "part is still wider than its PCA, so the analysis has its real part sizes (an embedding of 320 floats) "
          "and the neighbour index, the topics, the saved analysis and the app hold and do what they would with "
          "the real layout; reading a painting from SQLite is 2.6 KB instead of 22.7 KB. *Measured*: everything "
          "else, with the product's own code: `Collection.analyse()` (above 100,000 paintings: PCA and topics "
          "fitted on a seeded sample of 50,000, every painting read 20,000 at a time and placed into that fit, "
          "hnswlib on every core) and the app opening the collection offscreen.\n\n")
    h = m.get("hnsw")
    if h:
        s += (f"hnswlib build of {h['vectors']:,} vectors of dim {h['dim']} (M={h['M']}, ef_construction="
              f"{h['ef_construction']}, the vectors of section 2), with one thread and with every core; recall@10 "
              "against exact search (200 new points); the load average before and after each build (this machine "
              "is shared):\n\n")
        s += _t(h["rows"], [("threads", "threads"), ("build_s", "build s"), ("recall_at_10", "recall@10"),
                            ("load_before", "load before"), ("load_after", "load after")])
        if h.get("speedup"):
            s += f"\nSpeed-up from 1 to {h['rows'][-1]['threads']} threads: **{h['speedup']}x**.\n"
        s += "\n"
    a = m.get("analysis")
    if a:
        s += (f"`Collection.analyse(force=True)` of {a['paintings']:,} paintings (models fitted on {a['sample_n']:,}, "
              f"K = {a['topics_k']} chosen automatically):\n\n")
        def kv(d: dict) -> str:
            return ", ".join(f"{k} {v}" for k, v in d.items())

        s += ("| paintings | seconds | by stage s | peak RSS MiB | largest RSS by stage MiB | RSS after MiB | most "
              "vectors read at once | saved MiB |\n|---|---|---|---|---|---|---|---|\n")
        s += (f"| {a['paintings']:,} | {a['seconds']} | {kv(a['seconds_by_stage'])} | {a['peak_rss_mb']} | "
              f"{kv(a.get('max_rss_mb_by_stage', {}))} | {a['rss_after_mb']} | {a['most_vectors_read_at_once']:,} | "
              f"{kv(a['saved_mb'])} |\n\n")
        s += ("(*index*: the placement of every painting, chunk by chunk, and the save.)\n\n")
    g = m.get("app")
    if g:
        s += (f"The app opens the {g['paintings']:,}-painting collection (offscreen, 1400x900): the gallery filled, "
              "the saved analysis adopted (neighbours clickable), the background check of the folder done; then "
              "the gallery scrolled end to end in 40 steps (a step: the scroll and its repaint), and 20 paintings "
              "clicked (until the detail panel is updated and repainted):\n\n")
        rows = [{**g, "run": g.get("run", f"this run ({g.get('commit', '')})")}]
        if m.get("app_before"):  # the same measurement before the memory fixes (kept by hand in the JSON)
            rows.insert(0, {**m["app_before"], "run": m["app_before"].get("run", "before")})
        s += _t(rows, [("run", "run"), ("gallery_filled_s", "gallery filled s"), ("neighbours_ready_s", "neighbours ready s"),
                      ("background_check_done_s", "folder check done s"), ("rss_empty_window_mb", "empty window MiB"),
                      ("rss_loaded_mb", "loaded MiB"), ("rss_after_clicks_mb", "after scroll + clicks MiB"),
                      ("peak_rss_mb", "peak MiB"), ("scroll_step_ms_p50", "scroll step p50 ms"),
                      ("scroll_step_ms_max", "scroll step max ms"), ("click_to_panel_ms_p50", "click p50 ms"),
                      ("click_to_panel_ms_max", "click max ms")])
        s += "\n"
    a100 = m.get("app_100k")
    if a100:
        s += f"The 100,000-painting figures of section 4 before and after the memory fixes ({a100['note']}):\n\n"
        s += _t(a100["rows"], [("run", "run"), ("rss_empty_window_mb", "empty window MiB"),
                               ("rss_loaded_mb", "loaded MiB"), ("peak_rss_mb", "peak MiB"),
                               ("gc_full_collection_ms", "full gc ms"), ("click_to_panel_ms_p50", "click p50 ms"),
                               ("click_to_panel_ms_max", "click max ms")])
        s += "\n"
    tg = []
    if h and h.get("speedup"):
        tg.append(f"| 1M hnsw build: scaling from 1 to {h['rows'][-1]['threads']} threads | {h['speedup']}x "
                  f"({h['rows'][0]['build_s']} s -> {h['rows'][-1]['build_s']} s) | measured |")
    if g:
        tg.append(f"| app at 1M: slowest click <= 150 ms | {g['click_to_panel_ms_max']} ms | "
                  f"{_ok(g['click_to_panel_ms_max'] <= 150)} |")
        tg.append(f"| app at 1M: RSS <= 4 GB (4096 MiB) with the index open (after scrolling and clicks) | "
                  f"{g['rss_after_clicks_mb']} MiB (peak while opening: {g['peak_rss_mb']} MiB) | "
                  f"{_ok(g['rss_after_clicks_mb'] <= 4096)} |")
    if tg:
        s += "| target | figure | met? |\n|---|---|---|\n" + "\n".join(tg) + "\n\n"
    notes = Path(__file__).with_name("million_notes.md")  # what the figures say (written by hand)
    if notes.exists():
        s += notes.read_text(encoding="utf-8").strip() + "\n\n"
    return s


def targets(res: dict) -> str:
    out = TARGETS
    tp = {(r["backbone"], r["input"].split()[0]): r for r in res.get("throughput", {}).get("rows", [])}
    for bb in ("effnet-lite0-art", "effnet-lite0", "resnet50"):
        r = tp.get((bb, "large"))
        if r:
            out += f"| {bb}: >= 4x baseline, large JPEGs | {r['ratio']}x | {_ok(r['ratio'] >= 4)} |\n"
        r = tp.get((bb, "wikiart7-dev"))
        if r:
            out += f"| {bb}: >= 2.5x baseline, 224 px | {r['ratio']}x | {_ok(r['ratio'] >= 2.5)} |\n"
            if "fraction_of_forward_ceiling" in r:
                f = r["fraction_of_forward_ceiling"]
                out += (f"| {bb}: >= 80% of the runtime's forward-only ceiling, 224 px ({r['runtime']}) | {f:.0%} "
                        f"| {_ok(f >= 0.8)} |\n")
    r = tp.get(("resnet50", "wikiart7-dev"))
    if r:
        f = r["ours_fraction_of_limit"]
        out += f"| resnet50: >= 50% of the machine's limit (224 px) | {f:.0%} | {_ok(f >= 0.5)} |\n"
    q = {r["vectors"]: r for r in res.get("query", {}).get("rows", [])}
    if 100_000 in q:
        r = q[100_000]
        out += (f"| query p99 <= 5 ms at 100k, recall@10 >= 0.98 | p99 {r['p99_ms']} ms, recall "
                f"{r['recall_at_10']} | {_ok(r['p99_ms'] <= 5 and r['recall_at_10'] >= 0.98)} |\n")
    g = res.get("gui", {})
    clicks = [x for x in (g.get("index", {}).get("click_to_panel_ms_max"), g.get("rss", {}).get("click_to_panel_ms_max"),
                          res.get("reopen", {}).get("app", {}).get("click_to_panel_ms_max")) if x is not None]
    if clicks:
        out += f"| click to panel <= 100 ms (slowest click measured) | {max(clicks)} ms | {_ok(max(clicks) <= 100)} |\n"
    ro = res.get("reopen", {})
    if ro.get("app"):
        a = ro["app"]
        out += (f"| re-open 10k <= 1.5 s (gallery filled, neighbours ready) | {a['gallery_filled_s']} s, "
                f"{a['neighbours_ready_s']} s | {_ok(a['neighbours_ready_s'] <= 1.5)} |\n")
    if ro.get("add_one"):
        e = ro["add_one"]["extracted"]
        out += f"| add one file extracts exactly 1 image | {e} | {_ok(e == 1)} |\n"
    if g.get("index"):
        s = g["index"]["longest_stall_ms"]
        out += f"| longest main-thread stall while indexing <= 100 ms | {s} ms | {_ok(s <= 100)} |\n"
    if g.get("rss"):
        m = g["rss"]["rss_loaded_mb"]
        out += f"| 100k gallery RSS <= 1.5 GB | {m:.0f} MiB | {_ok(m <= 1536)} |\n"
    return out


#: (section, path of keys, label) of the figures compared with the previous run of the same section
_COMPARED = [
    ("reopen", ("app", "neighbours_ready_s"), "re-open 10k: neighbours ready s"),
    ("reopen", ("app", "click_to_panel_ms_max"), "re-open 10k: slowest click ms"),
    ("gui", ("index", "longest_stall_ms"), "longest main-thread stall while indexing ms"),
    ("gui", ("index", "click_to_panel_ms_max"), "after indexing: slowest click ms"),
    ("gui", ("rss", "rss_loaded_mb"), "100k paintings loaded: RSS MiB"),
    ("gui", ("rss", "click_to_panel_ms_max"), "100k paintings: slowest click ms"),
]


def _dig(d: dict | None, keys: tuple) -> object:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def _previous_run_table(res: dict) -> str:
    """The app's figures of this run next to the previous run of the same sections (kept in the JSON as
    ``previous_run`` when a section is re-run), with the commits they were measured at."""
    rows = []
    for sec, keys, label in _COMPARED:
        now, prev = res.get(sec), (res.get(sec) or {}).get("previous_run")
        if not prev:
            continue
        a, b = _dig(prev, keys), _dig(now, keys)
        if a is None or b is None:
            continue
        rows.append({"figure": label, "before": a, "after": b,
                     "commits": f"{_dig(prev, ('machine_at_run', 'commit'))} -> {_dig(now, ('machine_at_run', 'commit'))}"})
    if not rows:
        return ""
    return ("### The app's figures: previous run -> this run\n\n"
            "The sections above re-run; *before* is the previous run kept in the JSON (its commit first).\n\n"
            + _t(rows, [("figure", "figure"), ("before", "before"), ("after", "after"), ("commits", "commits")]) + "\n")


def render(res: dict) -> str:
    m = res.get("machine", {})
    s = "# Benchmarks\n\n"
    s += ("Regenerate with `python benchmarks/perf.py` (about 40 minutes; `--only SECTION,...` re-runs some "
          "sections and keeps the others from `docs/benchmarks.json`; `--quick` is a smoke run with tiny sizes). "
          "Raw numbers: [benchmarks.json](benchmarks.json). Inputs are generated into the user cache folder; "
          "nothing is written into the collections measured.\n\n")
    if res.get("quick"):
        s += "**Quick run: sizes are tiny and the figures are not meaningful.**\n\n"
    s += "## Machine\n\n"
    s += _t([m], [("cpu", "CPU"), ("cores", "cores"), ("memory_gib", "RAM GiB"), ("torch_threads", "torch threads"),
                  ("gemm_fp32_gflops", "fp32 GEMM GFLOP/s (measured)"), ("python", "Python"), ("torch", "torch"),
                  ("torchvision", "torchvision"), ("pyside6", "PySide6"), ("commit", "commit"), ("date", "date")])
    s += "\nEach section records the load average when it started (`machine_at_run` in the JSON).\n\n"
    s += "## Targets\n\n" + targets(res) + "\n"
    tp = res.get("throughput")
    if tp:
        s += "## 1. Indexing throughput\n\n"
        s += ("*ours*: `Collection.update()` over a folder of the images (scan, read + hash, reduced JPEG decode "
              "and letterbox trim in decode threads, batched forward with Gram and local features, colour "
              "histogram, SQLite commit per batch). *baseline*: the research loop (full-size PIL decode, "
              "torchvision Resize(256)/CenterCrop/ToTensor/Normalize, batch-1 forward of the stock model, pooled "
              "features appended to a list). Fraction of the limit = FLOPs/image x images/s / measured fp32 "
              f"GEMM rate. Large JPEGs: {tp.get('large_jpeg_mean_mb')} MB on average (real paintings upscaled "
              f"with grain and canvas texture). ResNet50 weights: {tp.get('resnet50_weights')}.\n\n")
        fwd = [("forward_only_img_s", "forward only img/s")] if any("forward_only_img_s" in r for r in tp["rows"]) else []
        if any("forward_only_torch_img_s" in r for r in tp["rows"]):
            fwd = [("runtime", "runtime"), ("forward_only_img_s", "runtime forward only img/s"),
                   ("forward_only_torch_img_s", "torch forward only img/s"),
                   ("fraction_of_forward_ceiling", "ours / runtime ceiling")]
            s += ("*ours* runs the network on the runtime the product picks (ONNX Runtime on the CPU: "
                  "[docs/runtime.md](runtime.md)); forward only = the network alone on 224 px crops in passes of 8, "
                  "median of 3 alternating rounds.\n\n")
        s += _t(tp["rows"], [("backbone", "backbone"), ("input", "input"), ("images", "images"),
                             ("ours_img_s", "ours img/s"), ("baseline_img_s", "baseline img/s"), ("ratio", "ours / baseline"),
                             *fwd, ("gflops_per_image", "GFLOP/img"), ("ours_fraction_of_limit", "ours: fraction of limit"),
                             ("baseline_fraction_of_limit", "baseline: fraction of limit")])
        s += "\n"
    q = res.get("query")
    if q:
        s += "## 2. Neighbour queries\n\n"
        s += ("hnswlib (M=16, ef_construction=200, the engine's query ef) over synthetic vectors of the real "
              "embedding size (clusters over a decaying PCA spectrum, like the PCA-reduced blended parts); the "
              "queries are new points, not in the index; recall@10 against exact cosine search; latency of the "
              "engine's `NeighbourIndex.query` for one painting.\n\n")
        s += _t(q["rows"], [("vectors", "vectors"), ("dim", "dim"), ("build_s", "build s"),
                            ("index_rss_mb", "RSS growth MiB"), ("index_file_mb", "file MiB"), ("p50_ms", "p50 ms"),
                            ("p99_ms", "p99 ms"), ("recall_at_10", "recall@10")])
        s += "\n"
    ro = res.get("reopen")
    if ro:
        a = ro["app"]
        s += "## 3. Re-opening and adding one painting\n\n"
        s += (f"A {a['paintings']:,}-painting collection (small files; the index holds feature vectors of the "
              "real layout, synthetic values, analysed by the engine). *core*: `Collection` + records + saved "
              "analysis (what the CLI does). *app*: `open_folder` until the gallery holds every painting, until "
              "the saved analysis is adopted (neighbours clickable), and until the background check of the folder "
              "(scan + stat of every file) has finished.\n\n")
        s += _t([a], [("core_open_and_load_s", "core open + load s"), ("gallery_filled_s", "app: gallery filled s"),
                      ("neighbours_ready_s", "app: neighbours ready s"),
                      ("background_check_done_s", "app: folder check done s"),
                      ("click_to_panel_ms_p50", "click p50 ms"), ("click_to_panel_ms_max", "click max ms")])
        if ro.get("add_one"):
            s += "\nAdding one painting and updating:\n\n"
            s += _t([ro["add_one"]], [("extracted", "images extracted"), ("unchanged", "unchanged"),
                                      ("update_s", "update s"), ("reanalyse_s", "re-analysis s"),
                                      ("paintings_after", "paintings")])
        s += "\n"
    g = res.get("gui")
    if g:
        s += "## 4. The app\n\n"
        i = g.get("index", {})
        s += (f"Indexing {i.get('images')} wikiart7-dev paintings from the window (offscreen), default settings, "
              f"{i.get('seconds')} s; a 10 ms QTimer heartbeat measures the longest gap of the main thread per "
              "stage. Then paintings are selected as a click does, timed until the detail panel (neighbours, "
              "topic bar chart) is updated and repainted.\n\n")
        s += _t([i], [("longest_stall_ms", "longest stall ms"), ("longest_stall_ms_by_stage", "by stage (ms)"),
                      ("click_to_panel_ms_p50", "click p50 ms"), ("click_to_panel_ms_max", "click max ms")])
        b = g.get("index_before_preload")
        if b:
            s += ("\nBefore/after the fix that imports torch, torchvision and scikit-learn's native modules before the "
                  "window shows (an import of a C extension holds the GIL while the library loads):\n\n")
            s += _t([dict(b, run="before: imported by the worker mid-run"), dict(i, run="after: imported at start-up")],
                    [("run", "run"), ("longest_stall_ms", "longest stall ms"),
                     ("longest_stall_ms_by_stage", "by stage (ms)")])
        r = g.get("rss", {})
        s += (f"\nMemory with a {r.get('paintings', 0):,}-painting index open in the app (synthetic as in "
              "section 3), the gallery scrolled end to end and 20 paintings clicked:\n\n")
        s += _t([r], [("rss_before_window_mb", "RSS before window MiB"), ("rss_empty_window_mb", "empty window MiB"),
                      ("rss_loaded_mb", "loaded MiB"), ("peak_rss_mb", "peak MiB"),
                      ("click_to_panel_ms_max", "click max ms"),
                      *([("gc_full_collection_ms", "full gc.collect() on the GUI thread ms")]
                        if "gc_full_collection_ms" in r else [])])
        s += "\n"
    s += _previous_run_table(res)
    t = res.get("topics")
    if t:
        s += "## 5. Topic fitting vs N\n\n"
        s += ("The default topic input (visual words from the 7x7 local features + coarse colour words), "
              "synthetic local features of the real shape; LDA with K=12 and the automatic K sweep (perplexity "
              "elbow over 5-20 on a sample of at most 2,000 paintings, then the final fit on all), fitted in the "
              "calling thread (the CLI) and, as the app fits, in two worker processes.\n\n")
        s += _t(t["rows"], [("paintings", "paintings"), ("words_s", "visual words s"), ("lda_k12_s", "LDA K=12 s"),
                            ("lda_auto_k_s", "LDA auto-K s"), ("auto_k", "K chosen"),
                            *([("lda_auto_k_2proc_s", "auto-K in 2 processes (the app) s"),
                               ("auto_k_2proc", "K chosen there")] if any("lda_auto_k_2proc_s" in r for r in t["rows"]) else [])])
        s += "\n"
    addone = Path(__file__).resolve().parents[1] / "docs" / "add_one.json"
    if addone.exists():
        s += add_one_section(json.loads(addone.read_text(encoding="utf-8")))
    million = Path(__file__).resolve().parents[1] / "docs" / "million.json"
    if million.exists():
        s += million_section(json.loads(million.read_text(encoding="utf-8")))
    cluster = Path(__file__).resolve().parents[1] / "docs" / "cluster.json"
    if cluster.exists():
        s += cluster_section(json.loads(cluster.read_text(encoding="utf-8")))
    extra = Path(__file__).with_name("perf_notes.md")
    if extra.exists():
        s += extra.read_text(encoding="utf-8")
    return s


if __name__ == "__main__":
    src = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "docs" / "benchmarks.json")
    print(render(json.loads(src.read_text())))
