"""One progress-and-cancel protocol for the CLI and the GUI.

Every long-running step of the engine is a *generator* that yields
:class:`Progress` events (at most once per batch) and ``return``s its result.
The CLI loops over the generator and draws a terminal progress bar; the app
runs the very same generator in a worker thread (superqt ``create_worker``)
and cancels by not resuming it (``worker.quit()`` takes effect at the next
yield).  Because work is committed batch by batch *before* each yield,
stopping a generator at any yield loses no finished work.

Sub-steps are composed with :func:`sub_steps`/``yield from`` and mapped onto a
slice of the overall progress with :func:`scaled` (idea from Orange3's
``wrap_callback``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Generator, Iterator, TypeVar

T = TypeVar("T")

#: A progress generator: yields Progress, returns a result of type T.
ProgressGen = Generator["Progress", None, T]


@dataclass(frozen=True)
class Progress:
    """One progress event.

    stage:   short machine-friendly stage name ("scan", "extract", "pca", ...)
    done:    units finished in this stage
    total:   units in this stage, or None when unknown (e.g. while scanning)
    message: human-readable detail for status bars
    payload: optional partial result for live views (e.g. newly indexed ids)
    """

    stage: str
    done: int = 0
    total: int | None = None
    message: str = ""
    payload: Any = field(default=None, compare=False)

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, max(0.0, self.done / self.total))


STAGE_LABELS = {
    "scan": "Scanning",
    "load-model": "Loading model",
    "extract": "Extracting features",
    "pca": "Reducing (PCA)",
    "vocab": "Visual vocabulary",
    "topics": "Fitting topics",
    "k-select": "Choosing K",
    "index": "Building neighbour index",
    "map": "Style map",
    "duplicates": "Near-duplicates",
    "adapt": "Learning style",
    "verify": "Same-hand verifier",
    "adapted-space": "Learned style space",
    "finetune-read": "Reading labelled paintings",
    "finetune": "Fine-tuning backbone",
    "finetune-save": "Saving fine-tuned weights",
    "done": "Done",
}


def stage_label(stage: str) -> str:
    return STAGE_LABELS.get(stage, stage.replace("-", " ").capitalize())


def run(gen: ProgressGen[T]) -> T:
    """Drive a progress generator to completion, ignoring events; return its result."""
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def collect(gen: ProgressGen[T]) -> tuple[list[Progress], T]:
    """Drive a generator to completion and also return every event (for tests)."""
    events: list[Progress] = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            return events, stop.value


class RateEstimator:
    """Smoothed rate and ETA of a stage.

    The rate is an exponential moving average with a time constant (``tau`` seconds: a burst of
    quick events weighs no more than one slow one), and the ETA itself is smoothed: each new estimate
    is blended with the previous one counted down by the time since, so it does not jump
    (00:54 -> 04:19 -> 01:05). No ETA in a stage's first ``warmup`` seconds or before ``min_updates``
    rate measurements, and none for a stage without a total or without progress.
    """

    def __init__(self, alpha: float = 0.3, *, tau: float = 8.0, warmup: float = 3.0, min_updates: int = 2,
                 clock=time.monotonic) -> None:
        self.alpha = alpha  # weight of a new ETA estimate against the counted-down previous one
        self.tau = tau
        self.warmup = warmup
        self.min_updates = min_updates
        self._clock = clock
        self.reset()

    def reset(self) -> None:
        self._stage: str | None = None
        self._t0 = self._clock()
        self._last_t = self._t0
        self._last_done = 0
        self._updates = 0
        self._eta: float | None = None
        self._eta_t = self._t0
        self.rate: float | None = None

    def update(self, p: Progress, now: float | None = None) -> tuple[float | None, float | None]:
        """Feed an event; return (rate per second, eta seconds), each None when not known yet."""
        now = self._clock() if now is None else now
        if p.stage != self._stage or p.done < self._last_done:
            self._stage = p.stage
            self._t0 = self._last_t = self._eta_t = now
            self._last_done = p.done
            self._updates = 0
            self._eta = None
            self.rate = None
            return None, None
        dt = now - self._last_t
        dn = p.done - self._last_done
        if dt > 0 and dn > 0:
            inst = dn / dt
            w = 1.0 - math.exp(-dt / self.tau) if self.tau > 0 else 1.0
            self.rate = inst if self.rate is None else w * inst + (1 - w) * self.rate
            self._last_t, self._last_done = now, p.done
            self._updates += 1
        if (not self.rate or not p.total or p.done >= p.total or now - self._t0 < self.warmup
                or self._updates < self.min_updates):
            return self.rate, None
        est = max(0.0, (p.total - p.done) / self.rate)
        if self._eta is None:
            self._eta = est
        else:
            counted = max(0.0, self._eta - (now - self._eta_t))
            self._eta = self.alpha * est + (1 - self.alpha) * counted
        self._eta_t = now
        return self.rate, self._eta


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def iter_events(gen: ProgressGen[Any]) -> Iterator[Progress]:
    """Iterate events; the generator's return value is lost (use ``yield from`` to keep it)."""
    yield from gen
