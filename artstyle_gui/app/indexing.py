"""The jobs that change what every view shows: index a folder, apply new settings, re-rank with a new
blend, refit the topics. Their result is the Controller's state (records, the Analysis), which they
hand to it on the GUI thread; the views follow its signals."""

from __future__ import annotations

from dataclasses import replace

from ..core.index.collection import Collection
from ..core.ingest.labels import warnings_summary
from ..core.model import Analysis, Settings
from ..core.progress import Progress
from .jobs import Job, step


class Indexing:
    """Index, settings, blend and topic jobs of a :class:`~.controller.Controller` (``controller.indexing``)."""

    def __init__(self, controller) -> None:
        self.c = controller

    def index(self, col: Collection) -> None:
        """Show the saved index of a folder just opened, then update what changed (a worker)."""
        self.c.jobs.start(self.index_job(col, False, show_records=True))

    def index_job(self, col: Collection, retry_failed: bool, before=None, show_records: bool = False) -> Job:
        def make():
            if before is not None:
                before()
            return self._open_gen(col, retry_failed, show_records)

        def done(result) -> None:
            rep, an, records = result
            self.c.set_records(records)
            self.c.adopt_analysis(an)
            self.c.message_posted.emit(rep.summary())
            notes, col.labels_warnings = col.labels_warnings, []  # rows of the labels CSV that were skipped
            for line in warnings_summary(notes, col.labels_csv):
                self.c.message_posted.emit(line)

        def finished(outcome: str) -> None:
            if outcome == "cancelled" and col is self.c.collection:
                self.c.set_records(col.records())  # the batches finished before the cancel are in the index
                self.c.message_posted.emit("Cancelled: finished images are kept and will not be processed again")

        return Job("index", make, done, on_progress=self._on_index_progress, on_finished=finished)

    @staticmethod
    def _open_gen(col: Collection, retry_failed: bool, show_records: bool = False):
        if show_records:  # a folder just opened: its saved records, read here (3 s at a million paintings, which
            yield Progress("open", 0, 1, "reading the index", payload=col.records())  # froze the window)
        if col.analysis is None:
            an = col.load_analysis()
            if an is not None:
                yield Progress("loaded", 1, 1, "loaded the saved analysis", payload=an)
            elif col.derived_problem:  # damaged cache: say so, then recompute
                yield Progress("loaded", 1, 1, str(col.derived_problem))
        rep = yield from col.update(retry_failed=retry_failed)
        an = yield from col.analyse()  # the analysis the views show, if still current: no second copy
        return rep, an, col.records()  # read here, not on the GUI thread (50 ms at 10,000 paintings)

    def _on_index_progress(self, p: Progress) -> None:
        if isinstance(p.payload, Analysis):  # the saved analysis, or a new one before its topics
            self.c.adopt_analysis(p.payload)
        elif p.stage == "open" and isinstance(p.payload, list):  # the records of a folder just opened
            self.c.set_records(p.payload)
        elif p.stage == "loaded" and p.message:
            self.c.message_posted.emit(p.message)
        elif p.stage in ("scan", "extract") and isinstance(p.payload, list) and p.payload:
            # the scan's paths fill the gallery before extraction; extract batches confirm them
            self.c.records_added.emit(list(p.payload))

    def reindex(self, retry_failed: bool = False) -> None:
        """Scan again and process what changed (and retry unreadable files if asked)."""
        col = self.c.need_collection()
        if col is not None:
            self.c.jobs.start(self.index_job(col, retry_failed))

    def retry_failed(self) -> None:
        self.reindex(retry_failed=True)

    # ------------------------------------------------------------------ settings
    def apply_settings(self, new: Settings) -> str:
        """Adopt new engine settings and run only what they require.

        Returns what happens: 'none', 'blend' (re-rank only), 'analyse' (PCA/topics), 'index'
        (features must be extracted again)."""
        new.validate()
        old = self.c.settings
        self.c.settings = replace(new, blend=dict(new.blend))
        col = self.c.collection
        if col is None:
            return "none"
        fresh = replace(new, blend=dict(new.blend))

        def adopt():  # when the job starts: never under a running job
            col.settings = replace(fresh, blend=dict(fresh.blend))
            col.files.save_settings()

        if new.featureset_key() != old.featureset_key() or new.featureset_config() != old.featureset_config():
            def reset():
                adopt()
                col.analysis = None

            self.c.jobs.start(self.index_job(col, False, before=reset))
            return "index"
        if new.analysis_config() != old.analysis_config():
            self.c.jobs.start(Job("analyse", lambda: (adopt(), col.analyse())[1], self._on_refitted))
            return "analyse"
        # where the network runs: the next extraction loads it there (no job; the features are the same)
        col.settings.device, col.settings.runtime = new.device, new.runtime
        if new.blend != old.blend or new.metric != old.metric:
            self.set_blend(new.blend, new.metric)
            return "blend"
        return "none"

    def set_blend(self, weights: dict[str, float], metric: str | None = None) -> None:
        """Re-rank with new descriptor weights (rebuilds the neighbour index, no extraction)."""
        self.c.settings.blend = dict(weights)
        if metric:
            self.c.settings.metric = metric
        col = self.c.need_collection()
        if col is None:
            return
        if self.c.analysis is None:
            col.settings.blend, col.settings.metric = dict(weights), self.c.settings.metric
            return

        def blend_job(weights=dict(weights)):
            an = col.set_blend(weights, metric)
            col.files.save_settings()
            return an

        def done(an) -> None:
            self.c.adopt_analysis(an, force=True)
            self.c.message_posted.emit("Neighbours re-ranked with the new descriptor weights")

        self.c.jobs.start(Job("blend", lambda: step(blend_job), done))

    def refit_topics(self, k: int | None, topic_input: str | None = None) -> None:
        """Fit topics again with another K (None: automatic) without extracting features."""
        col = self.c.need_collection()
        if col is None:
            return
        self.c.settings.k = k
        if topic_input:
            self.c.settings.topic_input = topic_input

        def refit():
            an = yield from col.refit_topics(k, topic_input)
            col.files.save_settings()
            return an

        self.c.jobs.start(Job("refit", refit, self._on_refitted))

    def _on_refitted(self, an: Analysis | None) -> None:
        self.c.adopt_analysis(an, force=True)
        if an is not None and an.topics is not None:
            self.c.message_posted.emit(f"{an.topics.k} topics fitted")
