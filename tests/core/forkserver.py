"""A fork server for the fault tests (run as ``python forkserver.py``; :class:`ForkServer` drives it).

Twenty kill -9 trials must not pay twenty interpreter starts (importing torch and loading the
backbone take seconds on a busy machine). The server does that once, single-threaded
(OMP/BLAS/torch threads = 1, so forking is safe), then forks one child per indexing run.
Each child is an ordinary engine process: it opens the collection and its index itself
(no SQLite connection or lock is inherited), drives ``Collection.index()`` and reports every
progress event; the test kills it with SIGKILL whenever it likes.

Protocol: one JSON object per line. Commands on stdin, replies and child events on stdout
(every line is written with a single ``os.write`` below PIPE_BUF, so lines never interleave).

* ``{"cmd": "run", "id": I, "root": R, "index_dir": D, "settings": {...}}`` -> ``{"id": I, "pid": P}``;
  the child then emits ``{"id": I, "ev": "progress", "stage": S, "done": N, "paths": [...]}``
  per event (``paths``: the files of a committed extraction batch) and finally
  ``{"id": I, "ev": "done", "report": {...}, "n": N}`` or ``{"id": I, "ev": "error", ...}``.
* ``{"cmd": "memory", "id": I, ...same...}``: like run, but only ``update()``, and the final
  event carries ``rss_before_kb`` / ``peak_kb`` (VmHWM reset through /proc/self/clear_refs).
* ``{"cmd": "wait", "pid": P}`` -> ``{"pid": P, "status": S}`` (raw wait status).
* ``{"cmd": "quit"}``.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                     "ARTSTYLE_TORCH_THREADS": "1", "ARTSTYLE_OFFLINE": "1"}


def _emit(obj) -> None:
    line = (json.dumps(obj) + "\n").encode("utf-8", "surrogateescape")
    os.write(1, line)


def _status_kb(key: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(key + r":\s+(\d+)", text).group(1))


def _child(msg: dict, backbone) -> None:
    """Runs in the forked child; never returns."""
    code = 0
    try:
        from artstyle_gui.core.index.collection import Collection
        from artstyle_gui.core.model import Settings

        settings = Settings.from_json(msg["settings"])
        rid = msg["id"]
        memory = msg["cmd"] == "memory"
        if memory:
            rss_before = _status_kb("VmRSS")
            Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
        col = Collection(msg["root"], settings=settings, index_dir=msg["index_dir"])
        col._backbone = backbone  # loaded once by the server
        gen = col.update() if memory else col.index()
        while True:
            try:
                ev = next(gen)
            except StopIteration as stop:
                result = stop.value
                break
            paths = list(ev.payload) if ev.stage == "extract" and ev.payload else None
            _emit({"id": rid, "ev": "progress", "stage": ev.stage, "done": ev.done, "paths": paths})
        rep, an = (result, None) if memory else result
        out = {"id": rid, "ev": "done", "n": an.n if an is not None else None,
               "report": {"scanned": rep.scanned, "unchanged": rep.unchanged, "extracted": rep.extracted,
                          "reused": rep.reused, "removed": rep.removed, "failed": rep.failed}}
        if memory:
            out.update(rss_before_kb=rss_before, peak_kb=_status_kb("VmHWM"),
                       records=[(r.relpath, r.status, r.width, r.height) for r in col.records()])
        col.close()
        _emit(out)
    except BaseException as e:  # noqa: BLE001 - reported to the test
        _emit({"id": msg.get("id"), "ev": "error", "error": f"{type(e).__name__}: {e}"})
        code = 1
    finally:
        os._exit(code)


def _warm_up_analysis() -> None:
    """Import and first-call costs of the analysis (sklearn, scipy, hnswlib): paid once, before forking."""
    import numpy as np

    try:
        from artstyle_gui.core.analysis.topics import bovw_counts, fit_topics
        from artstyle_gui.core.analysis.parts import fit_parts
        from artstyle_gui.core.ingest.backbones import DEFAULT_BACKBONE, REGISTRY
        from artstyle_gui.core.ingest.features import FeatureLayout
        from artstyle_gui.core.analysis.neighbors import NeighbourIndex
        from artstyle_gui.core.progress import run

        lay = FeatureLayout.for_backbone(REGISTRY[DEFAULT_BACKBONE], 8)
        rng = np.random.default_rng(0)
        raw = lay.unpack_many([rng.random(lay.size).astype(np.float16).tobytes() for _ in range(12)])
        _model, parts = fit_parts(raw, deep_components=4, gram_components=4, colour_components=4)
        counts = run(bovw_counts(raw["local"], raw["colour"], vocab_size=4)).counts
        run(fit_topics(counts, k=2))
        NeighbourIndex.build(np.hstack([parts[p] for p in sorted(parts)]).astype(np.float32))
    except Exception as e:  # noqa: BLE001 - only an optimisation
        print(f"forkserver: analysis warm-up skipped ({type(e).__name__}: {e})", file=sys.stderr)


def serve() -> None:
    t0 = time.monotonic()
    import numpy as np

    from artstyle_gui.core.ingest.backbones import load_backbone

    backbone = load_backbone()
    backbone.forward(np.zeros((1, 224, 224, 3), np.uint8))  # warm up once, before any fork
    from artstyle_gui.core.ingest.runtime import use_runtime

    use_runtime(backbone, "auto", "cpu")  # the ONNX export (first use) is cached before any fork and timing
    _warm_up_analysis()
    _emit({"ready": True, "load_s": round(time.monotonic() - t0, 2), "pid": os.getpid()})
    for line in sys.stdin:
        msg = json.loads(line)
        cmd = msg.get("cmd")
        if cmd in ("run", "memory"):
            pid = os.fork()
            if pid == 0:
                _child(msg, backbone)
            _emit({"id": msg["id"], "pid": pid})
        elif cmd == "wait":
            _, status = os.waitpid(msg["pid"], 0)
            _emit({"pid": msg["pid"], "status": status})
        elif cmd == "quit":
            break


class ForkServer:
    """Test-side handle of the server process."""

    def __init__(self, env: dict[str, str], timeout: float = 300.0) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env={**env, **SINGLE_THREAD_ENV}, bufsize=0)
        self._buf = b""
        self._lines: list[dict] = []
        self._next_id = 0
        self.hello = self.read_until(lambda m: m.get("ready"), timeout)

    # -- line I/O ----------------------------------------------------------
    def send(self, obj) -> None:
        self.proc.stdin.write((json.dumps(obj) + "\n").encode())
        self.proc.stdin.flush()

    def _fill(self, timeout: float) -> bool:
        fd = self.proc.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], max(0.0, timeout))
        if not ready:
            return False
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            raise RuntimeError(f"fork server exited (rc={self.proc.poll()})")
        self._buf += chunk
        *lines, self._buf = self._buf.split(b"\n")
        self._lines += [json.loads(x.decode("utf-8", "surrogateescape")) for x in lines if x]
        return True

    def read_until(self, pred, timeout: float) -> dict:
        """Consume lines until one matches ``pred`` (returned); the others stay queued in order."""
        deadline = time.monotonic() + timeout
        while True:
            for i, m in enumerate(self._lines):
                if pred(m):
                    return self._lines.pop(i)
            if time.monotonic() > deadline:
                raise TimeoutError("fork server: no reply in time")
            self._fill(deadline - time.monotonic())

    def events(self, rid: int) -> list[dict]:
        """Take every queued event of run ``rid``."""
        mine = [m for m in self._lines if m.get("id") == rid and "ev" in m]
        self._lines = [m for m in self._lines if not (m.get("id") == rid and "ev" in m)]
        return mine

    # -- runs --------------------------------------------------------------
    def start(self, root, index_dir, settings: dict, cmd: str = "run") -> tuple[int, int]:
        self._next_id += 1
        rid = self._next_id
        self.send({"cmd": cmd, "id": rid, "root": str(root), "index_dir": str(index_dir), "settings": settings})
        pid = self.read_until(lambda m: m.get("id") == rid and "pid" in m, 60)["pid"]
        return rid, pid

    def pump(self, seconds: float) -> None:
        """Read whatever arrives during ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._fill(deadline - time.monotonic())

    def finished(self, rid: int) -> bool:
        return any(m.get("id") == rid and m.get("ev") in ("done", "error") for m in self._lines)

    def wait(self, pid: int, timeout: float = 300.0) -> int:
        self.send({"cmd": "wait", "pid": pid})
        return self.read_until(lambda m: m.get("pid") == pid and "status" in m, timeout)["status"]

    def run_to_end(self, root, index_dir, settings: dict, cmd: str = "run", timeout: float = 300.0):
        """Run to completion; return (wait status, every event, the final event)."""
        rid, pid = self.start(root, index_dir, settings, cmd)
        last = self.read_until(lambda m: m.get("id") == rid and m.get("ev") in ("done", "error"), timeout)
        status = self.wait(pid)
        return status, self.events(rid), last

    def close(self) -> None:
        try:
            self.send({"cmd": "quit"})
            self.proc.wait(timeout=30)
        except Exception:  # noqa: BLE001
            self.proc.kill()
            self.proc.wait()


def kill9(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


if __name__ == "__main__":
    serve()
