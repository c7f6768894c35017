"""The main window: menus, tabs (gallery, map, heatmap, topics, problems), the detail panel, status bar.

It only wires views to the :class:`~.controller.Controller`; state lives there.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QEvent, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QFileDialog, QLabel, QMainWindow, QMessageBox, QSplitter, QStyle, QTabWidget,
                               QVBoxLayout, QWidget)

from .. import __version__
from ..core.model import is_old_default, upgraded_to_art_model
from ..core.ingest.imageio import IMAGE_EXTENSIONS
from . import prefs
from .dialogs.adapt import StyleTools
from .widgets.colors import style_plot
from .controller import Controller
from .jobs import Job, step
from .views.detail import DetailPanel
from .dialogs.duplicates import DuplicatesDialog
from .widgets.feedback import MessageBar, ProgressWidget, UpgradeBar
from .views.gallery import GalleryPanel
from .views.heatmap import HeatmapView
from .views.problems import ProblemsPanel
from .dialogs.settings import SettingsDialog
from .views.stylemap import StyleMapView
from .widgets.thumbnails import ThumbnailLoader
from .views.topic_browser import TopicBrowser

IMAGE_SUFFIXES = {e if e.startswith(".") else "." + e for e in (x.lower() for x in IMAGE_EXTENSIONS)}
IMAGE_FILTER = "Images (" + " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES)) + ");;All files (*)"


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


class MainWindow(QMainWindow):
    exported = Signal(list)  # the paths an export wrote

    def __init__(self, controller: Controller | None = None) -> None:
        super().__init__()
        self.controller = controller or Controller(prefs.load_engine_settings(), self)
        if self.controller.parent() is None:
            self.controller.setParent(self)
        self.loader = ThumbnailLoader(self)
        c = self.controller
        self.setWindowTitle("artstyle")
        self.setAcceptDrops(True)
        self.resize(1400, 880)

        self._make_actions()
        self.gallery = GalleryPanel(c, self.loader)
        self.map = StyleMapView(c, self.loader)
        self.heatmap = HeatmapView(c)
        self.topics = TopicBrowser(c, self.loader)
        self.problems = ProblemsPanel(c)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.gallery, "Gallery")
        self.tabs.addTab(self.map, "Map")
        self.tabs.addTab(self.heatmap, "Heatmap")
        self.tabs.addTab(self.topics, "Topics")
        self.tabs.addTab(self.problems, "Problems")
        self.detail = DetailPanel(c, self.loader, self.act_back, self.act_forward)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.tabs)
        self.splitter.addWidget(self.detail)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setSizes([880, 520])
        self.splitter.setChildrenCollapsible(False)
        self.message_bar = MessageBar()
        self.upgrade_bar = UpgradeBar()
        self.upgrade_bar.reindex_requested.connect(self._on_upgrade_reindex_requested)
        self.upgrade_bar.declined.connect(self._on_upgrade_declined)
        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(4, 4, 4, 0)
        lay.setSpacing(4)
        lay.addWidget(self.message_bar)
        lay.addWidget(self.upgrade_bar)
        lay.addWidget(self.splitter, 1)
        self.setCentralWidget(central)

        self.progress = ProgressWidget()
        self.statusBar().addPermanentWidget(self.progress)
        self.status_info = QLabel()
        self.statusBar().addPermanentWidget(self.status_info)
        self._make_menus()

        c.error_raised.connect(self.show_error)
        c.message_posted.connect(lambda m: self.statusBar().showMessage(m, 10000))
        c.progress_changed.connect(self.progress.set_progress)
        c.history_changed.connect(self._on_controller_history_changed)
        c.collection_changed.connect(self._on_controller_collection_changed)
        c.analysis_changed.connect(self._on_controller_analysis_changed)
        c.job_started.connect(self._update_actions)
        c.job_finished.connect(self._update_actions)
        c.topic_names_changed.connect(self._on_controller_topic_names_changed)
        self.progress.cancel_requested.connect(c.cancel)
        self.detail.topic_requested.connect(self.open_topic)
        self.heatmap.painting_clicked.connect(c.select)
        self.heatmap.group_clicked.connect(self._on_heatmap_group_clicked)
        self.topics.painting_clicked.connect(c.select)
        self.map.painting_clicked.connect(c.select)
        self.map.area_selected.connect(self._on_map_area_selected)
        self.gallery.subset_cleared.connect(lambda: self.map.clear_selection(notify=False))
        self.duplicates: DuplicatesDialog | None = None
        self.problems.count_changed.connect(self._on_problems_count_changed)
        self.gallery.thumb_size_changed.connect(prefs.set_thumb_size)
        self.gallery.set_thumb_size(prefs.thumb_size())
        self._restore_state()
        self._update_actions()
        # style adapter: Learn Style from Labels, Use Learned Style Space, Compare (same hand?) — adapt_view.py
        self.style_tools = StyleTools(self)

    # ---------------------------------------------------------------- actions and menus
    def make_action(self, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        a = QAction(text, self)
        if shortcut is not None:
            a.setShortcut(QKeySequence(shortcut))
        if tip:
            a.setStatusTip(tip)
            a.setToolTip(tip)
        a.triggered.connect(slot)
        self.addAction(a)  # shortcuts work in full screen without the menu bar
        return a

    def _make_actions(self) -> None:
        K, S = QKeySequence, QKeySequence.StandardKey
        self.act_open = self.make_action("&Open Folder…", self.choose_folder, K(S.Open), "Open a folder of paintings")
        self.act_labels = self.make_action("Use &Labels CSV…", self.choose_labels, None,
                                       "Read artist/title/year/style from a CSV file")
        self.act_query = self.make_action("&Find Similar to Image…", self.choose_query_image, "Ctrl+Shift+F",
                                      "Search the collection with an image from outside it")
        self.act_update = self.make_action("&Update Index", lambda: self.controller.indexing.reindex(), "F5",
                                       "Scan the folder again and process new or changed files")
        self.act_export = self.make_action("&Export Cluster Summaries…", self.choose_export, "Ctrl+E",
                                       "Write topics, paintings and artists as CSV with provenance JSON")
        self.act_quit = self.make_action("&Quit", self.close, K(S.Quit))
        self.act_settings = self.make_action("&Settings…", self.open_settings, K(S.Preferences) if not
                                         K(S.Preferences).isEmpty() else "Ctrl+,")
        self.act_find = self.make_action("Filter Gallery", self.focus_filter, K(S.Find))
        self.act_back = self.make_action("Back", lambda: self.controller.back(), "Alt+Left", "Previous painting")
        self.act_forward = self.make_action("Forward", lambda: self.controller.forward(), "Alt+Right", "Next painting")
        self.act_back.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_ArrowBack))
        self.act_forward.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_ArrowForward))
        self.act_fullscreen = self.make_action("&Full Screen", self.toggle_full_screen, "F11")
        self.act_fullscreen.setCheckable(True)
        self.act_zoom = self.make_action("&Zoom Preview", lambda: self.detail.open_zoom(), "Ctrl+Return")
        self.act_bigger = self.make_action("&Larger Thumbnails", lambda: self._step_thumbs(+prefs.THUMB_STEP),
                                           "Ctrl+=")
        self.act_smaller = self.make_action("&Smaller Thumbnails", lambda: self._step_thumbs(-prefs.THUMB_STEP),
                                            "Ctrl+-")
        self.act_cancel = self.make_action("&Cancel", lambda: self.controller.cancel(), "Esc")
        self.act_duplicates = self.make_action("Find &Near-Duplicates…", self.open_duplicates, "Ctrl+Shift+D",
                                           "Groups of the same painting photographed twice, resized or cropped "
                                           "(nothing is deleted)")
        self.act_map_export = self.make_action("Export &Map Selection…", lambda: self.map.choose_export(), None,
                                           "Write the paintings selected on the map (or all) as CSV")

    def _make_menus(self) -> None:
        mb = self.menuBar()
        f = mb.addMenu("&File")
        f.addAction(self.act_open)
        self.recent_menu = f.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        f.addAction(self.act_labels)
        f.addSeparator()
        f.addAction(self.act_query)
        f.addAction(self.act_update)
        f.addAction(self.act_export)
        f.addSeparator()
        f.addAction(self.act_quit)
        e = mb.addMenu("&Edit")
        e.addAction(self.act_find)
        e.addAction(self.act_settings)
        v = self.view_menu = mb.addMenu("&View")
        for i, name in enumerate(("Gallery", "Map", "Heatmap", "Topics", "Problems")):
            v.addAction(self.make_action(name, lambda _=False, i=i: self.tabs.setCurrentIndex(i), f"Ctrl+{i + 1}"))
        v.addSeparator()
        v.addAction(self.act_bigger)
        v.addAction(self.act_smaller)
        v.addAction(self.act_zoom)
        self.act_original = self.make_action("Show Pictures with Their &Bars", self._on_show_original_toggled,
                                             tip="Show the pictures as the files are, with letterbox bars and scan "
                                                 "margins (the engine always reads the trimmed picture)")
        self.act_original.setCheckable(True)
        self.act_original.setChecked(self.loader.show_original())
        v.addAction(self.act_original)
        v.addSeparator()
        v.addAction(self.act_fullscreen)
        g = mb.addMenu("&Go")
        g.addAction(self.act_back)
        g.addAction(self.act_forward)
        t = self.tools_menu = mb.addMenu("&Tools")
        t.addAction(self.act_duplicates)
        t.addAction(self.act_map_export)
        h = mb.addMenu("&Help")
        self.act_help = self.make_action("&How to Use", self.open_help,
                                         QKeySequence(QKeySequence.StandardKey.HelpContents),
                                         "What topics are, how similar paintings are found, what the scores mean")
        self.act_shortcuts = self.make_action("&Keyboard Shortcuts", self.open_shortcuts, None,
                                              "Every keyboard shortcut of this window")
        h.addAction(self.act_help)
        h.addAction(self.act_shortcuts)
        h.addSeparator()
        h.addAction(self.make_action("&About artstyle", self.about))

    def open_help(self) -> None:
        from .dialogs.help import HelpDialog

        HelpDialog(self).exec()

    def open_shortcuts(self) -> None:
        from .dialogs.help import ShortcutsDialog

        ShortcutsDialog(self).exec()

    def _fill_recent_menu(self) -> None:
        m = self.recent_menu
        m.clear()
        items = prefs.recent_folders()
        for p in items:
            a = m.addAction(p)
            a.triggered.connect(lambda _=False, p=p: self.open_folder(p))
        if not items:
            m.addAction("(none)").setEnabled(False)
        m.addSeparator()
        m.addAction("Clear Menu", prefs.clear_recent_folders)

    # ---------------------------------------------------------------- commands
    def open_folder(self, folder, labels_csv=None, index_dir=None, artist_from_folder: bool = False) -> bool:
        return self.controller.open_folder(folder, labels_csv=labels_csv, index_dir=index_dir,
                                           artist_from_folder=artist_from_folder)

    def choose_folder(self) -> None:
        start = str(self.controller.collection.root) if self.controller.collection else str(Path.home())
        d = QFileDialog.getExistingDirectory(self, "Open a folder of paintings", start)
        if d:
            self.open_folder(d)

    def choose_labels(self) -> None:
        c = self.controller
        if c.collection is None:
            self.show_error("Open a folder of paintings first.", "")
            return
        path, _ = QFileDialog.getOpenFileName(self, "Labels CSV (path,artist,title,year,style…)",
                                              str(c.collection.root), "CSV files (*.csv);;All files (*)")
        if path:
            self.open_folder(c.collection.root, labels_csv=path, index_dir=c.collection.index_dir)

    def choose_query_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Find paintings similar to an image", str(Path.home()),
                                              IMAGE_FILTER)
        if path:
            self.query_or_select(Path(path))

    def query_or_select(self, path: Path) -> None:
        """An image inside the collection is selected; one from outside is searched for."""
        c = self.controller
        if c.collection is not None:
            try:
                rel = path.resolve().relative_to(c.collection.root).as_posix()
            except ValueError:
                rel = None
            if rel is not None and c.record(rel) is not None:
                c.select(rel)
                return
        self.detail.query_image(path)

    def choose_export(self) -> None:
        start = str(Path.home() / "artstyle-export")
        d = QFileDialog.getExistingDirectory(self, "Export cluster summaries to folder", start)
        if d:
            self.export(d)

    def export(self, outdir: str | Path) -> None:
        """Write the topic/painting/artist CSVs and provenance JSON (in a worker); ``exported`` follows."""
        c = self.controller
        col = c.need_collection()
        if col is None:
            return
        names = {t: c.topic_name(t) for t in range(c.analysis.topics.k)} if c.analysis is not None and \
            c.analysis.topics is not None else dict(c.topic_names)  # the user's names, else suggested ones

        def done(paths) -> None:
            paths = [Path(p) for p in paths]
            self.exported.emit(paths)
            where = paths[0].parent if paths else ""
            c.message_posted.emit(f"Wrote {', '.join(p.name for p in paths)} to {where}")

        c.jobs.start(Job("export", lambda: step(col.export, Path(outdir), topic_names=names), done))

    def open_settings(self) -> None:
        c = self.controller
        dlg = SettingsDialog(c.settings, self.gallery.delegate.thumb, self)
        if dlg.exec() != SettingsDialog.DialogCode.Accepted:
            return
        s, thumb = dlg.values()
        self.gallery.set_thumb_size(thumb)
        prefs.set_thumb_size(thumb)
        what = c.indexing.apply_settings(s)
        prefs.save_engine_settings(c.settings)
        msg = {"index": "Settings saved: extracting features with the new backbone",
               "analyse": "Settings saved: fitting PCA and topics again (no re-extraction)",
               "blend": "Settings saved: re-ranking neighbours"}.get(what, "Settings saved")
        self.statusBar().showMessage(msg, 8000)

    def focus_filter(self) -> None:
        self.tabs.setCurrentWidget(self.gallery)
        self.gallery.filter.setFocus()
        self.gallery.filter.selectAll()

    def open_topic(self, t: int) -> None:
        self.tabs.setCurrentWidget(self.topics)
        self.topics.show_topic(t)

    def open_map(self) -> None:
        self.tabs.setCurrentWidget(self.map)

    def open_duplicates(self) -> DuplicatesDialog:
        """The (non-modal) near-duplicates window; created once."""
        if self.duplicates is None:
            self.duplicates = DuplicatesDialog(self.controller, self.loader, self)
        self.duplicates.show()
        self.duplicates.raise_()
        self.duplicates.activateWindow()
        return self.duplicates

    def _on_map_area_selected(self, relpaths) -> None:
        if relpaths is None:
            self.gallery.clear_subset()
        else:
            self.gallery.set_subset(relpaths, "Map selection")

    def toggle_full_screen(self) -> None:
        if self.isFullScreen():
            self.showNormal()
        else:
            self.showFullScreen()
        self.act_fullscreen.setChecked(self.isFullScreen())

    def about(self) -> None:
        QMessageBox.about(self, "About artstyle",
                          f"<h3>artstyle {__version__}</h3><p>Explore a collection of paintings by visual "
                          "style: CNN features, style topics and nearest neighbours.</p>")

    def show_error(self, message: str, details: str = "") -> None:
        self.message_bar.show_message(message, details)

    def _on_show_original_toggled(self, on: bool) -> None:
        self.loader.set_show_original(on)
        if self.controller.current is not None:  # the preview follows at once
            self.detail.show_painting(self.controller.current)

    def _step_thumbs(self, d: int) -> None:
        self.gallery.size_slider.setValue(self.gallery.delegate.thumb + d)

    # ---------------------------------------------------------------- drag and drop
    def dragEnterEvent(self, ev) -> None:  # noqa: N802
        if self._dropped_path(ev.mimeData()) is not None:
            ev.acceptProposedAction()

    def dragMoveEvent(self, ev) -> None:  # noqa: N802
        if self._dropped_path(ev.mimeData()) is not None:
            ev.acceptProposedAction()

    def dropEvent(self, ev) -> None:  # noqa: N802
        p = self._dropped_path(ev.mimeData())
        if p is None:
            return
        ev.acceptProposedAction()
        self.handle_drop(p)

    def handle_drop(self, p: Path) -> None:
        if p.is_dir():
            self.open_folder(p)
        elif _is_image(p):
            self.query_or_select(p)

    @staticmethod
    def _dropped_path(mime) -> Path | None:
        if not mime.hasUrls():
            return None
        for url in mime.urls():
            if url.isLocalFile():
                p = Path(url.toLocalFile())
                if p.is_dir() or (p.is_file() and _is_image(p)):
                    return p
        return None

    # ---------------------------------------------------------------- controller events
    def _on_controller_collection_changed(self, col) -> None:
        if col is None:
            self.setWindowTitle("artstyle")
            self.loader.set_cache_dir(None)
            self.upgrade_bar.hide()
            return
        self.loader.set_cache_dir(col.index_dir / "thumbnails")
        self.setWindowTitle(f"{col.root.name} — artstyle")
        prefs.add_recent_folder(col.root)
        self.status_info.setText("")
        self._offer_art_model(col)

    def _offer_art_model(self, col) -> None:
        """A collection indexed with the old default (ImageNet Lite0) is offered the art style model."""
        if col is None or not is_old_default(col.settings) or prefs.upgrade_declined(col.root):
            self.upgrade_bar.hide()
            return
        self.upgrade_bar.offer(
            "This collection was indexed with the older ImageNet features, which know objects better than styles. "
            "The art style model, trained on 20,000 paintings, finds paintings of the same style more often. "
            "Re-indexing keeps the current features, so you can switch back in Settings.")

    def _on_upgrade_reindex_requested(self) -> None:
        c = self.controller
        if c.collection is None:
            return
        c.indexing.apply_settings(upgraded_to_art_model(c.settings))
        prefs.save_engine_settings(c.settings)

    def _on_upgrade_declined(self) -> None:
        if self.controller.collection is not None:
            prefs.set_upgrade_declined(self.controller.collection.root)

    def _on_controller_analysis_changed(self, an) -> None:
        if self.upgrade_bar.isVisible():  # gone once the collection moved to another backbone (Settings)
            self._offer_art_model(self.controller.collection)
        if an is None:
            self.status_info.setText("")
            return
        k = an.topics.k if an.topics is not None else 0
        self.status_info.setText(f"{an.n:,} paintings · {k} topics · {an.settings.backbone}")

    def _on_controller_history_changed(self, back: bool, fwd: bool) -> None:
        self.act_back.setEnabled(back)
        self.act_forward.setEnabled(fwd)

    def _on_controller_topic_names_changed(self) -> None:
        if self.detail.external is None:
            self.detail.show_painting(self.controller.current)
        self.heatmap.rebuild()

    def _on_heatmap_group_clicked(self, column: str, value: str) -> None:
        self.gallery.filter.setText(value if value != "(none)" else "")
        self.gallery.model.set_filter(self.gallery.filter.text())
        self.tabs.setCurrentWidget(self.gallery)

    def _on_problems_count_changed(self, n: int) -> None:
        self.tabs.setTabText(self.tabs.indexOf(self.problems), f"Problems ({n})" if n else "Problems")

    def _update_actions(self, *_) -> None:
        c = self.controller
        has = c.collection is not None
        self.act_export.setEnabled(has)
        self.act_update.setEnabled(has and not c.busy)
        self.act_query.setEnabled(has)
        self.act_labels.setEnabled(has)
        self.act_duplicates.setEnabled(has)
        self.act_cancel.setEnabled(c.busy)
        self.act_back.setEnabled(c.can_go_back())
        self.act_forward.setEnabled(c.can_go_forward())

    def changeEvent(self, ev) -> None:  # noqa: N802
        super().changeEvent(ev)
        if ev.type() == QEvent.Type.PaletteChange:  # light/dark switch: plots follow the palette
            style_plot(self.detail.chart, [self.detail.chart.getPlotItem()])
            style_plot(self.heatmap.glw, [self.heatmap.plot, self.heatmap.cbar.getAxis("right")])
            style_plot(self.topics.plot, [self.topics.plot.getPlotItem()])
            style_plot(self.map.plot, [self.map.plot.getPlotItem()])

    # ---------------------------------------------------------------- state
    def _restore_state(self) -> None:
        s = prefs.qsettings()
        geo = s.value("window/geometry")
        if isinstance(geo, QByteArray) and not geo.isEmpty():
            self.restoreGeometry(geo)
        sp = s.value("window/splitter")
        if isinstance(sp, QByteArray) and not sp.isEmpty():
            self.splitter.restoreState(sp)
        tp = s.value("window/topics_splitter")
        if isinstance(tp, QByteArray) and not tp.isEmpty():
            self.topics.splitter.restoreState(tp)
        try:
            self.tabs.setCurrentIndex(int(s.value("window/tab", 0)))
            self.gallery.set_sort_key(str(s.value("gallery/sort", "name")))
        except (TypeError, ValueError):
            pass

    def save_state(self) -> None:
        s = prefs.qsettings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/splitter", self.splitter.saveState())
        s.setValue("window/topics_splitter", self.topics.splitter.saveState())
        s.setValue("window/tab", self.tabs.currentIndex())
        sort = self.gallery.sort.currentData()
        s.setValue("gallery/sort", sort if sort != "similarity" else "name")
        prefs.set_thumb_size(self.gallery.delegate.thumb)
        prefs.save_engine_settings(self.controller.settings)
        s.sync()

    def closeEvent(self, ev) -> None:  # noqa: N802
        self.save_state()
        self.shutdown()
        super().closeEvent(ev)

    def shutdown(self) -> None:
        """Stop workers and close the index (idempotent)."""
        self.controller.shutdown()
        self.loader.shutdown()


__all__ = ["MainWindow"]
