"""The seed design's functions: same names and signatures, this library's guarantees."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from optuna_resume import (
    CheckpointNotFoundError,
    StudyArgs,
    checkpoint_sampler,
    create_or_load_study,
    create_study_starting_from_trial,
    restore_sampler,
)


def make_objective(folder: Path, crash_at: int | None = None) -> object:
    def objective(trial: optuna.Trial) -> float:
        checkpoint_sampler(trial, folder)
        x = trial.suggest_float("x", -5, 5)
        y = trial.suggest_int("y", 0, 4)
        if trial.number == crash_at:
            raise RuntimeError("crash")
        checkpoint_sampler(trial, folder)
        return (x - 1) ** 2 + y

    return objective


def tpe() -> optuna.samplers.TPESampler:
    return optuna.samplers.TPESampler(seed=5, n_startup_trials=3)


def trials_of(study: optuna.Study) -> list[tuple[int, dict[str, object], object]]:
    return [(t.number, t.params, t.values) for t in study.get_trials()]


def reference(n: int) -> list[tuple[int, dict[str, object], object]]:
    plain = optuna.create_study(sampler=tpe())

    def objective(trial: optuna.Trial) -> float:
        return (trial.suggest_float("x", -5, 5) - 1) ** 2 + trial.suggest_int("y", 0, 4)

    plain.optimize(objective, n_trials=n)
    return trials_of(plain)


def test_restore_sampler_returns_none_without_checkpoints(tmp_path: Path) -> None:
    assert restore_sampler(tmp_path) is None
    assert restore_sampler(tmp_path, trial_id=3) is None


def test_in_memory_study_checkpoints_and_rewinds_within_one_process(tmp_path: Path) -> None:
    storage = optuna.storages.InMemoryStorage()
    args: StudyArgs = {"storage": storage, "study_name": "mem", "sampler": tpe()}
    study = optuna.create_study(**args)
    study.optimize(make_objective(tmp_path), n_trials=6)  # type: ignore[arg-type]
    original = trials_of(study)
    assert original == reference(6)
    assert isinstance(restore_sampler(tmp_path), optuna.samplers.TPESampler)
    assert isinstance(restore_sampler(tmp_path, trial_id=2), optuna.samplers.TPESampler)
    with pytest.raises(CheckpointNotFoundError):
        restore_sampler(tmp_path, trial_id=40)

    rewound = create_study_starting_from_trial(
        2, sampler_path=tmp_path, backup_study=False, backup_samplers=False, **args
    )
    assert [t.number for t in rewound.trials] == [0, 1]
    rewound.optimize(make_objective(tmp_path), n_trials=4)  # type: ignore[arg-type]
    assert trials_of(rewound) == original


def test_create_or_load_study_resumes_a_crash_exactly(tmp_path: Path) -> None:
    args: StudyArgs = {
        "storage": f"sqlite:///{tmp_path / 'seed.db'}",
        "study_name": "seed",
        "sampler": tpe(),
        "load_if_exists": True,
    }
    folder = tmp_path / "samplers"
    study = create_or_load_study(sampler_path=folder, **args)
    with pytest.raises(RuntimeError):
        study.optimize(make_objective(folder, crash_at=4), n_trials=8)  # type: ignore[arg-type]
    args["sampler"] = tpe()
    study = create_or_load_study(folder, backup_study=True, backup_samplers=True, **args)
    study.optimize(make_objective(folder), n_trials=8 - len(study.trials))  # type: ignore[arg-type]
    assert trials_of(study) == reference(8)
    assert (tmp_path / "seed_backup-0.db").is_file()  # the documented name, not "_bkp-"
    assert (tmp_path / "samplers_backup-0").is_dir()


def test_rewind_keeps_other_studies_in_the_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    neighbour = optuna.create_study(storage=url, study_name="neighbour")
    neighbour.optimize(lambda t: t.suggest_float("z", 0, 1), n_trials=3)
    folder = tmp_path / "samplers"
    study = create_or_load_study(folder, storage=url, study_name="mine", sampler=tpe())
    study.optimize(make_objective(folder), n_trials=6)  # type: ignore[arg-type]
    original = trials_of(study)

    rewound = create_study_starting_from_trial(
        3, sampler_path=folder, storage=url, study_name="mine", sampler=tpe()
    )
    assert [t.number for t in rewound.trials] == [0, 1, 2]
    assert len(optuna.load_study(study_name="neighbour", storage=url).trials) == 3
    rewound.optimize(make_objective(folder), n_trials=3)  # type: ignore[arg-type]
    assert trials_of(rewound) == original
    kept = optuna.load_study(
        study_name="mine", storage=f"sqlite:///{tmp_path / 'shared_backup-0.db'}"
    )
    assert len(kept.trials) == 6
    assert [t.state for t in kept.trials] == [TrialState.COMPLETE] * 6


def test_rewind_without_checkpoints_keeps_trials_below(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    plain = optuna.create_study(storage=url, study_name="plain")
    plain.optimize(lambda t: t.suggest_float("z", 0, 1), n_trials=5)
    study = create_study_starting_from_trial(2, storage=url, study_name="plain")
    assert [t.number for t in study.trials] == [0, 1]
    assert (tmp_path / "plain_backup-0.db").is_file()


def test_seed_functions_work_with_optunas_default_sampler(tmp_path: Path) -> None:
    """No sampler passed: Optuna's default, unseeded TPE is restored and rewound."""
    folder = tmp_path / "samplers"
    args: StudyArgs = {"storage": f"sqlite:///{tmp_path / 'db.sqlite'}", "study_name": "d"}
    study = create_or_load_study(sampler_path=folder, **args)
    study.optimize(make_objective(folder), n_trials=4)  # type: ignore[arg-type]
    assert type(restore_sampler(folder)) is optuna.samplers.TPESampler
    assert type(restore_sampler(folder, trial_id=2)) is optuna.samplers.TPESampler
    again = create_or_load_study(sampler_path=folder, **args)
    assert type(again.sampler) is optuna.samplers.TPESampler
    rewound = create_study_starting_from_trial(2, sampler_path=folder, **args)
    assert [t.number for t in rewound.get_trials()] == [0, 1]
    rewound.optimize(make_objective(folder), n_trials=2)  # type: ignore[arg-type]
    assert len(rewound.get_trials(states=(TrialState.COMPLETE,))) == 4


