"""Issue 14's figures: ImageNet features vs the art style model, shape leak, topics that follow style.

    python benchmarks/style_model.py ../shared/data/wikiart7-dev --index-dir DIR \\
        [--before-index DIR_MADE_BY_THE_PREVIOUS_RELEASE] [--unseen PROVENANCE.json]

Writes docs/style_model.json; docs/quality.md renders it (``python benchmarks/quality.py --render``).

Every figure is computed from the features stored in the index (no labels at index time), on
wikiart7-dev, which no training step saw. Configurations:

* **before**: an index made by the previous release (ImageNet EfficientNet-Lite0, letterbox bars
  trimmed only up to 35 % of a side, bag-of-visual-words topics): ``--before-index``.
* **ImageNet Lite0, shape-blind trim**: the same network with today's trim (feature set
  ``effnet-lite0`` of ``--index-dir``; indexed first if missing).
* **art model**: today's default, ``effnet-lite0-art`` (indexed first if missing).

Figures per configuration: leave-one-out precision@10 and mAP@10 (exact cosine, a query never
retrieves itself) for the deep part alone and the default blend; NMI of the dominant topic with the
style and with the aspect-ratio bin of the content box, for the configuration's topic input at K = 7
(the number of styles) and at the app's automatic K; k-means (K = 7) on the same embedding as a
reference; the share of each painting's 10 neighbours in its own aspect bin against chance.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from artstyle_gui.core.analysis.parts import blend, fit_parts
from artstyle_gui.core.analysis.topics import fit_topics, topic_counts
from artstyle_gui.core.ingest.backbones import DEFAULT_BACKBONE, IMAGENET_BACKBONE
from artstyle_gui.core.index.collection import Collection
from artstyle_gui.core.model import Settings
from artstyle_gui.core.analysis.evaluate import aspect_bins, box_size, nmi, retrieval_scores, shape_leak
from artstyle_gui.core.model import default_settings_for
from artstyle_gui.core.progress import run

ROOT = Path(__file__).resolve().parents[1]
BOX = "content_bbox_x0_y0_x1_y1"


def stored(folder: Path, index_dir: Path, settings: Settings, extract: bool):
    col = Collection(folder, settings=settings, index_dir=index_dir)
    try:
        if extract:
            run(col.update())
        recs = col.ok_records()
        fs, key = col.files.featureset()
        blobs = col.store.get_vectors(fs, [r.hash for r in recs])
        missing = [r.relpath for r in recs if r.hash not in blobs]
        if missing:
            raise SystemExit(f"{len(missing)} paintings have no {key} features in {index_dir}")
        raw = col.layout.unpack_many([blobs[r.hash] for r in recs])
        return recs, raw, key
    finally:
        col.close()


def figures(name: str, recs, raw, key: str, st: Settings, topic_kinds: list[str]) -> dict:
    t0 = time.perf_counter()
    y = [r.labels.get("style", "") or "" for r in recs]
    sizes = [box_size(r.labels.get(BOX)) for r in recs]
    ab = aspect_bins([s[0] if s else np.nan for s in sizes], [s[1] if s else np.nan for s in sizes])
    model, parts = fit_parts(raw, deep_components=st.deep_components, gram_components=st.gram_components,
                         colour_components=st.colour_components, seed=st.seed)
    emb = {"deep only": parts["deep"], "default blend": blend(parts, st.blend)}
    out: dict = {"name": name, "featureset": key, "paintings": len(recs), "blend": st.blend,
                 "default_topic_input": st.topic_input, "retrieval": {}, "shape_leak": {}, "topics": []}
    for ename, e in emb.items():
        r = retrieval_scores(e, y, 10, ename)
        sl = shape_leak(e, ab, None, k=10)
        out["retrieval"][ename] = {"p10": r.precision_at_k, "map10": r.map_at_k}
        out["shape_leak"][ename] = {"same_bin_share": sl.same_bin, "chance": sl.chance}
        print(f"  {name} / {ename}: P@10 {r.precision_at_k:.3f} mAP@10 {r.map_at_k:.3f}; neighbours in the "
              f"query's aspect bin {sl.same_bin:.3f} (chance {sl.chance:.3f})", flush=True)
    for kind in topic_kinds:
        counts = run(topic_counts(kind, raw, model, vocab_size=st.vocab_size, seed=st.seed)).counts
        for k in (7, None):
            t = time.perf_counter()
            tm = run(fit_topics(counts, k=k, k_range=st.k_range, seed=st.seed, kind=kind))
            d = tm.mixtures.argmax(1)
            row = {"input": kind, "k": tm.k, "k_mode": "fixed" if k else "auto", "nmi_style": nmi(list(d), y),
                   "nmi_aspect": nmi(list(d), list(ab)), "sizes": np.bincount(d, minlength=tm.k).tolist(),
                   "seconds": time.perf_counter() - t}
            out["topics"].append(row)
            print(f"  {name} / topics {kind} K={tm.k}: NMI style {row['nmi_style']:.3f}, aspect "
                  f"{row['nmi_aspect']:.3f}", flush=True)
    from sklearn.cluster import KMeans

    for ename, e in emb.items():
        km = KMeans(7, n_init=4, random_state=0).fit(e)
        out["topics"].append({"input": f"k-means on {ename} (reference)", "k": 7, "k_mode": "fixed",
                              "nmi_style": nmi(list(km.labels_), y), "nmi_aspect": nmi(list(km.labels_), list(ab)),
                              "sizes": np.bincount(km.labels_, minlength=7).tolist()})
    out["seconds"] = time.perf_counter() - t0
    return out


def speed(folder: Path, n: int, rounds: int = 2) -> dict:
    """Images/s of the engine's real indexing path (``Collection.update``: decode, trim, network, store)
    on the same ``n`` paintings, ImageNet Lite0 and the art model alternating, fresh index each time."""
    import shutil
    import tempfile

    files = sorted(folder.rglob("*.jpg"))[:n]
    tmp = Path(tempfile.mkdtemp(prefix="artstyle-speed-"))
    src = tmp / "paintings"
    for i, f in enumerate(files):
        dst = src / f.parent.name / f.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, dst)
    out: dict = {"paintings": len(files), "rounds": rounds, "images_per_s": {}}
    try:
        for r in range(rounds):
            for bb in (IMAGENET_BACKBONE, DEFAULT_BACKBONE):
                idx = tmp / f"index-{bb}-{r}"
                col = Collection(src, settings=default_settings_for(bb), index_dir=idx)
                col.backbone()  # the model load is not part of the rate
                t = time.perf_counter()
                rep = run(col.update())
                rate = rep.extracted / (time.perf_counter() - t)
                col.close()
                out["images_per_s"].setdefault(bb, []).append(rate)
                print(f"  speed round {r + 1}: {bb} {rate:.1f} images/s", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    best = {bb: max(v) for bb, v in out["images_per_s"].items()}
    out["best"] = best
    out["ratio_art_to_imagenet"] = best[DEFAULT_BACKBONE] / best[IMAGENET_BACKBONE]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--index-dir", type=Path, required=True)
    ap.add_argument("--before-index", type=Path, help="an index of the folder made by the previous release")
    ap.add_argument("--unseen", type=Path, help="provenance JSON of a model trained without 2 styles "
                                                  "(tools/train_style_model.py --exclude-styles ... --dev)")
    ap.add_argument("--speed", type=int, default=600, help="paintings for the extraction-speed A/B (0: skip)")
    ap.add_argument("--only-speed", action="store_true", help="re-measure the speed, keep the other figures")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "style_model.json")
    args = ap.parse_args()
    if args.only_speed:
        res = json.loads(args.out.read_text())
        res["speed"] = speed(args.folder, args.speed)
        args.out.write_text(json.dumps(res, indent=1) + "\n")
        print(f"wrote {args.out}")
        return
    res: dict = {"collection": args.folder.name, "configs": [],
                 "machine": f"{platform.machine()}, Python {platform.python_version()}"}
    if args.before_index:
        st = default_settings_for(IMAGENET_BACKBONE)  # the previous release's defaults: bovw topics, its blend
        recs, raw, key = stored(args.folder, args.before_index, st, extract=False)
        res["configs"].append(figures("before: previous release (ImageNet Lite0, bars trimmed up to 35 %)",
                                      recs, raw, key, st, ["bovw"]))
    st = default_settings_for(IMAGENET_BACKBONE)
    recs, raw, key = stored(args.folder, args.index_dir, st, extract=True)
    res["configs"].append(figures("ImageNet Lite0, shape-blind trim", recs, raw, key, st, ["bovw", "style"]))
    st = default_settings_for(DEFAULT_BACKBONE)
    recs, raw, key = stored(args.folder, args.index_dir, st, extract=True)
    res["configs"].append(figures("art model (default)", recs, raw, key, st, ["style", "bovw", "pca"]))
    if args.unseen:
        prov = json.loads(args.unseen.read_text())
        res["unseen"] = {"styles": prov["excluded_styles"], "trained_paintings": prov["trained_paintings"],
                         "figures": prov["figures"], "recipe": prov["recipe"]}
    if args.speed:
        res["speed"] = speed(args.folder, args.speed)
    res["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    args.out.write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
