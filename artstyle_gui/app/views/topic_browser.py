"""Topic browser: per topic its name (the user's, else a suggested one), size, top paintings and top
labels; how well each number of topics fits (the held-out perplexity curve); re-fit."""

from __future__ import annotations

import html
from collections import Counter

import numpy as np
import pyqtgraph as pg  # after PySide6
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ...core.analysis.topics import TOPIC_INPUT_LABELS, TOPIC_INPUTS
from ...core.explore.summaries import fit_summary, topic_summaries
from ..widgets.captions import caption_of
from ..widgets.colors import plot_colors, swatch, topic_color
from ..widgets.thumbstrip import TOPIC_TOP_THUMB, Card, ThumbStrip

TOP_N = 24


class PerplexityPlot(pg.PlotWidget):
    """Held-out perplexity over K with the chosen K marked."""

    def __init__(self, parent=None) -> None:
        bg, fg = plot_colors()
        super().__init__(parent, background=bg)
        pi = self.getPlotItem()
        pi.hideButtons()
        pi.setMenuEnabled(False)
        pi.setMouseEnabled(False, False)
        pi.showGrid(x=True, y=True, alpha=0.2)
        for ax in ("left", "bottom"):
            pi.getAxis(ax).setPen(fg)
            pi.getAxis(ax).setTextPen(fg)
        pi.setLabel("bottom", "number of topics")
        pi.setLabel("left", "fit (lower is better)")
        self.setToolTip("Held-out perplexity of the topic model for each number of topics K (lower is better); "
                        "the number used is marked")
        self.curve = pi.plot([], [], pen=pg.mkPen(fg, width=2), symbol="o", symbolSize=6,
                             symbolBrush=pg.mkBrush(fg), symbolPen=None)
        self.chosen = pg.ScatterPlotItem(size=14, pen=pg.mkPen("w", width=1.5), brush=pg.mkBrush("#e15759"))
        pi.addItem(self.chosen)
        self.vline = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#e15759", width=1.5,
                                                                           style=Qt.PenStyle.DashLine))
        pi.addItem(self.vline)
        self.note = pg.TextItem("", color=fg, anchor=(0.5, 0.5))
        pi.addItem(self.note)
        self.setMinimumHeight(150)

    def set_curve(self, ks: list[int], perp: list[float], k: int | None) -> None:
        pi = self.getPlotItem()
        if ks:
            self.curve.setData(np.asarray(ks, float), np.asarray(perp, float))
            self.note.setText("")
            if k in ks:
                y = perp[ks.index(k)]
                self.chosen.setData([k], [y])
                self.vline.setPos(k)
                self.vline.show()
            pi.enableAutoRange()
        else:
            self.curve.setData([], [])
            self.chosen.setData([], [])
            self.vline.hide()
            self.note.setText(f"K fixed at {k}: no curve was computed.\nTick 'Automatic K' and re-fit to "
                              "compute it." if k else "Topics are fitted once the collection is indexed.")
            pi.setXRange(0, 1)
            pi.setYRange(0, 1)
            self.note.setPos(0.5, 0.5)


