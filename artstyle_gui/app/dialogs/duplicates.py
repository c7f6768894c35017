"""Near-duplicates: find groups of the same painting (re-encoded, resized, slightly cropped) and
show each group on one row, its members' thumbnails side by side.

The search is the core's ``Collection.find_duplicates``, run here as a job on the controller's runner (progress, ETA,
Cancel); it only reads the collection.  Nothing here deletes, moves or changes a file: the groups
can be looked at, clicked (the painting opens in the gallery and detail panel) and exported as CSV.
"""

from __future__ import annotations

import html
from pathlib import Path, PurePosixPath

from PySide6.QtCore import QAbstractListModel, QModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPalette, QPen
from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QFileDialog, QGridLayout, QHBoxLayout,
                               QLabel, QListView, QPushButton, QSlider, QSpinBox, QStyledItemDelegate,
                               QVBoxLayout)

from ..jobs import Job
from ..widgets.cards import draw_thumbnail
from ..widgets.thumbnails import ThumbnailLoader

GroupRole = Qt.ItemDataRole.UserRole + 20
THUMB = 112
PAD = 6


class GroupModel(QAbstractListModel):
    """One row per group of near-duplicates (a core DuplicateGroup)."""

    def __init__(self, loader: ThumbnailLoader, parent=None) -> None:
        super().__init__(parent)
        self.groups: list = []
        self.root = ""
        self._rows_of: dict[str, list[int]] = {}
        loader.thumbnail_ready.connect(self._on_loader_thumbnail_ready)
        loader.thumbnail_failed.connect(self._on_loader_thumbnail_ready)

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.groups)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self.groups):
            return None
        g = self.groups[index.row()]
        if role == GroupRole:
            return g
        if role == Qt.ItemDataRole.DisplayRole:
            return group_title(index.row(), g)
        if role == Qt.ItemDataRole.ToolTipRole:
            return "<br>".join(html.escape(p) for p in g.relpaths)
        return None

    def set_groups(self, root: str, groups: list) -> None:
        self.beginResetModel()
        self.root = str(root)
        self.groups = list(groups)
        self._rows_of = {}
        for i, g in enumerate(self.groups):
            for rel in g.relpaths:
                self._rows_of.setdefault(self.path_of(rel), []).append(i)
        self.endResetModel()

    def path_of(self, relpath: str) -> str:
        return f"{self.root}/{relpath}"

    def _on_loader_thumbnail_ready(self, path: str, *_) -> None:
        for i in self._rows_of.get(path, ()):
            ix = self.index(i)
            self.dataChanged.emit(ix, ix, [Qt.ItemDataRole.DecorationRole])


#: the defaults: strict, so that two different portraits (0.84 / 10 bits) are not called the same picture
DEFAULT_THRESHOLD = 90
DEFAULT_HAMMING = 6
#: a pair at least this similar and at most this many hash bits apart is "the same picture"; weaker
#: matches are a "possible duplicate"
SURE_SIMILARITY = 0.95
SURE_HAMMING = 4


def is_sure(sim: float | None, ham: int | None) -> bool:
    return sim is not None and sim == sim and sim >= SURE_SIMILARITY and ham is not None and ham <= SURE_HAMMING


def group_title(i: int, g) -> str:
    how = "crop" if any(g.crops) else "same picture" if is_sure(g.similarity, g.max_hamming) else "possible duplicate"
    return (f"Group {i + 1} · {g.size} paintings · similarity ≥ {g.similarity:.3f} · "
            f"hash distance ≤ {g.max_hamming} bits · {how}")


def member_caption(g, j: int) -> str:
    if j == 0:
        return "first of the group"
    sim = g.similarities[j] if j < len(g.similarities) else float("nan")
    ham = g.hammings[j] if j < len(g.hammings) else None
    crop = g.crops[j] if j < len(g.crops) else False
    bits = "crop" if crop else f"{ham} bits" if ham is not None else ""
    weak = "" if crop or is_sure(sim, ham) else " · possible duplicate"
    return f"sim {sim:.3f} · {bits}{weak}"