def test_a_pruned_last_trial_does_not_lose_the_state(tmp_path: Path) -> None:
    """Pruned before the second checkpoint_sampler call: the tell keeps the state after it."""

    def objective_pruning_trial_2(folder: Path) -> object:
        def objective(trial: optuna.Trial) -> float:
            checkpoint_sampler(trial, folder)
            x = trial.suggest_float("x", -5, 5)
            y = trial.suggest_int("y", 0, 4)
            if trial.number == 2:
                raise optuna.TrialPruned
            checkpoint_sampler(trial, folder)
            return (x - 1) ** 2 + y

        return objective

    def plain(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -5, 5)
        y = trial.suggest_int("y", 0, 4)
        if trial.number == 2:
            raise optuna.TrialPruned
        return (x - 1) ** 2 + y

    expected = optuna.create_study(sampler=tpe())
    expected.optimize(plain, n_trials=8)
    folder = tmp_path / "samplers"
    args: StudyArgs = {"storage": f"sqlite:///{tmp_path / 'db.sqlite'}", "study_name": "p"}
    first = create_or_load_study(sampler_path=folder, sampler=tpe(), **args)
    first.optimize(objective_pruning_trial_2(folder), n_trials=3)  # type: ignore[arg-type]
    again = create_or_load_study(sampler_path=folder, sampler=tpe(), **args)  # the next run
    again.optimize(objective_pruning_trial_2(folder), n_trials=5)  # type: ignore[arg-type]
    got = [(t.number, t.state, t.params, t.values) for t in again.get_trials()]
    assert got == [(t.number, t.state, t.params, t.values) for t in expected.get_trials()]
