"""Style adapter: a small learned metric on top of the frozen features, trained from the user's labels.

ImageNet features know objects better than brushwork, so the unadapted ("base") neighbours of a
painting often share its subject rather than its style.  When some paintings carry a label
(artist, style or any CSV column), a small projection head is trained on the frozen features so
that paintings with the same label come close:

* one head per part (``deep``, ``texture``, ``colour``), linear (default) or a 2-layer MLP, each
  output L2-normalised, so the adapted space keeps the three parts, the blend weights and the
  "why similar" shares of the base space;
* input of each head: the base part (PCA-reduced, L2-normalised, see :mod:`.analysis`); the texture
  head also sees the mean and standard deviation of the stored 7x7 mid-level feature map (cheap,
  already stored, and measured to help, docs/quality.md);
* loss: supervised contrastive (SupCon, Khosla et al. 2020; its softmax over all negatives of a
  batch weights the hard ones most) or batch-hard triplet (hardest positive and hardest negative of
  every anchor); class-balanced batches so every anchor has positives;
* overfitting guard: part of every label is held out; training stops early on held-out
  precision@10 and keeps the best epoch; train and held-out figures are reported.

The adapter carries its own copy of the base PCA projections, so it stays valid when the base
analysis is refitted (files added or removed); applying it needs no torch (plain numpy).  It is
saved next to the analysis as ``adapter.npz`` (arrays only, loaded with ``allow_pickle=False``) and
``adapter.json`` (provenance: label column, classes, dates, figures, feature set, settings).

Training is a progress generator (one :class:`Progress` per epoch); stopping it between yields
leaves the saved adapter and the base space untouched (nothing is written until training ends).
"""

from __future__ import annotations

import hashlib
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..analysis.neighbors import NeighbourIndex
from ..analysis.parts import PARTS, PartModel, blend, l2n
from ..analysis.topics import TopicModel, fit_topics, pca_counts
from ..derived import DerivedFiles
from ..errors import ArtStyleError, IndexLocked
from ..ingest.store import load_json, load_npz, save_json, save_npz
from ..model import Analysis
from ..progress import Progress, ProgressGen
from .split import (
    heldout_rows,
    precision_at,
    retrieval_k,
    stratified_holdout,
    usable_labels,
)
from .verify import Comparison, load_verifier, train_verifier

ADAPTER_VERSION = 1
ADAPTER_NPZ, ADAPTER_JSON = "adapter.npz", "adapter.json"
ADAPTED_CACHE = "adapted.npz"
SPACES = ("base", "adapted")


@dataclass
class AdapterConfig:
    """Training knobs (the defaults are the measured ones, docs/quality.md)."""

    label: str = "style"
    kind: str = "linear"  # "linear" | "mlp" (2 layers)
    dim: int = 128  # output size of each part's head
    hidden: int = 256  # mlp only
    loss: str = "supcon"  # "supcon" | "triplet" (batch-hard)
    temperature: float = 0.1  # supcon
    margin: float = 0.2  # triplet (cosine distance)
    use_local: bool = True  # texture head also sees mean/std of the stored 7x7 feature map
    epochs: int = 80
    batch_size: int = 256
    per_class: int = 4  # class-balanced batches: groups of this many rows of one label
    lr: float = 2e-3
    weight_decay: float = 1e-4
    holdout: float = 0.2  # fraction of every label held out for early stopping
    patience: int = 10  # epochs without held-out improvement before stopping
    max_seconds: float = 100.0  # wall-clock budget of the epochs (the best epoch so far is kept)
    min_per_label: int = 2  # labels with fewer paintings are ignored
    seed: int = 0

    def validate(self) -> None:
        if self.kind not in ("linear", "mlp"):
            raise ArtStyleError("adapter kind must be 'linear' or 'mlp'.")
        if self.loss not in ("supcon", "triplet"):
            raise ArtStyleError("adapter loss must be 'supcon' or 'triplet'.")
        if not 0.0 < self.holdout < 0.9:
            raise ArtStyleError("holdout must be between 0 and 0.9.")
        if self.dim < 2 or self.epochs < 1 or self.batch_size < 4:
            raise ArtStyleError("adapter dim, epochs and batch size are too small.")


