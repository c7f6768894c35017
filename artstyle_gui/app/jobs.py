"""Background jobs: what a job is, and the one runner every view starts its jobs on.

A :class:`Job` is ``Job(name, make, on_done, on_error)``: ``make()`` returns one of the core's progress
generators (it runs in a worker thread of superqt's ``create_worker``); ``on_done(result)`` gets its
return value on the GUI thread; ``on_error(exc)`` its exception (default: the runner's one error sink,
:attr:`JobRunner.error_raised`). A view starts the jobs whose results it shows, next to the code that
shows them (as Orange's ConcurrentWidgetMixin and napari's workers do).

One job runs at a time (later ones queue): the index has one writer. Every job gets a generation
number; events of an older generation (a folder that was closed, a cancelled job) are dropped. Cancel is
``worker.quit()``: it lands at the next yield (one batch); the core has already committed every finished
batch, and the generator is closed in the worker thread so its ``finally`` releases the index lock at once.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Any, Callable

from PySide6.QtCore import QObject, Qt, Signal
from superqt.utils import create_worker

from ..core.errors import ArtStyleError
from ..core.progress import Progress, RateEstimator
from .background import lower_this_thread


def step(fn: Callable, *args, **kwargs):
    """A plain function as a one-step job (``make=lambda: step(fn, ...)``)."""
    return fn(*args, **kwargs)
    yield  # pragma: no cover - makes this a generator function


def drive(gen):
    """Run a progress generator inside the worker (keeps its return value), below the GUI thread's CPU
    priority (threads the job starts inherit it)."""
    lower_this_thread()
    return (yield from gen)


def describe_error(exc: BaseException) -> tuple[str, str]:
    """(user message, details) for an exception from a worker or a slot."""
    if isinstance(exc, ArtStyleError):
        return str(exc), ""
    details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return f"Unexpected error: {type(exc).__name__}: {exc}", details


@dataclass(eq=False)
class Job:
    name: str  # shown to the user ("Cancelling map…") and in job_started / job_finished
    make: Callable[[], Any]  # -> progress generator; called on the GUI thread when the job starts
    on_done: Callable[[Any], None] | None = None  # GUI thread: the generator's return value
    on_error: Callable[[BaseException], None] | None = None  # GUI thread; None: the runner's error sink
    on_progress: Callable[[Progress], None] | None = None  # GUI thread: every Progress (payloads)
    on_finished: Callable[[str], None] | None = None  # GUI thread: the outcome, ok | cancelled | error
    key: Any = None  # what the job is for (a map's method): see JobRunner.pending / cancel_where
    cleanup: Callable[[], None] | None = None  # when its worker has stopped, even after JobRunner.retire
    # --- set by the runner
    gen: int = 0
    worker: Any = None
    inner: Any = None
    outcome: str = "ok"


class JobRunner(QObject):
    """Runs :class:`Job` s one at a time in a worker thread; reports progress (with rate and ETA),
    outcomes and errors.

    Signals: ``progress_changed(Progress | None, rate | None, eta | None)``, ``job_started(name)``,
    ``job_finished(name, outcome)``, ``error_raised(message, details)``, ``message_posted(text)``.
    """

    progress_changed = Signal(object, object, object)
    job_started = Signal(str)
    job_finished = Signal(str, str)
    error_raised = Signal(str, str)
    message_posted = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._gen = 0
        self._job: Job | None = None
        self._queue: list[Job] = []
        self._rate = RateEstimator()
        #: run jobs in the calling thread (``worker.run()``): deterministic tests of cancel logic
        self.synchronous = False

    # ------------------------------------------------------------------ state
    @property
    def busy(self) -> bool:
        return self._job is not None

    @property
    def current(self) -> Job | None:
        return self._job

    @property
    def job_name(self) -> str | None:
        return self._job.name if self._job else None

    def pending(self, name: str, key: Any = None) -> bool:
        """Whether a job called ``name`` (for ``key``, unless None) is running or queued."""
        return any(j.name == name and (key is None or j.key == key)
                   for j in ([self._job] if self._job else []) + self._queue)

    def report(self, exc: BaseException) -> None:
        """The one error sink: a message (and details for unexpected errors) for the window."""
        self.error_raised.emit(*describe_error(exc))

    # ------------------------------------------------------------------ control
    def start(self, job: Job, *, replace_queued: bool = False) -> None:
        """Run ``job`` now, or after the running one (``replace_queued``: a queued job of the same name
        is dropped first: the last wish wins)."""
        if replace_queued:
            self._queue = [j for j in self._queue if j.name != job.name]
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
            self._fail(job, e)
            self.job_finished.emit(job.name, "error")
            self._next()
            return
        job.inner = gen
        worker = create_worker(drive, gen, _start_thread=False)
        job.worker = worker
        g = job.gen
        worker.yielded.connect(lambda p, g=g: self._on_yielded(g, p))
        worker.returned.connect(lambda r, g=g: self._on_returned(g, r))
        worker.errored.connect(lambda e, g=g: self._on_errored(g, e))
        worker.finished.connect(lambda j=job: self._on_finished(j))
        # runs in the worker thread right after the abort: releases the lock and decode threads now
        worker.aborted.connect(gen.close, Qt.ConnectionType.DirectConnection)
        self.job_started.emit(job.name)
        if self.synchronous:
            worker.run()
        else:
            worker.start()

    def cancel(self, *, quiet: bool = False) -> None:
        """Stop the running job at its next batch (finished batches are kept) and drop queued jobs."""
        self._queue.clear()
        job = self._job
        if job is not None and job.worker is not None:
            job.outcome = "cancelled"
            job.worker.quit()
            if not quiet:
                self.message_posted.emit(f"Cancelling {job.name}…")

    def cancel_where(self, keep: Callable[[Job], bool]) -> None:
        """Drop queued jobs and cancel the running one unless ``keep(job)``."""
        self._queue = [j for j in self._queue if keep(j)]
        job = self._job
        if job is not None and not keep(job) and job.worker is not None:
            job.outcome = "cancelled"
            job.worker.quit()

    def retire(self) -> Job | None:
        """Forget the running job (its events are dropped from now on; it stops at its next batch) and
        return it; used when the folder it works on is closed."""
        self.cancel(quiet=True)
        job, self._job = self._job, None
        self._gen += 1
        return job

    def wait(self, msecs: int = 60000) -> bool:
        """Block until the running job has stopped (used at exit and in tests)."""
        from PySide6.QtCore import QThreadPool

        return QThreadPool.globalInstance().waitForDone(msecs)

    def shutdown(self) -> None:
        """Cancel everything and wait for the worker (window close)."""
        self.cancel(quiet=True)
        self.wait(30000)
        job = self._job
        if job is not None and job.inner is not None:
            job.inner.close()
        self._gen += 1
        self._job = None

    # ------------------------------------------------------------------ worker events (GUI thread)
    def _fail(self, job: Job, exc: BaseException) -> None:
        job.outcome = "error"
        if job.on_error is not None:
            try:
                job.on_error(exc)
                return
            except Exception as e:  # noqa: BLE001
                exc = e
        self.report(exc)

    def _on_yielded(self, g: int, p: Progress) -> None:
        job = self._job
        if g != self._gen or job is None or not isinstance(p, Progress):
            return
        if job.on_progress is not None:
            try:
                job.on_progress(p)
            except Exception as e:  # noqa: BLE001
                self.report(e)
        rate, eta = self._rate.update(p)
        self.progress_changed.emit(p, rate, eta)

    def _on_returned(self, g: int, result) -> None:
        job = self._job
        if g != self._gen or job is None:
            return
        if job.on_done is not None:
            try:
                job.on_done(result)
            except Exception as e:  # noqa: BLE001
                self._fail(job, e)

    def _on_errored(self, g: int, exc: BaseException) -> None:
        if g != self._gen or self._job is None:
            return
        self._fail(self._job, exc)

    def _on_finished(self, job: Job) -> None:
        if job.inner is not None:
            job.inner.close()  # no-op unless aborted before the DirectConnection ran
        if job.cleanup is not None:
            cleanup, job.cleanup = job.cleanup, None
            cleanup()
        if job is not self._job:
            return
        self._job = None
        self.progress_changed.emit(None, None, None)
        if job.on_finished is not None:
            try:
                job.on_finished(job.outcome)
            except Exception as e:  # noqa: BLE001
                self.report(e)
        self.job_finished.emit(job.name, job.outcome)
        self._next()

    def _next(self) -> None:
        if self._job is None and self._queue:
            self.start(self._queue.pop(0))
