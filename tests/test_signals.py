"""Signals from outside, as a scheduler or a user sends them, to a real script process."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from resume_driver import MODEL_PHASE_TRIAL, reference, stored_trials
from small_study import objective

from optuna_resume import ResumableStudy, TerminatedBySignal
from optuna_resume._checkpoint import read_meta

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
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM])
def test_signal_inside_a_trial_then_rerun_equals_uninterrupted(
    tmp_path: Path, name: str, sig: signal.Signals
) -> None:
    root = tmp_path / name
    code = _run_until_hanging(root, name, sig)
    assert code != 0
    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL
    if sig == signal.SIGTERM:
        assert code == 128 + signal.SIGTERM  # the conventional status, after a clean exit
        after = root / "checkpoints" / f"trial-{MODEL_PHASE_TRIAL:06d}.after.pt"
        final = root / "checkpoints" / f"trial-{MODEL_PHASE_TRIAL + 1:06d}.before.pt"
        assert read_meta(after)["outcome"] == "interrupted"
        assert read_meta(final)["kind"] == "final"
        assert read_meta(final)["interrupted_trial"] == MODEL_PHASE_TRIAL
        assert not (root / ".lock.owner").exists()  # released, not left to a dead process
    subprocess.run(_script(root=str(root), name=name), check=True, timeout=240)
    assert stored_trials(root) == reference(name)


def test_sigterm_between_trials_saves_and_exits_143(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="optuna_resume")
    with pytest.raises(SystemExit) as exit_info, ResumableStudy(tmp_path / "s") as study:
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        study.optimize(objective, n_trials=2)
        os.kill(os.getpid(), signal.SIGTERM)
        study.optimize(objective, n_trials=2)  # never reached
    assert exit_info.value.code == 128 + signal.SIGTERM
    assert isinstance(exit_info.value.__cause__, TerminatedBySignal)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # put back
    final = tmp_path / "s" / "checkpoints" / "trial-000002.before.pt"
    assert read_meta(final)["kind"] == "final"
    assert caplog.messages[-1].startswith("SIGTERM between trials of study 's': saved ")


def test_a_sigterm_handler_of_the_program_is_left_alone(tmp_path: Path) -> None:
    received = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        with ResumableStudy(tmp_path / "s") as study:
            os.kill(os.getpid(), signal.SIGTERM)
            study.optimize(objective, n_trials=1)
        assert received == [signal.SIGTERM]
        assert len(study.trials) == 1
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_handle_sigterm_false_leaves_the_default(tmp_path: Path) -> None:
    with ResumableStudy(tmp_path / "s", handle_sigterm=False):
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
