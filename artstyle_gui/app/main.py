"""``artstyle-gui [FOLDER] [--labels CSV] [--index-dir DIR] [--screenshot OUT.png] [--smoke-test]``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .. import __version__


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="artstyle-gui", description="Explore a collection of paintings by style.")
    ap.add_argument("folder", nargs="?", help="folder of paintings (default: the last one, or the sample)")
    ap.add_argument("--labels", metavar="CSV", help="labels CSV (path, artist, title, year, style, ...)")
    ap.add_argument("--index-dir", metavar="DIR", help="where the index lives (default: user data dir)")
    ap.add_argument("--artist-from-folder", action="store_true",
                    help="take a painting's artist from its parent folder when the labels have none")
    ap.add_argument("--screenshot", metavar="OUT.png",
                    help="offscreen: index, select a painting, save the window to OUT.png (and OUT-topics.png, "
                         "OUT-browser.png, OUT-map.png, OUT-duplicates.png) and exit")
    ap.add_argument("--smoke-test", action="store_true", help="offscreen: open, index, select, quit")
    ap.add_argument("--select", metavar="RELPATH", help="with --screenshot: the painting to select")
    ap.add_argument("--theme", choices=("system", "light", "dark"), default="system")
    ap.add_argument("--size", default="1440x900", help="with --screenshot: window size WxH")
    ap.add_argument("--quantize", action="store_true",
                    help="with --screenshot: 256-colour PNGs (about 3x smaller, for the README)")
    ap.add_argument("--version", action="version", version=f"artstyle-gui {__version__}")
    return ap.parse_args(argv)


def dark_palette():
    from PySide6.QtGui import QColor, QPalette

    p = QPalette()
    R, C = QPalette.ColorRole, QColor
    for role, col in ((R.Window, "#2b2b2e"), (R.WindowText, "#e6e6e6"), (R.Base, "#1f1f22"),
                      (R.AlternateBase, "#2a2a2e"), (R.ToolTipBase, "#3a3a3e"), (R.ToolTipText, "#f0f0f0"),
                      (R.Text, "#e6e6e6"), (R.Button, "#353539"), (R.ButtonText, "#e6e6e6"),
                      (R.BrightText, "#ff6b6b"), (R.Highlight, "#3d7dd8"), (R.HighlightedText, "#ffffff"),
                      (R.Link, "#6aa8ff"), (R.PlaceholderText, "#8a8a90"), (R.Mid, "#444448"),
                      (R.Midlight, "#3c3c40"), (R.Dark, "#19191b"), (R.Shadow, "#000000")):
        p.setColor(role, C(col))
    for role in (R.Text, R.ButtonText, R.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, C("#7a7a80"))
    return p


def apply_theme(app, theme: str = "system") -> None:
    """Fusion everywhere; dark palette when asked or when the system scheme is dark."""
    from PySide6.QtCore import Qt

    app.setStyle("Fusion")
    dark = theme == "dark"
    if theme == "system":
        try:
            dark = app.styleHints().colorScheme() == Qt.ColorScheme.Dark
        except AttributeError:  # Qt < 6.5
            dark = False
    if dark:
        app.setPalette(dark_palette())
    else:
        app.setPalette(app.style().standardPalette())


APP_ID = "io.github.artstyle_gui"  # the .desktop file / AppStream id (packaging/)


def app_icon():
    """The window icon from the packaged icon set (empty if the files are missing)."""
    from PySide6.QtGui import QIcon

    from ..core.resources import app_icon_files

    icon = QIcon()
    for path in app_icon_files():
        if path.suffix == ".png":  # PNGs need no SVG plugin; QIcon picks the nearest size
            icon.addFile(str(path))
    return icon


def make_app(argv0: str = "artstyle-gui", theme: str = "system"):
    from PySide6.QtWidgets import QApplication

    from .prefs import APP, ORG

    app = QApplication.instance() or QApplication([argv0])
    app.setOrganizationName(ORG)
    app.setApplicationName(APP)
    app.setApplicationDisplayName("artstyle")
    app.setApplicationVersion(__version__)
    app.setDesktopFileName(APP_ID)  # Wayland/X11 match the window to the installed .desktop file and icon
    icon = app_icon()
    if not icon.isNull():
        app.setWindowIcon(icon)
    apply_theme(app, theme)
    if theme == "system":
        try:
            app.styleHints().colorSchemeChanged.connect(lambda *_: apply_theme(app, "system"))
        except AttributeError:
            pass
    return app


def wait_until(cond, timeout: float, step_ms: int = 20) -> bool:
    from PySide6.QtCore import QCoreApplication, QEventLoop, QThread

    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            return False
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, step_ms)
        QThread.msleep(step_ms)
    return True


def settle(win, timeout: float = 30.0) -> None:
    """Paint, let the visible thumbnails/preview decode, paint again (for screenshots)."""
    from PySide6.QtCore import QCoreApplication

    for _ in range(3):
        win.grab()
        QCoreApplication.processEvents()
        wait_until(lambda: win.loader.pending() == 0, timeout)
    QCoreApplication.processEvents()


def pick_painting(win, requested: str | None) -> str | None:
    c = win.controller
    if requested:
        return requested
    m = win.gallery.model
    if m.rowCount() == 0:
        return None
    # a painting from the middle of the collection, with a clear dominant topic if possible
    an = c.analysis
    if an is not None and an.topics is not None and an.n > 4:
        mix = an.topics.mixtures
        row = int(mix.max(1).argsort()[len(mix) // 2])
        return an.relpaths[row]
    return m.relpath_at(min(3, m.rowCount() - 1))


def save_grab(widget, path: Path, quantize: bool = False) -> None:
    img = widget.grab().toImage()
    if not quantize:
        img.save(str(path))
        return
    import io

    from PIL import Image
    from PySide6.QtCore import QBuffer, QIODevice

    buf = QBuffer()
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    img.save(buf, "PNG")
    im = Image.open(io.BytesIO(bytes(buf.data()))).convert("RGB")
    im.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.FLOYDSTEINBERG).save(
        path, optimize=True)


def run_headless(win, args, errors: list) -> int:
    from PySide6.QtCore import QSize

    c = win.controller
    if c.collection is None:
        return 1
    ok = wait_until(lambda: not c.busy, 1800)
    if not ok or errors:
        sys.stderr.write("indexing failed or timed out\n")
        return 1
    rel = pick_painting(win, args.select)
    if rel is None:
        sys.stderr.write("no painting could be indexed\n")
        return 1
    c.select(rel)
    if args.smoke_test and not args.screenshot:
        ok = bool(win.detail.neighbour_relpaths()) and c.analysis is not None
        print(f"smoke test: {c.analysis.n if c.analysis else 0} paintings, "
              f"{len(win.detail.neighbour_relpaths())} neighbours of {rel}")
        return 0 if ok and not errors else 1
    out = Path(args.screenshot)
    out.parent.mkdir(parents=True, exist_ok=True)
    w, h = (int(v) for v in args.size.lower().split("x"))
    win.resize(QSize(w, h))
    win.tabs.setCurrentWidget(win.gallery)
    settle(win)
    save_grab(win, out, args.quantize)
    win.tabs.setCurrentWidget(win.heatmap)
    settle(win)
    save_grab(win, out.with_name(out.stem + "-topics" + out.suffix), args.quantize)
    an = c.analysis
    if an is not None and an.topics is not None:
        win.open_topic(int(an.topics.mixtures[an.row_of(rel)].argmax()))
    settle(win)
    save_grab(win, out.with_name(out.stem + "-browser" + out.suffix), args.quantize)
    win.tabs.setCurrentWidget(win.map)  # the style map: saved layout, or computed now (t-SNE, seconds)
    wait_until(lambda: not c.busy, 600)
    settle(win)
    win.map.hover(c.current)  # the hover card, as if the mouse were over the selected painting
    save_grab(win, out.with_name(out.stem + "-map" + out.suffix), args.quantize)
    win.map.hover(None)
    dlg = win.open_duplicates()  # Tools > Find Near-Duplicates, searched with its defaults
    dlg.find()
    wait_until(lambda: not c.busy, 600)
    settle(win)
    save_grab(dlg, out.with_name(out.stem + "-duplicates" + out.suffix), args.quantize)
    dlg.close()
    win.tabs.setCurrentWidget(win.gallery)
    print(f"wrote {out}, {out.stem}-topics{out.suffix}, {out.stem}-browser{out.suffix}, {out.stem}-map{out.suffix}, {out.stem}-duplicates{out.suffix}")
    return 0 if not errors else 1


def no_display() -> bool:
    """True on Linux/BSD when no X11/Wayland display is reachable and Qt was not told otherwise
    (Qt would abort with a plugin error instead of a readable message)."""
    if not sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return False
    if os.environ.get("QT_QPA_PLATFORM"):
        return False
    return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def isolate_smoke_test(args) -> str:
    """``--smoke-test`` touches nothing of the user's: the index and the settings go to a temp dir
    (never into the collection), removed afterwards."""
    import tempfile

    from PySide6.QtCore import QSettings

    tmp = tempfile.mkdtemp(prefix="artstyle-smoke-")
    if not args.index_dir:
        args.index_dir = os.path.join(tmp, "index")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, os.path.join(tmp, "settings"))
    return tmp


def main(argv: list[str] | None = None) -> int:
    t_start = time.monotonic()
    args = parse_args(argv)
    headless = bool(args.screenshot or args.smoke_test)
    if headless:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    elif no_display():
        sys.stderr.write(
            "artstyle-gui: no display found (DISPLAY and WAYLAND_DISPLAY are not set), so no window can open.\n"
            "Run it on a desktop, or render offscreen: artstyle-gui --screenshot out.png [FOLDER]\n"
            "(the same engine runs without a display as `artstyle`, see artstyle --help).\n")
        return 2
    os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
    from .. import startup

    smoke_tmp = None
    try:  # start-up: any failure is logged and shown in a dialog (see artstyle_gui/launcher.py)
        import PySide6.QtWidgets  # noqa: F401 - before pyqtgraph

        startup.install_qt_message_handler(headless)  # Qt's fatal errors (no platform plugin) too
        if args.smoke_test and not args.screenshot:
            smoke_tmp = isolate_smoke_test(args)
        app = make_app(sys.argv[0] if sys.argv else "artstyle-gui", args.theme)
        from ..core.resources import sample_collection
        from . import prefs
        from .widgets.feedback import install_excepthook
        from .main_window import MainWindow

        win = MainWindow()
    except Exception as e:  # a log file, a native dialog, exit 1
        if smoke_tmp:
            import shutil

            shutil.rmtree(smoke_tmp, ignore_errors=True)
        return startup.report_exception(e, headless=headless)
    errors: list[str] = []
    install_excepthook(win.show_error)
    win.controller.error_raised.connect(lambda m, d: (errors.append(m), sys.stderr.write(f"error: {m}\n{d}")
                                                      if headless else None))
    folder = args.folder
    if folder is None and not headless:
        last = prefs.last_folder()
        folder = last if last and Path(last).is_dir() else None
    if folder is None:
        folder = str(sample_collection())
    win.show()
    startup.mark_started()
    win.open_folder(folder, labels_csv=args.labels, index_dir=args.index_dir,
                    artist_from_folder=args.artist_from_folder)
    if headless:
        code = run_headless(win, args, errors)
        win.shutdown()
        win.close()
        if smoke_tmp:
            import shutil

            shutil.rmtree(smoke_tmp, ignore_errors=True)
            print(f"smoke test: {'ok' if code == 0 else 'FAILED'} in {time.monotonic() - t_start:.1f} s")
        return code
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
