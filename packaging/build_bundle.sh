#!/usr/bin/env bash
# Build the one-folder desktop bundle dist/artstyle-gui/ with PyInstaller, then run the frozen
# app's smoke test (offscreen: open the sample collection, index, select a painting, check its
# neighbours, quit 0). See docs/packaging.md.
#
#   packaging/build_bundle.sh            # build + smoke test
#   packaging/build_bundle.sh --tar      # ... and pack dist/artstyle-gui-<version>-<os>-<arch>.tar.gz
#   PYTHON=.venv/bin/python packaging/build_bundle.sh   # build from another environment's Python
#   PYTHON=/tmp/cpuvenv/bin/python DISTPATH=dist/cpu WORKPATH=build/pyinstaller-cpu packaging/build_bundle.sh
#                                        # a CPU-torch environment, into dist/cpu/artstyle-gui/
#   ARTSTYLE_BUNDLE_CUDA=1 packaging/build_bundle.sh   # keep every CUDA library of a CUDA torch
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
DISTPATH="${DISTPATH:-dist}"
WORKPATH="${WORKPATH:-build/pyinstaller}"
TAR=0
for arg in "$@"; do
    case "$arg" in
        --tar) TAR=1 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "unknown option: $arg" >&2; exit 2 ;;
    esac
done

if ! "$PYTHON" -m PyInstaller --version >/dev/null 2>&1; then
    echo "== installing PyInstaller (the 'bundle' extra)"
    "$PYTHON" -m pip install "pyinstaller>=6.10"
fi
VERSION="$("$PYTHON" -c 'import re,sys; print(re.search(r"__version__\s*=\s*\"([^\"]+)\"", open("artstyle_gui/__init__.py").read()).group(1))')"
echo "== building artstyle-gui $VERSION with PyInstaller $("$PYTHON" -m PyInstaller --version)"

start=$(date +%s)
"$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$DISTPATH" --workpath "$WORKPATH" packaging/artstyle-gui.spec
built=$(date +%s)
echo "== built $DISTPATH/artstyle-gui in $((built - start)) s, size $(du -sh "$DISTPATH/artstyle-gui" | cut -f1)"

exe="$DISTPATH/artstyle-gui/artstyle-gui"
[ -x "$exe" ] || exe="$DISTPATH/artstyle-gui/artstyle-gui.exe"
echo "== smoke test: QT_QPA_PLATFORM=offscreen $exe --smoke-test"
t0=$(date +%s)
set +e
QT_QPA_PLATFORM=offscreen "$exe" --smoke-test
rc=$?
set -e
echo "== smoke test exit status $rc in $(( $(date +%s) - t0 )) s"
[ "$rc" -eq 0 ] || exit "$rc"

if [ "$TAR" -eq 1 ]; then
    os="$(uname -s | tr '[:upper:]' '[:lower:]')"; arch="$(uname -m)"
    out="$DISTPATH/artstyle-gui-$VERSION-$os-$arch.tar.gz"
    tar -C "$DISTPATH" -czf "$out" artstyle-gui
    echo "== wrote $out ($(du -sh "$out" | cut -f1))"
fi
