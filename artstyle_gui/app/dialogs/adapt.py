"""The style adapter in the app: Tools > Learn Style from Labels…, View > Use Learned Style Space,
Tools > Compare Paintings (Same Hand?)…, and the status-bar chip that says which space is shown.

The work is the core's (core/adapt.py, core/verify.py, docs/adapter.md) run as controller jobs
(progress, ETA, Cancel in the status bar; a cancelled training writes nothing).  This module only
builds the dialogs and wires the window's actions; :class:`StyleTools` is created once by the main
window.

Comparing two paintings: the gallery selects one painting at a time, so the comparison is
"painting A" (pinned) against the current selection (B).  Compare (Ctrl+Shift+C) pins the
selected painting as A when none is pinned and opens the Compare window, whose B follows the
selection: click other paintings anywhere (gallery, map, neighbours) to compare them with A.  The
gallery's context menu has "Set as Painting A for Compare" and "Compare with A".
"""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QMessageBox, QSpinBox,
                               QToolButton, QVBoxLayout)

from ...core.analysis.parts import blend
from ...core.errors import ArtStyleError
from ...core.explore.summaries import label_columns
from ...core.learn.adapt import ADAPTER_JSON, ADAPTER_NPZ, AdapterConfig
from ...core.learn.split import heldout_rows, precision_at, usable_labels
from ...core.learn.verify import VERIFIER_JSON, VERIFIER_NPZ
from .. import prefs
from ..jobs import Job, step
from .compare import CompareDialog

LEARN_SHORTCUT = "Ctrl+Shift+L"
SPACE_SHORTCUT = "Ctrl+Shift+A"
COMPARE_SHORTCUT = "Ctrl+Shift+C"
KINDS = (("linear", "Linear (recommended)"), ("mlp", "Small MLP (2 layers)"))
NO_ADAPTER_TIP = ("No style learned yet: Tools > Learn Style from Labels… (Ctrl+Shift+L) learns one from the "
                  "artist, style or another label of the paintings")


def choice_text(column: str, paintings: int, labels: int) -> str:
    return f"{column} — {paintings:,} paintings, {labels:,} labels"


def adapter_summary(info: dict | None) -> str:
    """One line about a saved adapter: its label, date and held-out figures."""
    if not info:
        return ""
    fig = info.get("figures") or {}
    k = fig.get("k", 10)
    when = str(info.get("created", ""))[:10]
    out = f"learned from '{info.get('label', '?')}'"
    if when:
        out += f" on {when}"
    if "heldout_p10" in fig and "base_heldout_p10" in fig:
        out += f" (held-out precision@{k} {fig['base_heldout_p10']:.2f} → {fig['heldout_p10']:.2f})"
    return out


class AdaptDialog(QDialog):
    """Which label, which model, how much to hold out.  ``values()`` -> (label, kind, holdout)."""

    def __init__(self, choices: list[tuple[str, int, int]], current: dict | None = None, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Learn Style from Labels")
        intro = QLabel("Learns a small projection of the features in which paintings with the same label "
                       "come close, so that neighbours, topics and the map follow that label's idea of style. "
                       "A “same hand?” verifier for Compare is trained with it. Part of every label is held out "
                       "to measure the gain on paintings the training never saw.")
        intro.setWordWrap(True)
        self.label = QComboBox()
        for column, n, k in choices:
            self.label.addItem(choice_text(column, n, k), column)
        cols = [c for c, _, _ in choices]
        prefer = (current or {}).get("label")
        for want in (prefer, "artist", "style"):
            if want in cols:
                self.label.setCurrentIndex(cols.index(want))
                break
        self.label.setToolTip("Label columns with two or more labels carried by two or more paintings each "
                              "(from the labels CSV or the artist subfolders)")
        self.kind = QComboBox()
        for key, text in KINDS:
            self.kind.addItem(text, key)
        self.kind.setToolTip("Linear: one linear map per part (content, texture, colour); measured best. "
                             "MLP: a 2-layer head per part, for large labelled collections")
        self.holdout = QSpinBox()
        self.holdout.setRange(5, 50)
        self.holdout.setSingleStep(5)
        self.holdout.setValue(20)
        self.holdout.setSuffix(" %")
        self.holdout.setToolTip("Fraction of every label kept out of training: training stops when these "
                                "paintings stop improving, and the figures shown at the end are measured on them")
        form = QFormLayout()
        form.addRow("Label:", self.label)
        form.addRow("Model:", self.kind)
        form.addRow("Held out:", self.holdout)
        note = ("Runs in the background on the CPU (seconds to a minute); Cancel (Esc) leaves everything as "
                "it was.")
        if current:
            note = f"Replaces the style {html.escape(adapter_summary(current))}. " + note
        self.note = QLabel(note)
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: palette(placeholder-text)")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Learn")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(intro)
        lay.addLayout(form)
        lay.addWidget(self.note)
        lay.addWidget(buttons)
        self.setMinimumWidth(480)

    def values(self) -> tuple[str, str, float]:
        return str(self.label.currentData()), str(self.kind.currentData()), self.holdout.value() / 100.0


