"""'More like this, but…': sliders over the selected painting's topic mixture.

One slider per topic (-100..+100 -> a delta of -1..+1 added to that topic's share, see
``core.topicsearch.steer``), a "topics <-> look" slider (alpha: how much the ranking follows the
steered topic mixture rather than the embedding) and the topic-space metric.  Changes are debounced
(150 ms) and announced with ``changed``; the detail panel then re-ranks with
``Controller.steered_similar`` (a few milliseconds even at 10,000 paintings: GUI thread).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QComboBox, QFrame, QGridLayout, QHBoxLayout, QLabel, QPushButton, QScrollArea,
                               QSizePolicy, QSlider, QToolButton, QVBoxLayout, QWidget)

from .colors import topic_color

METRICS = [("hellinger", "Compare topic mixes: standard"), ("js", "Compare topic mixes: alternative")]
#: the technical name of each comparison (a tooltip)
METRIC_TERMS = {"hellinger": "Hellinger distance between topic mixtures",
                "js": "Jensen–Shannon distance between topic mixtures"}
DEFAULT_ALPHA = 50
DEBOUNCE_MS = 150


class SteerPanel(QWidget):
    """Collapsible section under the topic chart.

    Signals:
        changed(): the steering (deltas, alpha or metric) changed, after the debounce.
    """

    changed = Signal()

    def __init__(self, controller, parent=None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.k = 0  # topics the sliders are for (kept while no painting is selected)
        self.available = False  # the shown painting has a topic mixture
        # the slider rows are built when first needed (the section opened, or read through
        # ``sliders``/``labels``): building 12 rows took ~20 ms of the first click on a painting
        self._built = 0
        self._sliders: list[QSlider] = []
        self._labels: list[QLabel] = []
        self._values: list[QLabel] = []
        self._swatches: list[QLabel] = []

        self.toggle = QToolButton()
        self.toggle.setText("More like this, but…")
        self.toggle.setCheckable(True)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.toggle.setAutoRaise(True)
        f = self.toggle.font()
        f.setBold(True)
        self.toggle.setFont(f)
        self.toggle.setToolTip("Raise or lower topics of the selected painting's mixture and re-rank the collection")
        self.state = QLabel()
        self.state.setTextFormat(Qt.TextFormat.RichText)
        self.state.setWordWrap(True)  # a long "active: …" wraps instead of widening the detail panel
        self.state.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.reset_btn = QPushButton("Reset")
        self.reset_btn.setToolTip("All topics back to the painting's own mixture: the plain neighbours")
        head = QHBoxLayout()
        head.setContentsMargins(0, 0, 0, 0)
        head.addWidget(self.toggle)
        head.addWidget(self.state, 1)
        head.addWidget(self.reset_btn)

        self.grid = QGridLayout()
        self.grid.setContentsMargins(2, 0, 6, 0)
        self.grid.setVerticalSpacing(2)
        gw = QWidget()
        gw.setLayout(self.grid)
        self.scroll = QScrollArea()
        self.scroll.setWidget(gw)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setMaximumHeight(190)
        self.scroll.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Maximum)

        self.alpha = QSlider(Qt.Orientation.Horizontal)
        self.alpha.setRange(0, 100)
        self.alpha.setValue(DEFAULT_ALPHA)
        self.alpha.setToolTip("How much the ranking follows the (steered) topic mixture rather than the look "
                              "(the search embedding)")
        self.metric = QComboBox()
        for key, text in METRICS:
            self.metric.addItem(text, key)
            self.metric.setItemData(self.metric.count() - 1, METRIC_TERMS[key], Qt.ItemDataRole.ToolTipRole)
        self.metric.setToolTip("Distance between topic mixtures")
        low = QHBoxLayout()
        low.setContentsMargins(2, 0, 6, 0)
        low.addWidget(QLabel("same topics"))
        low.addWidget(self.alpha, 1)
        low.addWidget(QLabel("same overall look"))
        # the comparison on a row of its own, shrinkable: the section never widens the detail panel
        self.metric.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.metric.setMinimumContentsLength(12)
        self.metric.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

        self.body = QWidget()
        bl = QVBoxLayout(self.body)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.setSpacing(4)
        bl.addWidget(self.scroll)
        bl.addLayout(low)
        mrow = QHBoxLayout()
        mrow.setContentsMargins(2, 0, 6, 0)
        mrow.addWidget(self.metric)
        bl.addLayout(mrow)
        self.body.hide()

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addLayout(head)
        lay.addWidget(self.body)

        self._timer = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self._timer.timeout.connect(self.changed)
        self.toggle.toggled.connect(self.set_expanded)
        self.reset_btn.clicked.connect(self.reset)
        self.alpha.valueChanged.connect(self._on_value_changed)
        self.metric.currentIndexChanged.connect(self._on_value_changed)
        controller.topic_names_changed.connect(self.relabel)
        self.set_topics(0)

    # ---------------------------------------------------------------- state
    @property
    def sliders(self) -> list[QSlider]:
        """One slider per topic (built on first use)."""
        self._build()
        return self._sliders

    @property
    def labels(self) -> list[QLabel]:
        """The topic name of each slider (built on first use)."""
        self._build()
        return self._labels

    def adjust(self) -> dict[int, float]:
        """{topic: delta} for the sliders not at zero (none while the sliders are not built)."""
        return {t: s.value() / 100.0 for t, s in enumerate(self._sliders) if s.value() != 0}

    def alpha_value(self) -> float:
        """alpha of Collection.steered_similar: 1 = topics only, 0 = look only."""
        return 1.0 - self.alpha.value() / 100.0

    def metric_value(self) -> str:
        return self.metric.currentData() or "hellinger"

    def active(self) -> bool:
        """Whether the ranking differs from the plain neighbours (anything moved from its default)."""
        return self.available and self.k > 0 and (bool(self.adjust()) or self.alpha.value() != DEFAULT_ALPHA
                               or self.metric.currentIndex() != 0)

    def describe(self) -> str:
        """"Topic 3 ↑, Topic 7 ↓" for the header of the results."""
        parts = [f"{self.controller.topic_name(t)} {'↑' if d > 0 else '↓'}" for t, d in self.adjust().items()]
        if self.alpha.value() != DEFAULT_ALPHA:
            parts.append(f"{100 - self.alpha.value()} % topics")
        return ", ".join(parts) or "re-ranked"

    # ---------------------------------------------------------------- content
    def set_topics(self, k: int, reason: str = "") -> None:
        """Sliders for ``k`` topics (rebuilt, at zero, when K changes); 0: disabled, with ``reason``."""
        if k and k != self.k:
            for w in self._sliders + self._labels + self._values + self._swatches:
                self.grid.removeWidget(w)
                w.deleteLater()
            self._sliders, self._labels, self._values, self._swatches = [], [], [], []
            self._built = 0
            self.k = k
        self.relabel()
        enabled = self.available = k > 0
        self.toggle.setEnabled(enabled)
        self.reset_btn.setVisible(enabled and self.toggle.isChecked())
        self.toggle.setToolTip(reason if not enabled else "Raise or lower topics of the selected painting's "
                               "mixture and re-rank the collection")
        if not enabled:
            self.state.setText(f"<span style='color:palette(placeholder-text)'>{reason}</span>" if reason else "")
            self.body.hide()
            self.toggle.setArrowType(Qt.ArrowType.RightArrow)
        else:
            self.set_expanded(self.toggle.isChecked())
            self._update_state()

    def _build(self) -> None:
        """Create the slider rows for ``k`` topics, if not done yet."""
        k = self.k
        if self._built == k:
            return
        for t in range(k):
            sw = QLabel("●")
            sw.setStyleSheet(f"color: {topic_color(t).name()}")
            lab = QLabel()
            lab.setMinimumWidth(60)
            lab.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            s = QSlider(Qt.Orientation.Horizontal)
            s.setRange(-100, 100)
            s.setSingleStep(5)
            s.setPageStep(20)
            s.setTickPosition(QSlider.TickPosition.NoTicks)
            val = QLabel("0")
            val.setMinimumWidth(38)
            val.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            s.valueChanged.connect(lambda v, t=t: self._on_slider_value_changed(t, v))
            self.grid.addWidget(sw, t, 0)
            self.grid.addWidget(lab, t, 1)
            self.grid.addWidget(s, t, 2)
            self.grid.addWidget(val, t, 3)
            self._sliders.append(s)
            self._labels.append(lab)
            self._values.append(val)
            self._swatches.append(sw)
        self.grid.setColumnStretch(1, 2)
        self.grid.setColumnStretch(2, 3)
        self._built = k
        self.relabel()

    def relabel(self) -> None:
        c = self.controller
        for t, lab in enumerate(self._labels):
            text = c.topic_label(t)
            lab.setText(text)
            lab.setToolTip(f"{text}: move right to raise it in the mixture, left to lower it")

    def set_expanded(self, on: bool) -> None:
        if self.toggle.isChecked() != on:
            self.toggle.setChecked(on)
            return
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
        if on and self.available:
            self._build()
        self.body.setVisible(on and self.available)
        self.reset_btn.setVisible(on and self.available)

    def set_slider(self, t: int, value: int) -> None:
        self.sliders[t].setValue(int(value))

    def reset(self) -> None:
        was = self.active()
        for s in self._sliders:
            s.blockSignals(True)
            s.setValue(0)
            s.blockSignals(False)
        for v in self._values:
            v.setText("0")
        self.alpha.blockSignals(True)
        self.alpha.setValue(DEFAULT_ALPHA)
        self.alpha.blockSignals(False)
        self.metric.blockSignals(True)
        self.metric.setCurrentIndex(0)
        self.metric.blockSignals(False)
        self._update_state()
        if was:
            self._timer.stop()
            self.changed.emit()

    def flush(self) -> None:
        """Announce a pending change now (tests, and before a selection change)."""
        if self._timer.isActive():
            self._timer.stop()
            self.changed.emit()

    # ---------------------------------------------------------------- slots
    def _on_slider_value_changed(self, t: int, v: int) -> None:
        self._values[t].setText(f"{v / 100:+.2f}" if v else "0")
        self._on_value_changed()

    def _on_value_changed(self, *_) -> None:
        self._update_state()
        self._timer.start()

    def _update_state(self) -> None:
        if not self.available:
            return
        self.state.setText(f"<span style='color:palette(highlight)'>active: {self.describe()}</span>"
                           if self.active() else "")
