"""Start-up failure reporting shared by :mod:`artstyle_gui.launcher` and :mod:`artstyle_gui.app.main`:
the log file, the native error dialog and Qt's fatal-message hook (see the launcher's docstring).
Standard library only at import time."""


from __future__ import annotations

import collections
import datetime as _dt
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

LOG_NAME = "artstyle-gui.log"
LOG_MAX_BYTES = 512 * 1024
TITLE_START = "artstyle could not start"
TITLE_CRASH = "artstyle stopped because of an error"

_qt_messages: collections.deque[str] = collections.deque(maxlen=40)
_started = False  # set once the main window is up: later failures are not "start-up" failures
_headless = False


def mark_started() -> None:
    global _started
    _started = True


def frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


# ---------------------------------------------------------------- log file
def log_dir() -> Path:
    env = os.environ.get("ARTSTYLE_LOG_DIR")
    if env:
        return Path(env)
    try:
        from platformdirs import user_log_dir

        return Path(user_log_dir("artstyle_gui", appauthor=False))
    except Exception:  # platformdirs missing in a broken install
        return Path(tempfile.gettempdir()) / "artstyle_gui"


def _environment() -> str:
    from . import __version__

    lines = [
        f"artstyle-gui {__version__}",
        f"python {sys.version.split()[0]} ({sys.executable}), frozen={frozen()}",
        f"platform {platform.platform()}",
        f"argv {sys.argv!r}",
    ]
    if frozen():
        lines.append(f"bundle {getattr(sys, '_MEIPASS', '?')}")
    for var in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY", "XDG_SESSION_TYPE", "QT_PLUGIN_PATH",
                "QT_DEBUG_PLUGINS"):
        if os.environ.get(var):
            lines.append(f"{var}={os.environ[var]}")
    return "\n".join(lines)


def write_log(title: str, details: str) -> Path | None:
    """Append one incident to the log file; returns its path (None if nothing could be written)."""
    stamp = _dt.datetime.now().isoformat(timespec="seconds")
    text = f"==== {stamp}  {title}\n{_environment()}\n"
    if _qt_messages:
        text += "-- last Qt messages:\n" + "\n".join(_qt_messages) + "\n"
    text += f"-- details:\n{details.rstrip()}\n\n"
    for d in (log_dir(), Path(tempfile.gettempdir()) / "artstyle_gui"):
        try:
            d.mkdir(parents=True, exist_ok=True)
            path = d / LOG_NAME
            if path.exists() and path.stat().st_size > LOG_MAX_BYTES:
                path.replace(path.with_suffix(".log.1"))
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(text)
            return path
        except OSError:
            continue
    return None


# ---------------------------------------------------------------- dialogs
def _child_env() -> dict[str, str]:
    """The environment for a system tool: without the bundle's library path (PyInstaller points
    LD_LIBRARY_PATH at its own libraries, which a system zenity must not load)."""
    env = dict(os.environ)
    if frozen() and sys.platform.startswith("linux"):
        orig = env.pop("LD_LIBRARY_PATH_ORIG", None)
        if orig is not None:
            env["LD_LIBRARY_PATH"] = orig
        else:
            env.pop("LD_LIBRARY_PATH", None)
    return env


