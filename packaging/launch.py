"""Entry script of the frozen bundle (PyInstaller): ``artstyle-gui`` through its start-up guard."""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    try:
        from artstyle_gui.launcher import main
    except Exception:  # the bundle itself is broken: leave a trace somewhere findable
        import tempfile
        import traceback

        with open(f"{tempfile.gettempdir()}/artstyle-gui-bundle-error.log", "a", encoding="utf-8") as fh:
            traceback.print_exc(file=fh)
        raise
    sys.exit(main())