@dataclass
class AdapterReport:
    """What a training run measured (also saved in the provenance JSON)."""

    label: str
    n_labelled: int
    n_train: int
    n_heldout: int
    classes: int
    epochs_run: int
    best_epoch: int
    stopped: str  # "early-stop" | "epochs" | "time-budget"
    seconds: float
    k: int  # the K of the precision@K figures below (10, or less for labels with few paintings)
    train_p10: float  # adapted space, training rows among themselves
    heldout_p10: float  # adapted space, held-out rows among themselves
    base_heldout_p10: float  # base space, the same held-out rows
    heldout_vs_all_p10: float  # held-out queries against every labelled painting (adapted)
    base_heldout_vs_all_p10: float  # the same in the base space
    history: list[dict[str, float]] = field(default_factory=list)

    def summary(self) -> str:
        return (f"adapter on '{self.label}': {self.n_labelled:,} labelled paintings, {self.classes} labels; "
                f"held-out P@{self.k} {self.base_heldout_p10:.3f} -> {self.heldout_p10:.3f} "
                f"(train {self.train_p10:.3f}); best epoch {self.best_epoch + 1} of {self.epochs_run} "
                f"({self.stopped}, {self.seconds:.0f} s)")


# --------------------------------------------------------------------------- inputs
def local_stats(local) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation over the cells of the stored local map (N, cells, C); a
    (mean, std) pair is passed through."""
    if isinstance(local, tuple):
        return local
    x = local.astype(np.float32)
    return x.mean(1), x.std(1)


def _gelu(x: np.ndarray) -> np.ndarray:  # tanh form, the same as torch's approximate="tanh"
    return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x ** 3)))


@dataclass
class StyleAdapter:
    """A trained adapter: plain arrays + provenance; applying it is numpy only."""

    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]

    @property
    def part_model(self) -> PartModel:
        return PartModel.from_arrays(self.arrays)

    @property
    def kind(self) -> str:
        return str(self.meta["config"]["kind"])

    @property
    def use_local(self) -> bool:
        return bool(self.meta["config"]["use_local"])

    @property
    def id(self) -> str:
        return str(self.meta["id"])

    def inputs_from_parts(self, parts: dict[str, np.ndarray], local) -> dict[str, np.ndarray]:
        """Head inputs from base parts fitted by *this adapter's* PCA (+ the raw local map (N, cells, C)
        or its :func:`local_stats`)."""
        trained = [p for p in parts if f"h_{p}_w1" in self.arrays]  # the parts it has heads for (all, in training)
        out = {p: np.asarray(parts[p], np.float32) for p in (trained or parts)}
        if self.use_local:
            if local is None:
                raise ArtStyleError("This adapter needs the stored local features.")
            m, s = local_stats(local)
            m = l2n(l2n(m) - self.arrays["loc_mean_mu"])
            s = l2n(l2n(s) - self.arrays["loc_std_mu"])
            out["texture"] = np.concatenate([out["texture"], m, s], axis=1)
        return out

    def inputs_from_raw(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.inputs_from_parts(self.part_model.transform(raw), raw.get("local"))

    def apply(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Head inputs -> adapted parts (each L2-normalised)."""
        out = {}
        for p in inputs:
            x = inputs[p].astype(np.float32)
            if self.kind == "mlp":
                x = _gelu(x @ self.arrays[f"h_{p}_w1"].T + self.arrays[f"h_{p}_b1"])
                x = x @ self.arrays[f"h_{p}_w2"].T + self.arrays[f"h_{p}_b2"]
            else:
                x = x @ self.arrays[f"h_{p}_w1"].T + self.arrays[f"h_{p}_b1"]
            out[p] = l2n(x)
        return out

    def transform_raw(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Raw stored features (deep, gram<i>, colour, local) -> adapted parts."""
        return self.apply(self.inputs_from_raw(raw))

    # -- persistence ---------------------------------------------------------
    def save(self, d: Path) -> None:
        save_npz(Path(d) / ADAPTER_NPZ, **self.arrays)
        save_json(Path(d) / ADAPTER_JSON, self.meta)

    @classmethod
    def load(cls, d: Path) -> "StyleAdapter | None":
        d = Path(d)
        if not (d / ADAPTER_JSON).exists() or not (d / ADAPTER_NPZ).exists():
            return None
        meta = load_json(d / ADAPTER_JSON)
        if not isinstance(meta, dict) or meta.get("version") != ADAPTER_VERSION:
            return None
        arrays = load_npz(d / ADAPTER_NPZ)
        if meta.get("id") != _arrays_id(arrays):  # arrays and provenance of different runs
            return None
        return cls(arrays, meta)


def _arrays_id(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha1()
    for k in sorted(arrays):
        h.update(k.encode())
        h.update(np.ascontiguousarray(arrays[k]).tobytes())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- splits and scores
def _balanced_batches(y: np.ndarray, rows: np.ndarray, bs: int, per_class: int,
                      rng: np.random.Generator) -> list[np.ndarray]:
    """Every training row once per epoch, in groups of ``per_class`` rows of one label, the groups
    shuffled and packed into batches: each anchor almost always has positives in its batch."""
    groups = []
    for v in np.unique(y[rows]):
        idx = rows[y[rows] == v].copy()
        rng.shuffle(idx)
        groups.extend(idx[i : i + per_class] for i in range(0, len(idx), per_class))
    order = rng.permutation(len(groups))
    batches, cur, n = [], [], 0
    for g in order:
        cur.append(groups[g])
        n += len(groups[g])
        if n >= bs:
            batches.append(np.concatenate(cur))
            cur, n = [], 0
    if cur:
        if batches and n < bs // 4:
            batches[-1] = np.concatenate([batches[-1], *cur])
        else:
            batches.append(np.concatenate(cur))
    return batches


def _supcon(z, y, temperature: float):
    import torch

    n = z.shape[0]
    sim = z @ z.T / temperature
    eye = torch.eye(n, dtype=torch.bool)
    sim = sim.masked_fill(eye, -1e9)
    pos = (y[:, None] == y[None, :]) & ~eye
    logp = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    npos = pos.sum(1)
    has = npos > 0
    if not bool(has.any()):
        return z.sum() * 0.0
    loss = -(logp * pos).sum(1)[has] / npos[has]
    return loss.mean()


def _batch_hard_triplet(z, y, margin: float):
    import torch

    d = 1.0 - z @ z.T
    same = y[:, None] == y[None, :]
    eye = torch.eye(z.shape[0], dtype=torch.bool)
    hardest_pos = d.masked_fill(~same | eye, -1.0).amax(1)
    hardest_neg = d.masked_fill(same, 9.0).amin(1)
    ok = (hardest_pos >= 0) & (hardest_neg < 9.0)
    if not bool(ok.any()):
        return z.sum() * 0.0
    return torch.relu(hardest_pos - hardest_neg + margin)[ok].mean()


@contextmanager
def _torch_threads(n: int):
    """Run a block with ``n`` intra-op torch threads, then restore (never across a yield)."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class _AdamW:
    """AdamW (Loshchilov & Hutter) in a few tensor ops: torch.optim's first step imports the
    compiler stack (seconds on a small machine), which a few hundred steps do not need."""

    def __init__(self, params, lr: float, weight_decay: float, betas=(0.9, 0.999), eps: float = 1e-8) -> None:
        import torch

        self.params, self.lr, self.wd, self.betas, self.eps, self.t = params, lr, weight_decay, betas, eps, 0
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        import torch

        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        with torch.no_grad():
            for p, m, v in zip(self.params, self.m, self.v):
                if p.grad is None:
                    continue
                p.mul_(1 - self.lr * self.wd)
                m.mul_(b1).add_(p.grad, alpha=1 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                p.addcdiv_(m / c1, (v / c2).sqrt_().add_(self.eps), value=-self.lr)


def _make_heads(dims: dict[str, int], cfg: AdapterConfig):
    import torch.nn as nn

    heads = {}
    for p, d in dims.items():
        if cfg.kind == "mlp":
            heads[p] = nn.Sequential(nn.Linear(d, cfg.hidden), nn.GELU(approximate="tanh"), nn.Dropout(0.1),
                                     nn.Linear(cfg.hidden, cfg.dim))
        else:
            heads[p] = nn.Linear(d, cfg.dim)
    return nn.ModuleDict(heads)


def _head_arrays(heads, cfg: AdapterConfig) -> dict[str, np.ndarray]:
    out = {}
    for p, h in heads.items():
        layers = [h[0], h[3]] if cfg.kind == "mlp" else [h]
        for i, lin in enumerate(layers, 1):
            out[f"h_{p}_w{i}"] = lin.weight.detach().cpu().numpy().astype(np.float32).copy()
            out[f"h_{p}_b{i}"] = lin.bias.detach().cpu().numpy().astype(np.float32).copy()
    return out


def train_adapter(parts: dict[str, np.ndarray], local: np.ndarray | None, part_model: PartModel,
                  labels: list[str], weights: dict[str, float], config: AdapterConfig | None = None,
                  provenance: dict[str, Any] | None = None) -> ProgressGen[tuple[StyleAdapter, AdapterReport]]:
    """Train an adapter on base ``parts`` (fitted by ``part_model``) of every painting and the
    ``labels`` (one string per row, "" = unlabelled).  Yields one Progress per epoch.

    Nothing is written: the caller saves the returned adapter (so a cancelled run changes nothing).
    """
    import torch

    cfg = config or AdapterConfig()
    cfg.validate()
    t0 = time.monotonic()
    lab = np.array([x or "" for x in labels], dtype=object).astype(str)
    mask = usable_labels(list(lab), cfg.min_per_label)
    rows = np.flatnonzero(mask)
    classes = np.unique(lab[rows])
    if len(classes) < 2:
        raise ArtStyleError(f"Training an adapter needs at least two '{cfg.label}' labels with "
                            f"{cfg.min_per_label}+ paintings each (found {len(classes)}).")
    y_all = np.full(len(lab), -1, np.int64)
    y_all[rows] = np.searchsorted(classes, lab[rows])
    tr_local, ho_local = stratified_holdout(y_all[rows], cfg.holdout, cfg.seed)
    tr, ho = rows[tr_local], rows[ho_local]
    if len(ho) < 2:
        raise ArtStyleError(f"Too few labelled paintings to hold some out ({len(rows)} with a usable "
                            f"'{cfg.label}' label); label a few more.")
    # precision@k with k = 10, or less when the held-out labels have few paintings (a held-out
    # painting can only find the other held-out paintings of its label)
    kq = retrieval_k(y_all[ho])
    yield Progress("adapt", 0, cfg.epochs, f"{len(rows):,} labelled paintings, {len(classes)} labels")

    # assemble inputs through a provisional adapter object (the same code path as inference)
    arrays: dict[str, np.ndarray] = dict(part_model.to_arrays())
    if cfg.use_local and local is None:
        cfg = AdapterConfig(**{**asdict(cfg), "use_local": False})
    if cfg.use_local:
        m, s = (x[tr] for x in local_stats(local))
        arrays["loc_mean_mu"] = l2n(m).mean(0).astype(np.float32)
        arrays["loc_std_mu"] = l2n(s).mean(0).astype(np.float32)
    probe = StyleAdapter(arrays, {"config": asdict(cfg)})
    inputs = probe.inputs_from_parts(parts, local)
    base_emb = blend(parts, weights)

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    X = {p: torch.from_numpy(np.ascontiguousarray(inputs[p], np.float32)) for p in parts}
    # every head learns, also those of parts the blend switches off now (floor: 10% of the largest
    # weight), so raising a weight later gives a trained part, not a random projection
    top = max(max(0.0, float(weights.get(p, 0.0))) for p in parts)
    w_train = {p: max(float(weights.get(p, 0.0)), 0.1 * top) for p in parts}
    total = sum(w_train.values())
    scale = {p: float(np.sqrt(w_train[p] / total)) for p in parts}
    live = list(parts)
    heads = _make_heads({p: X[p].shape[1] for p in parts}, cfg)
    opt = _AdamW(list(heads.parameters()), lr=cfg.lr, weight_decay=cfg.weight_decay)
    yt = torch.from_numpy(y_all)

    def embed(idx: np.ndarray | None = None):
        zs = []
        for p in live:
            x = X[p] if idx is None else X[p][idx]
            zs.append(scale[p] * torch.nn.functional.normalize(heads[p](x), dim=1))
        return torch.cat(zs, 1)

    best = (-1.0, -1, None)
    history: list[dict[str, float]] = []
    stopped = "epochs"
    ep = -1
    y_ho, all_ho = y_all[ho], np.arange(len(ho))

    def epoch() -> tuple[list[float], float]:
        heads.train()
        losses = []
        for b in _balanced_batches(y_all, tr, cfg.batch_size, cfg.per_class, rng):
            z = embed(b)
            yb = yt[b]
            loss = _supcon(z, yb, cfg.temperature) if cfg.loss == "supcon" else _batch_hard_triplet(z, yb, cfg.margin)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        heads.eval()
        with torch.no_grad():
            emb_ho = embed(ho).numpy()
        return losses, precision_at(emb_ho, y_ho, all_ho, all_ho, kq)

    for ep in range(cfg.epochs):
        with _torch_threads(1):  # small matrices: one thread is many times faster than several on a busy CPU
            losses, val = epoch()
        history.append({"epoch": ep + 1, "loss": float(np.mean(losses)) if losses else 0.0, "heldout_p10": val})
        if val > best[0]:
            best = (val, ep, {k: v.detach().clone() for k, v in heads.state_dict().items()})
        yield Progress("adapt", ep + 1, cfg.epochs,
                       f"epoch {ep + 1}: held-out P@10 {val:.3f} (best {best[0]:.3f})")
        if ep - best[1] >= cfg.patience:
            stopped = "early-stop"
            break
        if time.monotonic() - t0 > cfg.max_seconds:
            stopped = "time-budget"
            break

    heads.load_state_dict(best[2])
    heads.eval()
    arrays.update(_head_arrays(heads, cfg))
    adapter = StyleAdapter(arrays, {})
    adapter.meta = {"config": asdict(cfg)}
    adapted = adapter.apply(inputs)
    emb = blend(adapted, weights)
    rep = AdapterReport(
        label=cfg.label, n_labelled=int(len(rows)), n_train=int(len(tr)), n_heldout=int(len(ho)),
        classes=int(len(classes)), epochs_run=ep + 1, best_epoch=int(best[1]), stopped=stopped,
        seconds=time.monotonic() - t0,
        k=kq, train_p10=precision_at(emb, y_all, tr, tr, kq), heldout_p10=precision_at(emb, y_all, ho, ho, kq),
        base_heldout_p10=precision_at(base_emb, y_all, ho, ho, kq),
        heldout_vs_all_p10=precision_at(emb, y_all, ho, rows, kq),
        base_heldout_vs_all_p10=precision_at(base_emb, y_all, ho, rows, kq), history=history,
    )
    adapter.meta = {
        "version": ADAPTER_VERSION, "id": _arrays_id(arrays), "label": cfg.label,
        "classes": [str(c) for c in classes], "config": asdict(cfg), "blend_at_training": dict(weights),
        "blend_trained": w_train,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "figures": asdict(rep),
        "heldout_rows": int(len(ho)), **(provenance or {}),
    }
    yield Progress("adapt", cfg.epochs, cfg.epochs, rep.summary())
    return adapter, rep


# --------------------------------------------------------------------------- collection glue
CHUNK = 4096


def load_local_stats(files: DerivedFiles, hashes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`local_stats` of the stored local maps, read in chunks."""
    ms, ss = [], []
    for s in range(0, len(hashes), CHUNK):
        m, sd = local_stats(files.load_raw(hashes[s : s + CHUNK])["local"])
        ms.append(m)
        ss.append(sd)
    return np.concatenate(ms), np.concatenate(ss)


def adapt_collection(an: Analysis, files: DerivedFiles, label: str, config: AdapterConfig | None = None
                     ) -> ProgressGen[tuple[StyleAdapter, AdapterReport, Analysis]]:
    """Train an adapter (and the "same hand?" verifier) on the labels of ``an`` and save both with the
    index. Returns (adapter, report, the analysis in the space ``files.settings.space`` asks for).
    Cancelling between yields writes nothing."""
    cfg = config or AdapterConfig(label=label)
    cfg.label = label
    base = an.base_space
    base_parts = base.parts
    labels = an.label_column(label)
    if not any(labels):
        raise ArtStyleError(f"No painting has a {label!r} label. Pass --labels CSV or --artist-from-folder.")
    yield Progress("adapt", 0, cfg.epochs, "loading the stored features")
    local = load_local_stats(files, an.hashes) if cfg.use_local else None
    prov = {"featureset": an.featureset, "analysis_fingerprint": an.fingerprint, "n_paintings": an.n,
            "settings": an.settings.to_json(), "collection": str(files.root)}
    adapter, rep = yield from train_adapter(base_parts, local, an.part_model, labels, an.weights, cfg, prov)
    adapted = adapter.apply(adapter.inputs_from_parts(base_parts, local))
    yield Progress("verify", 0, 1, "training the same-hand verifier")
    ver = train_verifier(adapted, labels, space="adapted", adapter_id=adapter.id, label=label, seed=cfg.seed,
                         heldout_rows=heldout_rows(labels, cfg.holdout, cfg.seed, cfg.min_per_label))
    d = files.dir

    def write() -> None:  # adapter arrays first: its JSON (with the arrays' digest) marks it complete
        adapter.save(d)
        ver.save(d)
        _save_cache(d, an.fingerprint, adapter.id, adapted)

    _write_locked(files, write)
    yield Progress("verify", 1, 1, f"verifier trained (held-out pair AUC "
                                   f"{ver.meta['figures']['heldout_pair_auc']:.3f})")
    # topics of the adapted space, fitted now so that switching spaces later is instant
    yield from adapted_topics(files, an, adapter, adapted)
    shown = restore_base(an)
    if files.settings.space == "adapted":
        shown = yield from use_space(shown, files, "adapted")
    return adapter, rep, shown


def _write_locked(files: DerivedFiles, fn) -> None:
    """Derived files are written by the writer-lock holder only (as the index does)."""
    try:
        files.write_locked(fn)
    except IndexLocked as e:
        raise ArtStyleError("Another process is updating this index; try again when it has finished.") from e


def _save_cache(d: Path, fingerprint: str, adapter_id: str, parts: dict[str, np.ndarray]) -> None:
    save_npz(d / ADAPTED_CACHE, **{f"part_{p}": v for p, v in parts.items()})
    save_json(d / "adapted.json", {"fingerprint": fingerprint, "adapter": adapter_id})


def load_adapter(files: DerivedFiles) -> StyleAdapter | None:
    return StyleAdapter.load(files.dir)


def adapted_parts(files: DerivedFiles, an: Analysis, adapter: StyleAdapter) -> dict[str, np.ndarray]:
    """Adapted parts of every row of ``an`` (cached next to the analysis)."""
    d = files.dir
    if (d / "adapted.json").exists() and (d / ADAPTED_CACHE).exists():
        meta = load_json(d / "adapted.json")
        if meta.get("fingerprint") == an.fingerprint and meta.get("adapter") == adapter.id:
            a = load_npz(d / ADAPTED_CACHE)
            return {p: a[f"part_{p}"] for p in PARTS}
    chunks: list[dict[str, np.ndarray]] = []
    for s in range(0, an.n, CHUNK):  # in chunks: the raw features of a large collection are big
        raw = files.load_raw(an.hashes[s : s + CHUNK])
        if not adapter.use_local:
            raw.pop("local", None)
        chunks.append(adapter.transform_raw(raw))
    parts = {p: np.concatenate([c[p] for c in chunks]) for p in chunks[0]} if chunks else {}
    # another process holds the index: the cache is only a cache
    files.write_if_unlocked(lambda: _save_cache(d, an.fingerprint, adapter.id, parts))
    return parts


def compare_rows(files: DerivedFiles, an: Analysis, a: int, b: int) -> Comparison:
    """Compare rows ``a`` and ``b`` of ``an`` with the collection's saved verifier, in the space it
    was trained in (whichever space ``an`` shows now)."""
    for r in (a, b):
        if not 0 <= r < an.n:
            raise ArtStyleError(f"No painting number {r}.")
    ver = load_verifier(files.dir)
    if ver is None:
        raise ArtStyleError("No same-hand verifier has been trained for this collection yet. "
                            "Run `artstyle adapt FOLDER --label artist` (or style, or a CSV column).")
    if ver.space == "adapted":
        adapter = load_adapter(files)
        if adapter is None or adapter.id != ver.meta.get("adapter_id"):
            raise ArtStyleError("The verifier belongs to a style adapter that is gone; run `artstyle adapt` again.")
        if an.space == "adapted" and an.adapter is not None and an.adapter.id == adapter.id:
            parts = an.parts
        else:
            parts = adapted_parts(files, an, adapter)
    else:
        parts = an.base_space.parts
    return ver.explain(parts, a, b)


# --------------------------------------------------------------------------- spaces of an Analysis
def restore_base(an: Analysis) -> Analysis:
    """The base-space analysis of ``an`` (its parts were kept, never modified), ranked with ``an``'s
    blend weights and metric."""
    if an.space != "adapted":
        return an
    base = an.base_space
    if base.weights != an.weights or base.metric != an.metric:
        return base.with_blend(an.weights, an.metric, an.settings)
    return replace(base, settings=an.settings)


def use_space(an: Analysis, files: DerivedFiles, space: str) -> ProgressGen[Analysis]:
    """``an`` shown in the base or the adapted space (neighbour index and topics follow): a new Analysis
    (``an`` itself if it shows that space already)."""
    if space not in SPACES:
        raise ArtStyleError(f"space must be one of {', '.join(SPACES)}.")
    if space == "base":
        return restore_base(an)
    if an.space == "adapted":
        return an
    adapter = load_adapter(files)
    if adapter is None:
        raise ArtStyleError("No style adapter has been trained for this collection yet. "
                            "Run `artstyle adapt FOLDER --label artist` (or style, or a CSV column).")
    yield Progress("adapted-space", 0, 3, "applying the style adapter")
    parts = adapted_parts(files, an, adapter)
    yield Progress("adapted-space", 1, 3, "building the adapted neighbour index")
    index = NeighbourIndex.build(blend(parts, an.weights), an.metric, seed=an.settings.seed)
    yield Progress("adapted-space", 2, 3, "style topics in the adapted space")
    topics = yield from adapted_topics(files, an, adapter, parts)
    adapted = replace(an, parts=parts, index=index, topics=topics, space="adapted", adapter=adapter, base=an)
    yield Progress("adapted-space", 3, 3, "adapted space ready")
    return adapted


def adapted_topics(files: DerivedFiles, an: Analysis, adapter: StyleAdapter, parts: dict[str, np.ndarray]):
    """LDA topics on the adapted embedding (shifted to non-negative pseudo-counts), cached."""
    st = files.settings
    if an.n < 4:
        return None
    d = files.dir
    key = {"fingerprint": an.fingerprint, "adapter": adapter.id, "k": st.k, "k_range": list(st.k_range),
           "seed": st.seed, "weights": an.weights}
    if (d / "adapted_topics.json").exists() and (d / "adapted_topics.npz").exists():
        meta = load_json(d / "adapted_topics.json")
        if meta.get("key") == key:
            a = load_npz(d / "adapted_topics.npz")
            return TopicModel(int(a["mixtures"].shape[1]), a["mixtures"], a["components"],
                              [int(x) for x in a["curve_k"]], [float(x) for x in a["curve_perplexity"]], "adapted")
    counts = pca_counts(blend(parts, an.weights)).counts
    k = min(st.k, an.n) if st.k is not None else None
    tm = yield from fit_topics(counts, k=k, k_range=st.k_range, seed=st.seed, kind="adapted")

    def write() -> None:
        save_npz(d / "adapted_topics.npz", mixtures=tm.mixtures, components=tm.components,
                 curve_k=np.asarray(tm.curve_k, np.int64),
                 curve_perplexity=np.asarray(tm.curve_perplexity, np.float64))
        save_json(d / "adapted_topics.json", {"key": key})

    files.write_if_unlocked(write)  # another process holds the index: keep the topics in memory only
    return tm
