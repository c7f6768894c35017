"""Backbone fine-tuning on a labelled folder (``artstyle finetune``).

The style adapter (:mod:`.adapt`) learns a projection of *frozen* features. Fine-tuning goes one
step further, as the research line did (ResNet/EfficientNet fine-tuned on WikiArt styles): the
last stages of the backbone itself are trained to classify the label, with augmentation, and the
result is saved as an ordinary weights file that the feature extractor loads like the ImageNet one.

* Only the last ``stages`` are trained (EfficientNet-Lite0: the last N of 16 MBConv blocks plus the
  head convolution; ResNet50: the last N of its 4 layers). The earlier layers stay exactly as they
  were, so with the default 5 blocks the texture (Gram of blocks 4 and 7) and local (block 10)
  features of the fine-tuned backbone are the ImageNet ones and only the pooled deep feature moves.
* The labelled paintings are decoded once (uniform borders trimmed, shortest side ``image_side``,
  centre square) and kept as uint8; each epoch draws random resized crops and flips of them on the
  training device. Hue is never jittered: colour is part of a style.
* A stratified ``holdout`` of every label is never trained on; training stops early on the held-out
  precision@10 of the pooled features (what the neighbours use) and keeps the best epoch.
* A CUDA device is used when present (``device="auto"``); the CPU works but is slow (a 2-core
  machine does about 10 training images per second).
* Nothing is written until training ends: closing the generator (the app's Cancel) leaves no file.
  The weights go to the per-user data folder (``backbones/NAME.pt`` with ``NAME.json`` provenance),
  never into the collection. They are a plain state dict (loaded with ``weights_only=True``) and a
  new feature set: indexing with them never mixes with the ImageNet features.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import ArtStyleError, BackboneUnavailable, DecodeError
from ..ingest.backbones import (
    DEFAULT_BACKBONE,
    INPUT_SIZE,
    REGISTRY,
    configure_threads,
    file_sha256,
)
from ..ingest.features import center_crop
from ..ingest.imageio import decode_image
from ..ingest.store import (
    FileRecord,
    atomic_path,
    atomic_write_bytes,
    default_index_root,
)
from ..progress import Progress, ProgressGen
from .split import precision_at, retrieval_k, stratified_holdout, usable_labels


class LabelledFolder(Protocol):
    """What fine-tuning reads from a collection (an index Collection is one): its folder, its records
    and the labels of its paintings as they are now."""

    root: Path

    def records(self) -> list[FileRecord]: ...

    def labels_for(self, relpaths: list[str]) -> dict[str, dict[str, str]]: ...

FINETUNE_VERSION = 1
EFFNET_BLOCKS = 16
RESNET_LAYERS = 4


@dataclass
class FinetuneConfig:
    """Training knobs of :func:`finetune` (defaults measured on wikiart7-dev, docs/quality.md)."""

    label: str = "style"
    backbone: str = DEFAULT_BACKBONE
    base_weights: str | None = None  # start from this state dict instead of the ImageNet weights
    stages: int = 5  # effnet-lite0: last N of 16 blocks (+ head conv); resnet50: last N of 4 layers
    epochs: int = 12
    batch_size: int = 32
    lr: float = 1e-3  # classifier head; the backbone stages use lr * backbone_lr_scale
    backbone_lr_scale: float = 0.3
    weight_decay: float = 0.01
    label_smoothing: float = 0.1
    min_crop_area: float = 0.35  # random resized crops cover this much of the picture at least
    holdout: float = 0.2
    patience: int = 4  # epochs without held-out improvement before stopping
    image_side: int = 256  # decode size kept in memory; 224 crops are drawn from it
    max_per_label: int = 2000  # at most this many paintings of one label are used (memory)
    min_per_label: int = 4
    trim_borders: bool = True
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N"
    max_seconds: float | None = None  # wall-clock budget of the epochs (best epoch kept)
    max_steps: int | None = None  # stop after this many optimiser steps (smoke tests)
    decode_threads: int = 0
    seed: int = 0
    name: str | None = None

    def validate(self) -> None:
        if self.backbone not in REGISTRY:
            raise ArtStyleError(f"Unknown backbone {self.backbone!r}; choose one of {', '.join(REGISTRY)}.")
        top = EFFNET_BLOCKS if REGISTRY[self.backbone].family == "effnet-lite0" else RESNET_LAYERS
        if not 1 <= self.stages <= top:
            raise ArtStyleError(f"stages must be between 1 and {top} for {self.backbone}.")
        if not 0.0 < self.holdout < 0.9:
            raise ArtStyleError("holdout must be between 0 and 0.9.")
        if self.epochs < 1 or self.batch_size < 2:
            raise ArtStyleError("epochs must be at least 1 and the batch size at least 2.")
        if self.image_side < INPUT_SIZE:
            raise ArtStyleError(f"image_side must be at least {INPUT_SIZE}.")
        if self.name is not None and not _NAME_RE.fullmatch(self.name):
            raise ArtStyleError("A fine-tuned backbone's name may hold letters, digits, '.', '_' and '-' only.")


_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")


@dataclass
class FinetuneReport:
    """What a run measured; saved in the provenance JSON beside the weights."""

    name: str
    weights_path: str
    backbone: str
    label: str
    classes: list[str]
    n_train: int
    n_heldout: int
    skipped: int  # labelled files that could not be decoded
    k: int  # K of the precision@K figures
    base_heldout_p10: float  # pooled features of the starting weights
    heldout_p10: float  # best epoch
    base_heldout_acc: float  # nearest-class-mean accuracy of the starting features (no head)
    heldout_acc: float  # the trained classifier head, best epoch
    train_acc: float
    best_epoch: int
    epochs_run: int
    stopped: str  # "early-stop" | "epochs" | "time-budget" | "steps"
    seconds: float
    device: str
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def improved(self) -> bool:
        """Whether the best epoch beat the starting weights on the held-out paintings."""
        return self.heldout_p10 > self.base_heldout_p10

    def summary(self) -> str:
        return (f"held-out precision@{self.k} {self.base_heldout_p10:.3f} -> {self.heldout_p10:.3f}, "
                f"held-out accuracy {self.heldout_acc:.3f} (best epoch {self.best_epoch + 1} of "
                f"{self.epochs_run}, {self.stopped}, {self.seconds:.0f} s on {self.device})")


# --------------------------------------------------------------------------- where weights live
def finetuned_dir() -> Path:
    """Folder of fine-tuned backbones: ``<user data dir>/backbones`` (``$ARTSTYLE_DATA_DIR`` too)."""
    return default_index_root() / "backbones"


def list_finetuned() -> list[dict[str, Any]]:
    """Provenance dicts of the saved fine-tuned backbones (newest first); each has ``name`` and
    ``weights_path``. Entries whose weights file is missing are left out."""
    d = finetuned_dir()
    out = []
    for js in sorted(d.glob("*.json")) if d.is_dir() else []:
        try:
            meta = json.loads(js.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        pt = js.with_suffix(".pt")
        if isinstance(meta, dict) and pt.is_file():
            meta["name"], meta["weights_path"] = js.stem, str(pt)
            out.append(meta)
    out.sort(key=lambda m: str(m.get("created", "")), reverse=True)
    return out


def finetuned_info(weights_path: str | os.PathLike | None) -> dict[str, Any] | None:
    """The provenance of ``weights_path`` when it is a fine-tuned backbone saved by this module."""
    if not weights_path:
        return None
    js = Path(weights_path).with_suffix(".json")
    try:
        meta = json.loads(js.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("kind") == "artstyle-finetuned-backbone" else None


def resolve_weights(value: str | None) -> str | None:
    """``--weights`` value -> a file path: an existing file, or the name of a fine-tuned backbone."""
    if not value:
        return None
    p = Path(value).expanduser()
    if p.is_file():
        return str(p.resolve())
    cand = finetuned_dir() / f"{value}.pt"
    if _NAME_RE.fullmatch(value) and cand.is_file():
        return str(cand)
    names = [m["name"] for m in list_finetuned()]
    known = f" Fine-tuned backbones: {', '.join(names)}." if names else ""
    raise ArtStyleError(f"No weights file or fine-tuned backbone named {value!r}.{known}")


# --------------------------------------------------------------------------- data
def labelled_images(col: LabelledFolder, label: str) -> tuple[list[str], list[str]]:
    """(relpaths, labels) of the collection's paintings that carry ``label``: the indexed paintings
    that could be read, or every image file of the folder when it was not indexed yet."""
    rel = [r.relpath for r in col.records() if r.status == "ok"]
    if not rel:
        from ..ingest.scan import iter_image_files

        rel = [f.relpath for f in iter_image_files(col.root)]
    table = col.labels_for(rel)  # the labels as they are now (the index may hold older ones)
    labs = [table.get(p, {}).get(label, "") or "" for p in rel]
    keep = [i for i, v in enumerate(labs) if v]
    return [rel[i] for i in keep], [labs[i] for i in keep]


def _cap_per_label(labels: np.ndarray, cap: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    keep = []
    for v in np.unique(labels):
        idx = np.flatnonzero(labels == v)
        if len(idx) > cap:
            idx = np.sort(rng.choice(idx, cap, replace=False))
        keep.extend(idx.tolist())
    return np.sort(np.array(keep, np.int64))


def _decode_all(root: Path, relpaths: list[str], cfg: FinetuneConfig) -> ProgressGen[tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]]:
    """uint8 (N, S, S, 3) centre squares of every file; rows that failed are dropped (``ok`` mask)."""
    side = cfg.image_side
    n = len(relpaths)
    out = np.zeros((n, side, side, 3), np.uint8)
    ok = np.zeros(n, bool)
    problems: list[tuple[str, str]] = []

    def one(i: int) -> tuple[int, str | None]:
        try:
            dec = decode_image(str(root / relpaths[i]), target_side=side, trim_borders=cfg.trim_borders)
            out[i] = center_crop(dec.image, side)
            return i, None
        except DecodeError as e:
            return i, str(e)
        except OSError as e:
            return i, f"cannot read: {e.strerror or e}"

    threads = cfg.decode_threads or max(2, min(16, os.cpu_count() or 2))
    step = max(64, threads * 16)
    with ThreadPoolExecutor(threads) as pool:
        for s in range(0, n, step):
            for i, err in pool.map(one, range(s, min(n, s + step))):
                if err is None:
                    ok[i] = True
                else:
                    problems.append((relpaths[i], err))
            yield Progress("finetune-read", min(n, s + step), n, f"reading {min(n, s + step):,}/{n:,} labelled paintings")
    return out, ok, problems


# --------------------------------------------------------------------------- model split
def _load_trainable(cfg: FinetuneConfig):
    """(model, frozen_fn, trainable_modules, trainable_fn, mean, std, base_weights_path, dim)."""
    from ..ingest import backbones as bb

    if REGISTRY[cfg.backbone].family == "effnet-lite0":
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as e:
            raise BackboneUnavailable("Fine-tuning needs the package 'efficientnet-lite-pytorch'.") from e
        path = cfg.base_weights or bb.default_weights_path(cfg.backbone) or bb.effnet_weights_path()
        model = EfficientNet.from_name("efficientnet-lite0")
        missing, _ = model.load_state_dict(bb.load_weights_file(path), strict=False)
        if missing:
            raise BackboneUnavailable(f"{path} is not an EfficientNet-Lite0 weights file.")
        first = EFFNET_BLOCKS - cfg.stages
        blocks = model._blocks
        n_blocks = len(blocks)
        drop = model._global_params.drop_connect_rate or 0.0

        def frozen(x):
            x = model._swish(model._bn0(model._conv_stem(x)))
            for i in range(first):
                x = blocks[i](x, drop_connect_rate=drop * i / n_blocks)
            return x

        def trainable(x):
            for i in range(first, n_blocks):
                x = blocks[i](x, drop_connect_rate=drop * i / n_blocks)
            return model._swish(model._bn1(model._conv_head(x)))

        mods = [blocks[i] for i in range(first, n_blocks)] + [model._conv_head, model._bn1]
        return model, frozen, mods, trainable, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), path, 1280

    models = bb.torchvision_models()
    path = bb.resnet_weights_file(cfg.base_weights)
    model = models.resnet50(weights=None)
    try:
        model.load_state_dict(bb.load_weights_file(path))
    except RuntimeError as e:
        raise BackboneUnavailable(f"{path} is not a ResNet50 state dict ({str(e)[:200]}).") from e
    layers = [model.layer1, model.layer2, model.layer3, model.layer4]
    first = RESNET_LAYERS - cfg.stages

    def frozen(x):
        x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        for lay in layers[:first]:
            x = lay(x)
        return x

    def trainable(x):
        for lay in layers[first:]:
            x = lay(x)
        return x

    return model, frozen, layers[first:], trainable, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), path, 2048


def _pick_device(spec: str):
    import torch

    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(spec)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ArtStyleError("No CUDA device is available here; use --device cpu (slow) or auto.")
    return dev


def _augment(x, rng, min_area: float):
    """Random resized crop (area >= ``min_area``, aspect 3/4..4/3) to 224 and horizontal flip, on
    the batch's device: one affine grid per image."""
    import torch
    import torch.nn.functional as F

    b = x.shape[0]
    area = rng.uniform(min_area, 1.0, b)
    logr = rng.uniform(np.log(3 / 4), np.log(4 / 3), b)
    sw = np.clip(np.sqrt(area * np.exp(logr)), 0.2, 1.0)
    sh = np.clip(np.sqrt(area / np.exp(logr)), 0.2, 1.0)
    cx = rng.uniform(-1 + sw, 1 - sw)
    cy = rng.uniform(-1 + sh, 1 - sh)
    flip = np.where(rng.random(b) < 0.5, -1.0, 1.0)
    theta = np.zeros((b, 2, 3), np.float32)
    theta[:, 0, 0], theta[:, 0, 2] = sw * flip, cx
    theta[:, 1, 1], theta[:, 1, 2] = sh, cy
    theta_t = torch.from_numpy(theta).to(x.device, x.dtype)
    grid = F.affine_grid(theta_t, (b, 3, INPUT_SIZE, INPUT_SIZE), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _centre(x):
    """The whole stored square at 224 px: what the feature extractor sees of the same painting."""
    import torch.nn.functional as F

    if x.shape[-1] == INPUT_SIZE:
        return x
    return F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True, align_corners=False)


