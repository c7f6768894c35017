"""The backbone's runtimes (core/ingest/runtime.py): ONNX Runtime on the CPU agrees with torch, its export is
cached, a missing onnxruntime falls back to torch with one log line, and the device choice is checked."""

from __future__ import annotations

import io
import logging
import sys
from pathlib import Path

import numpy as np
import pytest
from synth import STYLES, make_collection, make_painting

from artstyle_gui.core.errors import ArtStyleError, BackboneUnavailable
from artstyle_gui.core.index.collection import Collection
from artstyle_gui.core.ingest import runtime as rt
from artstyle_gui.core.ingest.backbones import Backbone, load_backbone
from artstyle_gui.core.ingest.features import prepare
from artstyle_gui.core.ingest.store import default_index_root
from artstyle_gui.core.model import Settings
from artstyle_gui.core.progress import run

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

SAMPLES = Path(__file__).resolve().parents[2] / "resources" / "sample_paintings"
MIN_COS = 0.9999


def _png(img) -> bytes:
    b = io.BytesIO()
    img.save(b, "PNG")
    return b.getvalue()


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    """Six 224 px crops: one synthetic painting of each style and two real ones from the sample collection."""
    data = [_png(make_painting(s, seed=i, size=(300, 240))) for i, s in enumerate(STYLES)]
    data += [p.read_bytes() for p in sorted(SAMPLES.glob("*/*.jpg"))[:2]]
    return np.stack([prepare(d).crop for d in data])


