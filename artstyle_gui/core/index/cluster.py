"""Indexing on a Ray cluster: the files are read, decoded and run through the network by a pool of Ray
actors (one network each, on a CPU or a GPU); the driver stays the single writer of the index.

``Collection.update(extractor=ray_extractor(...))`` scans and diffs the folder as a local run does, then
hands the files to do to Ray Data:

* the files go out in the local run's batches (``Settings.batch_size``, the same order), one row a batch,
  so every actor passes the same images through the network together and the stored features are the
  bytes a local run stores (same backbone, same runtime);
* each actor (``_BatchExtractor``) loads the backbone once, decodes with its own threads and runs
  :func:`~..ingest.extract.extract_batch`, as the local loop does;
* the results stream back to the driver (``iter_batches``), which commits them one transaction per batch
  (``Collection.update``): stopping or losing the driver keeps every committed batch, and the next run
  skips them (known content hashes are skipped by the actors as well: moved files are not re-read);
* an actor that dies is restarted and its batch retried by Ray Data (``max_restarts``/``max_task_retries``
  are -1 for actor pools); the driver drops a batch that arrives twice, so nothing is written twice.

Ray is an optional extra (``pip install "artstyle-gui[cluster]"``); without it :func:`require_ray` says
how to install it. Every node needs this package (and the backbone's weights package) installed, and the
collection at the same path (a shared filesystem).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

from ..errors import ArtStyleError
from ..ingest.extract import GPU_BATCH, Extracted, KnownHashes, extract_batch, prepared_reader
from ..ingest.features import FeatureLayout
from ..ingest.remote import is_url, reader_for
from ..model import Settings

#: local-run batches handed to an actor per call (fewer calls, the same network passes)
BATCHES_PER_CALL = 4

INSTALL_HINT = ('Indexing on a Ray cluster needs Ray: pip install "artstyle-gui[cluster]" '
                '(or pip install "ray[data]"), on this machine and on every node of the cluster.')


def require_ray():
    """The ``ray`` module, or an ArtStyleError that says how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as e:
        raise ArtStyleError(f"{INSTALL_HINT} ({e})") from None
    return ray


@dataclass
class ClusterPlan:
    """How the work is spread: ``actors`` actors of ``cpus`` CPUs (and ``gpus`` GPUs) each."""

    actors: int
    cpus: float
    gpus: float
    batch_size: int
    nodes: int
    cluster_cpus: float
    cluster_gpus: float

    def describe(self) -> str:
        where = f"{self.gpus:g} GPU + {self.cpus:g} CPUs" if self.gpus else f"{self.cpus:g} CPUs"
        return (f"{self.actors} worker{'s' if self.actors != 1 else ''} ({where} each) on {self.nodes} "
                f"node{'s' if self.nodes != 1 else ''}")