def native_dialog(title: str, text: str) -> str | None:
    """Show an error dialog with the OS's own means (no Qt). Returns what was used, or None."""
    try:
        if sys.platform == "win32":
            import ctypes

            ctypes.windll.user32.MessageBoxW(None, text, title, 0x10 | 0x10000)  # MB_ICONERROR | MB_SETFOREGROUND
            return "MessageBoxW"
        if sys.platform == "darwin":
            script = ["-e", "on run argv", "-e",
                      "display alert (item 1 of argv) message (item 2 of argv) as critical", "-e", "end run"]
            subprocess.run(["osascript", *script, title, text], check=False, env=_child_env())
            return "osascript"
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            return None
        env = _child_env()
        candidates = [
            ("zenity", ["zenity", "--error", "--no-markup", "--title", title, "--text", text]),
            ("kdialog", ["kdialog", "--title", title, "--error", text]),
            ("xmessage", ["xmessage", "-center", "-title", title, "-file", "-"]),
        ]
        for tool, cmd in candidates:
            exe = shutil.which(tool, path=env.get("PATH"))
            if not exe:
                continue
            r = subprocess.run([exe, *cmd[1:]], input=text if tool == "xmessage" else None, text=True,
                               env=env, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if r.returncode in (0, 1, 101):  # closed by the user (xmessage's button is 101)
                return tool
    except Exception:  # the dialog is a courtesy; the log and stderr already have everything
        return None
    return None


def show_error_dialog(title: str, text: str, *, use_qt: bool = True) -> str | None:
    """A QMessageBox when a QApplication is running, the OS's dialog otherwise. Returns what was used."""
    widgets = sys.modules.get("PySide6.QtWidgets")
    if use_qt and widgets is not None:
        try:
            if widgets.QApplication.instance() is not None:
                widgets.QMessageBox.critical(None, title, text)
                return "QMessageBox"
        except Exception:
            pass
    return native_dialog(title, text)


# ---------------------------------------------------------------- reporting
_QT_LIBS_HINT = (
    "Qt could not open a window. On a minimal Linux install these system libraries are often missing "
    "(Debian/Ubuntu): libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-render-util0 "
    "libxcb-xkb1 libxkbcommon-x11-0 libegl1.")


def _hint(summary: str) -> str:
    s = summary.lower()
    linux = sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd"))
    if linux and any(w in s for w in ("platform plugin", "xcb", "libxkb", "libegl", "libgl", "libfontconfig")):
        return _QT_LIBS_HINT
    if "modulenotfound" in s or "importerror" in s or "no module named" in s or "cannot open shared" in s:
        return "The installation looks incomplete or broken: reinstall artstyle."
    return ""


def report_failure(summary: str, details: str, *, headless: bool | None = None, use_qt: bool = True) -> int:
    """Log, tell stderr, show a dialog (unless offscreen); returns the exit status (1)."""
    headless = _headless if headless is None else headless
    title = TITLE_CRASH if _started else TITLE_START
    path = write_log(title, f"{summary}\n{details}")
    hint = _hint(summary)
    msg = summary + (f"\n\n{hint}" if hint else "") + (f"\n\nDetails were written to {path}" if path else "")
    try:
        if sys.stderr is not None:
            sys.stderr.write(f"artstyle-gui: {title}: {msg}\n")
            sys.stderr.flush()
    except Exception:
        pass
    if not headless:
        show_error_dialog(title, msg, use_qt=use_qt)
    return 1


def report_exception(exc: BaseException, *, headless: bool | None = None) -> int:
    details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return report_failure(f"{type(exc).__name__}: {exc}", details, headless=headless)


def install_qt_message_handler(headless: bool = False) -> None:
    """Route Qt's messages through Python: print them like Qt does, keep the last ones for the
    log, and turn a fatal message (after which Qt aborts) into a log file, a dialog and exit 1."""
    global _headless
    _headless = headless
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler

    def handler(mode, context, message):
        cat = getattr(context, "category", None)
        line = f"{cat}: {message}" if cat and cat != "default" else str(message)
        _qt_messages.append(line)
        try:
            if sys.stderr is not None:
                sys.stderr.write(line + "\n")
        except Exception:
            pass
        if mode == QtMsgType.QtFatalMsg:
            # Qt is half-initialised here: no QMessageBox, the OS's dialog only
            report_failure(f"Qt: {message}", "Qt aborted with a fatal error (see the last Qt messages above).",
                           use_qt=False)
            try:
                sys.stderr.flush()
            finally:
                os._exit(1)

    qInstallMessageHandler(handler)


# ---------------------------------------------------------------- entry point


def set_headless(on: bool) -> None:
    """Whether a start-up failure is only logged and printed (the offscreen modes), never shown."""
    global _headless
    _headless = bool(on)