def no_labels_text(present: list[str]) -> tuple[str, str]:
    """(text, informative text) of the message shown when no label can be learned from."""
    head = "This collection has no labels to learn a style from."
    if present:
        head = (f"The labels of this collection ({', '.join(present)}) do not group the paintings: a style is "
                "learned from a label that two or more paintings share.")
    info = ("Learning needs a label such as the artist or the style, with at least two labels carried by two or "
            "more paintings each. Two ways to add one:<ul>"
            "<li><b>a labels CSV</b>: a <i>path</i> column and columns such as <i>artist</i> or <i>style</i>, one row "
            "per painting (File > Use Labels CSV…; a <i>labels.csv</i> in the folder is read automatically);</li>"
            "<li><b>artist subfolders</b>: each artist's paintings in a folder named after them "
            "(<i>Claude_Monet/haystacks.jpg</i>), then “Artist from Subfolders”.</li></ul>")
    return head, info


def result_html(res) -> str:
    """The figures of a finished training (style_jobs.StyleResult) as a small HTML report."""
    rep, ver = res.report, res.verifier or {}
    k = rep.k

    def row(name: str, base, adapted, tip: str = "") -> str:
        b = "—" if base is None else f"{base:.3f}"
        arrow = "→" if base is not None else ""
        better = base is not None and adapted > base + 1e-9
        a = f"<b>{adapted:.3f}</b>" if better else f"{adapted:.3f}"
        return (f"<tr><td style='padding-right:14px'>{name}</td><td align='right'>{b}</td>"
                f"<td align='center' style='padding:0 6px'>{arrow}</td><td align='right'>{a}</td>"
                f"<td style='padding-left:10px; color:gray'>{tip}</td></tr>")

    rows = "".join([
        row("held-out paintings", rep.base_heldout_p10, rep.heldout_p10, f"{rep.n_heldout:,} never trained on"),
        row("held-out vs all labelled", rep.base_heldout_vs_all_p10, rep.heldout_vs_all_p10),
        row("training paintings", res.base_train_p, rep.train_p10, f"{rep.n_train:,}"),
    ])
    out = [f"<p>From <b>{html.escape(res.label)}</b>: {rep.n_labelled:,} labelled paintings, {rep.classes:,} labels "
           f"({rep.n_train:,} for training, {rep.n_heldout:,} held out).</p>",
           f"<table cellspacing='0' cellpadding='2'><tr><th align='left'>precision@{k}</th><th>base</th><th></th>"
           f"<th>learned</th><th></th></tr>{rows}</table>"]
    fig = ver.get("figures") or {}
    if fig:
        auc, f1 = fig.get("heldout_pair_auc", 0.0), fig.get("heldout_pair_f1", 0.0)
        out.append(f"<p>Same-hand verifier, pairs of held-out paintings: AUC <b>{auc:.3f}</b>, F1 <b>{f1:.3f}</b> "
                   f"at probability {float(ver.get('threshold', 0.5)):.2f}.</p>")
    stopped = {"early-stop": "stopped early", "epochs": "all epochs", "time-budget": "time budget reached"}
    out.append(f"<p style='color:gray'>Best epoch {rep.best_epoch + 1} of {rep.epochs_run} "
               f"({stopped.get(rep.stopped, rep.stopped)}), {rep.seconds:.0f} s.</p>")
    gain = rep.heldout_p10 - rep.base_heldout_p10
    if gain < -1e-9:
        out.append("<p><b>The learned space does worse than the base features on the held-out paintings</b>: "
                   "you may prefer to switch View > Use Learned Style Space off (more labelled paintings usually "
                   "help).</p>")
    elif gain <= 1e-9:
        why = ("the base features already find these labels perfectly" if rep.base_heldout_p10 >= 1 - 1e-9
               else "more labelled paintings usually help")
        out.append(f"<p><b>The learned space ties with the base features on the held-out paintings</b> ({why}).</p>")
    out.append("<p>Neighbours, topics and the map now use the learned style space; View > Use Learned Style "
               f"Space ({SPACE_SHORTCUT}) switches back and forth. Compare ({COMPARE_SHORTCUT}) asks "
               "“same hand?” for two paintings.</p>")
    return "".join(out)


