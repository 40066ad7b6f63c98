"""An ask/tell loop with enqueued trials, its states in the database (test_state_rows.py).

Usage: ``python asktell_rows_driver.py ROOT STORAGE TOTAL KILL`` where ``KILL`` is
``"<trial>:<where>"`` (``where``: ``objective`` = inside the trial, ``told`` = right after its
tell, before the next ask) or ``-``. Prints the finished trials as JSON.
"""

from __future__ import annotations

import json
import os
import signal
import sys

import optuna

from optuna_resume import ResumableStudy


def main() -> None:
    root, storage, total, kill = sys.argv[1:5]
    kill_at, where = (int(kill.split(":")[0]), kill.split(":")[1]) if kill != "-" else (-1, "")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(n_startup_trials=2, seed=11)
    with ResumableStudy(root, storage=storage, study_name="at", sampler=sampler) as study:
        if not study.trials:
            study.enqueue_trial({"x": 1.5})
            study.enqueue_trial({"x": -2.5})
        while sum(t.state.is_finished() for t in study.trials) < int(total):
            trial = study.ask()
            x = trial.suggest_float("x", -10, 10)
            if trial.number == 4:
                study.enqueue_trial({"x": 3.25})  # a trial enqueued while the study runs
            if trial.number == kill_at and where == "objective":
                os.kill(os.getpid(), signal.SIGKILL)
            study.tell(trial, (x - 1) ** 2)
            if trial.number == kill_at and where == "told":
                os.kill(os.getpid(), signal.SIGKILL)
        finished = [[t.number, t.params, t.value] for t in study.trials if t.state.is_finished()]
    print(json.dumps(finished))


if __name__ == "__main__":
    main()
