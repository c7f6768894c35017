"""Adding one painting to an indexed collection of 10,000 and 100,000: before (the whole analysis is
fitted again) and after (the painting is placed into the existing fit: incremental analysis).

    python benchmarks/add_one.py [--sizes 10000,100000] [--work DIR] [--wikiart ../shared/data/wikiart7-dev]

The collections are :func:`synthcoll.synthetic_index` ones (real files and the real feature layout,
synthetic vectors, analysed by the engine), cached in ``--work``. For each size, on a copy of the index:

* **app** (in process, the saved analysis already loaded and the folder checked once, as the app does when
  it opens a collection): one real painting copied into the folder, then ``update()`` (scan, extract exactly one image) and ``analyse()`` until the new
  painting's neighbours are available and the analysis is saved; then the same with a re-fit
  (``analyse(force=True)``), which is what every added painting cost before.
* **cli**: ``artstyle index FOLDER`` as a whole command (Python start-up, model load, scan, extraction,
  placement, save) with one more painting.

Prints one JSON line per size and writes ``--json`` (default docs/add_one.json).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from synthcoll import synthetic_index  # noqa: E402

from artstyle_gui.core.index.collection import Collection  # noqa: E402
from artstyle_gui.core.index.preload import preload_engine_modules  # noqa: E402
from artstyle_gui.core.model import Settings  # noqa: E402
from artstyle_gui.core.progress import run  # noqa: E402


def _copy_index(idx: Path, work: Path) -> Path:
    tmp = Path(tempfile.mkdtemp(prefix="addone-", dir=work))
    shutil.rmtree(tmp)
    shutil.copytree(idx, tmp)
    return tmp


def _labels_csv(root: Path, idx: Path, out: Path) -> Path:
    """The synthetic index's labels as a labels CSV (outside the folder), as a user's collection has them:
    without it every update would drop the stored labels (no labels source)."""
    import csv

    if not out.is_file():
        with Collection(root, index_dir=idx) as col:
            recs = col.records()
        with open(out, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["path", "style"])
            w.writerows([r.relpath, r.labels.get("style", "")] for r in recs)
    return out


def measure(n: int, work: Path, painting: Path, settings: Settings) -> dict:
    root, idx = work / f"synthetic-{n}", work / f"synthetic-{n}-index"
    t = time.perf_counter()
    built = synthetic_index(root, idx, n, settings=settings)
    res: dict = {"paintings": n, "build_s": round(time.perf_counter() - t, 1), "build": built}
    labels = _labels_csv(root, idx, work / f"synthetic-{n}-labels.csv")
    new = root / "added-by-benchmark.jpg"
    for mode in ("placed", "refit"):
        tmp = _copy_index(idx, work)
        try:
            with Collection(root, settings=settings, index_dir=tmp, labels_csv=labels) as col:
                col.load_analysis()
                col.backbone()  # the app has its network loaded
                preload_engine_modules(settings.backbone)  # and its native modules (before its window shows)
                run(col.update())  # the app checks the folder when it opens it; then the painting is added
                shutil.copyfile(painting, new)
                t0 = time.perf_counter()
                rep = run(col.update())
                t1 = time.perf_counter()
                an = run(col.analyse(force=mode == "refit"))
                t2 = time.perf_counter()
                nb = col.similar(an.row_of(new.name), 10)
                t3 = time.perf_counter()
            res[mode] = {"extracted": rep.extracted, "update_s": round(t1 - t0, 3), "analyse_s": round(t2 - t1, 3),
                         "neighbours_ms": round((t3 - t2) * 1000, 2), "end_to_end_s": round(t3 - t0, 3),
                         "fitted_on": an.fitted_on, "added_since": an.added_since, "paintings_after": an.n,
                         "neighbours": len(nb)}
        finally:
            new.unlink(missing_ok=True)
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"  {n:,} {mode}: {res[mode]}", flush=True)
    # the CLI as a whole command (start-up, model load, scan, one extraction, placement, save)
    tmp = _copy_index(idx, work)
    shutil.copyfile(painting, new)
    try:
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "artstyle_gui.cli", "-q", "index", str(root), "--index-dir", str(tmp),
                            "--k", str(settings.k), "--labels", str(labels)], capture_output=True, text=True, cwd=ROOT)
        res["cli_s"] = round(time.perf_counter() - t0, 2)
        res["cli_out"] = p.stdout.strip().splitlines()[-2:]
        if p.returncode != 0:
            raise RuntimeError(p.stderr[-2000:])
    finally:
        new.unlink(missing_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"  {n:,} cli: {res['cli_s']} s {res['cli_out']}", flush=True)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "artstyle-bench"))
    ap.add_argument("--wikiart", default=str(ROOT.parent / "shared" / "data" / "wikiart7-dev"))
    ap.add_argument("--json", default=str(ROOT / "docs" / "add_one.json"))
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    painting = sorted((Path(args.wikiart) / "images").rglob("*.jpg"))[0]
    settings = Settings(k=12)  # as benchmarks/perf.py's reopen section
    out = {"sizes": {}, "machine": {"cpus": __import__("os").cpu_count()}, "settings": {"k": settings.k}}
    for n in (int(x) for x in args.sizes.split(",")):
        out["sizes"][str(n)] = measure(n, work, painting, settings)
        print(json.dumps({n: out["sizes"][str(n)]}), flush=True)
    Path(args.json).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
