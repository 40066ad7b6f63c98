"""A study run across an upgrade of Optuna and NumPy, as a script (``test_upgrade.py``).

``python upgrade_driver.py ROOT N_TRIALS [inexact]`` runs the study in ROOT to N_TRIALS
trials and prints its trials and the library's warnings as JSON; an error of the library
is printed as ``ERROR <class>: <message>`` with exit status 3. It runs under whichever
Optuna and NumPy the interpreter has (the old virtualenv, then the current one).
"""

from __future__ import annotations

import json
import sys
import warnings

import numpy
import optuna

from optuna_resume import OptunaResumeError, ResumableStudy, optimize_until


def objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -10.0, 10.0)
    y = trial.suggest_int("y", -5, 5)
    return (x - 2.0) ** 2 + y**2


def main(root: str, n_trials: str, *flags: str) -> int:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=0, n_startup_trials=20)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with ResumableStudy(root, sampler=sampler, allow_inexact="inexact" in flags) as study:
                optimize_until(study, objective, int(n_trials))
                trials = [[t.number, t.params, t.value] for t in study.trials]
    except OptunaResumeError as e:
        print(f"ERROR {type(e).__name__}: {e}")
        return 3
    print(
        json.dumps(
            {
                "versions": [optuna.__version__, numpy.__version__],
                "trials": trials,
                "warnings": [
                    str(w.message)
                    for w in caught
                    if "optuna_resume" in w.filename
                    or w.category.__module__.startswith("optuna_resume")
                ],
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:]))
