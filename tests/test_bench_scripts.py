"""Smoke tests of the benchmark scripts: they run, in both thread modes, and write their files.

One tiny cell each (seconds), not a measurement.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def run(*argv: str) -> str:
    done = subprocess.run(
        [sys.executable, *argv], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_sweep_both_modes_writes_json_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    png, raw = tmp_path / "sweep.png", tmp_path / "sweep.json"
    out = run(
        str(BENCH / "bench_sweep.py"),
        *("--only", "^2x2$", "--dtypes", "float64", "--repeats", "1", "--no-extras"),
        *("--plot", str(png), "--json", str(raw)),
    )
    assert "## threads one" in out and "## threads default" in out
    assert "worst cells, threads one" in out
    cells = json.loads(raw.read_text())["cells"]
    assert sorted(c["threads"] for c in cells) == ["default", "one"]
    assert all(c["ratio"] > 0 and c["path"] for c in cells)
    assert png.stat().st_size > 0


def test_coldstart_child_reports_one_line():
    out = run(str(BENCH / "bench_coldstart.py"), "--child", "pinv", "lapack", "--settle", "0")
    (line,) = [x for x in out.splitlines() if x.startswith("RESULT ")]
    res = json.loads(line[len("RESULT ") :])
    assert res["method_first"] == "svd" and res["first"] > 0 and res["import_pi"] > 0
