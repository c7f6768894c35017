"""Files that could not be read, with the reason, and a Retry button."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QPushButton, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)


class ProblemsPanel(QWidget):
    """Signals:
        count_changed(int): number of unreadable files (the window shows it in the tab title).
    """

    count_changed = Signal(int)

    def __init__(self, controller, parent=None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.retry = QPushButton("Retry unreadable files")
        self.retry.setToolTip("Read these files again (e.g. after fixing or replacing them)")
        self.copy = QPushButton("Copy list")
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["File", "Reason"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setColumnWidth(0, 360)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.setSortingEnabled(True)
        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        top.addWidget(self.copy)
        top.addWidget(self.retry)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 8, 8, 8)
        lay.addLayout(top)
        lay.addWidget(self.table, 1)
        self.retry.clicked.connect(controller.indexing.retry_failed)
        self.copy.clicked.connect(self._on_copy_clicked)
        controller.problems_changed.connect(self.set_problems)
        controller.job_started.connect(lambda _n: self.retry.setEnabled(False))
        controller.job_finished.connect(lambda *_: self.retry.setEnabled(bool(self.problems)))
        self.problems: list[tuple[str, str]] = []
        self.set_problems(controller.problems)

    def set_problems(self, problems: list[tuple[str, str]]) -> None:
        self.problems = list(problems)
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(self.problems))
        for i, (path, reason) in enumerate(self.problems):
            a, b = QTableWidgetItem(path), QTableWidgetItem(reason)
            a.setToolTip(path)
            b.setToolTip(reason)
            self.table.setItem(i, 0, a)
            self.table.setItem(i, 1, b)
        self.table.setSortingEnabled(True)
        n = len(self.problems)
        self.summary.setText(f"{n} file{'s' if n != 1 else ''} could not be read. They are left out of the "
                             "analysis; fix or replace them and press Retry." if n else
                             "Every image in the collection could be read.")
        self.retry.setEnabled(bool(n) and not self.controller.busy)
        self.copy.setEnabled(bool(n))
        self.count_changed.emit(n)

    def _on_copy_clicked(self) -> None:
        QGuiApplication.clipboard().setText("\n".join(f"{p}\t{r}" for p, r in self.problems))

