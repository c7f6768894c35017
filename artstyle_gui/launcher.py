"""Start the desktop app so that a start-up failure is never silent.

``artstyle-gui`` (the installed command and the frozen bundle) enters here, not in
:mod:`artstyle_gui.app.main`: this module imports nothing but the standard library at import
time, so it still works when PySide6, torch or a system library is missing. When the app cannot
start -- an import fails, Qt aborts (e.g. no usable platform plugin), the main window cannot be
built -- it

* writes the details (traceback, Qt's last messages, versions, paths) to a log file in the
  per-user log directory (``platformdirs.user_log_dir``, or ``$ARTSTYLE_LOG_DIR``),
* prints a short message and the log path to stderr,
* shows a native error dialog: a ``QMessageBox`` when a QApplication is already running,
  otherwise the OS's own (``MessageBoxW`` on Windows, ``osascript`` on macOS, ``zenity`` /
  ``kdialog`` / ``xmessage`` on Linux and the BSDs), never in the offscreen modes,
* and exits with status 1.

Qt reports a missing or broken platform plugin with a *fatal* message and then aborts the
process, which Python cannot catch; :func:`install_qt_message_handler` hooks Qt's message
handler so that the fatal message is logged and shown before the process exits with 1.
"""

from __future__ import annotations

import os
import sys

from .startup import report_exception, set_headless


def _fix_std_streams() -> None:
    """A windowed (console=False) Windows build has no stdout/stderr: give them a sink."""
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))


def _wants_headless(argv: list[str]) -> bool:
    return any(a in ("--smoke-test", "--screenshot") or a.startswith("--screenshot=") for a in argv)


def load_app_main():
    from .app import main as app_main

    return app_main


def main(argv: list[str] | None = None) -> int:
    """``artstyle-gui``: the app's :func:`artstyle_gui.app.main.main`, guarded."""
    _fix_std_streams()
    args = list(sys.argv[1:] if argv is None else argv)
    set_headless(_wants_headless(args))
    try:
        app_main = load_app_main()
    except Exception as e:  # PySide6 / torch / a system library missing, a broken install
        return report_exception(e)
    try:
        return app_main.main(args)
    except (SystemExit, KeyboardInterrupt):
        raise
    except Exception as e:
        return report_exception(e)


if __name__ == "__main__":
    sys.exit(main())
