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
from pathlib import PurePosixPath

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QMessageBox, QSpinBox,
                               QToolButton, QVBoxLayout)

from .compare_view import CompareDialog

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


class StyleTools(QObject):
    """The style adapter's actions, dialogs and status-bar chip for the main window."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.win = window
        c = self.c = window.controller
        self.compare_a: str | None = None  # painting A of Compare (relpath)
        self.compare_window = None  # CompareDialog, created on first use
        self.last_box: QMessageBox | None = None  # the latest message shown (tests read it)
        self.dialog: AdaptDialog | None = None  # the latest Learn Style dialog
        self.act_learn = window._action("&Learn Style from Labels…", self.learn_style, LEARN_SHORTCUT,
                                         "Train a style space and a “same hand?” verifier from the artist, style "
                                         "or another label of the paintings")
        self.act_space = window._action("Use Learned &Style Space", self._on_space_action_triggered,
                                        SPACE_SHORTCUT, NO_ADAPTER_TIP)
        self.act_space.setCheckable(True)
        self.act_compare = window._action("&Compare Paintings (Same Hand?)…", self.open_compare, COMPARE_SHORTCUT,
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
        c.style_learned.connect(self._on_controller_style_learned)
        c.space_changed.connect(self.update_actions)
        self.update_actions()

    # ---------------------------------------------------------------- state
    def update_actions(self, *_) -> None:
        c = self.c
        has = c.collection is not None and c.analysis is not None
        busy_here = c.job_name in ("adapt", "space")
        self.act_learn.setEnabled(c.collection is not None and c.job_name != "adapt")
        info = c.adapter_info() if c.collection is not None else None
        adapted = c.space == "adapted"
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
        choices = c.label_choices()
        if not choices:
            return self._explain_no_labels()
        dlg = AdaptDialog(choices, c.adapter_info(), self.win)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.accepted.connect(lambda d=dlg: self.c.learn_style(*d.values()))
        dlg.open()
        self.dialog = dlg
        return dlg

    def _explain_no_labels(self) -> QMessageBox:
        from ..core.summaries import label_columns

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

    def _on_controller_style_learned(self, res) -> None:
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
        self.set_space("base" if self.c.space == "adapted" else "adapted")

    def set_space(self, space: str) -> bool:
        ok = self.c.set_space(space)
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
            self.compare_window = CompareDialog(c, self.win.loader, self, self.win)
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