# --------------------------------------------------------------------------- training
def finetune(col: LabelledFolder, config: FinetuneConfig | None = None) -> ProgressGen[FinetuneReport]:
    """Fine-tune the last stages of the backbone on the collection's ``config.label`` labels.

    Yields Progress (``finetune-read`` per chunk of decoded images, ``finetune`` per epoch and
    every few steps) and returns the report; the weights are written only at the very end.
    """
    cfg = config or FinetuneConfig()
    cfg.validate()
    relpaths, labs = labelled_images(col, cfg.label)
    lab = np.array(labs, dtype=object).astype(str)
    mask = usable_labels(list(lab), cfg.min_per_label)
    rows = np.flatnonzero(mask)
    if len(np.unique(lab[rows])) < 2:
        raise ArtStyleError(
            f"Fine-tuning needs at least two '{cfg.label}' labels with {cfg.min_per_label}+ paintings each "
            f"(found {len(np.unique(lab[rows]))}). Labels come from labels.csv in the folder, --labels CSV, "
            "or --artist-from-folder.")
    rows = rows[_cap_per_label(lab[rows], cfg.max_per_label, cfg.seed)]
    relpaths = [relpaths[i] for i in rows]
    lab = lab[rows]

    t0 = time.monotonic()
    images, ok, problems = yield from _decode_all(col.root, relpaths, cfg)
    images, lab = images[ok], lab[ok]
    classes = np.unique(lab)
    y = np.searchsorted(classes, lab).astype(np.int64)
    tr, ho = stratified_holdout(y, cfg.holdout, cfg.seed)
    if len(ho) < 2 or len(tr) < 2:
        raise ArtStyleError("Too few labelled paintings could be read to hold some out for early stopping.")
    report, state, base_path = yield from _train(images, y, classes, tr, ho, cfg, t0)
    report.skipped = len(problems)
    return (yield from _save(col, cfg, report, state, base_path))


