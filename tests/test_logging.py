"""A resume is shown on stderr by default, in one or two lines, as Optuna's own logging is.

Real scripts in subprocesses with no logging set up: the first is SIGKILLed inside a trial,
the second resumes it. The library's logger level turns the lines down (Optuna's verbosity
silences Optuna's own lines, not these); a logging configuration of the application gets
the full resume report.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import logging, os, signal, sys
    import optuna
    from optuna_resume import ResumableStudy, optimize_until

    root, mode = sys.argv[1], sys.argv[2]
    if mode == "quiet":
        logging.getLogger("optuna_resume").setLevel(logging.WARNING)
    if mode == "optuna-quiet":
        optuna.logging.set_verbosity(optuna.logging.ERROR)
    if mode == "configured":
        logging.basicConfig(level=logging.INFO, format="LOG %(name)s: %(message)s")

    def objective(trial):
        x = trial.suggest_float("x", -1.0, 1.0)
        if trial.number == 3 and mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        return x * x

    with ResumableStudy(root, sampler=optuna.samplers.TPESampler(seed=1)) as study:
        optimize_until(study, objective, 5)
    """
)


def _run(tmp_path: Path, mode: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "study.py"
    script.write_text(SCRIPT)
    return subprocess.run(
        [sys.executable, str(script), str(tmp_path / "run"), mode],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_resume_shows_one_or_two_lines_on_stderr_without_any_logging_setup(
    tmp_path: Path,
) -> None:
    assert _run(tmp_path, "kill").returncode == -signal.SIGKILL
    done = _run(tmp_path, "plain")
    assert done.returncode == 0, done.stderr
    ours = [line for line in done.stderr.splitlines() if "study 'run'" in line]
    assert len(ours) == 1, done.stderr  # the first of the two lines names the study
    (line,) = ours
    assert line.startswith("[I ")  # Optuna's format
    assert "4 trial(s) found" in line
    assert "trial 3 was cut off and runs again with params {'x': " in line
    following = done.stderr.splitlines()[done.stderr.splitlines().index(line) + 1]
    assert following.startswith("The sampler goes on from the state before trial 3")
    assert "backup" in following
    assert "resume report:" not in done.stderr  # the full report is for the log
    assert "trial-000003" not in done.stderr


def test_the_librarys_level_turns_the_lines_down(tmp_path: Path) -> None:
    assert _run(tmp_path, "kill").returncode == -signal.SIGKILL
    done = _run(tmp_path, "quiet")
    assert done.returncode == 0, done.stderr
    assert "study 'run'" not in done.stderr


def test_silencing_optunas_trial_lines_keeps_the_resume_lines(tmp_path: Path) -> None:
    assert _run(tmp_path, "kill").returncode == -signal.SIGKILL
    done = _run(tmp_path, "optuna-quiet")
    assert done.returncode == 0, done.stderr
    assert "Trial 3 finished" not in done.stderr
    assert "trial 3 was cut off and runs again" in done.stderr


def test_a_configured_log_gets_the_full_report(tmp_path: Path) -> None:
    assert _run(tmp_path, "kill").returncode == -signal.SIGKILL
    done = _run(tmp_path, "configured")
    assert done.returncode == 0, done.stderr
    assert "LOG optuna_resume: resume report: study 'run'" in done.stderr
    stderr_lines = [line for line in done.stderr.splitlines() if line.startswith("[I ")]
    assert not [line for line in stderr_lines if "study 'run':" in line]  # ours stands aside
