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
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

from ..errors import ArtStyleError
from ..ingest.extract import Extracted, KnownHashes, extract_batch, read_prepared
from ..ingest.features import FeatureLayout
from ..ingest.remote import is_url, reader_for
from ..model import Settings

#: images per network pass of a GPU actor (as the local run on a GPU)
GPU_BATCH = 64
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
    """The default: one actor per GPU (with that GPU's share of the CPUs) where the cluster has GPUs, else
    one actor per node with all of its CPUs, as the local run uses one machine."""
    res = ray.cluster_resources()
    cpus, gpus = float(res.get("CPU", 0)), float(res.get("GPU", 0))
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    node_cpus = [float(n.get("Resources", {}).get("CPU", 0)) for n in nodes] or [cpus]
    if cpus < 1:
        raise ArtStyleError("The Ray cluster has no CPUs to run the workers on.")
    if gpus_per_actor is None:
        gpus_per_actor = 1.0 if gpus >= 1 else 0.0
    if gpus_per_actor and gpus < gpus_per_actor:
        raise ArtStyleError(f"The Ray cluster has {gpus:g} GPUs; each worker asks for {gpus_per_actor:g}.")
    if cpus_per_actor is None:
        if gpus_per_actor:
            cpus_per_actor = max(1.0, min(max(node_cpus), float(int(cpus // max(1, gpus // gpus_per_actor)))))
        else:
            cpus_per_actor = max(1.0, min(node_cpus))
    if cpus_per_actor > max(node_cpus):
        raise ArtStyleError(f"Each worker asks for {cpus_per_actor:g} CPUs; the largest node has {max(node_cpus):g}.")
    if actors is None:
        actors = int(gpus // gpus_per_actor) if gpus_per_actor else sum(int(c // cpus_per_actor) for c in node_cpus)
    bs = max(1, batch_size, GPU_BATCH if gpus_per_actor else 1)
    return ClusterPlan(max(1, actors), cpus_per_actor, gpus_per_actor, bs, max(1, len(nodes)), cpus, gpus)


class _BatchExtractor:
    """One Ray actor: the backbone loaded once; each call reads, decodes and extracts a few batches."""

    def __init__(self, root: str, settings: Settings, known: KnownHashes, threads: int) -> None:
        import socket

        if not is_url(root) and not os.path.isdir(root):  # else every file would be "unreadable"
            raise ArtStyleError(f"The collection {root} is not visible on the Ray node {socket.gethostname()}: "
                                "every node must see it at the same path (a shared filesystem) or by URL.")
        os.environ["ARTSTYLE_TORCH_THREADS"] = str(threads)  # this actor's CPUs, not the node's
        from ..ingest.backbones import REGISTRY, load_backbone
        from ..ingest.runtime import use_runtime

        try:
            self.read = reader_for(root)  # a shared folder's path, or an fsspec URL every node can read
        except ArtStyleError as e:
            raise ArtStyleError(f"On the Ray node {socket.gethostname()}: {e}") from None
        self.settings = settings
        self.known = known
        self.net = use_runtime(load_backbone(settings.backbone, settings.weights_file), settings.runtime,
                               settings.device)
        self.layout = FeatureLayout.for_backbone(REGISTRY[settings.backbone], settings.colour_bins)
        from concurrent.futures import ThreadPoolExecutor

        self.pool = ThreadPoolExecutor(max_workers=max(2, threads), thread_name_prefix="artstyle-decode")

    def _read_one(self, relpath: str):
        st = self.settings
        return read_prepared(self.read, relpath, self.known,
                             colour_bins=st.colour_bins, trim_borders=st.trim_borders,
                             max_megapixels=st.max_megapixels)

    def __call__(self, rows: dict) -> dict:
        out: dict[str, list] = {k: [] for k in ("batch", "relpath", "hash", "error", "blob", "width", "height")}
        groups = [list(g) for g in rows["relpaths"]]
        futures = [[self.pool.submit(self._read_one, rp) for rp in g] for g in groups]  # decode ahead
        for b, g, futs in zip(rows["batch"], groups, futures):
            for ex in extract_batch(g, [f.result() for f in futs], self.net, self.layout):
                out["batch"].append(int(b))
                out["relpath"].append(ex.relpath)
                out["hash"].append(ex.hash or "")  # "" for none: Arrow turns None into NaN
                out["error"].append(ex.error or "")
                out["blob"].append(ex.blob or b"")
                out["width"].append(-1 if ex.width is None else ex.width)
                out["height"].append(-1 if ex.height is None else ex.height)
        import numpy as np

        return {k: np.array(v, dtype=np.int64 if k in ("batch", "width", "height") else object)
                for k, v in out.items()}


def worker_error(e: BaseException) -> str:
    """The message of what went wrong on a worker, from the exception Ray hands the driver (our own
    ArtStyleError's words where a worker raised one, else the error's first line)."""
    text = str(e)
    for line in text.splitlines():
        if "ArtStyleError:" in line:
            return line.split("ArtStyleError:", 1)[1].strip()
    cause = getattr(e, "cause", None) or e.__cause__
    if isinstance(cause, ArtStyleError):
        return str(cause)
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return f"{type(e).__name__}: {first[:300]}" if first else type(e).__name__


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
            if self.settings.device in ("cuda", "mps") and gpus is None:
                gpus = 1.0  # asked for a GPU: each worker gets one (an error if the cluster has none)
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
        st = replace(self.settings, device="cuda" if p.gpus else ("cpu" if self.settings.device == "auto"
                                                                  else self.settings.device))
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
            for b, rp, h, err, blob, w, hh in zip(out["batch"], out["relpath"], out["hash"], out["error"],
                                                  out["blob"], out["width"], out["height"]):
                b = int(b)
                if b in finished:  # a retried batch that had already arrived whole: written once only
                    continue
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
