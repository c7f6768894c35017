"""Start-up failures are never silent: a log file, a dialog (mocked here), stderr, exit 1."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def launcher(tmp_path, monkeypatch):
    from artstyle_gui import launcher as mod
    from artstyle_gui import startup

    monkeypatch.setenv("ARTSTYLE_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setattr(startup, "_started", False)
    monkeypatch.setattr(startup, "_headless", False)
    calls: list[tuple[str, str]] = []

    def fake_dialog(title, text, *, use_qt=True):
        calls.append((title, text))
        return "mock"

    monkeypatch.setattr(startup, "show_error_dialog", fake_dialog)
    mod.dialog_calls = calls
    mod.startup = startup
    return mod


def read_log(tmp_path) -> str:
    return (tmp_path / "logs" / "artstyle-gui.log").read_text(encoding="utf-8")


def test_import_failure_is_logged_and_shown(launcher, tmp_path, monkeypatch, capsys):
    def broken():
        import artstyle_gui.no_such_module_for_the_test  # noqa: F401

    monkeypatch.setattr(launcher, "load_app_main", broken)
    assert launcher.main([]) == 1
    log = read_log(tmp_path)
    assert "artstyle could not start" in log and "ModuleNotFoundError" in log
    assert "Traceback" in log and "no_such_module_for_the_test" in log and "frozen=False" in log
    (title, text), = launcher.dialog_calls
    assert title == launcher.startup.TITLE_START and "no_such_module_for_the_test" in text
    assert str(tmp_path / "logs") in text and "reinstall" in text
    assert "could not start" in capsys.readouterr().err


def test_offscreen_modes_never_show_a_dialog(launcher, tmp_path, monkeypatch):
    monkeypatch.setattr(launcher, "load_app_main", lambda: (_ for _ in ()).throw(ImportError("libEGL.so.1")))
    assert launcher.main(["--smoke-test"]) == 1
    assert launcher.dialog_calls == [] and "libEGL.so.1" in read_log(tmp_path)


def test_qt_start_failure_in_app_main(launcher, tmp_path, monkeypatch):
    """QApplication / main window creation raising: logged, dialog, exit 1 (no traceback escapes)."""
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    from artstyle_gui.app import main as app_main

    installed = []
    monkeypatch.setattr(launcher.startup, "install_qt_message_handler", lambda headless=False: installed.append(headless))

    def boom(*a, **k):
        raise RuntimeError("could not create the QApplication (test)")

    monkeypatch.setattr(app_main, "make_app", boom)
    assert launcher.main([]) == 1
    assert installed == [False]
    assert "could not create the QApplication (test)" in read_log(tmp_path)
    (title, text), = launcher.dialog_calls
    assert "RuntimeError" in text


def test_log_rotates_and_falls_back(launcher, tmp_path, monkeypatch):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "artstyle-gui.log").write_text("x" * (launcher.startup.LOG_MAX_BYTES + 1))
    path = launcher.startup.write_log("t", "details")
    assert path == logs / "artstyle-gui.log" and (logs / "artstyle-gui.log.1").exists()
    assert path.stat().st_size < 10000


def test_no_dialog_tool_without_a_display(monkeypatch):
    from artstyle_gui import startup

    if not sys.platform.startswith("linux"):
        pytest.skip("Linux/BSD dialog fallback")
    for var in ("DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(var, raising=False)
    assert startup.native_dialog("t", "x") is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="zenity fallback is the Linux path")
def test_qt_fatal_error_gives_log_native_dialog_and_exit_1(tmp_path):
    """A missing Qt platform plugin makes Qt abort (SIGABRT); the launcher turns it into a log file,
    the OS's dialog (a stand-in zenity records its arguments) and exit status 1."""
    fake = tmp_path / "bin" / "zenity"
    fake.parent.mkdir()
    record = tmp_path / "zenity-args.txt"
    fake.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > '{record}'\nexit 0\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = dict(os.environ, QT_QPA_PLATFORM="no-such-platform-plugin", DISPLAY=":0",
               PATH=f"{fake.parent}{os.pathsep}{os.environ.get('PATH', '')}",
               ARTSTYLE_LOG_DIR=str(tmp_path / "logs"), ARTSTYLE_DATA_DIR=str(tmp_path / "data"),
               XDG_CONFIG_HOME=str(tmp_path / "cfg"), PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-m", "artstyle_gui.launcher"], env=env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, (r.returncode, r.stderr[-3000:])
    assert "could not start" in r.stderr and "platform plugin" in r.stderr
    args = record.read_text().splitlines()
    assert args[:4] == ["--error", "--no-markup", "--title", "artstyle could not start"]
    assert "platform plugin" in "\n".join(args)
    log = (tmp_path / "logs" / "artstyle-gui.log").read_text()
    assert "no-such-platform-plugin" in log and "last Qt messages" in log


def test_failed_smoke_test_leaves_no_temp_dir(launcher, tmp_path, monkeypatch):
    """--smoke-test keeps its index and settings in a temp dir, removed even when start-up fails."""
    import tempfile

    from PySide6.QtCore import QSettings

    from artstyle_gui.app import main as app_main

    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(launcher.startup, "install_qt_message_handler", lambda headless=False: None)
    monkeypatch.setattr(app_main, "make_app", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no Qt")))
    fmt = QSettings.defaultFormat()
    try:
        assert launcher.main(["--smoke-test"]) == 1
    finally:
        QSettings.setDefaultFormat(fmt)
    assert not list(tmp_path.glob("artstyle-smoke-*")) and launcher.dialog_calls == []
