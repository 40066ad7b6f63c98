"""The decorator used alone, with the study the user opens: it resumes, or stops clearly.

Each run is the user's own script in a new process (``alone_driver.run_alone``): plain
``optuna.create_study(..., load_if_exists=True)`` with a fresh sampler, then ``optimize``.
"""

from __future__ import annotations

import signal
from multiprocessing.context import ForkServerContext
from pathlib import Path

import optuna
import pytest
from alone_driver import run_alone
from conftest import run_in_process
from optuna.trial import TrialState
from resume_driver import N_TRIALS, reference, stored_trials

from optuna_resume import (
    CheckpointNotFoundError,
    ResumeRequiredError,
    UnsupportedStorageError,
    checkpointed_objective,
)

KILLED = -signal.SIGKILL


@pytest.mark.parametrize("sampler", ["tpe", "cmaes", "qmc_sobol_scrambled", "grid", "nsga2"])
def test_a_re_run_script_goes_on_instead_of_repeating_the_first_draws(
    process_context: ForkServerContext, tmp_path: Path, sampler: str
) -> None:
    root = tmp_path / sampler
    for n_trials in (5, 2, N_TRIALS - 7):
        code = run_in_process(
            process_context, target=run_alone, root=str(root), name=sampler, n_trials=n_trials
        )
        assert code == 0
    assert stored_trials(root) == reference(sampler)


@pytest.mark.parametrize("sampler", ["tpe", "cmaes"])
def test_after_a_kill_it_stops_before_drawing_and_names_the_way_on(
    process_context: ForkServerContext, tmp_path: Path, sampler: str
) -> None:
    root = tmp_path / sampler
    code = run_in_process(
        process_context, target=run_alone, root=str(root), name=sampler, n_trials=N_TRIALS,
        kill_at=5,
    )  # fmt: skip
    assert code == KILLED
    with pytest.raises(ResumeRequiredError, match=r"trial 5 .* cut off.*resume_study") as error:
        run_alone(str(root), sampler, n_trials=N_TRIALS)
    assert "ResumableStudy" in str(error.value)
    study = optuna.load_study(study_name=sampler, storage=f"sqlite:///{root}/study.db")
    trials = study.get_trials()
    assert [t.state for t in trials[5:]] == [TrialState.RUNNING, TrialState.FAIL]
    assert trials[6].params == {}  # nothing was drawn for the trial that was refused
    # The supported way: resume before optimize. Trial 5 re-runs with its parameters.
    code = run_in_process(
        process_context, target=run_alone, root=str(root), name=sampler, n_trials=N_TRIALS - 5,
        resume_first=True,
    )  # fmt: skip
    assert code == 0
    assert stored_trials(root) == reference(sampler)


def test_a_study_with_trials_but_no_state_is_refused_before_drawing(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'db.sqlite'}"
    study = optuna.create_study(study_name="s", storage=storage)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)

    @checkpointed_objective(root=tmp_path / "root")
    def objective(trial: optuna.Trial) -> float:
        return trial.suggest_float("x", 0, 1)

    with pytest.raises(CheckpointNotFoundError, match="allow_inexact=True"):
        study.optimize(objective, n_trials=1)
    assert study.trials[-1].state == TrialState.FAIL
    assert study.trials[-1].params == {}


def test_an_in_memory_study_is_refused(tmp_path: Path) -> None:
    @checkpointed_objective(root=tmp_path / "root")
    def objective(trial: optuna.Trial) -> float:
        return trial.suggest_float("x", 0, 1)

    study = optuna.create_study()
    with pytest.raises(UnsupportedStorageError, match="in-memory"):
        study.optimize(objective, n_trials=1)
    assert study.trials[0].params == {}


def test_parallel_threads_on_a_new_study_start_without_an_error(tmp_path: Path) -> None:
    """n_jobs=2: the other thread's first trial, running, is not a trial cut off earlier."""

    @checkpointed_objective(root=tmp_path / "root")
    def objective(trial: optuna.Trial) -> float:
        return trial.suggest_float("x", 0, 1)

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'db.sqlite'}")
    study.optimize(objective, n_trials=8, n_jobs=2)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 8
