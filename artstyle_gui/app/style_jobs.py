"""The Controller's style-adapter and "same hand?" jobs (core/adapt.py, core/verify.py): learn a style
space from labels, switch to it, compare two paintings. A mixin of :class:`~.controller.Controller`,
which provides the job queue (``_start``), the signals (``style_learned``, ``space_changed``,
``compared``, ``message_posted``) and the open collection."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..core.engine import Analysis, Collection
from ..core.errors import ArtStyleError
from . import prefs
from .jobs import Job, _call


@dataclass
class StyleResult:
    """What a "Learn Style from Labels" job measured (core AdapterReport + verifier metadata)."""

    label: str
    report: Any  # core.adapt.AdapterReport
    verifier: dict | None  # the saved verifier's metadata (threshold, figures: heldout_pair_auc/f1)
    base_train_p: float  # precision@report.k of the training paintings in the base space
    analysis: Any = None  # the Analysis, now in the adapted space


class StyleJobs:
    """Style-space and comparison jobs of the Controller (see the module docstring)."""

    def _derived_dir(self, col: Collection) -> Path:
        """The collection's analysis folder (cached: with a custom weights file its key hashes the file)."""
        key = (str(col.index_dir), json.dumps(col.settings.featureset_config(), sort_keys=True, default=str))
        cached = getattr(self, "_derived_dir_cache", None)
        if cached is None or cached[0] != key:
            cached = (key, col._analysis_dir())
            self._derived_dir_cache = cached
        return cached[1]

    def _saved_meta(self, kind: str, files: tuple[str, str], load: Callable[[Collection], Any]) -> dict | None:
        """Metadata of the saved adapter or verifier, re-read only when its files change (the CLI may
        train one while the app is open)."""
        col = self.collection
        if col is None:
            return None
        d = self._derived_dir(col)
        stamp = []
        for name in files:
            try:
                st = (d / name).stat()
                stamp.append((st.st_mtime_ns, st.st_size))
            except OSError:
                stamp.append(None)
        key = (str(d), tuple(stamp))
        cache = self.__dict__.setdefault("_saved_meta_cache", {})
        if kind not in cache or cache[kind][0] != key:
            try:
                obj = load(col) if all(stamp) else None
            except Exception:  # noqa: BLE001 - unreadable files count as none
                obj = None
            cache[kind] = (key, dict(obj.meta) if obj is not None else None)
        return cache[kind][1]

    def adapter_info(self) -> dict | None:
        """Provenance and figures of the collection's saved style adapter (None: none trained yet)."""
        from ..core.adapt import ADAPTER_JSON, ADAPTER_NPZ, load_adapter

        return self._saved_meta("adapter", (ADAPTER_JSON, ADAPTER_NPZ), load_adapter)

    def verifier_info(self) -> dict | None:
        """Metadata of the saved same-hand verifier (label, threshold, figures), or None."""
        from ..core.verify import VERIFIER_JSON, VERIFIER_NPZ, load_verifier

        return self._saved_meta("verifier", (VERIFIER_JSON, VERIFIER_NPZ), load_verifier)

    @property
    def space(self) -> str:
        """The space the views show: "base" or "adapted" (learned from labels)."""
        return getattr(self.analysis, "space", "base") if self.analysis is not None else "base"

    def label_choices(self, min_per_label: int = 2) -> list[tuple[str, int, int]]:
        """Label columns a style can be learned from: (column, labelled paintings, labels), for the
        columns with two or more labels carried by ``min_per_label``+ paintings each (titles excluded)."""
        from collections import Counter

        from ..core.summaries import label_columns

        an = self.analysis
        if an is None:
            return []
        out = []
        for column in label_columns(an.labels, skip=("title", "path", "source")):
            counts = Counter(v for v in an.label_column(column) if v)
            usable = [n for n in counts.values() if n >= min_per_label]
            if len(usable) >= 2:
                out.append((column, sum(usable), len(usable)))
        return out

    def learn_style(self, label: str, kind: str = "linear", holdout: float = 0.2, **config) -> bool:
        """Train the style adapter and the same-hand verifier on ``label`` in a worker (progress,
        Cancel: nothing is written until training ends), then show the adapted space;
        ``style_learned`` follows. False if nothing was started."""
        from ..core.adapt import AdapterConfig

        col = self._need_collection()
        if col is None:
            return False
        if self.analysis is None and not self.busy:
            self.error_raised.emit("Index the collection before learning a style from its labels.", "")
            return False
        try:
            cfg = AdapterConfig(label=label, kind=kind, holdout=float(holdout), seed=col.settings.seed, **config)
            cfg.validate()
        except Exception as e:  # noqa: BLE001
            self._report(e)
            return False
        job = Job("adapt", 0, lambda: self._adapt_job(col, label, cfg), on_result=self._on_style_learned)
        if self.busy:
            self.message_posted.emit(f"Learning the style will start when {self.job_name} has finished")
        self._start(job)
        return True

    @staticmethod
    def _adapt_job(col: Collection, label: str, cfg):
        import numpy as np

        from ..core.adapt import base_view, precision_at, stratified_holdout, usable_labels
        from ..core.analysis import blend
        from ..core.verify import load_verifier

        adapter, rep = yield from col.adapt(label, cfg)
        an = col._require()
        # the report has the adapted figure of the training paintings; the base one, for comparison
        lab = np.array(an.label_column(label), dtype=object).astype(str)
        rows = np.flatnonzero(usable_labels(list(lab), cfg.min_per_label))
        _, y = np.unique(lab[rows], return_inverse=True)
        _, ho = stratified_holdout(y, cfg.holdout, cfg.seed)
        train = np.setdiff1d(rows, rows[ho])
        base_train = precision_at(blend(base_view(an)[0], an.weights), lab, train, train, rep.k)
        if an.space != "adapted":
            an = yield from col.use_space("adapted")
        col.store.set_meta("settings", json.dumps(col.settings.to_json()))
        ver = load_verifier(col)
        return StyleResult(label, rep, dict(ver.meta) if ver is not None else None, float(base_train), an)

    def _on_style_learned(self, res: "StyleResult") -> None:
        self.settings.space = "adapted"
        prefs.save_engine_settings(self.settings)
        self._adopt_analysis(res.analysis, force=True)  # same object, new parts/index/topics
        self.style_learned.emit(res)
        self.space_changed.emit(self.space)
        self.message_posted.emit(f"Learned a style space from the '{res.label}' labels; the views now use it")

    def set_space(self, space: str) -> bool:
        """Show the "base" or the "adapted" space (neighbours, topics, map) in a worker; the choice
        is remembered with the index's settings. ``space_changed`` follows."""
        col = self._need_collection()
        if col is None or space not in ("base", "adapted"):
            return False
        if space == "adapted" and self.adapter_info() is None:
            self.error_raised.emit("No style has been learned for this collection yet: use Tools > Learn Style "
                                   "from Labels first.", "")
            return False
        if self.analysis is None and not self.busy:
            return False
        self._queue = [j for j in self._queue if j.name != "space"]  # the last wish wins
        self._start(Job("space", 0, lambda: self._space_job(col, space), on_result=self._on_space_set))
        return True

    @staticmethod
    def _space_job(col: Collection, space: str):
        an = yield from col.use_space(space)
        col.store.set_meta("settings", json.dumps(col.settings.to_json()))
        return an

    def _on_space_set(self, an: Analysis) -> None:
        self.settings.space = an.space
        prefs.save_engine_settings(self.settings)
        self._adopt_analysis(an, force=True)  # same object, other parts/index/topics
        self.space_changed.emit(an.space)
        self.message_posted.emit("Showing the learned style space" if an.space == "adapted"
                                 else "Showing the base feature space")

    def compare(self, a: str, b: str) -> bool:
        """"Same hand?": the probability that paintings ``a`` and ``b`` (relpaths) share the label the
        verifier learned, in a worker (it may have to read stored features); ``compared`` follows.
        A newer request replaces a queued one."""
        col = self._need_collection()
        if col is None:
            return False
        if self.verifier_info() is None:
            self.error_raised.emit("No same-hand verifier yet: use Tools > Learn Style from Labels first.", "")
            return False
        self._queue = [j for j in self._queue if j.name != "compare"]
        job = Job("compare", 0, lambda: _call(self._compare_job, col, a, b),
                  on_result=lambda r, a=a, b=b: self.compared.emit(a, b, r))
        self._start(job)
        return True

    @staticmethod
    def _compare_job(col: Collection, a: str, b: str):
        an = col._require()
        rows = [an.row_of(r) for r in (a, b)]
        for rel, r in zip((a, b), rows):
            if r is None:
                raise ArtStyleError(f"{rel} is not indexed yet.")
        return col.compare(rows[0], rows[1])