def _train(images: np.ndarray, y: np.ndarray, classes: np.ndarray, tr: np.ndarray, ho: np.ndarray,
           cfg: FinetuneConfig, t0: float) -> ProgressGen[Any]:
    import torch
    import torch.nn.functional as F

    configure_threads()
    dev = _pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model, frozen, mods, trainable, mean, std, base_path, dim = _load_trainable(cfg)
    model.to(dev)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    params = [p for m in mods for p in m.parameters()]
    for p in params:
        p.requires_grad_(True)
    head = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(dim, len(classes))).to(dev)
    opt = torch.optim.AdamW([{"params": params, "lr": cfg.lr * cfg.backbone_lr_scale},
                             {"params": head.parameters(), "lr": cfg.lr}], weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, int(np.ceil(len(tr) / cfg.batch_size)))
    total_steps = steps_per_epoch * cfg.epochs
    base_lrs = [g["lr"] for g in opt.param_groups]
    warm = min(steps_per_epoch, max(1, total_steps // 10))
    mean_t = torch.tensor(mean, device=dev).view(1, 3, 1, 1) * 255.0
    std_t = torch.tensor(std, device=dev).view(1, 3, 1, 1) * 255.0
    use_amp = dev.type == "cuda"
    k = retrieval_k(y[ho])
    ho_local = np.arange(len(ho))

    def batch_tensor(idx: np.ndarray):
        x = torch.from_numpy(images[idx]).to(dev, non_blocking=True).permute(0, 3, 1, 2).float()
        return x

    def norm(x):
        return (x - mean_t) / std_t

    def pooled(x):
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_amp):
            with torch.no_grad():
                f = frozen(norm(x))
            f = trainable(f)
        return f.float().mean(dim=(2, 3))

    def evaluate() -> tuple[float, float, np.ndarray]:
        for m in mods:
            m.eval()
        head.eval()
        feats, preds = [], []
        with torch.no_grad():
            for s in range(0, len(ho), max(cfg.batch_size, 64)):
                idx = ho[s : s + max(cfg.batch_size, 64)]
                f = pooled(_centre(batch_tensor(idx)))
                feats.append(f.cpu().numpy())
                preds.append(head(f).argmax(1).cpu().numpy())
        emb = np.concatenate(feats)
        p10 = precision_at(emb, y[ho], ho_local, ho_local, k)
        acc = float((np.concatenate(preds) == y[ho]).mean())
        return p10, acc, emb

    base_p10, _, base_emb = evaluate()
    base_acc = _ncm_accuracy(base_emb, y[ho])
    yield Progress("finetune", 0, cfg.epochs, f"held-out precision@{k} {base_p10:.3f} before training")
    # (held-out P@K, epoch, weights, held-out accuracy, train accuracy); the first epoch is always
    # kept so that a run saves something, and the report says whether it beat the start
    best: tuple[float, int, Any, float, float] = (base_p10, -1, None, 0.0, 0.0)
    history: list[dict[str, float]] = []
    stopped, step, since_best, epoch = "epochs", 0, 0, -1
    for epoch in range(cfg.epochs):
        for m in mods:
            m.train()
        head.train()
        order = rng.permutation(tr)
        correct, seen, loss_sum = 0, 0, 0.0
        for s in range(0, len(order), cfg.batch_size):
            idx = np.sort(order[s : s + cfg.batch_size])
            if len(idx) < 2:
                continue
            frac = min(1.0, (step + 1) / warm) * 0.5 * (1 + np.cos(np.pi * min(1.0, step / max(1, total_steps))))
            for g, lr0 in zip(opt.param_groups, base_lrs):
                g["lr"] = lr0 * frac
            x = _augment(batch_tensor(idx), rng, cfg.min_crop_area)
            target = torch.from_numpy(y[idx]).to(dev)
            logits = head(pooled(x))
            loss = F.cross_entropy(logits.float(), target, label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            loss_sum += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == target).sum())
            seen += len(idx)
            if step % 10 == 0:
                yield Progress("finetune", epoch, cfg.epochs, f"epoch {epoch + 1}/{cfg.epochs}: {seen:,}/{len(tr):,} "
                               f"images, loss {loss_sum / max(1, seen):.3f}")
            if cfg.max_steps and step >= cfg.max_steps:
                break
        p10, acc, _ = evaluate()
        train_acc = correct / max(1, seen)
        history.append({"epoch": epoch + 1, "loss": loss_sum / max(1, seen), "train_acc": train_acc,
                         "heldout_acc": acc, "heldout_p10": p10, "seconds": time.monotonic() - t0})
        if p10 > best[0] or best[2] is None:
            state = {kk: v.detach().to("cpu", copy=True) for kk, v in model.state_dict().items()}
            best, since_best = (p10, epoch, state, acc, train_acc), 0
        else:
            since_best += 1
        yield Progress("finetune", epoch + 1, cfg.epochs,
                       f"epoch {epoch + 1}/{cfg.epochs}: held-out precision@{k} {p10:.3f} "
                       f"(best {best[0]:.3f}), accuracy {acc:.3f}")
        if cfg.max_steps and step >= cfg.max_steps:
            stopped = "steps"
            break
        if since_best >= cfg.patience:
            stopped = "early-stop"
            break
        if cfg.max_seconds and time.monotonic() - t0 > cfg.max_seconds:
            stopped = "time-budget"
            break
    report = FinetuneReport(
        name="", weights_path="", backbone=cfg.backbone, label=cfg.label, classes=[str(c) for c in classes],
        n_train=len(tr), n_heldout=len(ho), skipped=0, k=k, base_heldout_p10=base_p10, heldout_p10=best[0],
        base_heldout_acc=base_acc, heldout_acc=best[3], train_acc=best[4], best_epoch=best[1],
        epochs_run=epoch + 1, stopped=stopped, seconds=time.monotonic() - t0, device=str(dev), history=history)
    return report, best[2], base_path


