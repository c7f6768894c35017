"""Cross-validated quality of fine-tuned backbones (`artstyle finetune`); writes docs/finetune.json.

    python benchmarks/finetune_quality.py ../shared/data/wikiart7-dev --label style

For each of the 5 stratified folds of benchmarks/quality.py (same seed, so the same folds):

1. the backbone is fine-tuned (artstyle_gui.core.finetune, default settings) on the *training folds'*
   labels only: a labels CSV outside the collection carries the label for those paintings alone, and
   fine-tuning holds out its own 20 % of them for early stopping;
2. the whole collection is indexed with the fine-tuned weights by the engine (a new feature set);
3. on those features: deep only, the default blend, and the style adapter trained on the training
   folds' labels, scored as in quality.py (held-out fold, and held-out queries vs all paintings).

With ``--unseen`` it also fine-tunes with two labels held out at a time (7 rotations) and scores the
"same hand?" verifier on pairs of paintings of labels that neither the backbone, the adapter nor the
verifier saw. A CUDA device makes this minutes instead of hours; ``quality.py`` renders the JSON into
docs/quality.md. Everything is written under --work (default: a temp folder) and --out.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--label", default="style")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--only-folds", type=int, help="run the first N folds only (0: none, e.g. with --unseen alone)")
    ap.add_argument("--stages", type=int, help="fine-tuned stages (default: FinetuneConfig's)")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--max-steps", type=int, help="smoke runs: optimiser steps per fine-tuning")
    ap.add_argument("--unseen", action="store_true", help="also the verifier on labels held out of fine-tuning")
    ap.add_argument("--work", type=Path, help="work folder (indexes, weights); default a temp folder")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "finetune.json")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="artstyle-ft-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ["ARTSTYLE_DATA_DIR"] = str(work / "data")  # fine-tuned weights land here, not in the user's dir

    import torch  # before hnswlib: on a CUDA machine the other order crashed (two OpenMP runtimes)

    from artstyle_gui.core.learn.adapt import AdapterConfig, train_adapter
    from artstyle_gui.core.analysis.parts import blend, fit_parts
    from artstyle_gui.core.model import DEFAULT_BLEND, Settings
    from artstyle_gui.core.index.collection import Collection
    from artstyle_gui.core.learn.finetune import FinetuneConfig, finetune
    from artstyle_gui.core.progress import run
    from artstyle_gui.core.learn.verify import evaluate_unseen_labels
    from quality import scores, stratified_folds

    log = lambda *a: print(*a, flush=True)  # noqa: E731
    t_all = time.perf_counter()
    base = Collection(args.folder, index_dir=work / "idx-imagenet")
    t = time.perf_counter()
    run(base.update())
    log(f"ImageNet features: {time.perf_counter() - t:.0f} s")
    recs = base.ok_records()
    relpaths = [r.relpath for r in recs]
    labels = [r.labels.get(args.label, "") or "" for r in recs]
    y = np.array(labels, dtype=object).astype(str)
    lab_rows = np.flatnonzero(y != "")
    folds = np.full(len(y), -1, np.int64)
    folds[lab_rows] = stratified_folds(y[lab_rows], args.folds)
    W = dict(DEFAULT_BLEND)

    def features(col) -> tuple[dict, dict, object]:
        fs, _ = col.files.featureset()
        rs = col.ok_records()
        assert [r.relpath for r in rs] == relpaths, "the fine-tuned index must hold the same paintings"
        blobs = col.store.get_vectors(fs, [r.hash for r in rs])
        raw = col.layout.unpack_many([blobs[r.hash] for r in rs])
        model, parts = fit_parts(raw)
        return raw, parts, model

    def fine_tuned_collection(tag: str, train_rows: np.ndarray) -> tuple[object, dict]:
        """Fine-tune on the labels of ``train_rows`` only, then index everything with the result."""
        csv_path = work / f"labels-{tag}.csv"
        tr = set(int(i) for i in train_rows)
        with open(csv_path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["path", args.label])
            for i in sorted(tr):
                w.writerow([relpaths[i], y[i]])
        cfg = FinetuneConfig(label=args.label, name=f"ft-{tag}")
        if args.stages:
            cfg.stages = args.stages
        if args.epochs:
            cfg.epochs = args.epochs
        if args.max_steps:
            cfg.max_steps = args.max_steps
        t0 = time.perf_counter()
        rep = run(finetune(Collection(args.folder, index_dir=work / f"idx-labels-{tag}", labels_csv=csv_path), cfg))
        t_ft = time.perf_counter() - t0
        log(f"{tag}: {rep.summary()}")
        t0 = time.perf_counter()
        col = Collection(args.folder, settings=Settings(weights_file=rep.weights_path), index_dir=work / f"idx-{tag}")
        run(col.update())
        t_ix = time.perf_counter() - t0
        info = {k: v for k, v in rep.__dict__.items() if k not in ("weights_path",)}
        info.update(finetune_seconds=t_ft, index_seconds=t_ix)
        return col, info

    res: dict = {"collection": args.folder.name, "label": args.label, "folds": args.folds, "paintings": len(y),
                 "machine": f"{platform.machine()}, Python {platform.python_version()}, torch {torch.__version__}, "
                            f"{torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'CPU only'}, "
                            f"{os.cpu_count()} CPUs",
                 "config": {k: v for k, v in FinetuneConfig().__dict__.items()}, "fold_runs": [], "retrieval": []}
    rows: dict[str, list] = {}

    def save() -> None:  # after every fold too: a run cut short keeps what it measured
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=1, default=str))
    n_folds = args.folds if args.only_folds is None else min(args.folds, args.only_folds)
    for f in range(n_folds):
        test = np.flatnonzero(folds == f)
        train = np.flatnonzero((folds >= 0) & (folds != f))
        col, info = fine_tuned_collection(f"fold{f}", train)
        raw, parts, model = features(col)
        lab_f = [lab if folds[i] >= 0 and folds[i] != f else "" for i, lab in enumerate(labels)]
        ad, arep = run(train_adapter(parts, raw["local"], model, lab_f, W, AdapterConfig(label=args.label)))
        adapted = ad.apply(ad.inputs_from_parts(parts, raw["local"]))
        embs = {"fine-tuned deep only": parts["deep"], "fine-tuned default blend": blend(parts, W),
                "fine-tuned + style adapter": blend(adapted, W)}
        for name, e in embs.items():
            rows.setdefault(name, []).append((scores(e, y, test, test), scores(e, y, test, lab_rows)))
        info["adapter"] = arep.summary()
        res["fold_runs"].append(info)
        log(f"fold {f}: " + ", ".join(f"{k} {rows[k][-1][0][0]:.3f}/{rows[k][-1][1][0]:.3f}" for k in embs))
        col.close()
        res["per_fold"] = {k: [[list(a), list(b)] for a, b in v] for k, v in rows.items()}
        save()
    for name, per in rows.items():
        res["retrieval"].append({
            "name": name, "folds_run": len(per),
            "heldout_p10": float(np.mean([p[0][0] for p in per])), "heldout_map10": float(np.mean([p[0][1] for p in per])),
            "heldout_p10_sd": float(np.std([p[0][0] for p in per])),
            "vsall_p10": float(np.mean([p[1][0] for p in per])), "vsall_map10": float(np.mean([p[1][1] for p in per]))})
        log(json.dumps(res["retrieval"][-1]))

    if args.unseen:
        classes = np.unique(y[lab_rows])
        order = classes[np.random.default_rng(0).permutation(len(classes))]  # the rotation of quality.py
        groups = [np.array([order[i], order[(i + 1) % len(order)]]) for i in range(len(order))]
        spaces: dict[tuple, dict] = {}
        for g in groups[: (args.only_folds or len(groups))]:
            train = np.flatnonzero((y != "") & ~np.isin(y, g))
            col, info = fine_tuned_collection("unseen-" + "-".join(sorted(s[:6] for s in g)).replace(" ", "_"), train)
            raw, parts, model = features(col)
            tr = set(int(i) for i in train)
            lab_t = [lab if i in tr else "" for i, lab in enumerate(labels)]
            ad, _ = run(train_adapter(parts, raw["local"], model, lab_t, W, AdapterConfig(label=args.label)))
            spaces[tuple(sorted(set(y[train])))] = {"base": parts, "adapted": ad.apply(ad.inputs_from_parts(parts, raw["local"]))}
            col.close()
        ver = []
        for space in ("base", "adapted"):
            r = evaluate_unseen_labels(labels, groups[: len(spaces)],
                                       lambda rows_, s=space: spaces[tuple(sorted(set(y[rows_])))][s],
                                       weights=W, negatives="held-out")
            ver.append({"space": f"fine-tuned {space}", "protocol": "pairs within held-out labels", "auc": r.auc,
                        "f1": r.f1, "cosine_auc": r.cosine_auc, "groups": len(spaces), "folds": r.folds})
            log(json.dumps({k: v for k, v in ver[-1].items() if k != "folds"}))
        res["verifier"] = ver
    res["seconds"] = time.perf_counter() - t_all
    res["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    save()
    log(f"wrote {args.out} ({res['seconds'] / 60:.1f} min)")


if __name__ == "__main__":
    main()
