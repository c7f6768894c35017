"""Peak memory of decoding decompression bombs, one fresh process per file (docs/robustness.md).

    python3 benchmarks/decode_memory.py                       # every bomb kind at 100 MP, this checkout
    python3 benchmarks/decode_memory.py --mp 400 --kinds png-grey16
    python3 benchmarks/decode_memory.py --package-root /tmp/old-checkout   # the same files, other code

Each bomb (tests/core/bombs.py: small on disk, claims ``--mp`` megapixels) is decoded by
``imageio.decode_image`` (the indexing path: shortest side 256, border trim) in a child process. The
child reports its peak RSS (``VmHWM``) above what it had after importing the package and decoding a
tiny image: the memory that decoding this one file cost.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "core"))

from bombs import BOMBS, write_bomb

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from artstyle_gui.core.ingest import imageio
from artstyle_gui.core.errors import DecodeError
from PIL import Image

def hwm_kb():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])

import io
buf = io.BytesIO(); Image.new("RGB", (300, 200), (10, 20, 30)).save(buf, "PNG")
imageio.decode_image(buf.getvalue())
base = hwm_kb()
kw = json.loads(sys.argv[3])
t = time.perf_counter()
try:
    r = imageio.decode_image(sys.argv[2], **kw)
    outcome = "decoded %dx%d" % r.image.size
except DecodeError as e:
    outcome = "refused: " + e.reason
print(json.dumps({"base_kb": base, "peak_kb": hwm_kb(), "seconds": time.perf_counter() - t, "outcome": outcome}))
"""


def measure(package_root: Path, path: Path, **kw) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(package_root), str(path), json.dumps(kw)],
                         capture_output=True, text=True, timeout=600, check=False)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mp", type=float, default=100.0, help="claimed megapixels of each bomb (square)")
    ap.add_argument("--kinds", nargs="*", default=list(BOMBS), choices=list(BOMBS))
    ap.add_argument("--package-root", type=Path, default=HERE.parent,
                    help="folder holding the artstyle_gui package to measure (default: this checkout)")
    ap.add_argument("--max-megapixels", type=float, default=None, help="decode_image's max_megapixels")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    side = int(math.sqrt(args.mp * 1e6))
    kw = {} if args.max_megapixels is None else {"max_megapixels": args.max_megapixels}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds:
            path = write_bomb(kind, Path(tmp) / f"{kind}.{BOMBS[kind][0].lower()}", side, side)
            r = measure(args.package_root, path, **kw)
            r.update(kind=kind, mode=BOMBS[kind][1], file_kb=os.path.getsize(path) / 1024, mp=side * side / 1e6)
            if "peak_kb" in r:
                r["extra_mb"] = (r["peak_kb"] - r["base_kb"]) / 1024
                print(f"{kind:18} {r['mode']:5} {r['mp']:6.0f} MP {r['file_kb']:8.0f} KB  +{r['extra_mb']:7.0f} MB "
                      f"{r['seconds']:5.1f} s  {r['outcome']}", flush=True)
            else:
                print(f"{kind:18} error: {r['error']}", flush=True)
            rows.append(r)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