@dataclass
class StyleResult:
    """What a "Learn Style from Labels" job measured (core AdapterReport + verifier metadata)."""

    label: str
    report: Any  # core.learn.adapt.AdapterReport
    verifier: dict | None  # the saved verifier's metadata (threshold, figures: heldout_pair_auc/f1)
    base_train_p: float  # precision@report.k of the training paintings in the base space
    analysis: Any = None  # the Analysis, now in the adapted space


class StyleJobs(QObject):
    """The style-space and comparison jobs (core/learn/adapt.py, core/learn/verify.py): learn a style
    space from labels, switch to it, compare two paintings. Run on the controller's job runner.

    Signals: style_learned(StyleResult) — the space is now "adapted"; space_changed(str) — the views
    show the "base" or the "adapted" space; compared(str, str, Comparison) — relpaths A and B.
    """

    style_learned = Signal(object)
    space_changed = Signal(str)
    compared = Signal(str, str, object)

    def __init__(self, controller, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.c = controller
        self._meta_cache: dict[str, tuple] = {}

    def _saved_meta(self, kind: str, files: tuple[str, str], load) -> dict | None:
        """Metadata of the saved adapter or verifier, re-read only when its files change (the CLI may
        train one while the app is open)."""
        col = self.c.collection
        if col is None:
            return None
        d = col.files.dir
        stamp = []
        for name in files:
            try:
                st = (d / name).stat()
                stamp.append((st.st_mtime_ns, st.st_size))
            except OSError:
                stamp.append(None)
        key = (str(d), tuple(stamp))
        if kind not in self._meta_cache or self._meta_cache[kind][0] != key:
            try:
                meta = load() if all(stamp) else None
            except Exception:  # noqa: BLE001 - unreadable files count as none
                meta = None
            self._meta_cache[kind] = (key, dict(meta) if meta is not None else None)
        return self._meta_cache[kind][1]

    def adapter_info(self) -> dict | None:
        """Provenance and figures of the collection's saved style adapter (None: none trained yet)."""
        col = self.c.collection
        return self._saved_meta("adapter", (ADAPTER_JSON, ADAPTER_NPZ), lambda: col.adapter_info())

    def verifier_info(self) -> dict | None:
        """Metadata of the saved same-hand verifier (label, threshold, figures), or None."""
        col = self.c.collection
        return self._saved_meta("verifier", (VERIFIER_JSON, VERIFIER_NPZ), lambda: col.verifier_info())

    @property
    def space(self) -> str:
        """The space the views show: "base" or "adapted" (learned from labels)."""
        an = self.c.analysis
        return an.space if an is not None else "base"

    def label_choices(self, min_per_label: int = 2) -> list[tuple[str, int, int]]:
        """Label columns a style can be learned from: (column, labelled paintings, labels), for the
        columns with two or more labels carried by ``min_per_label``+ paintings each (titles excluded)."""
        an = self.c.analysis
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
        c = self.c
        col = c.need_analysis("learning a style from its labels")
        if col is None:
            return False
        try:
            cfg = AdapterConfig(label=label, kind=kind, holdout=float(holdout), seed=col.settings.seed, **config)
            cfg.validate()
        except Exception as e:  # noqa: BLE001
            c.report(e)
            return False
        if c.busy:
            c.message_posted.emit(f"Learning the style will start when {c.job_name} has finished")
        c.jobs.start(Job("adapt", lambda: self._adapt_job(col, label, cfg), self._on_style_learned))
        return True

    @staticmethod
    def _adapt_job(col, label: str, cfg):
        adapter, rep = yield from col.adapt(label, cfg)
        an = col.require_analysis()
        # the report has the adapted figure of the training paintings; the base one, for comparison
        lab = np.array(an.label_column(label), dtype=object).astype(str)
        rows = np.flatnonzero(usable_labels(list(lab), cfg.min_per_label))
        train = np.setdiff1d(rows, heldout_rows(list(lab), cfg.holdout, cfg.seed, cfg.min_per_label))
        base = an.base_space
        base_train = precision_at(blend(base.parts, an.weights), lab, train, train, rep.k)
        if an.space != "adapted":
            an = yield from col.use_space("adapted")
        col.files.save_settings()
        return StyleResult(label, rep, col.verifier_info(), float(base_train), an)

    def _on_style_learned(self, res: StyleResult) -> None:
        c = self.c
        c.settings.space = "adapted"
        prefs.save_engine_settings(c.settings)
        c.adopt_analysis(res.analysis, force=True)
        self.style_learned.emit(res)
        self.space_changed.emit(self.space)
        c.message_posted.emit(f"Learned a style space from the '{res.label}' labels; the views now use it")

    def set_space(self, space: str) -> bool:
        """Show the "base" or the "adapted" space (neighbours, topics, map) in a worker; the choice
        is remembered with the index's settings. ``space_changed`` follows."""
        c = self.c
        col = c.need_collection()
        if col is None or space not in ("base", "adapted"):
            return False
        if space == "adapted" and self.adapter_info() is None:
            c.error_raised.emit("No style has been learned for this collection yet: use Tools > Learn Style "
                                "from Labels first.", "")
            return False
        if c.analysis is None and not c.busy:
            return False

        def space_job():
            an = yield from col.use_space(space)
            col.files.save_settings()
            return an

        c.jobs.start(Job("space", space_job, self._on_space_set), replace_queued=True)  # the last wish wins
        return True

    def _on_space_set(self, an) -> None:
        c = self.c
        c.settings.space = an.space
        prefs.save_engine_settings(c.settings)
        c.adopt_analysis(an, force=True)
        self.space_changed.emit(an.space)
        c.message_posted.emit("Showing the learned style space" if an.space == "adapted"
                              else "Showing the base feature space")

    def compare(self, a: str, b: str) -> bool:
        """"Same hand?": the probability that paintings ``a`` and ``b`` (relpaths) share the label the
        verifier learned, in a worker (it may have to read stored features); ``compared`` follows.
        A newer request replaces a queued one."""
        c = self.c
        col = c.need_collection()
        if col is None:
            return False
        if self.verifier_info() is None:
            c.error_raised.emit("No same-hand verifier yet: use Tools > Learn Style from Labels first.", "")
            return False
        c.jobs.start(Job("compare", lambda: step(self._compare_job, col, a, b),
                         lambda r, a=a, b=b: self.compared.emit(a, b, r)), replace_queued=True)
        return True

    @staticmethod
    def _compare_job(col, a: str, b: str):
        an = col.require_analysis()
        rows = [an.row_of(r) for r in (a, b)]
        for rel, r in zip((a, b), rows):
            if r is None:
                raise ArtStyleError(f"{rel} is not indexed yet.")
        return col.compare(rows[0], rows[1])


class StyleTools(QObject):
    """The style adapter's actions, dialogs and status-bar chip for the main window."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.win = window
        c = self.c = window.controller
        self.jobs = StyleJobs(c, self)  # learn, switch space, compare
        self.compare_a: str | None = None  # painting A of Compare (relpath)
        self.compare_window = None  # CompareDialog, created on first use
        self.last_box: QMessageBox | None = None  # the latest message shown (tests read it)
        self.dialog: AdaptDialog | None = None  # the latest Learn Style dialog
        self.act_learn = window.make_action("&Learn Style from Labels…", self.learn_style, LEARN_SHORTCUT,
                                         "Train a style space and a “same hand?” verifier from the artist, style "
                                         "or another label of the paintings")
        self.act_space = window.make_action("Use Learned &Style Space", self._on_space_action_triggered,
                                        SPACE_SHORTCUT, NO_ADAPTER_TIP)
        self.act_space.setCheckable(True)
        self.act_compare = window.make_action("&Compare Paintings (Same Hand?)…", self.open_compare, COMPARE_SHORTCUT,
                                          "The probability that painting A and the selected painting share the "
                                          "learned label, and why")

        self.chip = QToolButton()  # which space the views show; click to switch
        self.chip.setAutoRaise(True)
        self.chip.clicked.connect(self._on_chip_clicked)
        self.chip.hide()
        window.statusBar().addPermanentWidget(self.chip)

        v, t = getattr(window, "view_menu", None), getattr(window, "tools_menu", None)
        if v is not None:
            v.addSeparator()
            v.addAction(self.act_space)
            v.setToolTipsVisible(True)
        if t is not None:
            t.addSeparator()
            t.addAction(self.act_learn)
            t.addAction(self.act_compare)
            t.setToolTipsVisible(True)
        extenders = getattr(window.gallery, "context_menu_extenders", None)
        if extenders is not None:
            extenders.append(self._extend_context_menu)

        c.collection_changed.connect(self._on_controller_collection_changed)
        c.analysis_changed.connect(self.update_actions)
        c.selection_changed.connect(self._update_compare_action)  # cheap: runs on every click
        c.job_started.connect(self.update_actions)
        c.job_finished.connect(self._on_controller_job_finished)
        self.jobs.style_learned.connect(self._on_jobs_style_learned)
        self.jobs.space_changed.connect(self.update_actions)
        self.update_actions()

    # ---------------------------------------------------------------- state
    def update_actions(self, *_) -> None:
        c = self.c
        has = c.collection is not None and c.analysis is not None
        busy_here = c.job_name in ("adapt", "space")
        self.act_learn.setEnabled(c.collection is not None and c.job_name != "adapt")
        info = self.jobs.adapter_info() if c.collection is not None else None
        adapted = self.jobs.space == "adapted"
        self.act_space.blockSignals(True)
        self.act_space.setChecked(adapted)
        self.act_space.blockSignals(False)
        self.act_space.setEnabled(has and info is not None and not busy_here)
        tip = (f"Neighbours, topics and the map in the style space {adapter_summary(info)}" if info
               else NO_ADAPTER_TIP)
        self.act_space.setToolTip(tip)
        self.act_space.setStatusTip(tip)
        self._update_compare_action()
        if c.collection is None or c.analysis is None or (info is None and not adapted):
            self.chip.hide()
        else:
            label = str((getattr(c.analysis.adapter, "meta", None) or info or {}).get("label", ""))
            self.chip.setText(f"Space: learned style ({label})" if adapted else "Space: base features")
            self.chip.setToolTip(("The views show the style space " + adapter_summary(info) if adapted else
                                  "The views show the base features (a learned style space exists)")
                                 + f" — click or {SPACE_SHORTCUT} to switch")
            self.chip.setEnabled(not busy_here)
            f = self.chip.font()
            f.setBold(adapted)
            self.chip.setFont(f)
            self.chip.show()

    def _update_compare_action(self, *_) -> None:
        c = self.c
        self.act_compare.setEnabled(c.collection is not None and c.analysis is not None
                                    and (c.current is not None or self.compare_a is not None))

    def _on_controller_collection_changed(self, _col) -> None:
        self.compare_a = None
        if self.compare_window is not None:
            self.compare_window.reset()
        self.update_actions()

    def _on_controller_job_finished(self, name: str, outcome: str) -> None:
        self.update_actions()
        if name == "adapt" and outcome == "cancelled":
            self.win.statusBar().showMessage("Cancelled: the learned style and the space shown are as before", 10000)

    # ---------------------------------------------------------------- learn
    def learn_style(self):
        """The dialog (or, without usable labels, how to add them). Returns the dialog or message box."""
        c = self.c
        if c.collection is None:
            self.win.show_error("Open a folder of paintings first.", "")
            return None
        if c.analysis is None:
            self.win.show_error("Let the indexing finish before learning a style from the labels.", "")
            return None
        choices = self.jobs.label_choices()
        if not choices:
            return self._explain_no_labels()
        dlg = AdaptDialog(choices, self.jobs.adapter_info(), self.win)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.accepted.connect(lambda d=dlg: self.jobs.learn_style(*d.values()))
        dlg.open()
        self.dialog = dlg
        return dlg

    def _explain_no_labels(self) -> QMessageBox:
        c = self.c
        present = label_columns(c.analysis.labels) if c.analysis is not None else []
        head, info = no_labels_text(present)
        box = QMessageBox(QMessageBox.Icon.Information, "Learn Style from Labels", head, parent=self.win)
        box.setInformativeText(info)
        csv = box.addButton("Use Labels CSV…", QMessageBox.ButtonRole.ActionRole)
        csv.clicked.connect(self.win.choose_labels)
        if any("/" in r.relpath for r in c.records):
            sub = box.addButton("Artist from Subfolders", QMessageBox.ButtonRole.ActionRole)
            sub.setToolTip("Open the folder again with the artist taken from each painting's folder name")
            sub.clicked.connect(self._use_artist_subfolders)
        box.addButton(QMessageBox.StandardButton.Close)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.last_box = box
        return box

    def _use_artist_subfolders(self) -> None:
        col = self.c.collection
        if col is None:
            return
        if self.win.open_folder(col.root, labels_csv=col.labels_csv, index_dir=col.index_dir,
                                artist_from_folder=True):
            self.win.statusBar().showMessage("Artist names taken from the subfolders; Tools > Learn Style from "
                                             f"Labels ({LEARN_SHORTCUT}) can now use them", 15000)

    def _on_jobs_style_learned(self, res) -> None:
        self.update_actions()
        box = QMessageBox(QMessageBox.Icon.Information, "Style learned",
                          f"A style space was learned from the '{res.label}' labels.", parent=self.win)
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setInformativeText(result_html(res))
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.last_box = box
        if self.compare_window is not None and self.compare_window.isVisible():
            self.compare_window.refresh()

    # ---------------------------------------------------------------- space
    def _on_space_action_triggered(self, checked: bool) -> None:
        self.set_space("adapted" if checked else "base")

    def _on_chip_clicked(self) -> None:
        self.set_space("base" if self.jobs.space == "adapted" else "adapted")

    def set_space(self, space: str) -> bool:
        ok = self.jobs.set_space(space)
        self.update_actions()  # the check mark follows the space actually shown
        return ok

    # ---------------------------------------------------------------- compare
    def set_compare_a(self, relpath: str | None) -> None:
        if relpath is None:
            return
        self.compare_a = relpath
        name = PurePosixPath(relpath).name
        self.win.statusBar().showMessage(f"Painting A for Compare: {name} — select another painting to compare "
                                         f"({COMPARE_SHORTCUT})", 10000)
        if self.compare_window is not None and self.compare_window.isVisible():
            self.compare_window.set_a(relpath)
        self.update_actions()

    def open_compare(self):
        """The (non-modal) Compare window: A pinned, B follows the selection."""
        c = self.c
        if self.compare_a is None or (c.record(self.compare_a) is None and c.current is not None):
            self.compare_a = c.current
        if self.compare_window is None:
            self.compare_window = CompareDialog(c, self.jobs, self.win.loader, self, self.win)
        w = self.compare_window
        w.set_a(self.compare_a)
        w.show()
        w.raise_()
        w.activateWindow()
        return w

    def _extend_context_menu(self, menu, relpath: str) -> None:
        menu.addSeparator()
        a = menu.addAction("Set as Painting A for Compare")
        a.triggered.connect(lambda: (self.set_compare_a(relpath), self.open_compare()))
        if self.compare_a is not None and self.compare_a != relpath:
            name = PurePosixPath(self.compare_a).name
            b = menu.addAction(f"Compare with A ({name})")
            b.triggered.connect(lambda: (self.c.select(relpath), self.open_compare()))
