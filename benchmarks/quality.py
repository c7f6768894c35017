"""Measured retrieval, topic and verification quality on a labelled collection; writes docs/quality.md (+ .json).

    python benchmarks/quality.py ../shared/data/wikiart7-dev --label style

Indexes the folder first if needed (default settings: letterbox bars trimmed, EfficientNet-Lite0;
index in the user data dir or --index-dir).  Everything below runs on the stored features: no image
is read again.

Retrieval (precision@10, mAP@10, exact cosine, a query never retrieves itself), two protocols:

* **held-out fold**: 5-fold stratified cross-validation; queries *and* gallery are the paintings of
  the test fold, so nothing of the test fold (query or answer) was seen by any training.
* **vs all**: the same test-fold queries against every painting of the collection (the training
  folds included, embedded by the same model): what a user with a partly labelled folder sees.

Unsupervised rows (colour, Gram, deep, default blend) need no training: their "vs all" figure is the
plain leave-one-out over the whole collection.  The best blend weights are chosen by leave-one-out
on the training folds.  The adapter is trained on the training folds (with its own 20% early-stopping
split) and never sees the test fold's labels.

Topics: NMI of the dominant topic with the label for both topic inputs (docs/topics.json if the
topic benchmark has written it, else computed with K = number of labels) and for the adapted space
(LDA on the out-of-fold adapted embeddings).

Shape leak: the pictures' aspect ratio (labels.csv `content_bbox_x0_y0_x1_y1` when present, else the
file size) must not be what groups paintings.  In 5 aspect bins, NMI between the dominant topic (default
topic input, K = number of labels) and the bin, and the share of each painting's 10 nearest neighbours
(default blend, exact cosine) in its own bin against chance (sum of squared bin shares).

Verifier ("same hand?"): labels held out in turn (never seen by adapter or verifier); ROC AUC and F1
at the threshold chosen on training pairs, for pairs made only of held-out-label paintings (strict)
and for held-out-label paintings against any other painting.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from artstyle_gui.core.learn.adapt import AdapterConfig, train_adapter
from artstyle_gui.core.analysis.parts import PARTS, ssqrt, blend, fit_parts, l2n, Projection
from artstyle_gui.core.analysis.topics import pca_counts, topic_counts
from artstyle_gui.core.model import DEFAULT_BLEND, Settings
from artstyle_gui.core.index.collection import Collection
from artstyle_gui.core.analysis.evaluate import ASPECT_BIN_NAMES, aspect_bins, box_size, nmi, shape_leak
from artstyle_gui.core.progress import run
from artstyle_gui.core.learn.verify import evaluate_unseen_labels

ROOT = Path(__file__).resolve().parents[1]
CONTENT_BOX_COLUMN = "content_bbox_x0_y0_x1_y1"


def scores(emb: np.ndarray, y: np.ndarray, queries: np.ndarray, gallery: np.ndarray, k: int = 10
           ) -> tuple[float, float]:
    """(precision@k, mAP@k) of queries retrieving from gallery (row numbers), self excluded."""
    x = l2n(emb)
    g = x[gallery]
    pos = {int(r): i for i, r in enumerate(gallery)}
    precs, aps = [], []
    for s in range(0, len(queries), 1024):
        q = queries[s : s + 1024]
        sims = x[q] @ g.T
        for r, row in enumerate(q):
            j = pos.get(int(row))
            if j is not None:
                sims[r, j] = -np.inf
        top = np.argpartition(-sims, k, axis=1)[:, :k]
        order = np.take_along_axis(sims, top, 1).argsort(1)[:, ::-1]
        top = np.take_along_axis(top, order, 1)
        rel = (y[gallery][top] == y[q][:, None]).astype(np.float32)
        precs.append(rel.mean(1))
        aps.append((np.cumsum(rel, 1) / np.arange(1, k + 1) * rel).sum(1) / np.maximum(rel.sum(1), 1))
    return float(np.concatenate(precs).mean()), float(np.concatenate(aps).mean())


def stratified_folds(y: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    f = np.zeros(len(y), np.int64)
    for v in np.unique(y):
        idx = np.flatnonzero(y == v)
        rng.shuffle(idx)
        f[idx] = np.arange(len(idx)) % n
    return f


def local_gram(local: np.ndarray) -> np.ndarray:
    """Gram matrix (upper triangle) of the stored 7x7 local map: a third texture layer for free."""
    n, cells, c = local.shape
    iu = np.triu_indices(c)
    out = np.empty((n, len(iu[0])), np.float32)
    for s in range(0, n, 512):
        x = local[s : s + 512].astype(np.float32)
        g = np.einsum("nic,nid->ncd", x, x) / cells
        out[s : s + 512] = g[:, iu[0], iu[1]]
    return out


def record_aspect_bins(recs) -> tuple[np.ndarray, str]:
    """Aspect bin of each record's picture, and where the sizes came from: the labels' content box (the
    picture without its bars) when the collection has one, else the file's width/height (bars included:
    the index keeps no trimmed box)."""
    boxes = [box_size(r.labels.get(CONTENT_BOX_COLUMN)) for r in recs]
    if any(boxes):
        sizes, source = boxes, f"labels.csv `{CONTENT_BOX_COLUMN}` (the picture without its bars)"
    else:
        sizes = [(r.width, r.height) if r.width and r.height else None for r in recs]
        source = "file width/height (bars included: the index keeps no trimmed box)"
    w = [s[0] if s else np.nan for s in sizes]
    h = [s[1] if s else np.nan for s in sizes]
    return aspect_bins(w, h), source


def shape_leak_figures(recs, emb: np.ndarray, topics: np.ndarray | None, topic_note: str,
                       embedding: str = "default blend", k: int = 10) -> dict:
    """The report's shape-leak entry for an embedding and the dominant topics (rows = recs)."""
    bins, source = record_aspect_bins(recs)
    sl = shape_leak(emb, bins, topics, k=k)
    return {"embedding": embedding, "topics": topic_note, "aspect_source": source, "bins": list(ASPECT_BIN_NAMES),
            "counts": sl.counts, "paintings": sl.n, "k": sl.k, "nmi_topic_aspect": sl.nmi_topic,
            "same_bin_share": sl.same_bin, "chance": sl.chance}


