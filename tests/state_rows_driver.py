"""One process of a study whose states live in its database (run by test_state_rows.py).

Usage: ``python state_rows_driver.py ROOT STORAGE STUDY TOTAL KILL_AT [REWIND_TO]``: opens the
study with ``ResumableStudy`` (seeded TPE), runs until ``TOTAL`` trials are complete, and
SIGKILLs itself inside trial ``KILL_AT``'s objective (``-1``: never). Prints the complete
trials as JSON on its last line.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any

import optuna
from optuna.trial import TrialState

from optuna_resume import ResumableStudy


def main() -> None:
    root, storage, name, total, kill_at = sys.argv[1:6]
    rewind_to = int(sys.argv[6]) if len(sys.argv) > 6 else None
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -10, 10)
        y = trial.suggest_int("y", 0, 5)
        if trial.number == int(kill_at):
            os.kill(os.getpid(), signal.SIGKILL)
        return (x - 2) ** 2 + y

    print(json.dumps(run_until(root, storage, name, int(total), objective, rewind_to=rewind_to)))


def run_until(
    root: str, storage: str, name: str, total: int, objective: Any, **options: Any
) -> list[list[Any]]:
    """Run the study (seeded TPE) until ``total`` trials are complete; the complete trials."""
    sampler = optuna.samplers.TPESampler(n_startup_trials=3, seed=7)
    with ResumableStudy(
        root, storage=storage, study_name=name, sampler=sampler, **options
    ) as study:
        done = sum(t.state == TrialState.COMPLETE for t in study.trials)
        if done < total:
            study.optimize(objective, n_trials=total - done)
        return [
            [t.number, t.params, t.value] for t in study.trials if t.state == TrialState.COMPLETE
        ]


if __name__ == "__main__":
    main()
