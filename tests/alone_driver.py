"""The decorator used alone, as its docstring shows: the user opens the study themselves.

``run_alone`` is one run of such a script, in a process of its own.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import optuna
from resume_driver import SAMPLERS, directions, evaluate

from optuna_resume import checkpointed_objective, resume_study


def run_alone(
    root: str,
    name: str,
    n_trials: int,
    kill_at: int | None = None,
    resume_first: bool = False,
) -> None:
    """Open the study with plain Optuna and run ``n_trials`` more decorated trials.

    ``kill_at``: SIGKILL the process inside that trial. ``resume_first``: call
    ``resume_study`` before ``optimize`` (the supported way after a kill).
    """

    @checkpointed_objective(root=root)
    def objective(trial: optuna.Trial) -> float | tuple[float, float]:
        result = evaluate(trial, name)
        if trial.number == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    Path(root).mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(
        study_name=Path(root).name,
        storage=f"sqlite:///{root}/study.db",
        sampler=SAMPLERS[name](),
        directions=directions(name),
        load_if_exists=True,
    )
    if resume_first:
        resume_study(study, root)
    study.optimize(objective, n_trials=n_trials)
