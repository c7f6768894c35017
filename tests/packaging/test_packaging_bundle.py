"""The frozen app (PyInstaller one-folder bundle) builds and starts.

Building takes minutes and gigabytes, so it runs only when asked:

    ARTSTYLE_BUILD_BUNDLE=1 python3 -m pytest tests/packaging/test_packaging_bundle.py

(``ARTSTYLE_BUNDLE_DIR=dist/artstyle-gui`` tests an already built bundle instead; ``PYTHON=/tmp/cpuvenv/bin/python
DISTPATH=dist/cpu WORKPATH=build/pyinstaller-cpu`` builds the CPU-torch one). See docs/packaging.md.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not (os.environ.get("ARTSTYLE_BUILD_BUNDLE") == "1" or os.environ.get("ARTSTYLE_BUNDLE_DIR")),
    reason="builds the frozen bundle (minutes, GBs): set ARTSTYLE_BUILD_BUNDLE=1 (or ARTSTYLE_BUNDLE_DIR)",
)


@pytest.fixture(scope="module")
def bundle() -> Path:
    given = os.environ.get("ARTSTYLE_BUNDLE_DIR")
    if given:
        return Path(given).resolve()
    r = subprocess.run(["bash", str(REPO / "packaging" / "build_bundle.sh")], cwd=REPO, capture_output=True,
                       text=True, timeout=3600)
    # the build script runs the frozen smoke test itself and fails when it does
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert "smoke test: ok" in r.stdout + r.stderr
    return REPO / os.environ.get("DISTPATH", "dist") / "artstyle-gui"  # build_bundle.sh's DISTPATH


def _exe(bundle: Path) -> Path:
    exe = bundle / ("artstyle-gui.exe" if os.name == "nt" else "artstyle-gui")
    assert exe.exists(), exe
    return exe


@pytest.mark.timeout(3600)
def test_frozen_smoke_test(bundle, tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", ARTSTYLE_DATA_DIR=str(tmp_path / "data"),
               XDG_CONFIG_HOME=str(tmp_path / "cfg"))
    r = subprocess.run([str(_exe(bundle)), "--smoke-test"], env=env, cwd=tmp_path, capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "smoke test: 48 paintings" in r.stdout and "smoke test: ok" in r.stdout
    # the sample collection ships inside the bundle and nothing was written into it
    samples = next(bundle.rglob("sample_paintings"))
    assert sorted(p.name for p in samples.iterdir()) == ["README.md", "baroque", "labels.csv", "romanticism"]


@pytest.mark.timeout(3600)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the zenity fallback is the Linux path")
def test_frozen_start_failure_is_logged_and_shown(bundle, tmp_path):
    fake = tmp_path / "bin" / "zenity"
    fake.parent.mkdir()
    record = tmp_path / "zenity-args.txt"
    fake.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > '{record}'\nexit 0\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = dict(os.environ, QT_QPA_PLATFORM="no-such-platform-plugin", DISPLAY=":0",
               PATH=f"{fake.parent}{os.pathsep}{os.environ.get('PATH', '')}",
               ARTSTYLE_LOG_DIR=str(tmp_path / "logs"))
    r = subprocess.run([str(_exe(bundle))], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, (r.returncode, r.stderr[-3000:])
    assert record.read_text().splitlines()[:4] == ["--error", "--no-markup", "--title", "artstyle could not start"]
    log = (tmp_path / "logs" / "artstyle-gui.log").read_text()
    assert "frozen=True" in log and "no-such-platform-plugin" in log
