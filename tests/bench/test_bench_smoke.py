"""`make bench` cannot rot: its smoke variant (a few seconds of orders at concurrency 1 and 4, the
reads, no baselines and no scale load) runs the whole path against a real platform of its own —
databases, vhost and ports — and its correctness check must find every order confirmed with its
stock and credit reserved exactly once (FR-60, FR-63, FR-65). No timing is asserted, ever."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_the_bench_smoke_runs_and_every_order_checks_out(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, "-W", "ignore", "-m", "bench", "--smoke", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["check"]["problems"] == []
    assert result["check"]["placed_in_bench"] > 0
    assert result["check"]["orders"] >= result["check"]["placed_in_bench"]
    for row in result["orders"].values():
        assert row["errors"] == 0, row["error_samples"]
        assert row["drained"]
    for row in result["reads"].values():
        assert row["errors"] == 0, row["error_samples"]
    assert set(result["machine"]) >= {"cpu", "cores"} and len(result["load_average"]["before"]) == 3
