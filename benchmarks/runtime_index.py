"""End-to-end extraction (docs/runtime.md; python benchmarks/runtime_index.py [ROUNDS]) (Collection.update: read + decode/crop in the decode threads + the network) of a
synthetic collection of 96 JPEGs (1200x900), effnet-lite0-art: torch vs ORT with 1 or 2 intra-op threads
(and ORT 2 threads without spinning); alternating rounds, a new index each time, the ONNX file cached."""
import os, sys, time, tempfile, statistics as st, shutil
from pathlib import Path
ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("ARTSTYLE_DATA_DIR", tempfile.mkdtemp())
sys.path.insert(0, str(ROOT / "tests"))
from pathlib import Path
from synth import make_collection
from artstyle_gui.core.index.collection import Collection
from artstyle_gui.core.model import Settings
from artstyle_gui.core.progress import run
from artstyle_gui.core.ingest import runtime as rt
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 7
tmp = Path(tempfile.mkdtemp()); root = tmp / "p"
make_collection(root, n_per_style=24, size=(1200, 900), seed=5)
print("files:", sum(1 for _ in root.rglob("*.*")), "ext", {p.suffix for p in root.rglob("*.*")})
real_make = rt.make_session
def spinless(model):
    s = real_make(model); return s
import onnxruntime as ort
def make_nospin(model):
    so = ort.SessionOptions(); so.intra_op_num_threads = int(os.environ["ARTSTYLE_TORCH_THREADS"]); so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, sess_options=so, providers=["CPUExecutionProvider"])
import openvino as ov
class OVSession:
    def __init__(self, path, threads):
        core = ov.Core()
        self.c = core.compile_model(core.read_model(path), "CPU", {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"})
        self.req = self.c.create_infer_request()
    def get_inputs(self):
        class I: name = "images"
        return [I()]
    def run(self, _names, feed):
        r = self.req.infer({0: feed["images"]})
        return [r[i] for i in range(len(self.c.outputs))]
def make_ov(model):
    return OVSession(model, int(os.environ["ARTSTYLE_TORCH_THREADS"]))
def make_spin(model):
    so = ort.SessionOptions(); so.intra_op_num_threads = int(os.environ["ARTSTYLE_TORCH_THREADS"]); so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model, sess_options=so, providers=["CPUExecutionProvider"])
configs = {"torch, 2 threads": ("torch", "2", real_make),
           "ORT 2 threads (the code: no spinning)": ("onnx", "2", real_make),
           "ORT 1 thread (no spinning)": ("onnx", "1", real_make),
           "ORT 2 threads, spinning (ORT default)": ("onnx", "2", make_spin),
           "ORT 1 thread, spinning": ("onnx", "1", make_spin),
           "OpenVINO, 2 threads": ("onnx", "2", make_ov)}
res = {k: [] for k in configs}
for r in range(ROUNDS + 1):
    for name, (runtime, threads, maker) in configs.items():
        os.environ["ARTSTYLE_TORCH_THREADS"] = threads
        rt.make_session = maker
        import torch; torch.set_num_threads(int(threads))
        idx = tmp / "idx"; shutil.rmtree(idx, ignore_errors=True)
        col = Collection(root, settings=Settings(runtime=runtime, device="cpu"), index_dir=idx)
        col.backbone()
        t = time.perf_counter(); rep = run(col.update()); dt = time.perf_counter() - t
        col.close()
        if r:  # the first round warms up
            res[name].append(rep.extracted / dt)
torch.set_num_threads(2)
for k, v in res.items():
    print(f"{k:32s} median {st.median(v):6.1f} img/s  (min {min(v):6.1f}, max {max(v):6.1f}, n={len(v)})")
