"""A ``rewind_to`` left in a script applies once: re-running the script keeps its work.

Real re-runs of one script in subprocesses (each objective call is counted in a file); the
command line rewinds again on purpose.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys
    import optuna
    from optuna_resume import ResumableStudy, optimize_until

    root, calls, rewind_to, kill_at = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]

    def objective(trial):
        with open(calls, "a") as f:
            f.write(f"{trial.number}\\n")
        x = trial.suggest_float("x", -1.0, 1.0)
        if trial.number == int(kill_at):
            os.kill(os.getpid(), signal.SIGKILL)
        return x * x

    with ResumableStudy(
        root,
        sampler=optuna.samplers.TPESampler(seed=3),
        rewind_to=None if rewind_to == "-" else int(rewind_to),
    ) as study:
        optimize_until(study, objective, 6)
        print(json.dumps([[t.number, t.params] for t in study.trials]))
    """
)


class Script:
    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "train.py"
        self.path.write_text(SCRIPT)
        self.root = tmp_path / "run"
        self.calls = tmp_path / "calls.txt"

    def run(self, rewind_to: str = "-", kill_at: int = -1) -> subprocess.CompletedProcess[str]:
        self.calls.unlink(missing_ok=True)
        args = [str(self.root), str(self.calls), rewind_to, str(kill_at)]
        return subprocess.run(
            [sys.executable, str(self.path), *args], capture_output=True, text=True, timeout=300
        )

    def called(self) -> list[int]:
        if not self.calls.exists():
            return []
        return [int(n) for n in self.calls.read_text().split()]


def test_a_rewind_in_a_script_applies_once_across_re_runs(tmp_path: Path) -> None:
    script = Script(tmp_path)
    first = script.run()
    assert first.returncode == 0, first.stderr
    trials = json.loads(first.stdout)

    rewound = script.run("3")
    assert rewound.returncode == 0, rewound.stderr
    assert script.called() == [3, 4, 5]  # trials 3..5 computed again, exactly
    assert json.loads(rewound.stdout) == trials

    for _ in range(2):  # the same script, run again: nothing is thrown away
        again = script.run("3")
        assert again.returncode == 0, again.stderr
        assert script.called() == []
        assert json.loads(again.stdout) == trials
        (line,) = [x for x in again.stderr.splitlines() if "rewind_to=3" in x]
        assert "was applied by an earlier run" in line and "not rewinding again" in line

    # The command line rewinds on purpose, again.
    cli = subprocess.run(
        [sys.executable, "-m", "optuna_resume", "rewind", str(script.root), "--to", "3"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cli.returncode == 0, cli.stderr
    after_cli = script.run("3")
    assert after_cli.returncode == 0, after_cli.stderr
    assert script.called() == [3, 4, 5]
    assert json.loads(after_cli.stdout) == trials


def test_a_requeued_job_with_a_rewind_keeps_the_work_done_since(tmp_path: Path) -> None:
    script = Script(tmp_path)
    assert script.run().returncode == 0
    killed = script.run("2", kill_at=4)  # rewinds, re-runs 2 and 3, cut off inside 4
    assert killed.returncode == -signal.SIGKILL
    assert script.called() == [2, 3, 4]
    requeued = script.run("2")  # the scheduler runs the same command again
    assert requeued.returncode == 0, requeued.stderr
    assert script.called() == [4, 5]  # trial 4 re-runs; 2 and 3 are kept
    (tmp_path / "reference").mkdir()
    reference = Script(tmp_path / "reference")  # one uninterrupted run
    assert json.loads(requeued.stdout) == json.loads(reference.run().stdout)
