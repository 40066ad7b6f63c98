"""Worker processes on one study: each runs ``work`` until the study has enough trials."""

from __future__ import annotations

import time
import traceback
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState
from resume_driver import open_storage

from optuna_resume import ResumableStudy, checkpointed_objective

STARTUP_TRIALS = 20  # TPE's random startup: where repeated draws would show
WORK_S = 0.15


@checkpointed_objective()
def objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5.0, 5.0)
    y = trial.suggest_float("y", -5.0, 5.0)
    time.sleep(WORK_S)  # the trial's work: where SIGKILLs land
    return (x - 1.0) ** 2 + (y + 0.5) ** 2


def sampler() -> optuna.samplers.TPESampler:
    return optuna.samplers.TPESampler(seed=7, n_startup_trials=STARTUP_TRIALS)


def work(
    root: str,
    storage: str,
    worker: str,
    complete: int,
    start_together: Any = None,
    slow_study_attrs: bool = False,
) -> None:
    """One worker: run trials until the study has ``complete`` COMPLETE ones, none waiting.

    ``start_together``: a barrier the workers of a test pass at once. ``slow_study_attrs``:
    every read of the study's system attributes takes 0.3 s more (a slow storage), so that
    workers starting together read them at the same time. An error is also written to
    ``<root>/<worker>.error`` for the test to show.
    """
    try:
        if slow_study_attrs:
            _slow_down_study_attrs()
        if start_together is not None:
            start_together.wait()
        _work(root, storage, worker, complete)
    except BaseException:
        Path(root, f"{worker}.error").write_text(traceback.format_exc())
        raise


def _slow_down_study_attrs() -> None:
    storage_class = optuna.storages.JournalStorage
    read = storage_class.get_study_system_attrs

    def get_study_system_attrs(self: Any, study_id: int) -> dict[str, Any]:
        attrs = read(self, study_id)
        time.sleep(0.3)
        return attrs

    storage_class.get_study_system_attrs = get_study_system_attrs  # type: ignore[method-assign]


def _work(root: str, storage: str, worker: str, complete: int) -> None:
    study_storage = open_storage(root, storage)
    name = root.rsplit("/", 1)[-1]
    with ResumableStudy(
        root, storage=study_storage, study_name=name, sampler=sampler(), worker=worker
    ) as study:
        while True:
            trials = study.get_trials(deepcopy=False)
            done = sum(t.state == TrialState.COMPLETE for t in trials)
            waiting = any(t.state == TrialState.WAITING for t in trials)
            if done >= complete and not waiting:
                break
            study.optimize(objective, n_trials=1)
