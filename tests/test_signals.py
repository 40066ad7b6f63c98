"""Signals from outside, as a scheduler or a user sends them, to a real script process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from resume_driver import MODEL_PHASE_TRIAL, reference, stored_trials

DRIVER = Path(__file__).with_name("resume_driver.py")


def _script(**kwargs: object) -> list[str]:
    return [sys.executable, str(DRIVER), json.dumps(kwargs)]


def _run_until_hanging(root: Path, name: str, sig: signal.Signals) -> int:
    marker = root.with_name(root.name + ".hanging")
    process = subprocess.Popen(
        _script(root=str(root), name=name, hang_at=MODEL_PHASE_TRIAL, hang_marker=str(marker))
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert process.poll() is None, "the study ended before the signal"
            assert time.monotonic() < deadline, "the study never reached the trial"
            time.sleep(0.05)
        os.kill(process.pid, sig)
        return process.wait(60)
    finally:
        process.kill()
        process.wait(30)


@pytest.mark.parametrize("name", ["tpe", "cmaes", "qmc_sobol_scrambled"])
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_signal_inside_a_trial_then_rerun_equals_uninterrupted(
    tmp_path: Path, name: str, sig: signal.Signals
) -> None:
    root = tmp_path / name
    code = _run_until_hanging(root, name, sig)
    assert code != 0
    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL
    subprocess.run(_script(root=str(root), name=name), check=True, timeout=240)
    assert stored_trials(root) == reference(name)