def plan(ray, *, actors: int | None = None, cpus_per_actor: float | None = None, gpus_per_actor: float | None = None,
         batch_size: int = 16) -> ClusterPlan:
    """How many workers of which size. Every worker has the same size (a Ray Data actor pool), so the default
    is: where the cluster has GPUs, one worker per GPU with its GPU node's share of the CPUs (the smallest
    share); else workers of the smallest node's CPUs, as many as fit on each node (one per node where the
    nodes are alike, as the local run uses one machine). Nodes without CPUs (a head node started with
    ``--num-cpus=0``) run no worker. A worker no node can hold is an ArtStyleError, not a run that waits."""
    res = ray.cluster_resources()
    cpus, gpus = float(res.get("CPU", 0)), float(res.get("GPU", 0))
    alive = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")] or [{"CPU": cpus, "GPU": gpus}]
    nodes = [(float(r.get("CPU", 0)), float(r.get("GPU", 0))) for r in alive]
    workers = [(c, g) for c, g in nodes if c >= 1]  # nodes that can run a worker at all
    if not workers:
        raise ArtStyleError("The Ray cluster has no CPUs to run the workers on.")
    if gpus_per_actor is None:
        gpus_per_actor = 1.0 if gpus >= 1 else 0.0
    if gpus_per_actor:
        gpu_nodes = [(c, g) for c, g in workers if g >= gpus_per_actor]
        if not gpu_nodes:
            raise ArtStyleError(f"The Ray cluster has {gpus:g} GPUs on nodes with CPUs; each worker asks for "
                                f"{gpus_per_actor:g}.")
        if cpus_per_actor is None:  # the smallest per-GPU share of a GPU node's CPUs
            cpus_per_actor = max(1.0, min(float(int(c // int(g // gpus_per_actor))) for c, g in gpu_nodes))
        fit = [min(int(c // cpus_per_actor), int(g // gpus_per_actor)) for c, g in gpu_nodes]
    else:
        if cpus_per_actor is None:
            cpus_per_actor = max(1.0, min(c for c, _ in workers))
        fit = [int(c // cpus_per_actor) for c, _ in workers]
    if not any(fit):
        what = f"{gpus_per_actor:g} GPU + {cpus_per_actor:g} CPUs" if gpus_per_actor else f"{cpus_per_actor:g} CPUs"
        largest = max(c for c, _ in workers)
        raise ArtStyleError(f"Each worker asks for {what}; no node of the Ray cluster has that (the largest node "
                            f"has {largest:g} CPUs). Ask for fewer with --ray-cpus.")
    if actors is None:
        actors = sum(fit)
    bs = max(1, batch_size, GPU_BATCH if gpus_per_actor else 1)
    return ClusterPlan(max(1, actors), cpus_per_actor, gpus_per_actor, bs, len(workers), cpus, gpus)


class _BatchExtractor:
    """One Ray actor: the backbone loaded once; each call reads, decodes and extracts a few batches."""

    def __init__(self, root: str, settings: Settings, known: KnownHashes, threads: int) -> None:
        import socket

        try:
            self._setup(root, settings, known, threads)
        except ArtStyleError as e:
            raise ArtStyleError(f"On the Ray node {socket.gethostname()}: {e}") from None
        except Exception as e:  # a package or weights missing on that node, ...: said in one line
            raise ArtStyleError(f"On the Ray node {socket.gethostname()}: {type(e).__name__}: {e}") from None

    def _setup(self, root: str, settings: Settings, known: KnownHashes, threads: int) -> None:
        import socket

        if not is_url(root) and not os.path.isdir(root):  # else every file would be "unreadable"
            raise ArtStyleError(f"the collection {root} is not visible there: every node must see it at the same "
                                "path (a shared filesystem) or by URL.")
        os.environ["ARTSTYLE_TORCH_THREADS"] = str(threads)  # this actor's CPUs, not the node's
        from ..ingest.backbones import REGISTRY, load_backbone
        from ..ingest.runtime import use_runtime

        # a shared folder's path, or an fsspec URL every node can read; known content is not decoded again
        self.read_one = prepared_reader(reader_for(root), known, settings)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.net = use_runtime(load_backbone(settings.backbone, settings.weights_file), settings.runtime,
                               settings.device)
        self.layout = FeatureLayout.for_backbone(REGISTRY[settings.backbone], settings.colour_bins)
        from concurrent.futures import ThreadPoolExecutor

        self.pool = ThreadPoolExecutor(max_workers=max(2, threads), thread_name_prefix="artstyle-decode")

    def __call__(self, rows: dict) -> dict:
        out: dict[str, list] = {k: [] for k in ("batch", "relpath", "hash", "error", "blob", "width", "height",
                                                "worker")}
        groups = [list(g) for g in rows["relpaths"]]
        futures = [[self.pool.submit(self.read_one, rp) for rp in g] for g in groups]  # decode ahead
        for b, g, futs in zip(rows["batch"], groups, futures):
            for ex in extract_batch(g, [f.result() for f in futs], self.net, self.layout):
                out["batch"].append(int(b))
                out["relpath"].append(ex.relpath)
                out["hash"].append(ex.hash or "")  # "" for none: Arrow turns None into NaN
                out["error"].append(ex.error or "")
                out["blob"].append(ex.blob or b"")
                out["width"].append(-1 if ex.width is None else ex.width)
                out["height"].append(-1 if ex.height is None else ex.height)
                out["worker"].append(self.worker)
        import numpy as np

        return {k: np.array(v, dtype=np.int64 if k in ("batch", "width", "height") else object)
                for k, v in out.items()}


def worker_error(e: BaseException) -> str:
    """The message of what went wrong on a worker, from the exception Ray hands the driver (our own
    ArtStyleError's words where a worker raised one, else the error's first line)."""
    text = str(e)
    for line in text.splitlines():
        if "ArtStyleError:" in line:
            msg = line.split("ArtStyleError:", 1)[1].strip()
            return msg if msg.endswith(".") else msg + "."
    cause = getattr(e, "cause", None) or e.__cause__
    if isinstance(cause, ArtStyleError):
        return str(cause)
    # else the last "Name: message" line of the worker's traceback (the first is Ray's own wrapper)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    named = [ln for ln in lines if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b.*:", ln)]
    last = (named or lines or [type(e).__name__])[-1][:300]
    return last if last.endswith(".") else last + "."


class RayRun:
    """The files to do, extracted on the cluster: iterates over lists of :class:`Extracted`, one per local
    batch, as they arrive (any order); ``rate`` is the cluster's throughput so far, for the progress line."""

    def __init__(self, root: str, settings: Settings, todo: list, known: set[str], *, address: str | None,
                 actors: int | None, cpus_per_actor: float | None, gpus_per_actor: float | None,
                 init_kwargs: dict | None = None, on_plan=None) -> None:
        self.root, self.settings, self.todo, self.known = root, settings, todo, known
        self.address, self.init_kwargs = address, dict(init_kwargs or {})
        self.want = (actors, cpus_per_actor, gpus_per_actor)
        self.on_plan = on_plan
        self.rate = ""
        #: host:pid of the workers whose batches were written (a worker restarted by Ray is a new one)
        self.workers: set[str] = set()
        self.plan: ClusterPlan | None = None
        self._started = False

    def start(self) -> "RayRun":
        """Connect to the cluster (or start a local one) and plan the workers; before the first image."""
        ray = require_ray()
        if not ray.is_initialized():
            kw = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
            kw.update(self.init_kwargs)
            try:
                ray.init(address=self.address, **kw)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise ArtStyleError(f"Cannot connect to the Ray cluster at {self.address or 'auto'}: {e}") from None
            self._started = True
        try:
            actors, cpus, gpus = self.want
            st = self.settings
            if gpus is None and (st.device == "cpu" or st.runtime == "onnx"):
                gpus = 0.0  # the network asked for on the CPU runs on the CPU, as in a local run
            elif gpus is None and st.device in ("cuda", "mps"):
                gpus = 1.0  # asked for a GPU: each worker gets one (an error if the cluster has none)
            if gpus == 0 and st.device in ("cuda", "mps"):
                raise ArtStyleError(f"--device {st.device} asks for a GPU, but the workers get none (--ray-gpus 0).")
            self.plan = plan(ray, actors=actors, cpus_per_actor=cpus, gpus_per_actor=gpus,
                             batch_size=self.settings.batch_size)
        except BaseException:
            self.close()
            raise
        if self.on_plan is not None:
            self.on_plan(self.plan)
        return self

    def close(self) -> None:
        """Shut down the local cluster this run started (a cluster it connected to keeps running)."""
        if self._started:
            import ray

            ray.shutdown()
            self._started = False

    def __iter__(self) -> Iterator[list[Extracted]]:
        if self.plan is None:
            self.start()
        try:
            yield from self._run()
        finally:
            self.close()

    def _run(self) -> Iterator[list[Extracted]]:
        import ray.data as rd

        p = self.plan
        st = replace(self.settings, device=("cuda" if self.settings.device == "auto" else self.settings.device)
                     if p.gpus else "cpu")
        bs = p.batch_size
        groups = [self.todo[i : i + bs] for i in range(0, len(self.todo), bs)]
        sizes = {i: len(g) for i, g in enumerate(groups)}
        rows = [{"batch": i, "relpaths": [f.relpath for f in g]} for i, g in enumerate(groups)]
        ctx = rd.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.verbose_progress = False
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # no INFO lines per dataset, no notes for developers
        ds = rd.from_items(rows, override_num_blocks=max(1, min(len(rows), p.actors * 8, 2000)))
        ds = ds.map_batches(
            _BatchExtractor, batch_size=BATCHES_PER_CALL, batch_format="numpy",
            fn_constructor_kwargs={"root": self.root, "settings": st, "known": KnownHashes(self.known),
                                   "threads": max(1, int(p.cpus))},
            compute=rd.ActorPoolStrategy(size=p.actors), num_cpus=p.cpus, num_gpus=p.gpus or None)
        try:
            yield from self._collect(ds, sizes, p)
        except Exception as e:
            if not type(e).__module__.startswith("ray."):
                raise
            raise ArtStyleError(f"The Ray workers failed: {worker_error(e)} The batches already written are "
                                "kept: the same command resumes.") from None

    def _collect(self, ds, sizes: dict[int, int], p: ClusterPlan) -> Iterator[list[Extracted]]:
        """The extracted batches as they stream back, each once and whole."""
        t0 = time.monotonic()
        done_images = 0
        arrived: dict[int, list[Extracted]] = {}
        finished: set[int] = set()
        for out in ds.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=2):
            for b, rp, h, err, blob, w, hh, who in zip(out["batch"], out["relpath"], out["hash"], out["error"],
                                                       out["blob"], out["width"], out["height"], out["worker"]):
                b = int(b)
                if b in finished:  # a retried batch that had already arrived whole: written once only
                    continue
                self.workers.add(str(who))
                arrived.setdefault(b, []).append(Extracted(
                    str(rp), str(h) or None, str(err) or None, bytes(blob) or None, None if w < 0 else int(w),
                    None if hh < 0 else int(hh)))
            for b in [b for b, exs in arrived.items() if len({e.relpath for e in exs}) >= sizes[b]]:
                exs = arrived.pop(b)
                finished.add(b)
                seen: set[str] = set()
                batch = [e for e in exs if not (e.relpath in seen or seen.add(e.relpath))]
                done_images += len(batch)
                el = max(1e-6, time.monotonic() - t0)
                self.rate = f"{done_images / el:,.1f} img/s on {p.actors} worker{'s' if p.actors != 1 else ''}"
                yield batch
        missing = len(sizes) - len(finished)
        if missing:  # never reported as done: the records of those files are simply not written
            raise ArtStyleError(f"{missing:,} batch{'es' if missing != 1 else ''} of files did not come back from "
                                "the Ray cluster. The batches already written are kept: the same command resumes.")


def ray_extractor(address: str | None = None, *, actors: int | None = None, cpus_per_actor: float | None = None,
                  gpus_per_actor: float | None = None, init_kwargs: dict | None = None, on_plan=None):
    """An ``extractor`` for :meth:`Collection.update`: the files to do go to a Ray cluster (``address``:
    "auto", "ray://host:10001", "host:6379"; None: the cluster this process is connected to, else a local
    one started for the run and shut down after it)."""
    require_ray()

    def extract(col, todo, known):
        return RayRun(str(col.root), col.settings, todo, known, address=address, actors=actors,
                      cpus_per_actor=cpus_per_actor, gpus_per_actor=gpus_per_actor, init_kwargs=init_kwargs,
                      on_plan=on_plan).start()

    return extract
