"""Forward-only images/s (docs/runtime.md; python benchmarks/runtime_forward.py [ROUNDS]): torch Backbone.forward vs ONNX Runtime (OnnxBackbone) vs OpenVINO on the same
exported file; effnet-lite0-art, 2 threads, batches of 8 crops of 224 px; alternating rounds."""
import os, sys, time, glob, statistics as st, tempfile, json
from pathlib import Path
ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("ARTSTYLE_DATA_DIR", tempfile.mkdtemp())
import numpy as np
from artstyle_gui.core.ingest.features import prepare
from artstyle_gui.core.ingest.backbones import load_backbone
from artstyle_gui.core.ingest import runtime as rt
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 9
files = sorted(glob.glob(str(ROOT / "resources" / "sample_paintings" / "*" / "*.jpg")))
x = np.stack([prepare(open(f, "rb").read()).crop for f in files])  # 48 crops
t = time.perf_counter(); bb = load_backbone("effnet-lite0-art"); t_load = time.perf_counter() - t
t = time.perf_counter(); onnx = rt.use_runtime(load_backbone("effnet-lite0-art"), "onnx", "cpu"); t_exp = time.perf_counter() - t
print(f"torch load {t_load:.2f}s; first ONNX use (export+check+cache) {t_exp:.2f}s -> {onnx.path} ({onnx.path.stat().st_size/1e6:.1f} MB)")
t = time.perf_counter(); onnx2 = rt.use_runtime(load_backbone("effnet-lite0-art"), "onnx", "cpu"); print(f"cached ONNX load {time.perf_counter()-t:.2f}s")
import onnxruntime as ort
def sess(threads, spin=False):
    so = ort.SessionOptions(); so.intra_op_num_threads = threads; so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if not spin: so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(onnx.path), so, providers=["CPUExecutionProvider"])
def ort_fn(s, chunk=8):
    return lambda: [s.run(None, {"images": x[i:i + chunk]}) for i in range(0, len(x), chunk)]
fns = {"torch (Backbone.forward)": lambda: bb.forward(x), "ORT (OnnxBackbone.forward)": lambda: onnx.forward(x),
       "ORT 1 thread": ort_fn(sess(1)), "ORT 2 threads, spinning": ort_fn(sess(2, True)),
       "ORT batch 16": ort_fn(sess(2), 16)}
try:
    import openvino as ov
    core = ov.Core()
    c2 = core.compile_model(core.read_model(str(onnx.path)), "CPU", {"INFERENCE_NUM_THREADS": 2, "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"})
    req = c2.create_infer_request()
    fns[f"OpenVINO {ov.__version__} (2 threads, latency)"] = lambda: [req.infer({0: x[i:i + 8]}) for i in range(0, len(x), 8)]
    ref = bb.forward(x[:8]); out = req.infer({0: x[:8]})
    print("OpenVINO 1-cos:", ["%.1e" % (1 - rt.min_cosine(ref_p, out[i])) for i, ref_p in enumerate([ref["deep"], *ref["grams"], ref["local"]])])
except ImportError:
    pass
ref = bb.forward(x); out = onnx.forward(x)
print("ORT 1 - min cosine over 48 sample paintings: deep %.1e grams %s local %.1e" % (1 - rt.min_cosine(ref["deep"], out["deep"]),
      ["%.1e" % (1 - rt.min_cosine(a, b)) for a, b in zip(ref["grams"], out["grams"])], 1 - rt.min_cosine(ref["local"], out["local"])))
for f in fns.values(): f()
res = {k: [] for k in fns}
for r in range(ROUNDS):
    for k, f in fns.items():
        t = time.perf_counter(); f(); res[k].append(len(x) / (time.perf_counter() - t))
for k, v in res.items():
    print(f"{k:42s} median {st.median(v):6.1f} img/s  (min {min(v):6.1f}, max {max(v):6.1f}, n={len(v)})")
