"""The load generator against the running cluster: a short fixed-count run of the mix."""

import json
import subprocess
import sys
from pathlib import Path

from infra import process
from tests.e2e.conftest import Running

CALLS = 30


def test_a_fixed_count_of_the_mix_is_answered_and_reported(
    running: Running, tmp_path: Path
) -> None:
    gateway = running.config.address(running.config.gateway.port)
    out = tmp_path / "load"
    command = [sys.executable, "-m", "infra.load", "--target", gateway]
    # equal weights: each kind is drawn at least once in 30 calls but for a chance of 1e-5
    command += ["--mix", "search=1,similar=1,ingest=1", "--users", "4", "--count", str(CALLS)]
    command += ["--out", str(out), "--catalog", str(running.catalog.root), "--items", "50"]
    run = subprocess.run(command, cwd=process.ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    report = json.loads((out / "summary.json").read_text())
    kinds = report["kinds"]
    assert set(kinds) == {"SearchByImage", "SimilarProducts", "Ingest"}
    assert sum(kind["calls"] for kind in kinds.values()) == report["total"]["calls"] == CALLS
    assert report["total"]["errors"] == {}
    assert report["total"]["answered"] == CALLS
    for figures in kinds.values():
        assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"]
        assert figures["per_s"] > 0
    html = (out / "report.html").read_text()
    assert all(name in html for name in kinds)
    assert "SearchByImage" in run.stdout
