"""optuna-resume on the real PostgreSQL server: resume, rewind and a consistent backup.

Skipped with its reason where no server answers (a laptop); CI sets
``OPTUNA_RESUME_REQUIRE_SERVICES=1``, which turns that skip into a failure.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from services import require

from optuna_resume import ResumableStudy, checkpointed_objective, list_backups, optimize_until
from optuna_resume._optuna._storage import REWINDS_KEY, rdb_of

N = 8


@pytest.fixture
def postgres() -> Iterator[str]:
    yield require("postgres")


def loss(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5, 5)
    y = trial.suggest_int("y", -3, 3)
    if trial.number == INTERRUPT_AT.get("at"):
        INTERRUPT_AT.clear()
        raise KeyboardInterrupt
    return (x - 1) ** 2 + y**2


objective = checkpointed_objective()(loss)
INTERRUPT_AT: dict[str, int] = {}


def sampler() -> optuna.samplers.TPESampler:
    return optuna.samplers.TPESampler(seed=0, n_startup_trials=3)


def trials(study: optuna.Study) -> list[tuple[int, str, dict[str, object], object]]:
    return [(t.number, t.state.name, t.params, t.values) for t in study.get_trials()]


def test_interrupt_resume_rewind_and_backup_on_postgres(tmp_path: Path, postgres: str) -> None:
    name = f"pg-{uuid.uuid4().hex[:8]}"
    storage = optuna.storages.RDBStorage(postgres)
    bystander = optuna.create_study(storage=storage, study_name=f"{name}-other")
    bystander.optimize(lambda t: t.suggest_float("z", 0, 1), n_trials=3)
    reference = optuna.create_study(sampler=sampler())
    reference.optimize(loss, n_trials=N)
    root = tmp_path / "pg"
    study: optuna.Study | None = None
    try:
        INTERRUPT_AT["at"] = 5
        with (
            pytest.raises(KeyboardInterrupt),
            ResumableStudy(root, storage=postgres, study_name=name, sampler=sampler()) as study,
        ):
            optimize_until(study, objective, N)
        with ResumableStudy(root, storage=postgres, study_name=name, sampler=sampler()) as study:
            optimize_until(study, objective, N)
            assert trials(study) == trials(reference)

        with ResumableStudy(
            root, storage=postgres, study_name=name, sampler=sampler(), rewind_to=3
        ) as study:
            assert len(study.trials) == 3
            optimize_until(study, objective, N)
        assert trials(study) == trials(reference)

        # The backup taken before the rewind is a SQLite copy of the whole study.
        backups = list_backups(study, root)
        before_rewind = backups[-1]
        assert before_rewind.storage_path is not None
        copy = optuna.load_study(
            study_name=name, storage=f"sqlite:///{before_rewind.storage_path}"
        )
        assert trials(copy) == trials(reference)
        live_attrs = study._storage.get_study_system_attrs(study._study_id)
        assert live_attrs.pop(REWINDS_KEY) == [3]  # the live study records its rewind
        assert copy._storage.get_study_system_attrs(copy._study_id) == live_attrs
        other = optuna.load_study(study_name=f"{name}-other", storage=storage)
        assert trials(other) == trials(bystander)
    finally:
        for study_name in (name, f"{name}-other"):
            optuna.delete_study(study_name=study_name, storage=storage)
        storage.engine.dispose()
        rdb = rdb_of(study._storage) if study is not None else None
        if rdb is not None:  # the study was used after its block: connections reopened
            rdb.engine.dispose()
