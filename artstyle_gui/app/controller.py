"""The app's state: the open Collection, the Analysis the views show, the selection and its history.

Analyses are immutable: a job makes a new one in its worker and the Controller swaps it in on the GUI
thread (:meth:`Controller.adopt_analysis`), so a view never sees one change under it. Jobs run on one
:class:`~.jobs.JobRunner` (:attr:`Controller.jobs`); each view starts the jobs whose results it shows.
The jobs that change what every view shows (index, settings, blend, topics) are in :mod:`.indexing`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from ..core import search
from ..core.analysis.topics import set_topic_processes
from ..core.errors import ArtStyleError
from ..core.explore.summaries import auto_topic_names
from ..core.index.collection import Collection, problems_of
from ..core.index.preload import preload_engine_modules
from ..core.ingest.store import FileRecord
from ..core.model import Analysis, Neighbour, Settings, is_old_default, upgraded_to_art_model
from . import prefs
from .background import favour_gui_thread
from .indexing import Indexing
from .jobs import JobRunner

NEIGHBOURS = 12
TOPIC_PROCESSES = 2  # worker processes for the topic fits (core/analysis/topics.py; the K sweep runs 2 at a time)


class Controller(QObject):
    """Owns the collection and the analysis the views show; views read them here.

    Signals (past tense, arguments in brackets):
        collection_changed(object)     a folder was opened (the Collection) or closed (None)
        records_changed()              the list of files was re-read from the index
        records_added(list)            relpaths just indexed (live while extracting)
        analysis_changed(object)       a new Analysis (or None)
        selection_changed(object)      the selected relpath (or None)
        history_changed(bool, bool)    can go back, can go forward
        problems_changed(list)         [(relpath, reason)]
        topic_names_changed()          the user renamed a topic
    and those of :attr:`jobs` (progress_changed, job_started, job_finished, error_raised, message_posted),
    forwarded under the same names.
    """

    collection_changed = Signal(object)
    records_changed = Signal()
    records_added = Signal(list)
    analysis_changed = Signal(object)
    selection_changed = Signal(object)
    history_changed = Signal(bool, bool)
    problems_changed = Signal(list)
    topic_names_changed = Signal()
    progress_changed = Signal(object, object, object)
    job_started = Signal(str)
    job_finished = Signal(str, str)
    error_raised = Signal(str, str)
    message_posted = Signal(str)

    def __init__(self, settings: Settings | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        # before any window shows: a native module loaded later by a worker would freeze the window
        self.settings = settings or Settings()
        preload_engine_modules(self.settings.backbone)
        favour_gui_thread()
        set_topic_processes(TOPIC_PROCESSES)  # the LDA fits' Python loops would take the GIL from the window
        self.jobs = JobRunner(self)
        self.indexing = Indexing(self)  # index, settings, blend and topic jobs
        for name in ("progress_changed", "job_started", "job_finished", "error_raised", "message_posted"):
            getattr(self.jobs, name).connect(getattr(self, name))
        self.collection: Collection | None = None
        self.analysis: Analysis | None = None
        self.records: list[FileRecord] = []
        self._rec_map: dict[str, FileRecord] = {}
        self.problems: list[tuple[str, str]] = []
        self.current: str | None = None
        self.topic_names: dict[int, str] = {}  # the user's names (automatic ones: auto_topic_name)
        self._auto_names: tuple[object, dict[int, str]] = (None, {})
        self.closing: list[Collection] = []  # closed folders whose cancelled job is still stopping
        self._history: list[str] = []
        self._hpos = -1
        self._shown = None  # signature of the analysis the views show

    # ------------------------------------------------------------------ state queries
    @property
    def busy(self) -> bool:
        return self.jobs.busy

    @property
    def job_name(self) -> str | None:
        return self.jobs.job_name

    @property
    def synchronous(self) -> bool:
        return self.jobs.synchronous

    @synchronous.setter
    def synchronous(self, on: bool) -> None:
        self.jobs.synchronous = on

    def path_of(self, relpath: str) -> str:
        assert self.collection is not None
        return str(self.collection.root / relpath)

    def row_of(self, relpath: str | None) -> int | None:
        if relpath is None or self.analysis is None:
            return None
        return self.analysis.row_of(relpath)

    def record(self, relpath: str) -> FileRecord | None:
        return self._rec_map.get(relpath)

    def neighbours(self, relpath: str, k: int = NEIGHBOURS) -> list[Neighbour]:
        """Nearest neighbours of an indexed painting in the analysis shown ([] before there is one)."""
        row = self.row_of(relpath)
        if row is None:
            return []
        try:  # over *our* analysis: it may be the partial one yielded before the topics are fitted
            return search.similar(self.analysis, row, k)
        except Exception as e:  # noqa: BLE001 - shown to the user, never a crash
            self.report(e)
            return []

    def mixture(self, relpath: str | None):
        row = self.row_of(relpath)
        if row is None or self.analysis.topics is None:
            return None
        return self.analysis.topics.mixtures[row]

    def auto_topic_name(self, t: int) -> str:
        """The suggested name of topic ``t`` of the analysis shown ("" if none): from its top labels, else
        its colours (``summaries.auto_topic_names``, computed once per analysis)."""
        an = self.analysis
        if self._auto_names[0] is not an:
            try:
                detail = self.collection.detail_scores(an) if self.collection is not None else None
                self._auto_names = (an, auto_topic_names(an, detail=detail))
            except Exception:  # noqa: BLE001 - a suggestion is never worth an error
                self._auto_names = (an, {})
        return self._auto_names[1].get(t, "")

    def topic_name(self, t: int) -> str:
        """The user's name of topic ``t`` (0-based), else the suggested one, else "Topic t+1"."""
        return self.topic_names.get(t) or self.auto_topic_name(t) or f"Topic {t + 1}"

    def topic_label(self, t: int) -> str:
        """"Topic 3 · Dark portraits" (named or suggested) or "Topic 3" for t = 2 (as the core's)."""
        return search.format_topic_label(t, self.topic_names.get(t) or self.auto_topic_name(t))

    def rename_topic(self, t: int, name: str) -> None:
        """Give topic ``t`` a name (empty: back to 'Topic t+1'), kept in the index (the CLI and exports
        see it) for the topics shown now."""
        name = search.clean_topic_name(name)
        if name == f"Topic {t + 1}":
            name = ""
        if name:
            self.topic_names[t] = name
        else:
            self.topic_names.pop(t, None)
        col, an = self.collection, self.analysis
        if col is not None and an is not None and an.topics is not None:
            try:
                col.set_topic_name(t, name or None, an=an)
            except Exception as e:  # noqa: BLE001
                self.report(e)
        self.topic_names_changed.emit()

    def _load_topic_names(self, an: Analysis) -> dict[int, str]:
        """Names kept in the index for ``an``'s topics; names the app kept in its settings before
        (keyed by the analysis fingerprint) are moved into the index once."""
        col = self.collection
        if col is None or an.topics is None:
            return {}
        try:
            names = col.topic_names(an)
        except Exception:  # noqa: BLE001 - names are never worth an error
            names = {}
        old = {t: n for t, n in prefs.topic_names(an.fingerprint).items() if 0 <= t < an.topics.k}
        if old:
            prefs.clear_topic_names(an.fingerprint)
            for t, n in old.items():
                if t not in names:
                    names[t] = n
                    try:
                        col.set_topic_name(t, n, an=an)
                    except Exception as e:  # noqa: BLE001
                        self.report(e)
        return names

    # ------------------------------------------------------------------ opening
    def open_folder(self, folder: str | Path, *, labels_csv: str | Path | None = None,
                    index_dir: str | Path | None = None, artist_from_folder: bool = False) -> bool:
        """Open a collection: show the saved index at once, then update what changed in a worker."""
        try:
            col = Collection(folder, settings=replace(self.settings, blend=dict(self.settings.blend)),
                             index_dir=index_dir, labels_csv=labels_csv,  # not given: the remembered labels
                             artist_from_folder=artist_from_folder or None)
            if col.labels_choice.note:  # the remembered labels CSV is gone: the stored labels are kept
                self.message_posted.emit(col.labels_choice.note)
            try:
                saved = col.files.saved_settings()
            except ArtStyleError as e:  # unusable: the app's settings replace them (and say so)
                saved = None
                self.message_posted.emit(f"{e} The app's settings are used instead.")
            if saved is not None:  # settings remembered in the index (by the app or the CLI) win, except
                col.settings = replace(saved, device=self.settings.device,  # where this computer runs the
                                       runtime=self.settings.runtime)       # network (not kept in the index)
            elif is_old_default(col.settings):  # after an old collection: a new one starts on the art model
                col.settings = upgraded_to_art_model(col.settings)
            self.settings = replace(col.settings, blend=dict(col.settings.blend))
            col.files.save_settings()
        except Exception as e:  # noqa: BLE001
            self.report(e)
            return False
        self.close_collection()
        self.collection = col  # its records come from the index job (read in its worker: Indexing._open_gen)
        self.collection_changed.emit(col)
        self.message_posted.emit(f"Opened {col.root}")
        self.indexing.index(col)
        return True

    def close_collection(self) -> None:
        old = self.collection
        job = self.jobs.retire()
        if old is not None:
            if job is not None and job.worker is not None:  # close once its (cancelled) worker has stopped
                self.closing.append(old)
                job.cleanup = lambda: (old.close(), self.closing.remove(old))
            else:
                old.close()
        self.collection = None
        self.analysis = None
        self.records, self._rec_map, self.problems = [], {}, []
        self._history, self._hpos = [], -1
        self.topic_names = {}
        if old is not None:
            self.collection_changed.emit(None)
            self.analysis_changed.emit(None)
            self.records_changed.emit()
            self.problems_changed.emit([])
            self._set_current(None)
            self.history_changed.emit(False, False)

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

    # ------------------------------------------------------------------ jobs and state changes
    def need_collection(self) -> Collection | None:
        """The open collection; None (and the user is told) if no folder is open."""
        if self.collection is None:
            self.error_raised.emit("Open a folder of paintings first (File > Open Folder).", "")
        return self.collection

    def need_analysis(self, doing: str) -> Collection | None:
        """The open collection if it has (or a job is making) an analysis; else None, and the user is told."""
        col = self.need_collection()
        if col is not None and self.analysis is None and not self.busy:
            self.error_raised.emit(f"Index the collection before {doing}.", "")
            return None
        return col

    def report(self, exc: BaseException) -> None:
        """Show an error (the one error sink, :meth:`JobRunner.report`)."""
        self.jobs.report(exc)

    def cancel(self) -> None:
        """Stop the running job at its next batch (finished batches are kept) and drop queued jobs."""
        self.jobs.cancel()

    def wait(self, msecs: int = 60000) -> bool:
        return self.jobs.wait(msecs)

    def shutdown(self) -> None:
        """Cancel everything, wait for the worker, close the index (window close)."""
        self.jobs.shutdown()
        for col in list(self.closing):
            col.close()
        self.closing.clear()
        if self.collection is not None:
            self.collection.close()
        self.collection = None

    def set_records(self, records: list[FileRecord]) -> None:
        """Take the records read from the index (by the job that just ended, or now)."""
        self.records = records
        self._rec_map = {r.relpath: r for r in records}  # 30 ms at 100,000 paintings: here, not at a click
        self.problems = self.collection.problems(records) if self.collection is not None else problems_of(records)
        self.records_changed.emit()
        self.problems_changed.emit(self.problems)

    @staticmethod
    def _signature(an: Analysis | None):
        if an is None:
            return None
        return (an.fingerprint, tuple(sorted(an.weights.items())), an.metric, an.topics is not None, an.space)

    def adopt_analysis(self, an: Analysis | None, force: bool = False) -> None:
        """Make ``an`` the analysis the views show (GUI thread); they are told unless it shows exactly
        what they already show."""
        old = self.analysis
        sig = self._signature(an)
        if not force and an is not None and old is not None and sig == self._shown and an.labels == old.labels:
            self.analysis = an  # same content (e.g. the saved analysis loaded twice): no redraw
            return
        self.analysis = an
        self._shown = sig
        self.topic_names = self._load_topic_names(an) if an is not None else {}
        self.analysis_changed.emit(an)