def _cos(a, b) -> float:
    a = np.asarray(a, np.float64).reshape(len(a), -1)
    b = np.asarray(b, np.float64).reshape(len(b), -1)
    return float((np.sum(a * b, 1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())


def _assert_agree(ref: dict, out: dict) -> None:
    assert out["deep"].dtype == np.float32 and out["deep"].shape == ref["deep"].shape
    assert _cos(ref["deep"], out["deep"]) >= MIN_COS
    assert len(out["grams"]) == len(ref["grams"])
    for a, b in zip(ref["grams"], out["grams"]):
        assert b.dtype == np.float32 and a.shape == b.shape
        assert _cos(a, b) >= MIN_COS
    assert out["local"].dtype == np.float32 and out["local"].shape == ref["local"].shape
    assert _cos(ref["local"], out["local"]) >= MIN_COS


@pytest.mark.parametrize("name", ["effnet-lite0-art", "effnet-lite0"])
def test_onnx_features_agree_with_torch(name, crops):
    bb = load_backbone(name)
    net = rt.use_runtime(bb, "onnx", "cpu")
    assert isinstance(net, rt.OnnxBackbone) and net.runtime == "onnx"
    assert (net.info, net.weights_path, net.weights_sha256) == (bb.info, bb.weights_path, bb.weights_sha256)
    ref = bb.forward(crops)
    _assert_agree(ref, net.forward(crops))
    # any batch size (dynamic batch; the chunks of forward), one image alone, none at all
    _assert_agree({"deep": ref["deep"][:1], "grams": [g[:1] for g in ref["grams"]], "local": ref["local"][:1]},
                  net.forward(crops[:1]))
    many = net.forward(np.concatenate([crops, crops]))
    np.testing.assert_allclose(many["deep"][len(crops):], many["deep"][: len(crops)], rtol=1e-5, atol=1e-6)
    empty = net.forward(crops[:0])
    assert empty["deep"].shape == (0, bb.info.deep_dim) and empty["local"].shape == (0, 49, bb.info.local_channels)


def test_resnet50_random_weights_agree_and_are_not_cached(crops):
    pytest.importorskip("torchvision")
    import torch

    torch.manual_seed(0)
    bb = load_backbone("resnet50", allow_random=True)
    net = rt.use_runtime(bb, "onnx", "cpu")
    assert net.path is None  # no weights file to key a cache on
    _assert_agree(bb.forward(crops[:3]), net.forward(crops[:3]))
    assert not (default_index_root() / "onnx").exists()


def test_the_export_is_cached_and_reused(monkeypatch, tmp_path):
    bb = load_backbone("effnet-lite0")
    monkeypatch.setattr(rt, "_known_files", {})  # as in a new process
    n = rt.export_count
    first = rt.use_runtime(bb, "auto", "cpu")
    assert rt.export_count == n + 1
    cache = default_index_root() / "onnx"
    assert first.path is not None and first.path.parent == cache and first.path.is_file()
    name = first.path.name
    assert bb.weights_sha256[:20] in name and "opset" in name and "ort" in name
    assert [p.name for p in cache.iterdir()] == [name]  # written atomically: no temporary file left
    mtime = first.path.stat().st_mtime_ns

    monkeypatch.setattr(rt, "_known_files", {})
    second = rt.use_runtime(bb, "auto", "cpu")
    assert rt.export_count == n + 1 and second.path == first.path and first.path.stat().st_mtime_ns == mtime

    # another data folder in the same process gets a copy, not a new export
    monkeypatch.setenv("ARTSTYLE_DATA_DIR", str(tmp_path / "other-data"))
    third = rt.use_runtime(bb, "auto", "cpu")
    assert rt.export_count == n + 1 and third.path == tmp_path / "other-data" / "onnx" / name

    # a damaged cache file is exported again
    third.path.write_bytes(b"not an onnx model")
    monkeypatch.setattr(rt, "_known_files", {})
    fourth = rt.use_runtime(bb, "auto", "cpu")
    assert rt.export_count == n + 2 and fourth.path.stat().st_size > 1_000_000


def test_without_onnxruntime_auto_falls_back_to_torch_with_one_log_line(monkeypatch, caplog):
    bb = load_backbone("effnet-lite0")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    with caplog.at_level(logging.WARNING, logger="artstyle"):
        net = rt.use_runtime(bb, "auto", "cpu")
    assert net is bb and net.runtime == "torch"
    lines = [r for r in caplog.records if r.name == "artstyle"]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING
    assert "ONNX Runtime" in lines[0].getMessage() and "torch" in lines[0].getMessage()
    with pytest.raises(BackboneUnavailable, match="pip install onnxruntime"):
        rt.use_runtime(bb, "onnx", "cpu")


def test_a_failed_export_falls_back_too(monkeypatch, caplog):
    bb = load_backbone("effnet-lite0")
    monkeypatch.setattr(rt, "_known_files", {})

    def broken(_bb):
        raise RuntimeError("exporter broke")

    monkeypatch.setattr(rt, "export_onnx", broken)
    with caplog.at_level(logging.WARNING, logger="artstyle"):
        assert rt.use_runtime(bb, "auto", "cpu") is bb
    assert sum("exporter broke" in r.getMessage() for r in caplog.records) == 1
    assert not (default_index_root() / "onnx").exists() or not list((default_index_root() / "onnx").iterdir())


def test_runtime_torch_gives_the_torch_backbone():
    bb = load_backbone("effnet-lite0")
    net = rt.use_runtime(bb, "torch", "cpu")
    assert net is bb and isinstance(net, Backbone) and net.device == "cpu"
    with pytest.raises(BackboneUnavailable, match="runtime"):
        rt.use_runtime(bb, "tensorrt", "cpu")


def test_devices(monkeypatch):
    import torch

    assert rt.resolve_device("cpu") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert rt.resolve_device("auto") == "cpu"
    bb = load_backbone("effnet-lite0")
    with pytest.raises(BackboneUnavailable, match="'cuda'.*no usable CUDA GPU") as e:
        rt.use_runtime(bb, "auto", "cuda")
    assert isinstance(e.value, ArtStyleError) and "--device auto or cpu" in str(e.value)
    with pytest.raises(BackboneUnavailable, match="'mps'"):
        rt.use_runtime(bb, "torch", "mps")
    assert bb.device == "cpu"  # nothing moved
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert rt.resolve_device("auto") == "cuda"
    with pytest.raises(BackboneUnavailable, match="CPU only"):
        rt.use_runtime(bb, "onnx", "cuda")


def test_collection_update_onnx_and_torch_store_the_same_features(tmp_path):
    root = tmp_path / "paintings"
    make_collection(root, n_per_style=2, size=(160, 128), seed=3)
    raw = {}
    for runtime in ("onnx", "torch"):
        col = Collection(root, settings=Settings(runtime=runtime, device="cpu"), index_dir=tmp_path / f"idx-{runtime}")
        try:
            rep = run(col.update())
            assert rep.extracted == 2 * len(STYLES) and not rep.failed
            assert col.backbone().runtime == runtime
            hashes = sorted(r.hash for r in col.records())
            raw[runtime] = col.files.load_raw(hashes)
        finally:
            col.close()
    a, b = raw["onnx"], raw["torch"]
    assert set(a) == set(b)
    for key in a:  # stored as float16: equal within its rounding
        if key in ("colour", "shape"):
            np.testing.assert_array_equal(a[key], b[key])
        else:
            assert _cos(a[key], b[key]) >= MIN_COS, key


def test_cli_device_and_runtime_options(tmp_path):
    from artstyle_gui.cli import build_parser, open_collection

    root = tmp_path / "paintings"
    make_collection(root, n_per_style=1, size=(96, 80), seed=4)
    args = build_parser().parse_args(["index", str(root), "--index-dir", str(tmp_path / "idx"),
                                      "--runtime", "torch", "--device", "cpu"])
    with open_collection(args) as col:
        assert (col.settings.runtime, col.settings.device) == ("torch", "cpu")
        assert isinstance(col.backbone(), Backbone)
    args = build_parser().parse_args(["index", str(root), "--index-dir", str(tmp_path / "idx2")])
    with open_collection(args) as col:
        assert (col.settings.runtime, col.settings.device) == ("auto", "auto")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["index", str(root), "--runtime", "tensorrt"])
    # finetune keeps its own --device (where it trains; cuda:N too)
    ft = build_parser().parse_args(["finetune", str(root), "--label", "style", "--device", "cuda:1"])
    assert ft.device == "cuda:1"
