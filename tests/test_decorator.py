"""``checkpointed_objective`` in every binding context, with every way a trial ends."""

from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import Any

import optuna
import pytest

from optuna_resume import (
    CheckpointMismatchError,
    OptunaResumeError,
    ResumableStudy,
    checkpointed_objective,
    list_checkpoints,
)


def _value(trial: optuna.Trial) -> float:
    return trial.suggest_float("x", -1.0, 1.0) ** 2


@checkpointed_objective()
def function_objective(trial: optuna.Trial) -> float:
    """A plain function."""
    return _value(trial)


class Holder:
    offset = 1.0

    def __init__(self) -> None:
        self.calls = 0

    @checkpointed_objective()
    def method(self, trial: optuna.Trial) -> float:
        """A method."""
        self.calls += 1
        return _value(trial) + self.offset

    @classmethod
    @checkpointed_objective()
    def class_method(cls, trial: optuna.Trial) -> float:
        """A classmethod."""
        return _value(trial) + cls.offset

    @staticmethod
    @checkpointed_objective()
    def static_method(trial: optuna.Trial) -> float:
        """A staticmethod."""
        return _value(trial)


class CallableObjective:
    def __call__(self, trial: optuna.Trial) -> float:
        return _value(trial) + 2.0


def _scaled(scale: float, trial: optuna.Trial) -> float:
    return scale * _value(trial)


def _objectives() -> dict[str, tuple[Any, float]]:
    holder = Holder()
    return {
        "function": (function_objective, 0.0),
        "method": (holder.method, 1.0),
        "classmethod": (Holder.class_method, 1.0),
        "staticmethod": (Holder.static_method, 0.0),
        "callable_object": (checkpointed_objective()(CallableObjective()), 2.0),
        "partial": (checkpointed_objective()(functools.partial(_scaled, 3.0)), 0.0),
    }


@pytest.mark.parametrize("context", sorted(_objectives()))
def test_every_binding_context_checkpoints_each_trial(tmp_path: Path, context: str) -> None:
    objective, offset = _objectives()[context]
    with ResumableStudy(tmp_path / "s", sampler=optuna.samplers.RandomSampler(seed=0)) as study:
        study.optimize(objective, n_trials=3)
    trials = study.trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 3
    for t in trials:
        scale = 3.0 if context == "partial" else 1.0
        assert t.value == scale * t.params["x"] ** 2 + offset
    found = {(c.trial, c.phase) for c in list_checkpoints(tmp_path / "s")}
    # before every trial (and before the next one, from the exit), after the last one
    assert {(0, "before"), (1, "before"), (2, "before"), (3, "before"), (2, "after")} <= found


def test_decorator_keeps_name_doc_signature_and_hints() -> None:
    assert function_objective.__name__ == "function_objective"
    assert function_objective.__doc__ == "A plain function."
    assert str(inspect.signature(function_objective)) == "(trial: 'optuna.Trial') -> 'float'"
    assert Holder().method.__name__ == "method"
    assert Holder.method.__doc__ == "A method."
    assert list(inspect.signature(Holder().method).parameters) == ["trial"]
    assert list(inspect.signature(Holder.class_method).parameters) == ["trial"]
    assert list(inspect.signature(Holder.static_method).parameters) == ["trial"]
    assert inspect.get_annotations(function_objective) == {
        "trial": "optuna.Trial",
        "return": "float",
    }


def test_method_binding_keeps_the_instance(tmp_path: Path) -> None:
    holder = Holder()
    with ResumableStudy(tmp_path / "s", sampler=optuna.samplers.RandomSampler(seed=0)) as study:
        study.optimize(holder.method, n_trials=2)
    assert holder.calls == 2


@pytest.mark.parametrize(
    ("raised", "state", "outcome"),
    [
        (optuna.TrialPruned("pruned here"), optuna.trial.TrialState.PRUNED, "pruned"),
        (ValueError("bad value"), optuna.trial.TrialState.FAIL, "raised"),
    ],
)
def test_result_and_errors_pass_through_unchanged(
    tmp_path: Path, raised: Exception, state: optuna.trial.TrialState, outcome: str
) -> None:
    @checkpointed_objective()
    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0, 1)
        raise raised

    with ResumableStudy(tmp_path / "s", sampler=optuna.samplers.RandomSampler(seed=0)) as study:
        study.optimize(objective, n_trials=1, catch=(ValueError,))
    assert study.trials[0].state == state
    from optuna_resume._checkpoint import read_meta

    after = [c for c in list_checkpoints(tmp_path / "s") if c.phase == "after"]
    assert read_meta(after[0].path)["outcome"] == outcome


def test_keyboard_interrupt_is_reraised_and_recorded(tmp_path: Path) -> None:
    @checkpointed_objective()
    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0, 1)
        raise KeyboardInterrupt

    with (
        pytest.raises(KeyboardInterrupt),
        ResumableStudy(tmp_path / "s", sampler=optuna.samplers.RandomSampler(seed=0)) as study,
    ):
        study.optimize(objective, n_trials=1)
    from optuna_resume._checkpoint import read_meta

    infos = list_checkpoints(tmp_path / "s")
    assert read_meta(next(c for c in infos if c.phase == "after").path)["outcome"] == "interrupted"
    final = next(c for c in infos if c.phase == "before" and c.trial == 1)
    assert read_meta(final.path)["interrupted_trial"] == 0


def test_decorator_with_root_works_without_resumable_study(tmp_path: Path) -> None:
    @checkpointed_objective(root=tmp_path / "r")
    def objective(trial: optuna.Trial) -> float:
        return _value(trial)

    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'db.sqlite'}",
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    study.optimize(objective, n_trials=3)
    phases = {(c.trial, c.phase) for c in list_checkpoints(tmp_path / "r")}
    assert {(0, "before"), (1, "before"), (2, "before"), (2, "after")} <= phases


def test_decorator_without_root_outside_a_resumable_study_says_what_to_do() -> None:
    study = optuna.create_study()
    with pytest.raises(OptunaResumeError, match=r"pass root=\.\.\. to the decorator"):
        study.optimize(function_objective, n_trials=1)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.FAIL]


def test_decorator_root_must_match_the_open_study(tmp_path: Path) -> None:
    @checkpointed_objective(root=tmp_path / "elsewhere")
    def objective(trial: optuna.Trial) -> float:
        return _value(trial)

    with (
        ResumableStudy(tmp_path / "s") as study,
        pytest.raises(CheckpointMismatchError, match="omit the root inside a ResumableStudy"),
    ):
        study.optimize(objective, n_trials=1)


def test_frozen_trial_reevaluation_is_passed_through(tmp_path: Path) -> None:
    with ResumableStudy(tmp_path / "s", sampler=optuna.samplers.RandomSampler(seed=0)) as study:
        study.optimize(function_objective, n_trials=1)
    fixed = optuna.trial.FixedTrial(study.best_params)
    assert function_objective(fixed) == study.best_value  # type: ignore[arg-type]
