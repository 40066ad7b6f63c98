"""The command line, run as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "optuna_resume", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_demo_kills_resumes_and_matches(tmp_path: Path) -> None:
    result = cli("demo", str(tmp_path / "demo"))
    assert result.returncode == 0, result.stderr
    assert "process ended with -9 (killed by signal 9)" in result.stdout
    assert "equals the uninterrupted run, trial for trial" in result.stdout
    assert "<- repeats trial 0" in result.stdout  # what a plain restart does
    rows = [line for line in result.stdout.splitlines() if line.strip()[:2].strip().isdigit()]
    assert len(rows) == 16
    assert all(" yes " in row for row in rows)


def test_demo_refuses_a_used_folder(tmp_path: Path) -> None:
    (tmp_path / "resumed").mkdir()
    result = cli("demo", str(tmp_path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("optuna-resume: error: ")
    assert "give the demo an empty folder" in result.stderr


def test_help_and_bad_usage() -> None:
    assert "demo" in cli("--help").stdout
    assert cli("demo", "--help").returncode == 0
    bad = cli("no-such-command")
    assert bad.returncode == 2
    assert "invalid choice" in bad.stderr
