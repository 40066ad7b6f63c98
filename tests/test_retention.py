"""Checkpoint retention: a bounded folder that still rewinds to the trials asked for."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from optuna_resume import (
    CheckpointNotFoundError,
    InvalidArgumentError,
    ResumableStudy,
    checkpointed_objective,
    list_checkpoints,
    optimize_until,
)


@checkpointed_objective()
def objective(trial: optuna.Trial) -> float:
    return trial.suggest_float("x", -1, 1) ** 2


def sampler() -> optuna.samplers.TPESampler:
    return optuna.samplers.TPESampler(seed=0, n_startup_trials=3)


def run(root: Path, n: int, **kwargs: object) -> list[tuple[int, dict[str, object]]]:
    with ResumableStudy(root, sampler=sampler(), **kwargs) as study:  # type: ignore[arg-type]
        optimize_until(study, objective, n)
    return [(t.number, t.params) for t in study.trials]


def befores(root: Path) -> list[int]:
    return [c.trial for c in list_checkpoints(root) if c.phase == "before"]


def test_default_keeps_the_state_before_every_trial(tmp_path: Path) -> None:
    run(tmp_path / "all", 10)
    assert befores(tmp_path / "all") == list(range(11))


def test_keep_last_and_keep_trials_bound_the_folder(tmp_path: Path) -> None:
    root = tmp_path / "bounded"
    reference = run(tmp_path / "reference", 12)
    assert run(root, 12, keep_checkpoints=3, keep_trials=range(0, 100, 5)) == reference
    assert befores(root) == [0, 5, 10, 11, 12]
    # A kept trial can be rewound to, and the study goes on exactly.
    assert run(root, 12, rewind_to=5, keep_checkpoints=3, keep_trials=range(0, 100, 5)) == (
        reference
    )
    # A dropped one cannot, and nothing changes.
    with pytest.raises(CheckpointNotFoundError, match=r"before trials: \[0, 5, 10, 11, 12\]"):
        run(root, 12, rewind_to=7, keep_checkpoints=3)
    assert (
        len(optuna.load_study(study_name="bounded", storage=f"sqlite:///{root}/study.db").trials)
        == 12
    )


def test_turning_retention_on_later_drops_one_old_state_per_new_trial(tmp_path: Path) -> None:
    root = tmp_path / "later"
    run(root, 8)
    run(root, 10, keep_checkpoints=2)
    # No sweep of the first run's states: each new state drops only the one two behind it
    # (8 drops 6, 9 drops 7, the final 10 drops 8).
    assert befores(root) == [0, 1, 2, 3, 4, 5, 9, 10]


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_a_bad_bound_is_refused(tmp_path: Path, bad: object) -> None:
    with pytest.raises(InvalidArgumentError, match="keep_checkpoints must be an int >= 1"):
        ResumableStudy(tmp_path, keep_checkpoints=bad)  # type: ignore[arg-type]


def test_keep_trials_must_be_a_container(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="keep_trials must be a container"):
        ResumableStudy(tmp_path, keep_trials=5)  # type: ignore[arg-type]
