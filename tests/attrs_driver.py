"""A study whose objective keeps a counter in the study's attributes, as a real script.

Used by ``test_study_attrs.py``: ``python attrs_driver.py ROOT run N_TRIALS [KILL_AT]``
runs the study to ``N_TRIALS`` trials (SIGKILLing itself inside trial ``KILL_AT`` after
another process, standing in for the dashboard, wrote a note); ``... rewind TO`` rewinds;
``... dashboard`` writes the note; ``... show`` prints the study as JSON.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna

from optuna_resume import ResumableStudy, optimize_until
from optuna_resume._optuna._storage import sqlite_url


def _storage(root: str) -> str:
    return sqlite_url(Path(root) / "study.db")


def objective(trial: optuna.Trial, root: str, kill_at: int | None) -> float:
    study = trial.study
    count = int(study.user_attrs.get("count", 0)) + 1
    study.set_user_attr("count", count)
    study.set_user_attr(f"seen_{trial.number}", trial.number)
    x = trial.suggest_float("x", -5.0, 5.0)
    if trial.number == kill_at:
        subprocess.run([sys.executable, __file__, root, "dashboard"], check=True)
        os.kill(os.getpid(), signal.SIGKILL)
    return x**2 + count * 1e-3


def _show(study: optuna.Study) -> dict[str, Any]:
    return {
        "user_attrs": study.user_attrs,
        "system_attrs": {
            k: v
            for k, v in study._storage.get_study_system_attrs(study._study_id).items()
            if not k.startswith("optuna_resume")
        },
        "metric_names": study.metric_names,
        "trials": [
            [t.number, t.state.name, t.params, t.value] for t in study.get_trials(deepcopy=False)
        ],
    }


def main(root: str, phase: str, *args: str) -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if phase == "dashboard":
        study = optuna.load_study(study_name=os.path.basename(root), storage=_storage(root))
        study.set_user_attr("note", "from the dashboard")
        study._storage.set_study_system_attr(study._study_id, "dashboard:note", "look")
        return
    if phase == "show":
        study = optuna.load_study(study_name=os.path.basename(root), storage=_storage(root))
        print(json.dumps(_show(study)))
        return
    sampler = optuna.samplers.TPESampler(seed=0, n_startup_trials=2)
    if phase == "rewind":
        with ResumableStudy(root, sampler=sampler, rewind_to=int(args[0])) as study:
            print(json.dumps(_show(study)))
        return
    n_trials = int(args[0])
    kill_at = int(args[1]) if len(args) > 1 else None
    with ResumableStudy(root, sampler=sampler) as study:
        study.set_metric_names(["loss"])  # outside any trial
        optimize_until(study, lambda t: objective(t, root, kill_at), n_trials)
        print(json.dumps(_show(study)))


if __name__ == "__main__":
    main(*sys.argv[1:])
