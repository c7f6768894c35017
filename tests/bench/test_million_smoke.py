"""A smoke run of benchmarks/million.py at a tiny size: hnsw 1 vs all threads, a synthetic collection of the
bench layout analysed on the sampled path (thresholds scaled down), and section 7 of the report.
Timings are never asserted here (docs/benchmarks.md has them)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))


@pytest.fixture
def bench_backbone():
    from artstyle_gui.core.ingest.backbones import REGISTRY

    yield
    REGISTRY.pop("bench-1m", None)


def test_million_hnsw_build_and_sampled_analysis_at_a_tiny_size(tmp_path, bench_backbone, monkeypatch):
    import million
    import report

    from artstyle_gui.core.index import sampled

    for name in ("SAMPLE_ABOVE", "FIT_SAMPLE", "CHUNK"):  # million.main sets them for --sample-above
        monkeypatch.setattr(sampled, name, getattr(sampled, name))
    js, work = tmp_path / "m.json", tmp_path / "w"
    common = ["--n", "600", "--work", str(work), "--json", str(js)]
    assert million.main(["hnsw", *common]) == 0
    assert million.main(["build", *common]) == 0
    assert million.main(["analysis", *common, "--sample-above", "300"]) == 0
    m = json.loads(js.read_text())
    assert [r["threads"] for r in m["hnsw"]["rows"]][0] == 1
    assert all(0.5 <= r["recall_at_10"] <= 1.0 for r in m["hnsw"]["rows"])
    a = m["analysis"]
    assert (a["paintings"], a["sample_n"], a["embedding_dim"]) == (600, 150, 320)  # the real part sizes
    assert a["most_vectors_read_at_once"] <= 60 and a["peak_rss_mb"] > 0
    text = report.million_section(m)
    assert "## 7. A million paintings" in text and "| 600 | " in text and "Speed-up from 1 to" in text
