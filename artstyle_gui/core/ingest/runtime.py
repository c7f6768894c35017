"""What runs the backbone, and where: ONNX Runtime on the CPU, or torch on the CPU, CUDA or Apple MPS.

``Settings.runtime`` ("auto" | "onnx" | "torch") and ``Settings.device`` ("auto" | "cpu" | "cuda" | "mps")
choose; :func:`use_runtime` turns a loaded torch :class:`~.backbones.Backbone` into what they ask for:

* a GPU (``device`` "cuda"/"mps", or "auto" when torch sees one): the torch backbone moved there;
* the CPU with runtime "auto" or "onnx": an :class:`OnnxBackbone`, the same network exported to ONNX
  (:meth:`Backbone.features <.backbones.Backbone.features>`: uint8 crops in; deep, Gram and local
  features out, dynamic batch) and run by ONNX Runtime: 2.6x the torch path's images/s on the 2-core
  machine here (docs/benchmarks.md, "ONNX Runtime"), features equal within cosine 0.9999 per part;
* "torch", or "auto" when ONNX Runtime is missing or the export fails: the torch backbone as it is
  ("auto" says so in one warning line of the ``artstyle`` logger).

The export is made at first use, checked against torch, and cached in ``<user data>/onnx/``
(:func:`onnx_cache_dir`), named by the weights' sha256, the ONNX Runtime version, the opset and
:data:`EXPORT_VERSION`; a network without a weights file (resnet50 with random weights, a toy) is
exported again at each load instead.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from ..errors import BackboneUnavailable
from .backbones import (
    FORWARD_CHUNK,
    INPUT_SIZE,
    LOCAL_GRID,
    Backbone,
    BackboneInfo,
    forward_in_chunks,
    network_threads,
)
from .store import default_index_root

log = logging.getLogger("artstyle")

RUNTIMES = ("auto", "onnx", "torch")
DEVICES = ("auto", "cpu", "cuda", "mps")
OPSET = 17
#: part of the cache file's name: bump it when :meth:`Backbone.features` or the export changes
EXPORT_VERSION = 1
#: the least cosine per part (deep, each Gram, local) between a fresh export and torch before it is used
MIN_COSINE = 0.9999

#: how many exports this process has run (the tests check that a cached file is reused)
export_count = 0
#: cache file name -> the file this process last wrote or read under that name: a second data folder
#: (the tests' temporary ones) gets a copy instead of a new export
_known_files: dict[str, Path] = {}


def onnx_cache_dir() -> Path:
    """Where exported networks are kept: ``onnx/`` in the user data folder (beside ``collections/``)."""
    return default_index_root() / "onnx"


def resolve_device(device: str = "auto") -> str:
    """The device ``device`` means here: "auto" is CUDA when torch sees a GPU, then Apple MPS, else the
    CPU; a GPU asked for by name that torch cannot use is BackboneUnavailable, saying why."""
    import torch

    if device not in DEVICES:
        raise BackboneUnavailable(f"Unknown device {device!r}; choose one of {', '.join(DEVICES)}.")
    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if device == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if device == "cuda" and not cuda:
        build = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise BackboneUnavailable(
            f"The device 'cuda' was asked for, but torch sees no usable CUDA GPU (torch {torch.__version__}, "
            f"{build}). Choose --device auto or cpu (Settings > Device), or install a CUDA build of torch.")
    if device == "mps" and not mps:
        raise BackboneUnavailable(
            "The device 'mps' (Apple GPU) was asked for, but torch cannot use it here. "
            "Choose --device auto or cpu (Settings > Device).")
    return device


def use_runtime(backbone: Backbone, runtime: str = "auto", device: str = "auto") -> Backbone | OnnxBackbone:
    """``backbone`` (a torch backbone on the CPU, as ``load_backbone`` gives it) made to run where
    ``runtime`` and ``device`` say (module docstring). "onnx" that cannot be had, or a GPU that is not
    there, is BackboneUnavailable; "auto" falls back to torch with one warning line."""
    if runtime not in RUNTIMES:
        raise BackboneUnavailable(f"Unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}.")
    dev = "cpu" if runtime == "onnx" and device == "auto" else resolve_device(device)
    if dev != "cpu":
        if runtime == "onnx":
            raise BackboneUnavailable(f"The ONNX runtime runs on the CPU only; with the device '{dev}' choose "
                                      "the runtime 'torch' or 'auto' (or the device 'cpu').")
        return backbone.to_device(dev)
    if runtime == "torch":
        return backbone
    try:
        return OnnxBackbone.from_backbone(backbone)
    except Exception as e:  # onnxruntime missing or broken, an export or a check that failed, a full disk...
        first = (str(e).strip().splitlines() or [""])[0][:300]
        why = f"{type(e).__name__}: {first}" if first else type(e).__name__
        if runtime == "onnx":
            raise BackboneUnavailable(
                f"The ONNX runtime cannot run the backbone {backbone.info.name!r} ({why}). Install it "
                "(pip install onnxruntime onnx) or choose the runtime 'torch' or 'auto'.") from e
        log.warning("artstyle: warning: ONNX Runtime not used for %s (%s); the network runs with torch instead.",
                    backbone.info.name, why)
        return backbone


class OnnxBackbone:
    """A backbone run by ONNX Runtime on the CPU: the :class:`~.backbones.Backbone` contract
    (``forward``, ``info``, ``weights_path``, ``weights_sha256``) over an exported network."""

    runtime = "onnx"
    device = "cpu"

    def __init__(self, info: BackboneInfo, session, weights_path: str | None, weights_sha256: str | None,
                 path: Path | None = None) -> None:
        self.info = info
        self.session = session
        self.weights_path = weights_path
        self.weights_sha256 = weights_sha256
        self.path = path  # the cached .onnx file (None: not cached)
        self._input = session.get_inputs()[0].name

    @classmethod
    def from_backbone(cls, bb: Backbone) -> OnnxBackbone:
        """The ONNX twin of ``bb``: its cached export, or a new one (checked against ``bb``, then cached)."""
        import onnxruntime  # noqa: F401  (first: without it nothing is exported)

        name = cache_name(bb)
        if name is None:  # nothing to key a cache on: export into memory
            model = export_onnx(bb)
            return cls(bb.info, _checked_session(bb, model), bb.weights_path, bb.weights_sha256)
        path = onnx_cache_dir() / name
        if not path.is_file():
            _copy_known(name, path)
        if path.is_file():
            try:
                session = make_session(str(path))
            except Exception as e:  # noqa: BLE001 - a damaged file: made again below
                log.warning("artstyle: warning: the cached ONNX network %s could not be read (%s); "
                            "exporting it again.", path, type(e).__name__)
            else:
                _known_files[name] = path
                return cls(bb.info, session, bb.weights_path, bb.weights_sha256, path)
        model = export_onnx(bb)
        session = _checked_session(bb, model)
        try:
            _write_atomically(path, model)
        except OSError as e:  # a read-only or full disk: this run uses it all the same
            log.warning("artstyle: warning: the ONNX network could not be cached in %s (%s); it is exported again "
                        "at the next start.", path.parent, e)
            return cls(bb.info, session, bb.weights_path, bb.weights_sha256)
        _known_files[name] = path
        return cls(bb.info, session, bb.weights_path, bb.weights_sha256, path)

    def forward(self, batch_uint8: np.ndarray) -> dict[str, np.ndarray]:
        """A batch (B, 224, 224, 3) uint8 -> {"deep", "grams", "local"} float32, as ``Backbone.forward``."""
        return forward_in_chunks(self._forward_chunk, batch_uint8, FORWARD_CHUNK)

    def _forward_chunk(self, batch_uint8: np.ndarray) -> dict[str, np.ndarray]:
        x = np.ascontiguousarray(batch_uint8, dtype=np.uint8)
        if len(x) == 0:
            info = self.info
            return {"deep": np.zeros((0, info.deep_dim), np.float32),
                    "grams": [np.zeros((0, c * (c + 1) // 2), np.float32) for c in info.gram_channels],
                    "local": np.zeros((0, LOCAL_GRID * LOCAL_GRID, info.local_channels), np.float32)}
        out = self.session.run(None, {self._input: x})
        return {"deep": out[0], "grams": list(out[1:-1]), "local": out[-1]}


def cache_name(bb: Backbone) -> str | None:
    """The cache file's name for ``bb``'s export (None: no weights file to key it on)."""
    if not bb.weights_sha256:
        return None
    import onnxruntime

    return f"{bb.info.name}-{bb.weights_sha256[:20]}-ort{onnxruntime.__version__}-opset{OPSET}-v{EXPORT_VERSION}.onnx"


def export_onnx(bb: Backbone) -> bytes:
    """``bb.features`` as an ONNX model: input ``images`` (B, 224, 224, 3) uint8, outputs ``deep``,
    ``gram0``.. and ``local`` (float32), the batch dynamic. Exported from the same fused model that torch
    runs, by torch's TorchScript-based exporter (it needs the ``onnx`` package, not ``onnxscript``)."""
    global export_count
    import torch

    class _Features(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = bb.model  # its weights become the graph's initializers

        def forward(self, x):
            deep, grams, local = bb.features(x)
            return (deep, *grams, local)

    grams = [f"gram{i}" for i in range(len(bb.info.gram_channels))]
    names = ["images", "deep", *grams, "local"]
    x = torch.zeros((2, INPUT_SIZE, INPUT_SIZE, 3), dtype=torch.uint8)
    buf = io.BytesIO()
    with warnings.catch_warnings():  # the tracer's notes on shapes it records as constants (all are)
        warnings.simplefilter("ignore")
        torch.onnx.export(_Features().eval(), (x,), buf, input_names=names[:1], output_names=names[1:],
                          dynamic_axes={n: {0: "batch"} for n in names}, opset_version=OPSET,
                          do_constant_folding=True, dynamo=False)
    export_count += 1
    return buf.getvalue()


def make_session(model: str | bytes):
    """An ONNX Runtime CPU session over ``model`` (a path or the bytes of one): all graph optimisations,
    :func:`~.backbones.network_threads` intra-op threads that sleep instead of spinning between passes,
    one inter-op thread.

    Without spinning, indexing (the decode threads beside the network) ran 138 images/s against 117 with
    ORT's default spin-wait, and 120-125 with one intra-op thread; the network alone is the same
    (2 cores, docs/benchmarks.md "ONNX Runtime")."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = network_threads()
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3  # errors only
    return ort.InferenceSession(model, sess_options=so, providers=["CPUExecutionProvider"])


def _checked_session(bb: Backbone, model: bytes):
    """A session over a fresh export, once its features agree with ``bb``'s (MIN_COSINE per part) on a
    few fixed test crops; else RuntimeError (an exporter or runtime that computes something else)."""
    session = make_session(model)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (3, INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8)
    x[1] = np.linspace(0, 255, INPUT_SIZE, dtype=np.uint8)[None, :, None]  # a smooth picture beside the noise
    ref = bb.forward(x)
    out = session.run(None, {session.get_inputs()[0].name: x})
    for name, a, b in zip(["deep", *(f"gram{i}" for i in range(len(ref["grams"]))), "local"],
                          [ref["deep"], *ref["grams"], ref["local"]], out):
        cos = min_cosine(a, b)
        if not cos >= MIN_COSINE:
            raise RuntimeError(f"the exported network's {name} features differ from torch's (cosine {cos:.6f})")
    return session


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """The least cosine similarity between the rows of ``a`` and ``b`` (each flattened per image)."""
    a = np.asarray(a, np.float64).reshape(len(a), -1)
    b = np.asarray(b, np.float64).reshape(len(b), -1)
    if a.shape != b.shape:
        return -1.0
    num = np.sum(a * b, axis=1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    cos = np.where(den > 0, num / np.maximum(den, 1e-300), np.where(np.abs(a - b).max(axis=1) == 0, 1.0, 0.0))
    return float(cos.min()) if len(cos) else 1.0


def _write_atomically(path: Path, data: bytes) -> None:
    """``data`` into ``path`` whole or not at all (a temporary file beside it, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _copy_known(name: str, path: Path) -> None:
    """Copy the file this process already has under ``name`` (another data folder's) to ``path``."""
    src = _known_files.get(name)
    if src is None or src == path or not src.is_file():
        return
    try:
        _write_atomically(path, src.read_bytes())
    except OSError:
        pass  # exported again instead
