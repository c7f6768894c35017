"""The app's state: the open Collection, the current Analysis, the selection and its history.

Long steps are the core's progress generators run by superqt ``create_worker`` in the global
thread pool, one job at a time (later jobs queue).  Every job gets a generation number; events
from an older generation (a folder that was closed, a cancelled job) are dropped.  Cancel is
``worker.quit()``: it lands at the next yield (one batch); the core has already committed every
finished batch, and the generator is closed in the worker thread so its ``finally`` releases the
index lock at once.
"""

from __future__ import annotations

import json
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, Qt, Signal
from superqt.utils import create_worker

from ..core.analysis import set_topic_processes
from ..core.app_support import preload_engine_modules, similar_in
from ..core.topicsearch import format_topic_label
from ..core.engine import Analysis, Collection, Neighbour, Settings, problems_of
from ..core.errors import ArtStyleError
from ..core.model import is_old_default, upgraded_to_art_model
from ..core.progress import Progress, RateEstimator
from ..core.store import FileRecord
from . import prefs
from .background import favour_gui_thread
from .jobs import Job, _call, _drive
from .style_jobs import StyleJobs

NEIGHBOURS = 12
TOPIC_PROCESSES = 2  # worker processes for the topic fits (core/analysis.py; the K sweep runs 2 at a time)


class _Pinned:
    """A Collection seen through a given Analysis (the one the views show), for core queries that
    read ``col._require()`` while a job is replacing ``col.analysis``."""

    def __init__(self, col: Collection, an: Analysis) -> None:
        self._col, self._an = col, an

    def _require(self) -> Analysis:
        return self._an

    def __getattr__(self, name: str):
        return getattr(self._col, name)


def describe_error(exc: BaseException) -> tuple[str, str]:
    """(user message, details) for an exception from a worker or a slot."""
    if isinstance(exc, ArtStyleError):
        return str(exc), ""
    details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return f"Unexpected error: {type(exc).__name__}: {exc}", details


