""""Same hand?": the Compare window.

Painting A (pinned) against painting B (by default the current selection, so clicking through the
gallery, the map or the neighbours compares each with A).  It shows both thumbnails, the
probability that they share the label the verifier learned (artist, style, ...), the verifier's
threshold and verdict, and why: the log-odds contribution of each part (content, texture, colour)
as diverging bars, with the plain cosine similarity of each part for reference.  The numbers are
the core's ``Collection.compare`` (core/verify.py), run as a controller job.
"""

from __future__ import annotations

import html
from pathlib import PurePosixPath

from PySide6.QtCore import QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPalette, QPen
from PySide6.QtWidgets import (QCheckBox, QDialog, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout,
                               QWidget)

from ...core.analysis.parts import PART_NAMES, PARTS
from ..widgets.captions import caption_of
from ..widgets.cards import draw_thumbnail
from ..widgets.colors import PART_COLOURS

SAME = QColor("#2e9e5b")
DIFFERENT = QColor("#c0504d")


def percent_text(p: float) -> str:
    """"73%", and "<1%" / ">99%" at the ends (a rounded 0% or 100% would overstate it)."""
    if p < 0.005:
        return "<1%"
    if p > 0.995:
        return ">99%"
    return f"{p:.0%}"


def verdict_text(label: str, same: bool) -> str:
    return f"Same {label}" if same else f"Not the same {label}"