class GroupDelegate(QStyledItemDelegate):
    """A header line, then the members side by side: thumbnail, file name, similarity / hash distance."""

    def __init__(self, loader: ThumbnailLoader, parent=None) -> None:
        super().__init__(parent)
        self.loader = loader
        self.current: str | None = None  # relpath of the selected painting (outlined)

    def cell_width(self) -> int:
        return THUMB + 2 * PAD

    def sizeHint(self, option, index) -> QSize:  # noqa: N802
        fm = option.fontMetrics
        g = index.data(GroupRole)
        n = g.size if g is not None else 1
        return QSize(max(PAD * 2 + n * self.cell_width(), fm.horizontalAdvance(index.data() or "") + 2 * PAD),
                     fm.height() + THUMB + 2 * fm.height() + 4 * PAD)

    def member_rects(self, rect: QRect, n: int, fm) -> list[QRect]:
        y = rect.y() + fm.height() + 2 * PAD
        return [QRect(rect.x() + PAD + j * self.cell_width(), y, self.cell_width(), THUMB + 2 * fm.height() + PAD)
                for j in range(n)]

    def paint(self, painter: QPainter, option, index) -> None:
        g = index.data(GroupRole)
        if g is None:
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        pal = option.palette
        r = option.rect
        if index.row() % 2:
            bg = QColor(pal.color(QPalette.ColorRole.Text))
            bg.setAlpha(10)
            painter.fillRect(r, bg)
        fm = option.fontMetrics
        f = QFont(option.font)
        f.setBold(True)
        painter.setFont(f)
        painter.setPen(pal.color(QPalette.ColorRole.Text))
        painter.drawText(QRect(r.x() + PAD, r.y() + PAD, r.width() - 2 * PAD, fm.height()),
                         Qt.AlignmentFlag.AlignVCenter, index.data() or "")
        painter.setFont(option.font)
        model = index.model()
        dim = QColor(pal.color(QPalette.ColorRole.Text))
        dim.setAlpha(170)
        for j, (rel, cell) in enumerate(zip(g.relpaths, self.member_rects(r, g.size, fm))):
            img = QRect(cell.x() + PAD // 2, cell.y(), cell.width() - PAD, THUMB)
            path = model.path_of(rel)
            if not draw_thumbnail(painter, self.loader.pixmap(path), img, pal, inset=4) and self.loader.failure(path):
                painter.setPen(dim)
                painter.drawText(img, Qt.AlignmentFlag.AlignCenter, "unreadable")
            if rel == self.current:
                painter.setPen(QPen(pal.color(QPalette.ColorRole.Highlight), 3))
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawRoundedRect(img.adjusted(-2, -2, 2, 2), 4, 4)
            painter.setPen(pal.color(QPalette.ColorRole.Text))
            name = fm.elidedText(PurePosixPath(rel).name, Qt.TextElideMode.ElideMiddle, img.width())
            painter.drawText(QRect(img.x(), img.bottom() + 3, img.width(), fm.height()),
                             Qt.AlignmentFlag.AlignHCenter, name)
            painter.setPen(dim)
            cap = fm.elidedText(member_caption(g, j), Qt.TextElideMode.ElideRight, img.width())
            painter.drawText(QRect(img.x(), img.bottom() + 3 + fm.height(), img.width(), fm.height()),
                             Qt.AlignmentFlag.AlignHCenter, cap)
        painter.restore()


class GroupList(QListView):
    """The groups; clicking a member emits ``member_activated(relpath)``.

    Signals:
        member_activated(str): the relpath of the clicked painting.
    """

    member_activated = Signal(str)

    def __init__(self, loader: ThumbnailLoader, parent=None) -> None:
        super().__init__(parent)
        self.group_model = GroupModel(loader, self)
        self.group_delegate = GroupDelegate(loader, self)
        self.setModel(self.group_model)
        self.setItemDelegate(self.group_delegate)
        self.setSelectionMode(QListView.SelectionMode.NoSelection)
        self.setVerticalScrollMode(QListView.ScrollMode.ScrollPerPixel)
        self.setHorizontalScrollMode(QListView.ScrollMode.ScrollPerPixel)
        self.setMouseTracking(True)

    def member_at(self, pos) -> str | None:
        ix = self.indexAt(pos)
        g = ix.data(GroupRole) if ix.isValid() else None
        if g is None:
            return None
        for rel, cell in zip(g.relpaths, self.group_delegate.member_rects(self.visualRect(ix), g.size,
                                                                          self.fontMetrics())):
            if cell.contains(pos):
                return rel
        return None

    def member_pos(self, group: int, member: int):
        """The centre of a member's thumbnail in viewport coordinates (for tests)."""
        ix = self.group_model.index(group)
        rects = self.group_delegate.member_rects(self.visualRect(ix), self.group_model.groups[group].size,
                                                 self.fontMetrics())
        return rects[member].center()

    def mouseReleaseEvent(self, ev) -> None:  # noqa: N802
        super().mouseReleaseEvent(ev)
        if ev.button() == Qt.MouseButton.LeftButton:
            rel = self.member_at(ev.position().toPoint())
            if rel is not None:
                self.member_activated.emit(rel)

    def mouseMoveEvent(self, ev) -> None:  # noqa: N802
        super().mouseMoveEvent(ev)
        over = self.member_at(ev.position().toPoint()) is not None
        self.viewport().setCursor(Qt.CursorShape.PointingHandCursor if over else Qt.CursorShape.ArrowCursor)


class DuplicatesDialog(QDialog):
    """Tools > Find Near-Duplicates: threshold, hash distance, crops; Find; groups; Export CSV.

    Signal: duplicates_found(list, list) — [DuplicateGroup], skipped [(relpath, reason)]."""

    duplicates_found = Signal(list, list)

    def __init__(self, controller, loader: ThumbnailLoader, parent=None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setWindowTitle("Near-duplicates")
        self.groups: list = []
        self.skipped: list[tuple[str, str]] = []

        self.intro = intro = QLabel(
            "Finds the same painting photographed or scanned twice, resized, re-encoded or slightly cropped: "
            "candidates come from the search embedding and are confirmed by a perceptual hash. "
            "<b>Nothing is deleted, moved or changed</b> — the collection is only read.")
        intro.setWordWrap(True)
        intro.setTextFormat(Qt.TextFormat.RichText)
        self.threshold = QSlider(Qt.Orientation.Horizontal)
        self.threshold.setRange(70, 99)
        self.threshold.setValue(DEFAULT_THRESHOLD)
        self.threshold.setToolTip("Embedding (cosine) similarity a pair needs to be checked; lower finds more "
                                  "candidates (slower, and the hash still has to agree)")
        self.threshold_label = QLabel()
        self.threshold_label.setMinimumWidth(36)
        self.hamming = QSpinBox()
        self.hamming.setRange(0, 32)
        self.hamming.setValue(DEFAULT_HAMMING)
        self.hamming.setSuffix(" bits")
        self.hamming.setToolTip("Largest difference of the 64-bit perceptual hashes (re-encodes and resizes: "
                                "0-4 bits; unrelated paintings: 12 and more)")
        self.crops = QCheckBox("Also find crops")
        self.crops.setChecked(True)
        self.crops.setToolTip("Align crops of up to 12.5 % per side before comparing (slower)")
        self.find_btn = QPushButton("Find")
        self.find_btn.setDefault(True)
        self.export_btn = QPushButton("Export CSV…")
        self.export_btn.setEnabled(False)
        self.export_btn.setToolTip("One row per painting of every group: group, relpath, path, similarity, "
                                   "hash distance")
        grid = QGridLayout()
        grid.addWidget(QLabel("Similarity threshold:"), 0, 0)
        grid.addWidget(self.threshold, 0, 1)
        grid.addWidget(self.threshold_label, 0, 2)
        grid.addWidget(QLabel("Max hash distance:"), 0, 3)
        grid.addWidget(self.hamming, 0, 4)
        grid.addWidget(self.crops, 0, 5)
        grid.setColumnStretch(1, 1)
        buttons = QHBoxLayout()
        self.summary = QLabel("Press Find to look for near-duplicates.")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        buttons.addWidget(self.summary, 1)
        buttons.addWidget(self.find_btn)
        buttons.addWidget(self.export_btn)
        self.list = GroupList(loader)
        self.list.member_activated.connect(controller.select)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(intro)
        lay.addLayout(grid)
        lay.addLayout(buttons)
        lay.addWidget(self.list, 1)
        lay.addWidget(close)
        self.resize(900, 640)

        self.threshold.valueChanged.connect(self._update_threshold_label)
        self.find_btn.clicked.connect(self.find)
        self.export_btn.clicked.connect(self.choose_export)
        self.duplicates_found.connect(self._on_duplicates_found)
        controller.job_started.connect(self._on_controller_job_changed)
        controller.job_finished.connect(self._on_controller_job_finished)
        controller.progress_changed.connect(self._on_controller_progress_changed)
        controller.selection_changed.connect(self._on_controller_selection_changed)
        controller.collection_changed.connect(lambda _c: self.show_groups([], []))
        self._update_threshold_label()

    # ---------------------------------------------------------------- actions
    def find(self) -> None:
        busy = self.controller.job_name not in (None, "duplicates")
        self.summary.setText("Waiting for indexing to finish…" if busy else "Searching…")
        self.find_btn.setEnabled(False)
        self.find_duplicates(self.threshold.value() / 100.0, self.hamming.value(), self.crops.isChecked())

    def find_duplicates(self, threshold: float, max_hamming: int, crops: bool = True) -> None:
        """Near-duplicate groups in a worker (progress, cancel); ``duplicates_found`` follows.
        Reads the collection only: nothing is deleted, moved or written there."""
        c = self.controller
        col = c.need_analysis("looking for near-duplicates")
        if col is None:
            return
        threshold, max_hamming, crops = float(threshold), int(max_hamming), bool(crops)

        def search():
            groups = yield from col.find_duplicates(threshold, max_hamming, crops=crops)
            return groups, list(col.duplicate_skipped)

        def done(result) -> None:
            groups, skipped = result
            self.duplicates_found.emit(list(groups), list(skipped))
            extra = f" ({len(skipped)} files skipped)" if skipped else ""
            c.message_posted.emit(f"{len(groups)} groups of near-duplicates found{extra}; nothing was deleted")

        c.jobs.start(Job("duplicates", search, done))

    def show_groups(self, groups: list, skipped: list) -> None:
        c = self.controller
        self.groups, self.skipped = list(groups), list(skipped)
        root = str(c.collection.root) if c.collection is not None else ""
        self.list.group_model.set_groups(root, self.groups)
        self.list.group_delegate.current = c.current
        members = sum(g.size for g in self.groups)
        text = (f"<b>{len(self.groups):,}</b> groups ({members:,} paintings)" if self.groups
                else "No near-duplicates found with these settings.") if c.collection is not None else ""
        if self.skipped:
            shown = "; ".join(f"{html.escape(r)}: {html.escape(w)}" for r, w in self.skipped[:3])
            more = f" and {len(self.skipped) - 3} more" if len(self.skipped) > 3 else ""
            text += f" · <span style='color:#d9443a'>{len(self.skipped)} files skipped</span> ({shown}{more})"
            self.summary.setToolTip("\n".join(f"{r}: {w}" for r, w in self.skipped))
        else:
            self.summary.setToolTip("")
        if self.groups:
            text += " · click a painting to open it. Nothing was deleted."
        self.summary.setText(text)
        self.export_btn.setEnabled(bool(self.groups))

    def export_csv(self, path: str | Path) -> Path:
        from ...core.explore.duplicates import export_duplicates_csv

        c = self.controller
        return export_duplicates_csv(self.groups, path, c.collection.root)

    def choose_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export near-duplicate groups as CSV",
                                              str(Path.home() / "duplicates.csv"), "CSV files (*.csv)")
        if not path:
            return
        try:
            p = self.export_csv(path)
        except Exception as e:  # noqa: BLE001
            self.controller.report(e)
            return
        self.controller.message_posted.emit(f"Wrote {len(self.groups)} groups to {p}")

    # ---------------------------------------------------------------- slots
    def _update_threshold_label(self, *_) -> None:
        self.threshold_label.setText(f"{self.threshold.value() / 100:.2f}")

    def _on_duplicates_found(self, groups: list, skipped: list) -> None:
        self.show_groups(groups, skipped)

    def _on_controller_job_changed(self, name: str) -> None:
        if name == "duplicates":
            self.find_btn.setEnabled(False)
            self.summary.setText("Searching…")

    def _on_controller_progress_changed(self, prog, *_):
        """The dialog's own progress: "Searching… N/M" while its search runs (the status bar shows every job)."""
        if prog is None or self.controller.job_name != "duplicates":
            return
        done, total = getattr(prog, "done", 0), getattr(prog, "total", None)
        self.summary.setText(f"Searching… {done:,}/{total:,}" if total else "Searching…")

    def _on_controller_job_finished(self, name: str, outcome: str) -> None:
        if name != "duplicates":
            return
        self.find_btn.setEnabled(True)
        if outcome != "ok":
            self.summary.setText("The search was cancelled." if outcome == "cancelled" else
                                 "The search failed (see the message above the window).")

    def _on_controller_selection_changed(self, relpath) -> None:
        self.list.group_delegate.current = relpath
        self.list.viewport().update()
