"""How work and errors reach the user: the status-bar progress widget, the inline message bar,
and the one ``sys.excepthook`` / ``threading.excepthook`` of the app (napari-style)."""

from __future__ import annotations

import sys
import threading
import traceback

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QPlainTextEdit, QProgressBar, QPushButton,
                               QToolButton, QVBoxLayout, QWidget)

from ...core.errors import ArtStyleError
from ...core.progress import Progress, format_eta, stage_label

UNITS = {"extract": "img/s", "scan": "files/s", "adapt": "epochs/s"}
SHOW_MESSAGE = {"adapt"}  # stages whose message is worth the space next to the count (held-out P@10)


class ProgressWidget(QWidget):
    """Stage · bar · count, rate, ETA · Cancel.  Hidden while idle.

    Signals:
        cancel_requested()
    """

    cancel_requested = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.stage = QLabel()
        self.bar = QProgressBar()
        self.bar.setFixedWidth(180)
        self.bar.setTextVisible(False)
        self.bar.setMaximumHeight(14)
        self.detail = QLabel()
        self.detail.setMinimumWidth(220)
        self.cancel = QToolButton()
        self.cancel.setText("Cancel")
        self.cancel.setToolTip("Stop after the current batch; finished work is kept (Esc)")
        self.cancel.clicked.connect(self.cancel_requested)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 4, 0)
        lay.addWidget(self.stage)
        lay.addWidget(self.bar)
        lay.addWidget(self.detail)
        lay.addWidget(self.cancel)
        self.hide()

    def set_progress(self, p: Progress | None, rate: float | None, eta: float | None) -> None:
        if p is None:
            self.hide()
            return
        self.show()
        self.stage.setText(f"<b>{stage_label(p.stage)}</b>")
        if p.total:
            self.bar.setRange(0, int(p.total))
            self.bar.setValue(int(min(p.done, p.total)))
        else:
            self.bar.setRange(0, 0)  # busy indicator
        parts = []
        if p.total and p.total > 1:
            parts.append(f"{p.done:,} / {p.total:,}")
            if p.stage in SHOW_MESSAGE and p.message:
                parts.append(p.message.split(": ", 1)[-1].split(" (best", 1)[0].split(";", 1)[0])  # held-out P@10 0.81
        elif p.message:
            parts.append(p.message)
        if rate and p.stage in UNITS:  # a rate only where the step counts things (images, files, epochs)
            parts.append(f"{rate:,.1f} {UNITS[p.stage]}")
        if eta is not None and eta >= 1 and p.total and p.done < p.total:  # no "ETA 00:00" on a running step
            parts.append(f"about {format_eta(eta)} left")
        self.detail.setText("  ·  ".join(parts))
        self.setToolTip(p.message)


class MessageBar(QFrame):
    """An inline, dismissible error/warning strip above the panels (never a modal pop-up)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("MessageBar")
        self.setStyleSheet("#MessageBar { background: rgba(217, 68, 58, 40); border: 1px solid rgba(217,68,58,140);"
                           " border-radius: 4px; }")
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.more = QPushButton("Details")
        self.more.setCheckable(True)
        self.close_btn = QToolButton()
        self.close_btn.setText("✕")
        self.close_btn.setAutoRaise(True)
        self.close_btn.setToolTip("Dismiss")
        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setMaximumHeight(180)
        self.details.hide()
        row = QHBoxLayout()
        row.addWidget(QLabel("⚠"))
        row.addWidget(self.text, 1)
        row.addWidget(self.more)
        row.addWidget(self.close_btn)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 4, 4, 4)
        lay.addLayout(row)
        lay.addWidget(self.details)
        self.more.toggled.connect(self.details.setVisible)
        self.close_btn.clicked.connect(self.dismiss)
        self.messages: list[str] = []
        self.hide()

    def show_message(self, message: str, details: str = "") -> None:
        self.messages.append(message)
        extra = f"  <i>({len(self.messages) - 1} earlier)</i>" if len(self.messages) > 1 else ""
        self.text.setText(_escape(message) + extra)
        self.details.setPlainText(details)
        self.more.setVisible(bool(details))
        self.more.setChecked(False)
        self.show()

    def dismiss(self) -> None:
        self.messages.clear()
        self.hide()


class UpgradeBar(QFrame):
    """An inline offer above the panels: this collection uses the older ImageNet features; re-index it
    with the art style model? Never modal; "Not now" is remembered for that folder by the window."""

    reindex_requested = Signal()
    declined = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("UpgradeBar")
        self.setStyleSheet("#UpgradeBar { background: rgba(58, 130, 217, 36); border: 1px solid rgba(58,130,217,130);"
                           " border-radius: 4px; }")
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.reindex = QPushButton("Re-index with the art model")
        self.reindex.setToolTip("Extract the art style model's features for every painting (the ImageNet features "
                                "are kept: Settings > Backbone switches back without re-reading the images)")
        self.later = QPushButton("Not now")
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 4, 4, 4)
        row.addWidget(QLabel("ℹ"))
        row.addWidget(self.text, 1)
        row.addWidget(self.reindex)
        row.addWidget(self.later)
        self.reindex.clicked.connect(self._on_reindex_clicked)
        self.later.clicked.connect(self._on_later_clicked)
        self.hide()

    def offer(self, message: str) -> None:
        self.text.setText(message)
        self.show()

    def _on_reindex_clicked(self) -> None:
        self.hide()
        self.reindex_requested.emit()

    def _on_later_clicked(self) -> None:
        self.hide()
        self.declined.emit()


def _escape(s: str) -> str:
    import html

    return html.escape(s).replace("\n", "<br>")


class _ExceptionRelay(QObject):
    raised = Signal(str, str)


_relay: _ExceptionRelay | None = None


def install_excepthook(show) -> None:
    """Route uncaught exceptions (GUI thread and worker threads) to ``show(message, details)``
    in the GUI thread, once for the whole app."""
    global _relay
    if _relay is not None:
        return
    _relay = _ExceptionRelay()
    _relay.raised.connect(show)

    def hook(etype, value, tb) -> None:
        details = "".join(traceback.format_exception(etype, value, tb))
        sys.stderr.write(details)
        msg = str(value) if isinstance(value, ArtStyleError) else f"Unexpected error: {etype.__name__}: {value}"
        if _relay is not None:
            _relay.raised.emit(msg, "" if isinstance(value, ArtStyleError) else details)

    def thread_hook(args) -> None:
        if args.exc_type is SystemExit:
            return
        hook(args.exc_type, args.exc_value, args.exc_traceback)

    sys.excepthook = hook
    threading.excepthook = thread_hook
