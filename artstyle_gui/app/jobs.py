"""Jobs the Controller runs in its worker thread: what a job is, and two generator adapters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .background import lower_this_thread


def _drive(gen):
    """Run an inner progress generator inside the worker (keeps its return value), below the GUI
    thread's CPU priority (threads the job starts inherit it)."""
    lower_this_thread()
    return (yield from gen)


def _call(fn: Callable, *args):
    """A plain function as a one-step job."""
    return fn(*args)
    yield  # pragma: no cover - makes this a generator function


@dataclass
class Job:
    name: str
    gen: int
    make: Callable[[], Any]  # -> generator
    on_result: Callable[[Any], None] | None = None
    worker: Any = None
    inner: Any = None
    outcome: str = "ok"
    extra: dict = field(default_factory=dict)
