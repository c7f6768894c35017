"""A smoke run of the speed benchmark (benchmarks/perf.py --quick): the script runs, its figures are
sane and the report renders them.  Timings are never asserted here (docs/benchmarks.md has them)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))


def test_quick_query_section_writes_json_and_report(tmp_path):
    import perf

    js, md = tmp_path / "b.json", tmp_path / "b.md"
    assert perf.main(["--quick", "--only", "query", "--work", str(tmp_path / "w"), "--json", str(js),
                      "--md", str(md)]) == 0
    res = json.loads(js.read_text())
    rows = res["query"]["rows"]
    assert [r["vectors"] for r in rows] == [2000, 10000]
    for r in rows:
        assert r["dim"] == 256 and r["queries"] == 200
        assert 0.9 <= r["recall_at_10"] <= 1.0  # the engine's hnsw settings against exact search
        assert 0 < r["p50_ms"] <= r["p99_ms"]
    assert res["machine"]["gemm_fp32_gflops"] > 0 and res["machine"]["cores"] >= 1
    text = md.read_text()
    assert "## 2. Neighbour queries" in text and "Quick run" in text
    assert f"| 10000 | 256 |" in text


def test_report_marks_missed_targets():
    import report

    res = {"machine": {}, "query": {"rows": [{"vectors": 100_000, "dim": 256, "p99_ms": 7.0, "recall_at_10": 0.99}]},
           "gui": {"index": {"longest_stall_ms": 40, "click_to_panel_ms_max": 150}}}
    t = report.targets(res)
    assert "| query p99 <= 5 ms at 100k, recall@10 >= 0.98 | p99 7.0 ms, recall 0.99 | **no** |" in t
    assert "| longest main-thread stall while indexing <= 100 ms | 40 ms | yes |" in t
    assert "| click to panel <= 100 ms (slowest click measured) | 150 ms | **no** |" in t
