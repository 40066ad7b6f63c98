"""The benchmark runs end to end in its quick mode (its timings are not checked here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).parent.parent / "benchmarks" / "run.py"


@pytest.mark.slow
def test_quick_benchmark_runs_every_case(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    kinds = [case["storage"] for case in results["per_trial"]]
    assert kinds == ["sqlite", "journal", "postgresql"]
    if os.environ.get("OPTUNA_RESUME_REQUIRE_SERVICES") == "1":
        assert "skipped" not in results["per_trial"][2], results["per_trial"][2]
    for case in results["per_trial"]:
        for window in case["windows"].values():
            assert window["bare"]["n"] == window["library"]["n"] > 0
            assert window["library_inside"]["median"] > 0
    assert results["rewind"][0]["recreate_via_api"]["median"] > 0
    assert results["resume"][0]["entry"]["median"] > 0
    assert results["disk"]["tpe_checkpoint_bytes_last"] > 0
    postgres = results["postgres"][0]
    if os.environ.get("OPTUNA_RESUME_REQUIRE_SERVICES") == "1":
        assert "skipped" not in postgres, postgres
    table = (tmp_path / "results.md").read_text()
    assert "| per trial, sqlite, trials 0-29 |" in table
    assert "| rewind 200 trials to 100, backup included |" in table