class PaintingCard(QWidget):
    """A thumbnail with a round letter badge (A or B) and a placeholder text when empty."""

    def __init__(self, letter: str, loader, parent=None) -> None:
        super().__init__(parent)
        self.letter, self.loader = letter, loader
        self.path: str | None = None
        self.placeholder = ""
        self.setMinimumSize(200, 200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        loader.thumbnail_ready.connect(self._on_loader_thumbnail_ready)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(240, 240)

    def set_path(self, path: str | None, placeholder: str = "") -> None:
        self.path, self.placeholder = path, placeholder
        if path is not None:
            self.loader.pixmap(path)  # queue it
        self.update()

    def _on_loader_thumbnail_ready(self, path: str) -> None:
        if path == self.path:
            self.update()

    def paintEvent(self, _ev) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        r = self.rect().adjusted(4, 4, -4, -4)
        pm = self.loader.cached(self.path) if self.path else None
        if pm is not None and not pm.isNull():  # fitted, bottom-aligned: the caption sits right under it
            s = pm.size().scaled(r.size(), Qt.AspectRatioMode.KeepAspectRatio)
            r = QRect(r.left() + (r.width() - s.width()) // 2, r.bottom() - s.height() + 1, s.width(), s.height())
        drawn = draw_thumbnail(p, pm, r, self.palette(), inset=0)
        if not drawn:
            c = QColor(self.palette().color(QPalette.ColorRole.Text))
            c.setAlpha(130)
            p.setPen(c)
            text = self.placeholder or ("Loading…" if self.path else "")
            p.drawText(r.adjusted(16, 16, -16, -16), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, text)
        badge = QRect(r.left() + 6, r.top() + 6, 28, 28)
        p.setPen(QPen(QColor(255, 255, 255, 220), 2))
        p.setBrush(self.palette().color(QPalette.ColorRole.Highlight))
        p.drawEllipse(badge)
        f = QFont(self.font())
        f.setBold(True)
        f.setPointSizeF(f.pointSizeF() * 1.15)
        p.setFont(f)
        p.setPen(self.palette().color(QPalette.ColorRole.HighlightedText))
        p.drawText(badge, Qt.AlignmentFlag.AlignCenter, self.letter)


class ContributionBars(QWidget):
    """Diverging horizontal bars: each part's log-odds contribution (left: against, right: for),
    and its cosine similarity in a column on the right."""

    ROW = 30
    NAME_W = 118
    COS_W = 86

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.contributions: dict[str, float] = {}
        self.cosine: dict[str, float] = {}
        self.label = "label"
        self.setMinimumHeight(self.ROW * len(PARTS) + 34)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(520, self.ROW * len(PARTS) + 34)

    def set_values(self, contributions: dict[str, float] | None, cosine: dict[str, float] | None,
                   label: str = "label") -> None:
        self.contributions = dict(contributions or {})
        self.cosine = dict(cosine or {})
        self.label = label
        self.setToolTip("" if not self.contributions else "<br>".join(
            f"{PART_NAMES[p]}: {self.contributions[p]:+.3f} log-odds, cosine {self.cosine.get(p, float('nan')):.3f}"
            for p in PARTS if p in self.contributions))
        self.update()

    def bar_area(self) -> QRect:
        return QRect(self.NAME_W, 0, max(40, self.width() - self.NAME_W - self.COS_W), self.ROW * len(PARTS))

    def scale(self) -> float:
        vals = [abs(v) for v in self.contributions.values()]
        return max(1.0, max(vals, default=0.0)) * 1.12

    def paintEvent(self, _ev) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        text = pal.color(QPalette.ColorRole.Text)
        faint = QColor(text)
        faint.setAlpha(120)
        area = self.bar_area()
        zero = area.left() + area.width() / 2
        half = area.width() / 2 - 4
        s = self.scale()
        fm = p.fontMetrics()
        p.setPen(faint)
        p.drawText(QRect(area.right() + 8, 0, self.COS_W - 8, 16), Qt.AlignmentFlag.AlignLeft, "cosine")
        for i, part in enumerate(PARTS):
            y = i * self.ROW + 16
            row = QRect(0, y, self.NAME_W - 8, self.ROW - 6)
            p.setPen(text)
            p.drawText(row, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, PART_NAMES[part])
            if part not in self.contributions:
                continue
            v = self.contributions[part]
            w = half * abs(v) / s
            bar = QRectF(zero if v >= 0 else zero - w, y + 3, w, self.ROW - 12)
            col = QColor(PART_COLOURS[part])
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(col)
            p.drawRoundedRect(bar, 3, 3)
            label = f"{v:+.2f}"
            tw = fm.horizontalAdvance(label)
            if v >= 0:
                tx = bar.right() + 5 if bar.right() + 5 + tw < area.right() + 4 else bar.right() - tw - 5
            else:
                tx = bar.left() - tw - 5 if bar.left() - tw - 5 > area.left() else bar.left() + 5
            p.setPen(text)
            p.drawText(QRectF(tx, y, tw + 2, self.ROW - 6), Qt.AlignmentFlag.AlignVCenter, label)
            if part in self.cosine:
                p.setPen(faint)
                p.drawText(QRect(area.right() + 8, y, self.COS_W - 8, self.ROW - 6),
                           Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, f"{self.cosine[part]:.2f}")
        p.setPen(QPen(faint, 1))
        p.drawLine(int(zero), 14, int(zero), 16 + len(PARTS) * self.ROW - 6)
        y = 16 + len(PARTS) * self.ROW
        p.setPen(faint)
        axis = QRect(area.left(), y - 2, area.width(), 18)
        p.drawText(axis, Qt.AlignmentFlag.AlignLeft, f"← against same {self.label}")
        p.drawText(axis, Qt.AlignmentFlag.AlignHCenter, "log-odds")
        p.drawText(axis, Qt.AlignmentFlag.AlignRight, f"for same {self.label} →")


class CompareDialog(QDialog):
    """Non-modal: A (pinned) vs B (follows the selection unless unticked)."""

    def __init__(self, controller, jobs, loader, tools=None, parent=None) -> None:
        super().__init__(parent)
        self.c, self.jobs, self.loader, self.tools = controller, jobs, loader, tools
        self.setWindowTitle("Compare — same hand?")
        self.a: str | None = None
        self.b: str | None = None
        self.comparison = None  # the verify.Comparison shown (for a, b)
        self._pending: tuple[str, str] | None = None

        self.card_a = PaintingCard("A", loader)
        self.card_b = PaintingCard("B", loader)
        self.cap_a, self.cap_b = QLabel(), QLabel()
        for cap in (self.cap_a, self.cap_b):
            cap.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
            cap.setWordWrap(True)
            cap.setTextFormat(Qt.TextFormat.RichText)
        cards = QHBoxLayout()
        for card, cap in ((self.card_a, self.cap_a), (self.card_b, self.cap_b)):
            col = QVBoxLayout()
            col.addWidget(card, 1)
            col.addWidget(cap)
            cards.addLayout(col, 1)

        self.headline = QLabel()
        f = self.headline.font()
        f.setPointSizeF(f.pointSizeF() * 1.6)
        f.setBold(True)
        self.headline.setFont(f)
        self.headline.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.headline.setWordWrap(True)
        self.verdict = QLabel()
        self.verdict.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.verdict.setTextFormat(Qt.TextFormat.RichText)
        self.verdict.setWordWrap(True)
        self.why = QLabel("Why — each part's contribution to the log-odds")
        fw = self.why.font()
        fw.setBold(True)
        self.why.setFont(fw)
        self.bars = ContributionBars()
        self.explain = QLabel()
        self.explain.setWordWrap(True)
        self.explain.setTextFormat(Qt.TextFormat.RichText)
        self.footer = QLabel()
        self.footer.setWordWrap(True)
        self.footer.setStyleSheet("color: palette(placeholder-text)")

        self.learn = QPushButton("Learn Style from Labels…")
        self.learn.clicked.connect(self._on_learn_clicked)
        self.swap = QPushButton("Swap A ⇄ B")
        self.swap.setToolTip("Exchange A and B (B then stays put: tick “B follows the selection” to follow it)")
        self.swap.clicked.connect(self._on_swap_clicked)
        self.use_sel = QPushButton("Selected as A")
        self.use_sel.setToolTip("Pin the painting selected in the main window as A")
        self.use_sel.clicked.connect(self._on_use_selected_clicked)
        self.follow = QCheckBox("B follows the selection")
        self.follow.setChecked(True)
        self.follow.setToolTip("Click paintings in the gallery, the map or the neighbours to compare each with A")
        self.follow.toggled.connect(self._on_follow_toggled)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.swap)
        buttons.addWidget(self.use_sel)
        buttons.addWidget(self.follow)
        buttons.addStretch(1)
        buttons.addWidget(self.learn)
        buttons.addWidget(close)

        lay = QVBoxLayout(self)
        lay.addLayout(cards, 1)
        lay.addWidget(self.headline)
        lay.addWidget(self.verdict)
        lay.addSpacing(6)
        lay.addWidget(self.why)
        lay.addWidget(self.bars)
        lay.addWidget(self.explain)
        lay.addWidget(self.footer)
        lay.addLayout(buttons)
        self.resize(640, 620)

        controller.selection_changed.connect(self._on_controller_selection_changed)
        jobs.compared.connect(self._on_jobs_compared)
        controller.job_finished.connect(self._on_controller_job_finished)
        jobs.style_learned.connect(lambda *_: self.refresh())

    # ---------------------------------------------------------------- public
    def reset(self) -> None:
        self.a = self.b = None
        self.comparison = None
        self._pending = None
        if self.isVisible():
            self.refresh()

    def set_a(self, relpath: str | None) -> None:
        self.a = relpath
        if self.tools is not None and relpath is not None:
            self.tools.compare_a = relpath
        if self.follow.isChecked():
            cur = self.c.current
            self.b = cur if cur != relpath else None
        elif self.b == relpath:
            self.b = None
        self.refresh()

    def set_b(self, relpath: str | None) -> None:
        self.b = relpath
        self.refresh()

    def label(self) -> str:
        info = self.jobs.verifier_info() or {}
        return str(info.get("label") or "label")

    def refresh(self) -> None:
        """Show A and B, and ask the controller for their comparison when both are there."""
        c = self.c
        self._show_card(self.card_a, self.cap_a, self.a, "Select a painting, then “Selected as A”")
        self._show_card(self.card_b, self.cap_b, self.b if self.b != self.a else None,
                        "Select another painting in the gallery, the map or the neighbours")
        ver = self.jobs.verifier_info() if c.collection is not None else None
        self.learn.setVisible(ver is None)
        self.swap.setEnabled(self.a is not None and self.b is not None and self.a != self.b)
        self.use_sel.setEnabled(c.current is not None and c.current != self.a)
        self.comparison = None
        if ver is None:
            self._show_message("No “same hand?” verifier yet",
                               "Learn Style from Labels first (Tools menu): it trains the verifier from the "
                               "artist, style or another label of the paintings.")
            return
        if self.a is None or self.b is None or self.a == self.b:
            self._show_message("Pick two paintings", "A is pinned; B is the painting selected in the main window.")
            return
        self._show_message("Comparing…", "")
        self._pending = (self.a, self.b)
        if not self.jobs.compare(self.a, self.b):
            self._pending = None

    # ---------------------------------------------------------------- helpers
    def _show_card(self, card: PaintingCard, cap: QLabel, rel: str | None, placeholder: str) -> None:
        c = self.c
        if rel is None or c.collection is None:
            card.set_path(None, placeholder)
            cap.setText("")
            return
        rec = c.record(rel)
        labels = rec.labels if rec else {}
        card.set_path(c.path_of(rel))
        key = self.label()
        extra = f"<br><span style='color:gray'>{html.escape(key)}: {html.escape(labels[key])}</span>" \
            if labels.get(key) else ""
        cap.setText(f"<b>{html.escape(caption_of(rel, labels))}</b><br>"
                    f"<span style='color:gray'>{html.escape(PurePosixPath(rel).as_posix())}</span>{extra}")

    def _show_message(self, head: str, text: str) -> None:
        self.headline.setText(head)
        self.headline.setStyleSheet("")
        self.verdict.setText(html.escape(text))
        self.bars.set_values(None, None, self.label())
        self.bars.setVisible(False)
        self.why.setVisible(False)
        self.explain.setText("")
        self.footer.setText(self._provenance())

    def _provenance(self) -> str:
        info = self.jobs.verifier_info() if self.c.collection is not None else None
        if not info:
            return ""
        fig = info.get("figures") or {}
        out = (f"Verifier learned from the '{html.escape(str(info.get('label', '?')))}' labels "
               f"({int(info.get('paintings', 0)):,} paintings)")
        if fig:
            out += (f"; on pairs of held-out paintings AUC {fig.get('heldout_pair_auc', 0):.3f}, "
                    f"F1 {fig.get('heldout_pair_f1', 0):.3f}")
        return out + f". Space: {html.escape(str(info.get('space', 'base')))}."

    def show_comparison(self, cmp) -> None:
        self.comparison = cmp
        label = self.label()
        colour = SAME if cmp.same else DIFFERENT
        self.headline.setText(f"{percent_text(cmp.probability)} likely the same {label}")
        self.headline.setStyleSheet(f"color: {colour.name()}")
        verdict = html.escape(verdict_text(label, cmp.same))
        chip = f"<span style='background:{colour.name()}; color:white'>&nbsp;{verdict}&nbsp;</span>"
        self.verdict.setText(f"{chip}&nbsp;&nbsp; probability {cmp.probability:.3f}, threshold {cmp.threshold:.3f}")
        self.bars.set_values(cmp.contributions, cmp.cosine, label)
        self.bars.setVisible(True)
        self.why.setVisible(True)
        logit = cmp.base_logit + sum(cmp.contributions.values())
        sq = {p: f"<span style='color:{PART_COLOURS[p].name()}'>■</span>" for p in PARTS}
        terms = " ".join(f"{'+' if v >= 0 else '−'} {abs(v):.2f} {sq[p]}" for p, v in cmp.contributions.items())
        self.explain.setText(f"An average pair starts at {cmp.base_logit:+.2f}; {terms} = {logit:+.2f} log-odds "
                             f"= probability {cmp.probability:.3f}.")
        self.footer.setText(self._provenance())

    # ---------------------------------------------------------------- slots
    def _on_controller_selection_changed(self, relpath) -> None:
        if not self.isVisible():
            return
        if self.a is None:
            self.set_a(relpath)
        elif self.follow.isChecked() and relpath is not None and relpath != self.b:
            self.set_b(relpath)
        else:
            self.use_sel.setEnabled(relpath is not None and relpath != self.a)

    def _on_jobs_compared(self, a: str, b: str, cmp) -> None:
        if (a, b) == (self.a, self.b):
            self._pending = None
            self.show_comparison(cmp)

    def _on_controller_job_finished(self, name: str, outcome: str) -> None:
        if name == "compare" and outcome != "ok" and self._pending == (self.a, self.b):
            self._pending = None
            self._show_message("Could not compare", "See the message above the gallery.")

    def _on_swap_clicked(self) -> None:
        if self.a is not None and self.b is not None:
            self.a, self.b = self.b, self.a
            if self.tools is not None:
                self.tools.compare_a = self.a
            self.follow.blockSignals(True)
            self.follow.setChecked(False)  # B is now a painting of its own, not the selection
            self.follow.blockSignals(False)
            self.refresh()

    def _on_use_selected_clicked(self) -> None:
        if self.c.current is not None:
            self.set_a(self.c.current)

    def _on_follow_toggled(self, on: bool) -> None:
        if on and self.c.current is not None and self.c.current != self.a:
            self.set_b(self.c.current)

    def _on_learn_clicked(self) -> None:
        if self.tools is not None:
            self.tools.learn_style()
