"""Bad input gets a clear error that derives from OptunaResumeError, and nothing is lost."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import optuna
import pytest

from optuna_resume import (
    InvalidArgumentError,
    InvalidRewindError,
    OptunaResumeError,
    ResumableStudy,
    RootLockedError,
    UnsupportedStorageError,
    checkpoint_sampler,
    checkpointed_objective,
    create_or_load_study,
    create_study_starting_from_trial,
    list_backups,
    load_sampler,
    optimize_until,
    restore_backup,
    resume_study,
    verify_root,
)


@checkpointed_objective()
def objective(trial: optuna.Trial) -> float:
    return trial.suggest_float("x", 0.0, 1.0)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"keep_backups": 0}, "keep_backups must be an int >= 1"),
        ({"keep_backups": 1.5}, "keep_backups must be an int >= 1"),
        ({"keep_checkpoints": 0}, "keep_checkpoints must be an int >= 1"),
        ({"keep_trials": 3}, "keep_trials must be a container"),
        ({"interrupted_trial": "x"}, "interrupted_trial must be 'rerun'"),
        ({"workspace_policy": "archive"}, "workspace_policy must be 'keep' or 'delete'"),
        ({"worker": "a/b"}, "worker must be 'auto' or an id"),
        # A flag that is not a bool: trusted="no" would be true and run any code.
        ({"trusted": "no"}, "trusted must be True or False"),
        ({"capture_rng": 1}, "capture_rng must be True or False"),
        ({"backup": "no"}, "backup must be True or False"),
        ({"allow_inexact": None}, "allow_inexact must be True or False"),
        ({"handle_sigterm": "yes"}, "handle_sigterm must be True or False"),
        ({"lock_timeout": -1}, "lock_timeout must be a number of seconds >= 0"),
        ({"lock_timeout": float("nan")}, "lock_timeout must be a number of seconds >= 0"),
        ({"lock_timeout": "5"}, "lock_timeout must be a number of seconds >= 0"),
        ({"storage": 5}, "storage must be a URL"),
        ({"study_name": 5}, "study_name must be a str or None"),
        # A name is not a class: as a string it would allow nothing (or, iterated, letters).
        ({"allowed_globals": "mypackage.MySampler"}, "allowed_globals must be a list"),
        ({"allowed_globals": ["mypackage.MySampler"]}, "not their names"),
        ({"allowed_globals": 5}, "allowed_globals must be a list"),
    ],
)
def test_a_bad_option_is_refused_at_the_front(
    tmp_path: Path, arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=message) as error:
        ResumableStudy(tmp_path / "s", **arguments)
    assert isinstance(error.value, OptunaResumeError)
    assert isinstance(error.value, ValueError)
    assert not (tmp_path / "s").exists()  # nothing was made


def test_a_root_that_is_not_a_path_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="root must be a path") as error:
        ResumableStudy(3).__enter__()  # type: ignore[arg-type]
    assert isinstance(error.value, TypeError)  # also what Python users expect for a type


@pytest.mark.parametrize("root", ["", 3])
def test_a_root_that_names_no_folder_is_refused_when_given(tmp_path: Path, root: Any) -> None:
    with pytest.raises(InvalidArgumentError, match=r"root (is an empty path|must be a path)"):
        ResumableStudy(root)
    # The decorator refuses it as it is applied, not at the first trial (left FAIL).
    with pytest.raises(InvalidArgumentError, match=r"root (is an empty path|must be a path)"):
        checkpointed_objective(root=root)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"trusted": "no"}, "trusted must be True or False"),
        ({"capture_rng": "yes"}, "capture_rng must be True or False"),
        ({"allowed_globals": "pkg.Sampler"}, "allowed_globals must be a list"),
    ],
)
def test_the_decorator_refuses_a_bad_option_before_any_trial(
    tmp_path: Path, arguments: dict[str, Any], message: str
) -> None:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(InvalidArgumentError, match=message):
        study.optimize(checkpointed_objective(tmp_path / "r", **arguments)(lambda t: 0.0), 1)
    assert study.trials == []
    assert not (tmp_path / "r").exists()


def test_loading_functions_refuse_a_trusted_that_is_not_a_bool(tmp_path: Path) -> None:
    with ResumableStudy(tmp_path / "s", sampler=optuna.samplers.TPESampler(seed=0)) as study:
        optimize_until(study, objective, 2)
    with pytest.raises(InvalidArgumentError, match="trusted must be True or False"):
        load_sampler(tmp_path / "s", trusted="no")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="trusted must be True or False"):
        verify_root(tmp_path / "s", trusted=1)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="trusted must be True or False"):
        resume_study(study, tmp_path / "s", trusted="no")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="backup must be True or False"):
        resume_study(study, tmp_path / "s", backup="no")  # type: ignore[arg-type]
    assert load_sampler(tmp_path / "s", 1) is not None


@pytest.mark.parametrize("number", [-1, "0", True, 1.0])
def test_restoring_a_backup_by_something_else_than_its_number_is_refused(
    tmp_path: Path, number: Any
) -> None:
    with ResumableStudy(tmp_path / "s", sampler=optuna.samplers.TPESampler(seed=0)) as study:
        optimize_until(study, objective, 3)
    with pytest.raises(InvalidArgumentError, match="a backup's number is an int >= 0"):
        restore_backup(study, tmp_path / "s", number)
    assert len(list_backups(study, tmp_path / "s")) == 1  # (no backup of the refused restore)
    assert len(study.trials) == 3


@pytest.mark.parametrize("n_trials", [-1, 1.5, True])
def test_optimize_until_refuses_a_bad_total(tmp_path: Path, n_trials: Any) -> None:
    with ResumableStudy(tmp_path / "s") as study:
        with pytest.raises(InvalidArgumentError, match="n_trials must be a non-negative int"):
            optimize_until(study, objective, n_trials)
        assert study.trials == []


@pytest.mark.parametrize("url", ["sqlite:///:memory:", "sqlite://"])
def test_sqlite_in_memory_is_refused_like_the_in_memory_storage(tmp_path: Path, url: str) -> None:
    with (
        pytest.raises(UnsupportedStorageError, match="in-memory"),
        ResumableStudy(tmp_path / "s", storage=url),
    ):
        pass


def _seed_objective(folder: Path) -> Any:
    def run(trial: optuna.Trial) -> float:
        checkpoint_sampler(trial, folder)
        x = trial.suggest_float("x", 0.0, 1.0)
        checkpoint_sampler(trial, folder)
        return x

    return run


@pytest.mark.parametrize("trial_id", [-1, -5, 1.0, "2"])
def test_starting_from_a_bad_trial_deletes_nothing(tmp_path: Path, trial_id: Any) -> None:
    storage = f"sqlite:///{tmp_path / 'db.sqlite'}"
    study = optuna.create_study(study_name="s", storage=storage)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=4)
    with pytest.raises(InvalidRewindError, match="trial_id must be the number of a trial"):
        create_study_starting_from_trial(trial_id, storage=storage, study_name="s")
    assert len(optuna.load_study(study_name="s", storage=storage).trials) == 4


@pytest.mark.parametrize("storage", [None, "sqlite:///:memory:"])
def test_create_or_load_study_needs_a_storage_that_outlives_the_process(
    tmp_path: Path, storage: str | None
) -> None:
    with pytest.raises(UnsupportedStorageError, match="outlives the process"):
        create_or_load_study(sampler_path=tmp_path / "samplers", storage=storage)


def test_a_nested_block_on_the_same_root_says_it_is_this_process(tmp_path: Path) -> None:
    with ResumableStudy(tmp_path / "s") as study:
        inner = ResumableStudy(tmp_path / "s", lock_timeout=30)
        with pytest.raises(RootLockedError, match=r"already open in this process"):
            inner.__enter__()  # at once: it does not wait 30 s on its own lock
        optimize_until(study, objective, 1)
    with ResumableStudy(tmp_path / "s") as study:  # released: it opens again
        assert len(study.trials) == 1


def test_an_error_out_of_the_objective_says_it_may_come_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    @checkpointed_objective()
    def buggy(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0.0, 1.0)
        raise ZeroDivisionError("a bug in the objective")

    caplog.set_level(logging.WARNING, logger="optuna_resume")
    with pytest.raises(ZeroDivisionError), ResumableStudy(tmp_path / "s") as study:
        study.optimize(buggy, n_trials=1)
    assert "re-runs trial 0" in caplog.text
    assert "ZeroDivisionError comes from the objective itself, it will come back" in caplog.text
