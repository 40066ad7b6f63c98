"""Samplers that hold code (lambdas, closures, local classes) and studies Optuna lets users copy.

A checkpoint saves a sampler's data, never its code: functions and objects of classes defined
inside functions are taken from the sampler passed again on resume. (That such samplers resume
exactly across every scenario, in real processes, is in ``test_resume_matrix.py``.)
"""

from __future__ import annotations

import copy
import pickle
import threading
from pathlib import Path
from typing import Any

import optuna
import pytest
from resume_driver import WITH_FUNCTIONS

from optuna_resume import (
    ResumableStudy,
    SamplerMismatchWarning,
    SamplerPickleError,
    checkpointed_objective,
    load_sampler,
    optimize_until,
)


@checkpointed_objective()
def objective(trial: optuna.Trial) -> float:
    return trial.suggest_float("x", -1.0, 1.0) ** 2


def test_the_checkpoint_holds_no_code_and_load_sampler_says_what_is_missing(
    tmp_path: Path,
) -> None:
    with ResumableStudy(tmp_path / "s", sampler=WITH_FUNCTIONS["tpe_gamma_closure"]()) as study:
        optimize_until(study, objective, 3)
    sampler = load_sampler(tmp_path / "s")
    assert isinstance(sampler, optuna.samplers.TPESampler)
    gamma: Any = sampler._gamma
    with pytest.raises(SamplerPickleError, match=r"_gamma .*pass the sampler"):
        gamma(10)


def test_a_local_sampler_class_needs_the_sampler_passed_again(tmp_path: Path) -> None:
    with ResumableStudy(tmp_path / "s", sampler=WITH_FUNCTIONS["local_class"]()) as study:
        optimize_until(study, objective, 3)
    with pytest.raises(SamplerPickleError, match=r"LocalRandomWalk.*pass the sampler again"):
        load_sampler(tmp_path / "s")
    with ResumableStudy(tmp_path / "s", sampler=WITH_FUNCTIONS["local_class"]()) as study:
        restored: Any = study.sampler
        assert type(restored).__name__ == "LocalRandomWalk"
        assert restored.calls == 3
        optimize_until(study, objective, 5)


def test_a_function_missing_from_the_passed_sampler_is_named(tmp_path: Path) -> None:
    with ResumableStudy(tmp_path / "s", sampler=WITH_FUNCTIONS["tpe_gamma_closure"]()) as study:
        optimize_until(study, objective, 3)
    plain = optuna.samplers.TPESampler(seed=1, n_startup_trials=4)
    plain.__dict__.pop("_gamma")
    with (
        pytest.warns(SamplerMismatchWarning, match="_gamma"),
        ResumableStudy(tmp_path / "s", sampler=plain),
    ):
        pass


class _HoldsALock(optuna.samplers.RandomSampler):
    def __init__(self) -> None:
        super().__init__(seed=0)
        self.lock = threading.Lock()
        self.guards = {"cache": threading.RLock()}


class _HoldsAGenerator(optuna.samplers.RandomSampler):
    def __init__(self) -> None:
        super().__init__(seed=0)
        self.numbers = (i for i in range(3))


def test_a_sampler_holding_locks_is_saved_and_comes_back_with_new_ones(tmp_path: Path) -> None:
    # Optuna 5.1's GA samplers guard their generation cache with a threading.Lock.
    first = _HoldsALock()
    # The lock is held while states are saved: it comes back unlocked.
    with ResumableStudy(tmp_path / "s", sampler=first) as study, first.lock:
        optimize_until(study, objective, 3)
    restored: Any = load_sampler(tmp_path / "s", allowed_globals=[_HoldsALock])
    assert type(restored.lock) is type(threading.Lock()) and restored.lock is not first.lock
    assert restored.lock.acquire(blocking=False)
    assert type(restored.guards["cache"]) is type(threading.RLock())
    with ResumableStudy(tmp_path / "s", sampler=_HoldsALock()) as study:
        optimize_until(study, objective, 5)
    reference = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    reference.optimize(lambda t: t.suggest_float("x", -1.0, 1.0) ** 2, n_trials=5)
    assert [t.params for t in study.trials] == [t.params for t in reference.trials]


def test_a_sampler_holding_what_cannot_be_saved_gets_a_clear_error(tmp_path: Path) -> None:
    with (
        pytest.raises(SamplerPickleError, match=r"cannot be saved.*generator"),
        ResumableStudy(tmp_path / "s", sampler=_HoldsAGenerator()) as study,
    ):
        study.optimize(objective, n_trials=1)
    assert study.trials == []  # refused before the trial was asked for


def test_a_bound_study_pickles_and_its_deep_copy_is_its_own(tmp_path: Path) -> None:
    with ResumableStudy(tmp_path / "s", sampler=optuna.samplers.RandomSampler(seed=0)) as study:
        optimize_until(study, objective, 2)
        sent = pickle.loads(pickle.dumps(study))
        assert [t.params for t in sent.trials] == [t.params for t in study.trials]
        twin = copy.deepcopy(study)
        trial = twin.ask()
        assert trial.study is twin
        twin.tell(trial, 1.0)
        assert len(twin.trials) == 3
        optimize_until(study, objective, 3)  # the bound study still checkpoints
    assert len(study.trials) == 3


def test_a_mock_in_a_sampler_is_left_out_like_code(tmp_path: Path) -> None:
    # Optuna's own tests spy on a sampler's parts with unittest.mock (29 of them did so
    # while a checkpoint was written); a mock stands in for code, so it is not saved.
    from unittest import mock

    sampler = optuna.samplers.TPESampler(seed=0)
    random_sampler = sampler._random_sampler
    with mock.patch.object(random_sampler, "after_trial", wraps=random_sampler.after_trial) as spy:
        with ResumableStudy(tmp_path / "s", sampler=sampler) as study:
            study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
        assert spy.call_count == 3
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