def shape_leak_line(sl: dict) -> str:
    return (f"shape leak: NMI(topic, aspect bin) {sl['nmi_topic_aspect']:.3f}; neighbours in the query's aspect "
            f"bin {sl['same_bin_share']:.3f} (chance {sl['chance']:.3f})")


def shape_leak_lines(sl: dict | None) -> list[str]:
    """Markdown section (nothing for a JSON written before the shape-leak figures existed)."""
    if not sl:
        return []
    bins = ", ".join(f"{b}: {c:,}" for b, c in zip(sl["bins"], sl["counts"]))
    return ["", "## Shape leak", "",
            f"Aspect ratio (width / height) from {sl['aspect_source']}, in 5 bins ({bins}). The picture's shape "
            "should not be what groups paintings: NMI near 0, and the share of a painting's "
            f"{sl['k']} nearest neighbours ({sl['embedding']}) in its own aspect bin near chance (the share "
            "expected from the bin sizes alone).", "",
            "| embedding / topics | NMI(dominant topic, aspect bin) | neighbours in the query's aspect bin | chance |",
            "|---|---|---|---|",
            f"| {sl['embedding']} / {sl['topics']} | {sl['nmi_topic_aspect']:.3f} | {sl['same_bin_share']:.3f} | "
            f"{sl['chance']:.3f} |"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", type=Path, nargs="?")
    ap.add_argument("--label", default="style")
    ap.add_argument("--index-dir", type=Path)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="fewer verifier folds (smoke runs)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "quality.md")
    ap.add_argument("--render", action="store_true",
                    help="only re-render the Markdown from the saved JSON (and docs/finetune.json)")
    args = ap.parse_args()
    if args.render:
        write(json.loads(args.out.with_suffix(".json").read_text()), args.out)
        return
    if args.folder is None:
        ap.error("the collection folder is needed (or --render)")
    t_all = time.perf_counter()
    log = lambda *a: print(*a, flush=True)  # noqa: E731

    col = Collection(args.folder, settings=Settings(), index_dir=args.index_dir)
    run(col.update())
    recs = col.ok_records()
    fs, fs_key = col.files.featureset()
    blobs = col.store.get_vectors(fs, [r.hash for r in recs])
    raw = col.layout.unpack_many([blobs[r.hash] for r in recs])
    del blobs
    labels = [r.labels.get(args.label, "") or "" for r in recs]
    keep = np.array([bool(x) for x in labels])
    y = np.array(labels, dtype=object).astype(str)
    n, n_lab = len(recs), int(keep.sum())
    classes = sorted(set(y[keep]))
    log(f"{n} paintings, {n_lab} labelled, {len(classes)} labels")
    st = Settings()
    model, parts = fit_parts(raw, deep_components=st.deep_components, gram_components=st.gram_components,
                             colour_components=st.colour_components, seed=st.seed)
    W = dict(DEFAULT_BLEND)
    lab_rows = np.flatnonzero(keep)
    folds = np.full(n, -1, np.int64)
    folds[lab_rows] = stratified_folds(y[lab_rows], args.folds)
    results: dict = {"collection": args.folder.name, "paintings": n, "labelled": n_lab, "label": args.label,
                     "classes": classes, "featureset": fs_key, "folds": args.folds, "retrieval": [],
                     "machine": f"{platform.machine()}, Python {platform.python_version()}"}

    def add_row(name: str, emb_for_fold, kind: str, note: str = "") -> None:
        """emb_for_fold(f) -> embedding of every row for fold f (training on other folds)."""
        ho, va = [], []
        for f in range(args.folds):
            e = emb_for_fold(f)
            test = np.flatnonzero(folds == f)
            ho.append(scores(e, y, test, test))
            va.append(scores(e, y, test, lab_rows))
        row = {"name": name, "kind": kind, "note": note,
               "heldout_p10": float(np.mean([h[0] for h in ho])), "heldout_map10": float(np.mean([h[1] for h in ho])),
               "heldout_p10_sd": float(np.std([h[0] for h in ho])),
               "vsall_p10": float(np.mean([v[0] for v in va])), "vsall_map10": float(np.mean([v[1] for v in va]))}
        results["retrieval"].append(row)
        log(json.dumps(row))

    # ---- unsupervised rows
    t0 = time.perf_counter()
    unsup = {
        "colour only": parts["colour"], "Gram (texture) only": parts["texture"], "deep only": parts["deep"],
        f"default blend (deep {W['deep']:g}, texture {W['texture']:g}, colour {W['colour']:g})": blend(parts, W),
    }
    for name, e in unsup.items():
        add_row(name, lambda f, e=e: e, "unsupervised")
    lg = l2n(ssqrt(local_gram(raw["local"])))
    lgp = l2n(Projection.fit(lg, 64, 0)(lg))
    p4 = dict(parts, lgram=lgp)
    w4 = dict(W, lgram=1.0)
    tot = sum(w4.values())
    e4 = np.concatenate([np.sqrt(w4[k] / tot) * p4[k] for k in w4], axis=1)
    add_row("default blend + Gram of the stored 7x7 map (weight 1)", lambda f: e4, "unsupervised candidate",
            "no re-extraction")
    results["unsupervised_seconds"] = time.perf_counter() - t0

    # ---- best blend weights chosen on the training folds
    grid = [{"deep": 1.0, "texture": t, "colour": c} for t in (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)
            for c in (0.0, 0.1, 0.25, 0.5)]
    chosen = []

    def best_blend(f: int) -> np.ndarray:
        train = np.flatnonzero((folds >= 0) & (folds != f))
        best = max(grid, key=lambda w: scores(blend(parts, w), y, train, train)[0])
        chosen.append(best)
        return blend(parts, best)

    add_row("best blend weights (chosen on training folds)", best_blend, "tuned on labels")
    results["best_blend_weights"] = chosen

    # ---- the adapter, trained on the training folds
    oof: dict[str, np.ndarray] = {}
    reports = []

    def adapter_fold(f: int) -> np.ndarray:
        lab_f = [lab if folds[i] >= 0 and folds[i] != f else "" for i, lab in enumerate(labels)]
        t = time.perf_counter()
        ad, rep = run(train_adapter(parts, raw["local"], model, lab_f, W, AdapterConfig(label=args.label)))
        rep_d = {k: v for k, v in rep.__dict__.items() if k != "history"}
        rep_d["wall_seconds"] = time.perf_counter() - t
        reports.append(rep_d)
        log(f"fold {f}: {rep.summary()}")
        adapted = ad.apply(ad.inputs_from_parts(parts, raw["local"]))
        test = folds == f
        for p in PARTS:
            oof.setdefault(p, np.zeros_like(adapted[p]))[test] = adapted[p][test]
        return blend(adapted, W)

    add_row("style adapter (linear heads, SupCon)", adapter_fold, "learned from labels")
    results["adapter_folds"] = reports

    # ---- training time at 5,000 paintings (features tiled with a little noise)
    rng = np.random.default_rng(0)
    extra = rng.choice(lab_rows, size=max(0, 5000 - n_lab))
    big = {p: l2n(np.concatenate([parts[p], parts[p][extra] + rng.normal(0, 0.02, parts[p][extra].shape)
                                  .astype(np.float32)])) for p in PARTS}
    big_local = np.concatenate([raw["local"], raw["local"][extra]])
    big_labels = labels + [labels[i] for i in extra]
    t = time.perf_counter()
    _, rep5k = run(train_adapter(big, big_local, model, big_labels, W, AdapterConfig(label=args.label)))
    results["adapter_5000"] = {"paintings": len(big_labels), "seconds": time.perf_counter() - t,
                               "epochs_run": rep5k.epochs_run, "stopped": rep5k.stopped}
    log("5000-painting adapter:", results["adapter_5000"])

    # ---- topics: NMI of the dominant topic with the label
    from artstyle_gui.core.analysis.topics import fit_topics

    k_topics = len(classes)
    topics: list[dict] = []
    # computed here, on this feature set (docs/topics.json holds the ImageNet comparison of its time)
    for kind in ("style", "bovw", "pca"):
        name = kind + (" (default)" if kind == st.topic_input else "")
        counts = run(topic_counts(kind, raw, model, vocab_size=st.vocab_size, seed=st.seed)).counts
        tm = run(fit_topics(counts, k=k_topics))
        topics.append({"input": name, "k": k_topics, "nmi": nmi(list(tm.mixtures.argmax(1)), labels),
                       "source": "computed"})
    tm = run(fit_topics(pca_counts(blend(oof, W)).counts, k=k_topics))
    topics.append({"input": "adapted (out-of-fold adapter embeddings, shifted to counts)", "k": k_topics,
                   "nmi": nmi(list(tm.mixtures.argmax(1)), labels), "source": "computed"})
    from sklearn.cluster import KMeans

    for name, e in (("k-means on the default blend (reference)", blend(parts, W)),
                    ("k-means on the out-of-fold adapted embedding (reference)", blend(oof, W))):
        km = KMeans(k_topics, n_init=4, random_state=0).fit(e)
        topics.append({"input": name, "k": k_topics, "nmi": nmi(list(km.labels_), labels), "source": "computed"})
    results["topics"] = topics
    log(json.dumps(topics))

    # ---- shape leak: the default topics and neighbours should not group paintings by aspect ratio
    t_counts = run(topic_counts(st.topic_input, raw, model, vocab_size=st.vocab_size, seed=st.seed)).counts
    tm = run(fit_topics(t_counts, k=k_topics, seed=st.seed, kind=st.topic_input))
    results["shape_leak"] = shape_leak_figures(recs, blend(parts, W), tm.mixtures.argmax(1),
                                               f"{st.topic_input} topics, K = {k_topics}")
    log(shape_leak_line(results["shape_leak"]))

    # ---- verifier on labels never seen in training
    vals = np.array(classes, dtype=object).astype(str)
    order = vals[np.random.default_rng(0).permutation(len(vals))]
    pair_groups = [np.array([order[i], order[(i + 1) % len(order)]]) for i in range(len(order))]
    single_groups = [np.array([v]) for v in order]
    if args.quick:
        pair_groups, single_groups = pair_groups[:2], single_groups[:2]
    cache: dict = {}

    def adapted_without(train_rows: np.ndarray) -> dict:
        key = tuple(sorted(set(y[train_rows])))
        if key not in cache:
            tr = set(int(i) for i in train_rows)
            lab_t = [lab if i in tr else "" for i, lab in enumerate(labels)]
            ad, _ = run(train_adapter(parts, raw["local"], model, lab_t, W, AdapterConfig(label=args.label)))
            cache[key] = ad.apply(ad.inputs_from_parts(parts, raw["local"]))
        return cache[key]

    ver = []
    for space, fn in (("base", lambda tr: parts), ("adapted", adapted_without)):
        for proto, groups, neg in (("pairs within held-out labels", pair_groups, "held-out"),
                                   ("held-out label vs any painting", single_groups, "any")):
            t = time.perf_counter()
            r = evaluate_unseen_labels(labels, groups, fn, weights=W, negatives=neg)
            ver.append({"space": space, "protocol": proto, "auc": r.auc, "f1": r.f1, "cosine_auc": r.cosine_auc,
                        "threshold_mean": r.threshold_mean, "groups": len(groups), "folds": r.folds,
                        "seconds": time.perf_counter() - t})
            log(json.dumps({k: v for k, v in ver[-1].items() if k != "folds"}))
    results["verifier"] = ver
    results["seconds"] = time.perf_counter() - t_all
    results["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    write(results, args.out)


def write(res: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=1))
    R = {r["name"]: r for r in res["retrieval"]}
    default = next(r for r in res["retrieval"] if r["name"].startswith("default blend ("))
    adapter = next(r for r in res["retrieval"] if r["name"].startswith("style adapter"))
    ver_strict = next(v for v in res["verifier"] if v["space"] == "adapted" and v["protocol"].startswith("pairs"))
    ver_any = next(v for v in res["verifier"] if v["space"] == "adapted" and v["protocol"].startswith("held-out"))
    ok = lambda b: "met" if b else "**not met**"  # noqa: E731
    L = [
        "# Measured quality",
        "",
        f"Collection `{res['collection']}`: {res['paintings']:,} paintings, {res['labelled']:,} labelled with "
        f"`{res['label']}` ({len(res['classes'])} labels: {', '.join(res['classes'])}). Feature set "
        f"`{res['featureset']}` (letterbox bars trimmed). {res['machine']}. "
        f"Regenerate with `python benchmarks/quality.py FOLDER --label {res['label']}` "
        f"({res['seconds'] / 60:.0f} min here; figures in `docs/quality.json`).",
        "",
        *style_model_section(ROOT / "docs" / "style_model.json"),
        "## Targets of the adapter and verifier",
        "",
        "| target | measured | |",
        "|---|---|---|",
        f"| default unsupervised blend precision@10 >= 0.42 | {default['vsall_p10']:.3f} "
        "(leave-one-out, all paintings) "
        f"| {ok(default['vsall_p10'] >= 0.42)} |",
        f"| adapter precision@10 >= 0.55 on held-out folds | {adapter['heldout_p10']:.3f} (held-out fold) / "
        f"{adapter['vsall_p10']:.3f} (held-out queries vs all) | {ok(adapter['heldout_p10'] >= 0.55)} |",
        f"| verifier ROC AUC >= 0.80 on unseen labels | {ver_strict['auc']:.3f} (pairs within unseen labels) / "
        f"{ver_any['auc']:.3f} (unseen label vs any painting) | {ok(ver_strict['auc'] >= 0.80)} |",
        *finetune_targets(ROOT / "docs" / "finetune.json"),
        "",
        "## Retrieval",
        "",
        f"{res['folds']}-fold stratified cross-validation. *Held-out fold*: queries and gallery are the test "
        "fold only (about 100 paintings per label, so chance precision is lower than on the whole set). "
        "*Vs all*: the test-fold queries against every painting; for the unsupervised rows this is plain "
        "leave-one-out on the whole collection. Chance precision@10 is about 1/7 = 0.143.",
        "",
        "| embedding | kind | P@10 held-out fold | mAP@10 held-out fold | P@10 vs all | mAP@10 vs all |",
        "|---|---|---|---|---|---|",
    ]
    for r in res["retrieval"]:
        L.append(f"| {r['name']} | {r['kind']}{' (' + r['note'] + ')' if r['note'] else ''} | "
                 f"{r['heldout_p10']:.3f} ± {r['heldout_p10_sd']:.3f} | {r['heldout_map10']:.3f} | "
                 f"{r['vsall_p10']:.3f} | {r['vsall_map10']:.3f} |")
    bw = res["best_blend_weights"]
    L += ["", "Blend weights chosen on the training folds: " + "; ".join(
        "/".join(f"{w[p]:g}" for p in PARTS) for w in bw) + " (deep/texture/colour).", ""]
    a5 = res["adapter_5000"]
    folds = res["adapter_folds"]
    L += [
        "### Adapter training",
        "",
        "Per fold (the adapter's own early-stopping split is 20% of the training folds):",
        "",
        "| fold | train P@10 | early-stop split P@10 (base -> adapted) | best epoch / run | stopped | s |",
        "|---|---|---|---|---|---|",
    ]
    for i, f in enumerate(folds):
        L.append(f"| {i + 1} | {f['train_p10']:.3f} | {f['base_heldout_p10']:.3f} -> {f['heldout_p10']:.3f} | "
                 f"{f['best_epoch'] + 1} / {f['epochs_run']} | {f['stopped']} | {f['wall_seconds']:.0f} |")
    L += ["", f"Training time for {a5['paintings']:,} labelled paintings (features tiled with noise): "
              f"{a5['seconds']:.0f} s ({a5['epochs_run']} epochs, {a5['stopped']}), CPU only, 2 shared cores.", ""]
    L += ["## Topics", "", f"NMI of the dominant topic (K = {len(res['classes'])}) with `{res['label']}`.", "",
          "| topic input | NMI | source |", "|---|---|---|"]
    for t in res["topics"]:
        L.append(f"| {t['input']} | {t['nmi']:.3f} | {t['source']} |")
    L += shape_leak_lines(res.get("shape_leak"))
    L += ["", "## Same hand? (verifier on labels never seen in training)", "",
          "Each row holds labels out in turn: the adapter (adapted rows) and the verifier are trained on the other "
          "labels only. *Pairs within held-out labels*: 7 rotations holding out 2 labels, test pairs made only of "
          "held-out paintings (balanced same/different). *Held-out label vs any painting*: leave-one-label-out, "
          "positives are pairs within the held-out label, negatives pair it with a painting of another label. "
          "F1 at the threshold chosen on training pairs. The cosine column scores the same pairs with the plain "
          "blended cosine." + (" With the art style model these labels are not unseen by the backbone: it was "
                               "trained on the same 7 styles (other paintings), so these figures overstate what "
                               "the verifier does for labels of the user's own." if
                               str(res.get("featureset", "")).startswith("effnet-lite0-art") else ""), "",
          "| space | protocol | ROC AUC | F1 | cosine AUC |", "|---|---|---|---|---|"]
    for v in res["verifier"]:
        L.append(f"| {v['space']} | {v['protocol']} | {v['auc']:.3f} | {v['f1']:.3f} | {v['cosine_auc']:.3f} |")
    L += ["", "Per held-out group (adapted space, pairs within held-out labels):", "",
          "| held out | AUC | F1 |", "|---|---|---|"]
    for f in ver_strict["folds"]:
        L.append(f"| {' + '.join(f['held_out'])} | {f['auc']:.3f} | {f['f1']:.3f} |")
    L += finetune_section(ROOT / "docs" / "finetune.json")
    notes = ROOT / "benchmarks" / "quality_notes.md"
    if notes.exists():
        L += ["", notes.read_text().strip()]
    out.write_text("\n".join(L) + "\n")
    print(f"wrote {out} and {out.with_suffix('.json')}")


def style_model_section(path: Path) -> list[str]:
    """Docs for docs/style_model.json (benchmarks/style_model.py): ImageNet features vs the art style model."""
    sm = _ft(path)
    if not sm:
        return []
    C = sm["configs"]
    art = next(c for c in C if c["name"].startswith("art model"))
    before = next((c for c in C if c["name"].startswith("before")), C[0])
    ok = lambda b: "met" if b else "**not met**"  # noqa: E731

    def topic(c, kind, mode):
        return next((t for t in c["topics"] if t["input"] == kind and t["k_mode"] == mode), None)

    t_auto = topic(art, art["default_topic_input"], "auto")
    t_fixed = topic(art, art["default_topic_input"], "fixed")
    b_auto = topic(before, before["default_topic_input"], "auto")
    bl = art["retrieval"]["default blend"]["p10"]
    L = ["## The art style model (`effnet-lite0-art`, the default)", "",
         "EfficientNet-Lite0 whose blocks 11-15 and head convolution were trained by "
         "`tools/train_style_model.py` on 20,291 of the 22,056 WikiArt paintings listed in `wikiart7-train` (7 "
         "styles; none of them in this collection; the other 1,765 chose the epoch). Measured on this collection with no labels at index time by "
         f"`python benchmarks/style_model.py` ({sm['machine']}; figures in `docs/style_model.json`). "
         "Leave-one-out over all paintings, exact cosine; chance precision@10 is about 0.143.", "",
         "| target (issue 14) | before | now | |", "|---|---|---|---|",
         f"| precision@10 >= 0.60 (default blend) | {before['retrieval']['default blend']['p10']:.3f} | {bl:.3f} | "
         f"{ok(bl >= 0.60)} |"]
    if t_auto and b_auto:
        L.append(f"| NMI(dominant topic, style) >= 0.25 (default topics, automatic K) | {b_auto['nmi_style']:.3f} "
                 f"(K = {b_auto['k']}) | {t_auto['nmi_style']:.3f} (K = {t_auto['k']}; "
                 f"{t_fixed['nmi_style']:.3f} at K = {t_fixed['k']}) | {ok(t_auto['nmi_style'] >= 0.25)} |")
        L.append(f"| NMI(dominant topic, aspect-ratio bin) <= 0.03 | {b_auto['nmi_aspect']:.3f} | "
                 f"{t_auto['nmi_aspect']:.3f} (K = {t_fixed['k']}: {t_fixed['nmi_aspect']:.3f}) | "
                 f"{ok(max(t_auto['nmi_aspect'], t_fixed['nmi_aspect']) <= 0.03)} |")
    L += ["", "What was chosen while looking at this collection (so its figures are somewhat optimistic; the project's "
          "held-out set checks them): the art model's default blend (deep 1, texture 0.25, colour 0.1; of 3 tried), "
          "the style codes' temperature 0.15 and 200 pseudo-counts (of 4 settings), and regressing out a cubic of "
          "the log aspect ratio before the style codes (of linear, cubic and aspect bins). The model: its "
          "recipe was fixed before training (one run) and its epoch chosen on a held-out 8 % of the training manifest; this collection was never trained on.",
          "", "### Retrieval and shape leak", "",
          "*Same aspect bin*: the share of a painting's 10 neighbours whose picture (without bars) falls in the "
          "same of 5 aspect-ratio bins, against chance (the share expected from the bin sizes).", "",
          "| features | embedding | P@10 | mAP@10 | same aspect bin | chance |", "|---|---|---|---|---|---|"]
    for c in C:
        for e, r in c["retrieval"].items():
            sl = c["shape_leak"][e]
            L.append(f"| {c['name']} | {e} | {r['p10']:.3f} | {r['map10']:.3f} | {sl['same_bin_share']:.3f} | "
                     f"{sl['chance']:.3f} |")
    L += ["", "### Topics", "", "NMI of the dominant topic with the style and with the aspect-ratio bin; k-means "
          "on the same embedding for reference (it is not a topic model: one cluster per painting, no mixture).", "",
          "| features | topic input | K | NMI style | NMI aspect | topic sizes |", "|---|---|---|---|---|---|"]
    for c in C:
        for t in c["topics"]:
            default = " (default)" if t["input"] == c["default_topic_input"] else ""
            L.append(f"| {c['name']} | {t['input']}{default} | {t['k']} ({t['k_mode']}) | {t['nmi_style']:.3f} | "
                     f"{t['nmi_aspect']:.3f} | {' '.join(str(x) for x in t['sizes'])} |")
    sp = sm.get("speed")
    if sp:
        b = sp["best"]
        ratio = sp["ratio_art_to_imagenet"]
        L += ["", "### Extraction speed", "",
              f"The engine's indexing path (`Collection.update`: decode, trim, network, store) on the same "
              f"{sp['paintings']} paintings, the two backbones alternating ({sp['rounds']} rounds, best of each): "
              f"ImageNet Lite0 {b['effnet-lite0']:.1f} images/s, art model {b['effnet-lite0-art']:.1f} images/s "
              f"({ratio:.2f}x; target: within 20 %, {ok(ratio >= 0.8)}). Same network, so the same work per image."]
    u = sm.get("unseen")
    if u:
        f = u["figures"]["unseen_styles"]
        L += ["", "### Styles the model never saw", "",
              f"A second model trained with the same recipe but without {' and '.join(u['styles'])} "
              f"({u['trained_paintings']:,} training paintings of the other 5 styles), measured on those 2 styles "
              "of this collection (pooled deep feature, the trimmed picture's centre square, leave-one-out, cosine "
              "on mean-centred features):", "",
              "| queries | ImageNet Lite0 | art model without these styles |", "|---|---|---|",
              f"| the 2 unseen styles, neighbours among all 7 styles | {f['queries_vs_all_dev']['imagenet']:.3f} | "
              f"{f['queries_vs_all_dev']['art']:.3f} |",
              f"| the 2 unseen styles, neighbours among those 2 only (chance 0.5) | "
              f"{f['within_unseen']['imagenet']:.3f} | {f['within_unseen']['art']:.3f} |"]
    return L + [""]


def _ft(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def finetune_targets(path: Path) -> list[str]:
    ft = _ft(path)
    if not ft:
        return []
    R = {r["name"]: r for r in ft["retrieval"]}
    ad = R.get("fine-tuned + style adapter")
    v = next((x for x in ft.get("verifier", []) if x["space"] == "fine-tuned base"), None)
    out = []
    if ad:
        out.append(f"| (same target, with a fine-tuned ImageNet backbone: `artstyle finetune` + adapter; docs/finetune.json) | "
                   f"{ad['heldout_p10']:.3f} (held-out fold) / {ad['vsall_p10']:.3f} (vs all) | "
                   f"{'met' if ad['heldout_p10'] >= 0.55 else '**not met**'} |")
    if v:
        out.append(f"| (same target, ImageNet backbone fine-tuned without the unseen labels; docs/finetune.json) | {v['auc']:.3f} "
                   f"(pairs within unseen labels) | {'met' if v['auc'] >= 0.80 else '**not met**'} |")
    return out


def finetune_section(path: Path) -> list[str]:
    """Docs for docs/finetune.json, written by benchmarks/finetune_quality.py (needs a GPU to be quick)."""
    ft = _ft(path)
    if not ft:
        return []
    cfg = ft["config"]
    L = ["", "## Fine-tuned backbone (`artstyle finetune`)", "",
         f"Written by `python benchmarks/finetune_quality.py FOLDER --label {ft['label']} [--unseen]` "
         f"({ft['machine']}; {ft['seconds'] / 60:.1f} min for the folds). For each of the same "
         f"{ft['folds']} folds as above, EfficientNet-Lite0's last {cfg['stages']} blocks and head convolution "
         f"were fine-tuned on the training folds' labels only ({cfg['epochs']} epochs at most, batch "
         f"{cfg['batch_size']}, random resized crops >= {cfg['min_crop_area']:.0%} of the picture and flips, label "
         f"smoothing {cfg['label_smoothing']}, early stop on the held-out precision@10 of a 20 % split of the "
         "training folds). The whole collection was then indexed again with the fine-tuned weights by the "
         "engine (a new feature set) and scored like the table above. The texture and colour parts are "
         "unchanged by construction (the fine-tuned blocks come after the Gram layers).", "",
         "| embedding | P@10 held-out fold | mAP@10 held-out fold | P@10 vs all | mAP@10 vs all |",
         "|---|---|---|---|---|"]
    for r in ft["retrieval"]:
        L.append(f"| {r['name']} | {r['heldout_p10']:.3f} ± {r['heldout_p10_sd']:.3f} | {r['heldout_map10']:.3f} | "
                 f"{r['vsall_p10']:.3f} | {r['vsall_map10']:.3f} |")
    L += ["", "Per fold (fine-tuning's own early-stopping split, then wall time of fine-tuning and of re-indexing "
              "3,500 paintings on the CPU):", "",
          "| fold | held-out P@10 before -> after | classifier accuracy | best epoch / run | fine-tune s | index s |",
          "|---|---|---|---|---|---|"]
    for i, f in enumerate(ft["fold_runs"]):
        L.append(f"| {i + 1} | {f['base_heldout_p10']:.3f} -> {f['heldout_p10']:.3f} | {f['heldout_acc']:.3f} | "
                 f"{f['best_epoch'] + 1} / {f['epochs_run']} ({f['stopped']}) | {f['finetune_seconds']:.0f} | "
                 f"{f['index_seconds']:.0f} |")
    if ft.get("sweep"):
        d2 = ft.get("sweep_default_first2", {})
        L += ["", "More of the network, folds 1-2 only (held-out fold P@10 of the adapter on the fine-tuned "
                  "features; 20 epochs at most):", "",
              "| trained blocks | deep only | + style adapter |", "|---|---|---|"]
        if d2:
            L.append(f"| {cfg['stages']} (default, 12 epochs) | {np.mean(d2['fine-tuned deep only']):.3f} | "
                     f"{np.mean(d2['fine-tuned + style adapter']):.3f} |")
        for sw in ft["sweep"]:
            R = {r["name"]: r for r in sw["retrieval"]}
            L.append(f"| {sw['stages']}{' (every block)' if sw['stages'] == 16 else ''} | "
                     f"{R['fine-tuned deep only']['heldout_p10']:.3f} | "
                     f"{R['fine-tuned + style adapter']['heldout_p10']:.3f} |")
    if ft.get("verifier"):
        L += ["", "Verifier on labels the fine-tuning never saw (the 7 rotations holding out 2 labels of the "
                  "verifier table above; backbone, adapter and verifier trained on the other 5 labels):", "",
              "| space | ROC AUC | F1 | cosine AUC |", "|---|---|---|---|"]
        for v in ft["verifier"]:
            L.append(f"| {v['space']} | {v['auc']:.3f} | {v['f1']:.3f} | {v['cosine_auc']:.3f} |")
    return L


if __name__ == "__main__":
    main()