class TopicBrowser(QWidget):
    """Signals:
        painting_clicked(str): a top painting was clicked (relpath).
    """

    painting_clicked = Signal(str)

    def __init__(self, controller, loader, parent=None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.summaries = []
        self.topic: int | None = None

        self.list = QListWidget()
        self.list.setIconSize(QSize(14, 14))
        self.list.setMinimumWidth(150)
        self.list.setUniformItemSizes(True)

        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("Name this topic…")
        self.name_edit.setToolTip("A name for this topic, used everywhere in the app and in exports. The grey text "
                                  "is a suggested name: type to give your own (clear it to go back)")
        f = self.name_edit.font()
        f.setPointSizeF(f.pointSizeF() * 1.3)
        f.setBold(True)
        self.name_edit.setFont(f)
        self.swatch = QLabel()
        self.stats = QLabel()
        self.stats.setTextFormat(Qt.TextFormat.RichText)
        self.stats.setWordWrap(True)
        self.artists = QLabel()
        self.artists.setTextFormat(Qt.TextFormat.RichText)
        self.artists.setWordWrap(True)
        self.top = ThumbStrip(loader, thumb=TOPIC_TOP_THUMB, wrap=True)
        self.top.card_activated.connect(self.painting_clicked)

        self.plot = PerplexityPlot()
        self.plot.setMinimumWidth(150)  # readable axes even at the smallest window size
        self.auto_k = QCheckBox("Automatic")
        self.auto_k.setToolTip("Choose the number of topics K at the elbow of the held-out perplexity curve")
        self.k_spin = QSpinBox()
        self.k_spin.setRange(1, 200)
        self.input_box = QComboBox()
        for key in TOPIC_INPUTS:
            self.input_box.addItem(TOPIC_INPUT_LABELS[key], key)
        self.refit = QPushButton("Re-fit topics")
        self.k_note = QLabel()
        self.k_note.setWordWrap(True)
        self.k_note.setTextFormat(Qt.TextFormat.RichText)
        self.refit.setToolTip("Fit the topics again with these options (features are not extracted again)")

        head = QHBoxLayout()
        head.addWidget(self.swatch)
        head.addWidget(self.name_edit, 1)
        right = QVBoxLayout()
        right.addLayout(head)
        right.addWidget(self.stats)
        right.addWidget(self.artists)
        lab = QLabel("<b>Paintings most typical of this topic</b>")
        lab.setToolTip("Ranked by p(topic | painting): how much of each painting's style this topic accounts for")
        right.addWidget(lab)
        right.addWidget(self.top, 1)
        rw = QWidget()
        rw.setLayout(right)

        fit = QGridLayout()
        fit.addWidget(QLabel("<b>Number of topics</b>"), 0, 0, 1, 4)
        fit.addWidget(self.auto_k, 1, 0)
        fit.addWidget(QLabel("Topics:"), 1, 1, Qt.AlignmentFlag.AlignRight)
        fit.addWidget(self.k_spin, 1, 2)
        fit.addWidget(QLabel("Topic input:"), 2, 0)
        fit.addWidget(self.input_box, 2, 1, 1, 2)
        fit.addWidget(self.refit, 3, 0, 1, 3)
        fit.addWidget(self.k_note, 4, 0, 1, 3)
        fit.setRowStretch(5, 1)
        bottom = QHBoxLayout()
        bottom.setContentsMargins(0, 0, 0, 0)
        bottom.addWidget(self.plot, 1)
        self.plot_note = QLabel()  # instead of empty axes: why there is no curve
        self.plot_note.setWordWrap(True)
        self.plot_note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.plot_note.hide()
        bottom.addWidget(self.plot_note, 1)
        fw = QWidget()
        fw.setLayout(fit)
        fw.setMaximumWidth(280)
        bottom.addWidget(fw)
        bw = QWidget()
        bw.setLayout(bottom)

        vsplit = QSplitter(Qt.Orientation.Vertical)
        vsplit.addWidget(rw)
        vsplit.addWidget(bw)
        vsplit.setStretchFactor(0, 3)
        vsplit.setStretchFactor(1, 1)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.list)
        split.addWidget(vsplit)
        split.setStretchFactor(1, 1)
        split.setSizes([190, 900])
        self.splitter = split
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(split)

        self.list.currentRowChanged.connect(self._on_list_current_row_changed)
        self.name_edit.editingFinished.connect(self._on_name_edit_finished)
        self.auto_k.toggled.connect(lambda on: self.k_spin.setEnabled(not on))
        self.refit.clicked.connect(self._on_refit_clicked)
        controller.analysis_changed.connect(self.set_analysis)
        controller.job_started.connect(lambda _n: self.refit.setEnabled(False))
        controller.job_finished.connect(lambda *_: self.refit.setEnabled(True))
        controller.progress_changed.connect(self._on_controller_progress_changed)
        controller.collection_changed.connect(lambda *_: self._show_waiting())
        self.auto_names: dict[int, str] = {}  # suggested names of the topics shown (the user's names win)
        self._progress = None  # the last progress event while indexing (for the placeholder)
        self.set_analysis(controller.analysis)

    # ---------------------------------------------------------------- content
    def set_analysis(self, an) -> None:
        c = self.controller
        self.summaries = topic_summaries(an, TOP_N) if an is not None else []
        try:
            k = an.topics.k if an is not None and an.topics is not None else 0
            self.auto_names = {t: n for t in range(k) if (n := c.auto_topic_name(t))}  # as every view names them
        except Exception:  # noqa: BLE001 - a suggestion is never worth an error
            self.auto_names = {}
        st = c.settings
        self.auto_k.setChecked(st.k is None)
        self.k_spin.setEnabled(st.k is not None)
        self.k_spin.setValue(an.topics.k if an is not None and an.topics is not None else (st.k or 10))
        self.input_box.setCurrentIndex(max(0, self.input_box.findData(
            an.topics.input_kind if an is not None and an.topics is not None else st.topic_input)))
        if an is not None and an.topics is not None:
            tm = an.topics
            self.plot.set_curve(list(tm.curve_k), list(tm.curve_perplexity), tm.k)
            self.plot.setVisible(bool(tm.curve_k))  # no bare axes: a sentence where there is no curve
            self.plot_note.setVisible(not tm.curve_k)
            self.plot_note.setText(f"The number of topics is fixed at {tm.k}. Tick 'Automatic' and "
                                   "re-fit to see how well other numbers fit.")
            how = (f"chosen automatically: {tm.curve_k[0]} to {tm.curve_k[-1]} were tried, and more topics "
                   "would not describe the collection much better" if tm.curve_k else "fixed in the settings")
            placed = ""
            if an.added_since or an.removed_since:
                again = "on a new sample" if an.sample_n else "on every painting"
                placed = (f"<br><b>{fit_summary(an)}</b> (placed into these topics). Re-fit topics to fit them "
                          f"{again}.")
            elif an.sample_n:  # a large collection: fitted on a sample, the others placed into that fit
                placed = f"<br><b>{fit_summary(an)}</b>; the others are placed into these topics."
            self.k_note.setText(f"<b>{tm.k}</b> topics, {how}. Re-fitting does not extract features again."
                                + placed)
        else:
            self.k_note.setText("")
            self.plot.set_curve([], [], None)
        keep = self.topic
        self.list.blockSignals(True)
        self.list.clear()
        for s in self.summaries:
            it = QListWidgetItem(swatch(topic_color(s.topic)), self._item_text(s))
            it.setToolTip(f"{s.size} paintings belong mostly to this topic; on average it accounts for "
                          f"{s.mean_probability:.0%} of a painting's style")
            if self._is_suggested(s.topic):
                f = it.font()
                f.setItalic(True)
                it.setFont(f)
            self.list.addItem(it)
        self.list.blockSignals(False)
        if self.summaries:
            self.show_topic(keep if keep is not None and keep < len(self.summaries) else 0)
        else:
            self.topic = None
            self.name_edit.setText("")
            self.name_edit.setPlaceholderText("")
            self.name_edit.setEnabled(False)
            self.swatch.clear()
            self.artists.setText("")
            self.top.set_cards([])
            self._show_waiting()

    def _item_text(self, s) -> str:
        return f"{self._shown_name(s.topic)}  ·  {s.size} ({s.share:.0%})"

    def _user_name(self, t: int) -> str:
        return self.controller.topic_names.get(t, "")

    def _shown_name(self, t: int) -> str:
        """The user's name, else the suggested one, else "Topic t+1"."""
        return self._user_name(t) or self.auto_names.get(t) or f"Topic {t + 1}"

    def _is_suggested(self, t: int) -> bool:
        return not self._user_name(t) and bool(self.auto_names.get(t))

    def _show_waiting(self) -> None:
        """The placeholder while there are no topics: honest about what is happening."""
        if self.summaries:
            return
        c = self.controller
        p = self._progress if c.busy else None
        if c.collection is None:
            text = "Open a folder of paintings (File > Open Folder) to see its style topics."
        elif p is not None and p.stage == "extract" and p.total:
            text = f"Topics appear when features are extracted ({p.done:,} of {p.total:,})."
        elif p is not None and p.stage in ("scan", "load-model", "extract"):
            text = "Topics appear when features are extracted (looking at the paintings…)."
        elif p is not None and p.stage in ("topics", "k-select"):
            text = "Finding the topics… (features are extracted)."
        elif c.busy:
            text = "Topics appear when the indexing is done."
        else:
            text = "No topics: the collection has too few paintings to find them."
        self.stats.setText(text)
        self.plot.hide()
        self.plot_note.setText("How well each number of topics fits is shown here once the topics are found.")
        self.plot_note.show()

    def _on_controller_progress_changed(self, p, _rate=None, _eta=None) -> None:
        self._progress = p
        if not self.summaries:
            self._show_waiting()

    def show_topic(self, t: int) -> None:
        if not 0 <= t < len(self.summaries):
            return
        self.topic = t
        if self.list.currentRow() != t:
            self.list.blockSignals(True)
            self.list.setCurrentRow(t)
            self.list.blockSignals(False)
        s = self.summaries[t]
        c = self.controller
        an = c.analysis
        self.swatch.setPixmap(swatch(topic_color(t), 22).pixmap(22, 22))
        self.name_edit.setEnabled(True)
        self.name_edit.setText(self._user_name(t))  # a suggested name is the placeholder: renaming is explicit
        self.name_edit.setPlaceholderText(self.auto_names.get(t) or "Name this topic…")
        self.stats.setText(f"<b>{s.size}</b> paintings ({s.share:.0%} of the collection) belong mostly to this "
                           f"topic · on average it accounts for about <b>{s.mean_probability:.0%}</b> of a "
                           "painting's style")
        self.stats.setToolTip(f"Dominant topic of {s.size} paintings; mean p(topic | painting) over the "
                              f"collection = {s.mean_probability:.3f}")
        self.artists.setText(self._top_labels_html(t, s))
        dom = an.dominant_topics() if an is not None else None
        cards = []
        for rel, p in s.top_paintings:
            row = an.row_of(rel) if an is not None else None
            lab = an.labels[row] if row is not None else {}
            cards.append(Card(rel, c.path_of(rel), caption_of(rel, lab), p, f"{p:.0%} this topic",
                              None, int(dom[row]) if dom is not None and row is not None else -1,
                              score_tip=f"p(topic | painting) = {p:.2f}: this topic accounts for {p:.0%} of "
                                        "the painting's style"))
        self.top.set_cards(cards)
        self.top.scrollToTop()

    def _top_labels_html(self, t: int, s) -> str:
        an = self.controller.analysis
        parts = []
        if s.top_artists:
            arts = ", ".join(f"{html.escape(a)} ({n})" for a, n in s.top_artists)
            parts.append(f"<b>Top artists:</b> {arts} · {s.distinct_artists} distinct")
        if an is not None:
            members = np.flatnonzero(an.dominant_topics() == t)
            for col in ("style", "year") if s.top_artists else ("style", "year", "artist"):
                vals = Counter(v for v in (an.labels[i].get(col, "") for i in members) if v)
                if vals:
                    top = ", ".join(f"{html.escape(v)} ({n})" for v, n in vals.most_common(5))
                    parts.append(f"<b>Top {col}s:</b> {top}")
                    break
        if not s.top_artists:
            parts.append("<i>No artist labels: add a labels CSV (File > Use Labels CSV).</i>")
        return "<br>".join(parts)

    def top_relpaths(self) -> list[str]:
        return self.top.relpaths()

    # ---------------------------------------------------------------- slots
    def _on_list_current_row_changed(self, row: int) -> None:
        if row >= 0:
            self.show_topic(row)

    def _on_name_edit_finished(self) -> None:
        if self.topic is None:
            return
        t = self.topic
        text = self.name_edit.text().strip()
        if text == self._user_name(t) or (not text and not self._user_name(t)):
            return  # nothing changed (a suggested name stays a suggestion until the user types one)
        self.controller.rename_topic(t, text)
        it = self.list.item(t)
        if it is not None:
            it.setText(self._item_text(self.summaries[t]))
            f = it.font()
            f.setItalic(self._is_suggested(t))
            it.setFont(f)

    def _on_refit_clicked(self) -> None:
        k = None if self.auto_k.isChecked() else int(self.k_spin.value())
        self.controller.indexing.refit_topics(k, self.input_box.currentData())