def _ncm_accuracy(emb: np.ndarray, y: np.ndarray) -> float:
    """Leave-one-out nearest-class-mean accuracy of L2-normalised features (a head-free baseline)."""
    x = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    classes = np.unique(y)
    sums = np.stack([x[y == c].sum(0) for c in classes])
    counts = np.array([(y == c).sum() for c in classes], np.float64)
    correct = 0
    for i in range(len(x)):
        ci = int(np.searchsorted(classes, y[i]))
        s = sums.copy()
        cnt = counts.copy()
        s[ci] -= x[i]
        cnt[ci] -= 1
        means = s / np.maximum(cnt, 1)[:, None]
        means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
        correct += int(classes[int(np.argmax(means @ x[i]))] == y[i])
    return correct / max(1, len(x))


def _save(col: LabelledFolder, cfg: FinetuneConfig, report: FinetuneReport, state: dict,
          base_path: str) -> ProgressGen[FinetuneReport]:
    import torch

    from ... import __version__
    yield Progress("finetune-save", 0, 1, "saving the fine-tuned weights")
    d = finetuned_dir()
    d.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    safe_root = re.sub(r"[^A-Za-z0-9._-]+", "_", col.root.name)[:30].strip("._-") or "collection"
    safe_label = re.sub(r"[^A-Za-z0-9._-]+", "_", cfg.label)[:20].strip("._-") or "label"
    name = cfg.name or f"{cfg.backbone}-{safe_label}-{safe_root}-{stamp}"
    pt = d / f"{name}.pt"
    with atomic_path(pt) as tmp:
        torch.save(state, tmp)
    report.name, report.weights_path = name, str(pt)
    meta = {
        "kind": "artstyle-finetuned-backbone", "version": FINETUNE_VERSION, "artstyle": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "backbone": cfg.backbone, "base_weights_sha256": file_sha256(base_path),
        "weights_sha256": file_sha256(pt), "collection": str(col.root),
        "config": {k: v for k, v in asdict(cfg).items() if k not in ("name",)},
        "figures": {k: v for k, v in asdict(report).items() if k not in ("history", "name", "weights_path")},
        "history": report.history,
    }
    atomic_write_bytes(d / f"{name}.json", json.dumps(meta, indent=1).encode("utf-8"))
    yield Progress("finetune-save", 1, 1, f"saved {pt.name}")
    return report