class Controller(QObject, StyleJobs):
    """Owns the collection and everything derived from it; views only talk to this.

    Signals (past tense, arguments in brackets):
        collection_changed(object)     a folder was opened (the Collection) or closed (None)
        records_changed()              the list of files was re-read from the index
        records_added(list)            relpaths just indexed (live while extracting)
        analysis_changed(object)       a new Analysis (or None)
        selection_changed(object)      the selected relpath (or None)
        external_query_finished(str, list)   an outside image and its [Neighbour]
        progress_changed(object, object, object)  Progress, rate (per s) or None, ETA (s) or None
        job_started(str)               a job's name: index, analyse, refit, blend, query, export, map,
                                       duplicates, adapt, space, compare
        job_finished(str, str)         name, outcome: ok | cancelled | error
        error_raised(str, str)         user message, technical details ('' for expected errors)
        message_posted(str)            a status-bar message
        history_changed(bool, bool)    can go back, can go forward
        problems_changed(list)         [(relpath, reason)]
        exported(list)                 paths written by an export
        topic_names_changed()          the user renamed a topic
        style_map_ready(str, object, object)   method asked for, the Analysis it was computed on, xy (n, 2)
        duplicates_found(list, list)   [DuplicateGroup], skipped [(relpath, reason)]
        style_learned(object)          a style adapter was trained (StyleResult); the space is "adapted"
        space_changed(str)             the views now show the "base" or the "adapted" space
        compared(str, str, object)     relpaths A and B and their verify.Comparison ("same hand?")
    """

    collection_changed = Signal(object)
    records_changed = Signal()
    records_added = Signal(list)
    analysis_changed = Signal(object)
    selection_changed = Signal(object)
    external_query_finished = Signal(str, list)
    progress_changed = Signal(object, object, object)
    job_started = Signal(str)
    job_finished = Signal(str, str)
    error_raised = Signal(str, str)
    message_posted = Signal(str)
    history_changed = Signal(bool, bool)
    problems_changed = Signal(list)
    exported = Signal(list)
    topic_names_changed = Signal()
    style_map_ready = Signal(str, object, object)
    duplicates_found = Signal(list, list)
    style_learned = Signal(object)
    space_changed = Signal(str)
    compared = Signal(str, str, object)

    def __init__(self, settings: Settings | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        # before any window shows: a native module loaded later by a worker would freeze the window
        self.settings = settings or Settings()
        preload_engine_modules(self.settings.backbone)
        favour_gui_thread()
        set_topic_processes(TOPIC_PROCESSES)  # the LDA fits' Python loops would take the GIL from the window
        self.collection: Collection | None = None
        self.analysis: Analysis | None = None
        self.records: list[FileRecord] = []
        self.problems: list[tuple[str, str]] = []
        self.current: str | None = None
        self.topic_names: dict[int, str] = {}
        self._history: list[str] = []
        self._hpos = -1
        self._gen = 0
        self._job: Job | None = None
        self._queue: list[Job] = []
        self._retired: list[tuple[Collection, Job]] = []
        self._pending_writes: list[tuple[Collection, Callable]] = []  # index writes waiting for a job
        self._rate = RateEstimator()
        self._shown = None  # signature of the analysis the views show
        #: run jobs in the calling thread (``worker.run()``): deterministic tests of cancel logic
        self.synchronous = False

    # ------------------------------------------------------------------ state queries
    @property
    def busy(self) -> bool:
        return self._job is not None

    @property
    def job_name(self) -> str | None:
        return self._job.name if self._job else None

    def path_of(self, relpath: str) -> str:
        assert self.collection is not None
        return str(self.collection.root / relpath)

    def row_of(self, relpath: str | None) -> int | None:
        if relpath is None or self.analysis is None:
            return None
        return self.analysis.row_of(relpath)

    def record(self, relpath: str) -> FileRecord | None:
        self._map_records()
        return self._rec_map.get(relpath)

    def _map_records(self) -> None:
        """relpath -> record, rebuilt when the records change (when they are read, not at the first
        click: 30 ms at 100,000 paintings)."""
        if getattr(self, "_rec_map_src", None) is not self.records:
            self._rec_map = {r.relpath: r for r in self.records}
            self._rec_map_src = self.records

    def neighbours(self, relpath: str, k: int = NEIGHBOURS) -> list[Neighbour]:
        """Nearest neighbours of an indexed painting ([] before the analysis exists)."""
        row = self.row_of(relpath)
        if row is None or self.collection is None:
            return []
        try:  # over *our* analysis: it may be the partial one yielded before the topics are fitted
            return similar_in(self.collection, self.analysis, row, k)
        except Exception as e:  # noqa: BLE001 - shown to the user, never a crash
            self._report(e)
            return []

    def mixture(self, relpath: str | None):
        row = self.row_of(relpath)
        if row is None or self.analysis is None or self.analysis.topics is None:
            return None
        return self.analysis.topics.mixtures[row]

    def topic_name(self, t: int) -> str:
        """The user's name of topic ``t`` (0-based), else "Topic t+1"."""
        return self.topic_names.get(t) or f"Topic {t + 1}"

    def topic_label(self, t: int) -> str:
        """"Topic 3 · Dark portraits" (named) or "Topic 3" for t = 2 (as the core's topic_label)."""
        return format_topic_label(t, self.topic_names.get(t))

    def rename_topic(self, t: int, name: str) -> None:
        """Give topic ``t`` a name (empty: back to 'Topic t+1'). Kept in the index (the CLI and
        exports see it), written at once or, while a job uses the index, when it has finished."""
        name = " ".join(name.split())[:120]
        if name == f"Topic {t + 1}":
            name = ""
        if name:
            self.topic_names[t] = name
        else:
            self.topic_names.pop(t, None)
        an = self.analysis
        if self.collection is not None and an is not None and an.topics is not None:
            self._write_index(lambda col, an=an: self._store_topic_name(col, an, t, name or None))
        self.topic_names_changed.emit()

    @staticmethod
    def _store_topic_name(col: Collection, an: Analysis, t: int, name: str | None) -> None:
        from ..core import topicsearch

        cur = col.analysis
        if cur is None or cur.topics is None or an.topics is None or cur.fingerprint != an.fingerprint \
                or cur.topics.k != an.topics.k or cur.topics.input_kind != an.topics.input_kind:
            return  # the topics were re-fitted meanwhile: the name belonged to the old ones
        topicsearch.set_topic_name(col, t, name)

    def _write_index(self, write: Callable[[Collection], None], col: Collection | None = None) -> None:
        """Run a small index write on the GUI thread now, or after the running job (the worker and
        the GUI share one SQLite connection: a write must never land inside a job's transaction)."""
        col = col or self.collection
        if col is None:
            return
        if self._job is None or (col is not self.collection and not any(c is col for c, _ in self._retired)):
            try:
                write(col)
            except Exception as e:  # noqa: BLE001
                self._report(e)
        else:
            self._pending_writes.append((col, write))

    def _flush_writes(self, col: Collection | None = None) -> None:
        """Run the waiting index writes (of ``col`` only, if given) now that no job uses the index."""
        keep = []
        for c, w in self._pending_writes:
            if col is None or c is col:
                try:
                    w(c)
                except Exception as e:  # noqa: BLE001
                    self._report(e)
            else:
                keep.append((c, w))
        self._pending_writes = keep

    def _load_topic_names(self, an: Analysis) -> dict[int, str]:
        """Names kept in the index for ``an``'s topics; names the app kept in its settings before
        (keyed by the analysis fingerprint) are moved into the index once."""
        from ..core import topicsearch

        col = self.collection
        if col is None or an.topics is None:
            return {}
        try:
            names = topicsearch.topic_names(col, an)
        except Exception:  # noqa: BLE001 - names are never worth an error
            names = {}
        old = {t: n for t, n in prefs.topic_names(an.fingerprint).items() if 0 <= t < an.topics.k}
        if old:
            prefs.clear_topic_names(an.fingerprint)
            for t, n in old.items():
                if t not in names:
                    names[t] = n
                    self._write_index(lambda col, an=an, t=t, n=n: self._store_topic_name(col, an, t, n))
        return names

    # ------------------------------------------------------------------ opening
    def open_folder(self, folder: str | Path, *, labels_csv: str | Path | None = None,
                    index_dir: str | Path | None = None, artist_from_folder: bool = False) -> bool:
        """Open a collection: show the saved index at once, then update what changed in a worker."""
        try:
            col = Collection(folder, settings=replace(self.settings, blend=dict(self.settings.blend)),
                             index_dir=index_dir, labels_csv=labels_csv, artist_from_folder=artist_from_folder)
            saved = self._saved_settings(col)
            if saved is not None:  # settings remembered in the index (by the app or the CLI) win
                col.settings = saved
                self.settings = replace(saved, blend=dict(saved.blend))
            elif is_old_default(col.settings):  # after an old collection: a new one starts on the art model
                col.settings = upgraded_to_art_model(col.settings)
                self.settings = replace(col.settings, blend=dict(col.settings.blend))
            col.store.set_meta("settings", json.dumps(col.settings.to_json()))
        except Exception as e:  # noqa: BLE001
            self._report(e)
            return False
        self.close_collection()
        self.collection = col
        self.records = col.records()
        self._map_records()
        self.problems = problems_of(self.records)
        self.collection_changed.emit(col)
        self.records_changed.emit()
        self.problems_changed.emit(self.problems)
        self.message_posted.emit(f"Opened {col.root}")
        self._start(Job("index", 0, lambda: self._open_job(col, False)))
        return True

    @staticmethod
    def _saved_settings(col: Collection) -> Settings | None:
        raw = col.store.get_meta("settings")
        if not raw:
            return None
        try:
            s = Settings.from_json(json.loads(raw))
            s.validate()
            return s
        except Exception:  # noqa: BLE001 - unreadable: keep the app's settings
            return None

    def close_collection(self) -> None:
        self.cancel()
        old = self.collection
        if old is not None:
            if self._job is not None:  # close once its (cancelled) worker has stopped
                self._retired.append((old, self._job))
            else:
                old.close()
        self._job = None
        self._gen += 1
        self.collection = None
        self.analysis = None
        self.records, self.problems = [], []
        self._history, self._hpos = [], -1
        self.topic_names = {}
        if old is not None:
            self.collection_changed.emit(None)
            self.analysis_changed.emit(None)
            self.records_changed.emit()
            self.problems_changed.emit([])
            self._set_current(None)
            self.history_changed.emit(False, False)

    @staticmethod
    def _open_job(col: Collection, retry_failed: bool):
        if col.analysis is None:
            an = col.load_analysis()
            if an is not None:
                yield Progress("loaded", 1, 1, "loaded the saved analysis", payload=an)
            elif getattr(col, "derived_problem", None):  # damaged cache: say so, then recompute
                yield Progress("loaded", 1, 1, str(col.derived_problem))
        rep = yield from col.update(retry_failed=retry_failed)
        an = yield from col.analyse(keep_current=True)  # the views show col.analysis: no second copy
        return rep, an, col.records()  # read here, not on the GUI thread (50 ms at 10,000 paintings)

    def reindex(self, retry_failed: bool = False) -> None:
        """Scan again and process what changed (and retry unreadable files if asked)."""
        col = self._need_collection()
        if col is not None:
            self._start(Job("index", 0, lambda: self._open_job(col, retry_failed)))

    def retry_failed(self) -> None:
        self.reindex(retry_failed=True)

    # ------------------------------------------------------------------ settings
    def apply_settings(self, new: Settings) -> str:
        """Adopt new engine settings and run only what they require.

        Returns what happens: 'none', 'blend' (re-rank only), 'analyse' (PCA/topics), 'index'
        (features must be extracted again)."""
        new.validate()
        old = self.settings
        self.settings = replace(new, blend=dict(new.blend))
        col = self.collection
        if col is None:
            return "none"
        fresh = replace(new, blend=dict(new.blend))

        def adopt():  # runs when the job starts, never under a running job (one SQLite connection)
            col.settings = replace(fresh, blend=dict(fresh.blend))
            col.store.set_meta("settings", json.dumps(col.settings.to_json()))

        if new.featureset_key() != old.featureset_key() or new.featureset_config() != old.featureset_config():
            def reindex():
                adopt()
                col.analysis = None
                col._backbone = None  # the core caches the network by name only (not by weights file)
                return self._open_job(col, False)

            self._start(Job("index", 0, reindex))
            return "index"
        if new.analysis_config() != old.analysis_config():
            self._start(Job("analyse", 0, lambda: (adopt(), col.analyse())[1]))
            return "analyse"
        if new.blend != old.blend or new.metric != old.metric:
            self.set_blend(new.blend, new.metric)
            return "blend"
        return "none"

    def set_blend(self, weights: dict[str, float], metric: str | None = None) -> None:
        """Re-rank with new descriptor weights (rebuilds the neighbour index, no extraction)."""
        self.settings.blend = dict(weights)
        if metric:
            self.settings.metric = metric
        col = self._need_collection()
        if col is None:
            return
        if self.analysis is None:
            col.settings.blend, col.settings.metric = dict(weights), self.settings.metric
            return
        self._start(Job("blend", 0, lambda: _call(self._blend_job, col, dict(weights), metric)))

    @staticmethod
    def _blend_job(col: Collection, weights, metric):
        col.set_blend(weights, metric)
        col.store.set_meta("settings", json.dumps(col.settings.to_json()))
        return col.analysis

    def refit_topics(self, k: int | None, topic_input: str | None = None) -> None:
        """Fit topics again with another K (None: automatic) without extracting features."""
        col = self._need_collection()
        if col is None:
            return
        self.settings.k = k
        if topic_input:
            self.settings.topic_input = topic_input
        self._start(Job("refit", 0, lambda: self._refit_job(col, k, topic_input)))

    @staticmethod
    def _refit_job(col: Collection, k: int | None, topic_input: str | None):
        an = yield from col.refit_topics(k, topic_input)
        col.store.set_meta("settings", json.dumps(col.settings.to_json()))
        return an

    # ------------------------------------------------------------------ queries
    def query_image(self, path: str | Path) -> None:
        """Find paintings similar to an image outside the collection (not added to the index)."""
        col = self._need_collection()
        if col is None:
            return
        if self.analysis is None and not self.busy:
            self.error_raised.emit("Index the collection before searching by image.", "")
            return
        p = str(path)
        job = Job("query", 0, lambda: _call(col.similar_to_file, p, NEIGHBOURS))
        job.extra["path"] = p
        if self.busy:
            self.message_posted.emit(f"Search by {Path(p).name} will run when {self.job_name} has finished")
        self._start(job)

    def export(self, outdir: str | Path) -> None:
        """Write the topic/painting/artist CSVs and provenance JSON (in a worker)."""
        col = self._need_collection()
        if col is None:
            return
        names = dict(self.topic_names)
        self._start(Job("export", 0, lambda: _call(self._export_job, col, Path(outdir), names)))

    @staticmethod
    def _export_job(col: Collection, outdir: Path, names: dict[int, str]) -> list[Path]:
        from ..core.store import check_outside
        from ..core.summaries import export

        check_outside(col.root, outdir)
        an = col.analysis or col.load_analysis()
        if an is None:
            raise ArtStyleError("There is no analysis to export yet: let the indexing finish first.")
        sha = None
        try:
            if col.settings.backbone != "resnet50" or col.settings.weights_file:
                sha = col.backbone().weights_sha256
        except ArtStyleError:
            sha = None
        return export(an, outdir, backbone_sha256=sha, topic_names=names or None)

    # ------------------------------------------------------------------ explore: map, duplicates, steering
    def saved_style_map(self, method: str):
        """The saved 2-D layout of the current embedding (float32 (n, 2)) or None; never computes.
        None while a job is replacing the analysis (the map job then computes or loads it)."""
        col, an = self.collection, self.analysis
        if col is None or an is None or col.analysis is not an:
            return None
        try:
            xy = col.saved_style_map(method)
        except Exception:  # noqa: BLE001 - a damaged cache is recomputed by the job
            return None
        return xy if xy is not None and xy.shape == (an.n, 2) else None

    def compute_style_map(self, method: str) -> bool:
        """Load or compute the layout in a worker (progress, cancel); ``style_map_ready`` follows.
        False if nothing was started (no analysis, or the same map is already on its way)."""
        col = self._need_collection()
        if col is None:
            return False
        if self.analysis is None and not self.busy:
            return False
        for j in ([self._job] if self._job else []) + self._queue:
            if j.name == "map" and j.extra.get("method") == method:
                return False
        job = Job("map", 0, lambda: self._map_job(col, method))
        job.extra["method"] = method
        self._start(job)
        return True

    def cancel_map_jobs(self, keep: str | None = None) -> None:
        """Drop queued map jobs and cancel a running one (except those for ``keep``)."""
        self._queue = [j for j in self._queue if j.name != "map" or j.extra.get("method") == keep]
        job = self._job
        if job is not None and job.name == "map" and job.extra.get("method") != keep and job.worker is not None:
            job.outcome = "cancelled"
            job.worker.quit()

    def map_pending(self, method: str | None = None) -> bool:
        """Whether a map job (for ``method``, or any) is running or queued."""
        return any(j.name == "map" and (method is None or j.extra.get("method") == method)
                   for j in ([self._job] if self._job else []) + self._queue)

    @staticmethod
    def _map_job(col: Collection, method: str):
        an = col._require()
        xy = yield from col.style_map(method)
        return an, xy

    def find_duplicates(self, threshold: float, max_hamming: int, crops: bool = True) -> None:
        """Near-duplicate groups in a worker (progress, cancel); ``duplicates_found`` follows.
        Reads the collection only: nothing is deleted, moved or written there."""
        col = self._need_collection()
        if col is None:
            return
        if self.analysis is None and not self.busy:
            self.error_raised.emit("Index the collection before looking for near-duplicates.", "")
            return
        self._start(Job("duplicates", 0, lambda: self._duplicates_job(col, float(threshold), int(max_hamming),
                                                                       bool(crops))))

    @staticmethod
    def _duplicates_job(col: Collection, threshold: float, max_hamming: int, crops: bool):
        groups = yield from col.find_duplicates(threshold, max_hamming, crops=crops)
        return groups, list(col.duplicate_skipped)

    def steered_similar(self, relpath: str, adjust: dict[int, float], k: int = NEIGHBOURS, alpha: float = 0.5,
                        metric: str = "hellinger") -> list[Neighbour]:
        """"More like this, but...": the collection re-ranked by the steered topic mixture of
        ``relpath`` and its look (core Collection.steered_similar; a few ms at 10,000 paintings,
        so it runs here on the GUI thread). [] without topics or on error (reported)."""
        col, an = self.collection, self.analysis
        row = self.row_of(relpath)
        if col is None or an is None or an.topics is None or row is None:
            return []
        try:
            if col.analysis is an:
                return col.steered_similar(row, adjust, k=k, alpha=alpha, metric=metric)
            from ..core import topicsearch  # a job is replacing col.analysis: rank over the one shown

            return topicsearch.steered_similar(_Pinned(col, an), row, adjust, k=k, alpha=alpha, metric=metric)
        except Exception as e:  # noqa: BLE001
            self._report(e)
            return []

    # ------------------------------------------------------------------ selection + history
    def select(self, relpath: str | None, *, record: bool = True) -> None:
        if relpath == self.current:
            return
        if relpath is not None and record:
            del self._history[self._hpos + 1 :]
            self._history.append(relpath)
            if len(self._history) > 500:
                del self._history[0]
            self._hpos = len(self._history) - 1
            self._emit_history()
        self._set_current(relpath)

    def back(self) -> None:
        if self._hpos > 0:
            self._hpos -= 1
            self._set_current(self._history[self._hpos])
            self._emit_history()

    def forward(self) -> None:
        if self._hpos < len(self._history) - 1:
            self._hpos += 1
            self._set_current(self._history[self._hpos])
            self._emit_history()

    def can_go_back(self) -> bool:
        return self._hpos > 0

    def can_go_forward(self) -> bool:
        return self._hpos < len(self._history) - 1

    def _emit_history(self) -> None:
        self.history_changed.emit(self.can_go_back(), self.can_go_forward())

    def _set_current(self, relpath: str | None) -> None:
        self.current = relpath
        self.selection_changed.emit(relpath)

    # ------------------------------------------------------------------ jobs
    def _need_collection(self) -> Collection | None:
        if self.collection is None:
            self.error_raised.emit("Open a folder of paintings first (File > Open Folder).", "")
        return self.collection

    def _start(self, job: Job) -> None:
        if self._job is not None:
            self._queue.append(job)
            return
        self._gen += 1
        job.gen = self._gen
        self._job = job
        self._rate.reset()
        try:
            gen = job.make()
        except Exception as e:  # noqa: BLE001
            self._job = None
            self._report(e)
            self.job_finished.emit(job.name, "error")
            self._next()
            return
        job.inner = gen
        worker = create_worker(_drive, gen, _start_thread=False)
        job.worker = worker
        g = job.gen
        worker.yielded.connect(lambda p, g=g: self._on_worker_yielded(g, p))
        worker.returned.connect(lambda r, g=g: self._on_worker_returned(g, r))
        worker.errored.connect(lambda e, g=g: self._on_worker_errored(g, e))
        worker.finished.connect(lambda j=job: self._on_worker_finished(j))
        # runs in the worker thread right after the abort: releases the lock and decode threads now
        worker.aborted.connect(gen.close, Qt.ConnectionType.DirectConnection)
        self.job_started.emit(job.name)
        if self.synchronous:
            worker.run()
        else:
            worker.start()

    def cancel(self) -> None:
        """Stop the running job at its next batch (finished batches are kept) and drop queued jobs."""
        self._queue.clear()
        job = self._job
        if job is not None and job.worker is not None:
            job.outcome = "cancelled"
            job.worker.quit()
            self.message_posted.emit(f"Cancelling {job.name}…")

    def wait(self, msecs: int = 60000) -> bool:
        """Block until the running job has stopped (used at exit and in tests)."""
        from PySide6.QtCore import QThreadPool

        return QThreadPool.globalInstance().waitForDone(msecs)

    def shutdown(self) -> None:
        """Cancel everything, wait for the worker, close the index (window close)."""
        self.cancel()
        self.wait(30000)
        job = self._job
        if job is not None and job.inner is not None:
            job.inner.close()
        for col, _ in self._retired:
            self._flush_writes(col)
            col.close()
        self._retired.clear()
        if self.collection is not None:
            self._flush_writes(self.collection)
            self.collection.close()
        self._pending_writes.clear()
        self._gen += 1
        self._job = None
        self.collection = None

    def _on_worker_yielded(self, g: int, p: Progress) -> None:
        if g != self._gen or not isinstance(p, Progress):
            return
        if isinstance(p.payload, Analysis):  # the saved analysis, or a new one before its topics
            self._adopt_analysis(p.payload)
        elif p.stage == "loaded" and p.message:
            self.message_posted.emit(p.message)
        elif p.stage in ("scan", "extract") and isinstance(p.payload, list) and p.payload:
            # the scan's paths fill the gallery before extraction; extract batches confirm them
            self.records_added.emit(list(p.payload))
        rate, eta = self._rate.update(p)
        self.progress_changed.emit(p, rate, eta)

    def _on_worker_returned(self, g: int, result) -> None:
        job = self._job
        if g != self._gen or job is None:
            return
        col = self.collection
        try:
            if job.name == "index":
                rep, an, records = result
                self._refresh_records(records)
                self._adopt_analysis(an)
                self.message_posted.emit(rep.summary())
            elif job.name in ("analyse", "refit", "blend"):
                self._adopt_analysis(result, force=True)
                if job.name == "blend":
                    self.message_posted.emit("Neighbours re-ranked with the new descriptor weights")
                elif result is not None and result.topics is not None:
                    self.message_posted.emit(f"{result.topics.k} topics fitted")
            elif job.name == "query":
                self.external_query_finished.emit(job.extra["path"], list(result))
            elif job.name == "map":
                an, xy = result
                self.style_map_ready.emit(job.extra["method"], an, xy)
            elif job.name == "duplicates":
                groups, skipped = result
                self.duplicates_found.emit(list(groups), list(skipped))
                extra = f" ({len(skipped)} files skipped)" if skipped else ""
                self.message_posted.emit(f"{len(groups)} groups of near-duplicates found{extra}; nothing was "
                                         "deleted")
            elif job.name == "export":
                paths = [Path(p) for p in result]
                self.exported.emit(paths)
                where = paths[0].parent if paths else ""
                self.message_posted.emit(f"Wrote {', '.join(p.name for p in paths)} to {where}")
            elif job.on_result is not None:
                job.on_result(result)
        except Exception as e:  # noqa: BLE001
            job.outcome = "error"
            self._report(e)
        del col

    def _on_worker_errored(self, g: int, exc: BaseException) -> None:
        if g != self._gen or self._job is None:
            return
        self._job.outcome = "error"
        self._report(exc)

    def _on_worker_finished(self, job: Job) -> None:
        if job.inner is not None:
            job.inner.close()  # no-op unless aborted before the DirectConnection ran
        for item in [r for r in self._retired if r[1] is job]:
            self._flush_writes(item[0])
            item[0].close()
            self._retired.remove(item)
        if job is not self._job:
            return
        self._job = None
        if job.outcome == "cancelled" and job.name == "index":
            self._refresh_records()  # the batches finished before the cancel are in the index
            self.message_posted.emit("Cancelled: finished images are kept and will not be processed again")
        self.progress_changed.emit(None, None, None)
        if self.collection is not None:
            self._flush_writes(self.collection)
        self.job_finished.emit(job.name, job.outcome)
        self._next()

    def _next(self) -> None:
        if self._job is None and self._queue:
            self._start(self._queue.pop(0))

    def _refresh_records(self, records: list[FileRecord] | None = None) -> None:
        """Re-read the records (or take ``records``, read by the job that just ended)."""
        if self.collection is None:
            return
        self.records = self.collection.records() if records is None else records
        self._map_records()
        self.problems = problems_of(self.records)
        self.records_changed.emit()
        self.problems_changed.emit(self.problems)

    @staticmethod
    def _signature(an: Analysis | None):
        if an is None:
            return None
        return (an.fingerprint, tuple(sorted(an.weights.items())), an.metric, an.topics is not None)

    def _adopt_analysis(self, an: Analysis | None, force: bool = False) -> None:
        """Make ``an`` current; views are told unless it shows exactly what they already show."""
        old = self.analysis
        sig = self._signature(an)
        if not force and an is not None and old is not None and sig == self._shown and an.labels == old.labels:
            self.analysis = an  # same content (e.g. the saved analysis loaded twice): no redraw
            return
        self.analysis = an
        self._shown = sig
        self.topic_names = self._load_topic_names(an) if an is not None else {}
        self.analysis_changed.emit(an)

    def _report(self, exc: BaseException) -> None:
        msg, details = describe_error(exc)
        self.error_raised.emit(msg, details)
