"""A study's SQLite database: created whole, and healed where Optuna left it half made."""

from __future__ import annotations

import signal
import sqlite3
from multiprocessing.context import ForkServerContext
from pathlib import Path

import optuna
import pytest
import resume_driver
from conftest import run_in_process
from resume_driver import reference, stored_trials

from optuna_resume import ResumableStudy, UnsupportedStorageError

KILLED = -signal.SIGKILL
# Optuna's schema is created one committed statement at a time, in this order.
SCHEMA_STATEMENTS = [
    "CREATE TABLE studies",
    "CREATE UNIQUE INDEX ix_studies_study_name",
    "CREATE TABLE trials",
    "CREATE INDEX ix_trials_study_id",
    "INSERT INTO version_info",
    "INSERT INTO alembic_version",
]


def _indexes(db: Path) -> set[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        return {name for (name,) in rows if name.startswith("ix_")}


def _study_names(db: Path) -> list[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        return [name for (name,) in connection.execute("SELECT study_name FROM studies")]


@pytest.mark.slow
@pytest.mark.parametrize("statement", SCHEMA_STATEMENTS)
def test_a_kill_while_the_database_is_created_leaves_none(
    process_context: ForkServerContext, tmp_path: Path, statement: str
) -> None:
    root = tmp_path / "tpe"
    code = run_in_process(process_context, root=str(root), name="tpe", kill_at_sql=statement)
    assert code == KILLED
    assert not (root / "study.db").exists()  # the half-made schema was a temporary file
    assert run_in_process(process_context, root=str(root), name="tpe", until=4) == 0
    assert run_in_process(process_context, root=str(root), name="tpe") == 0
    assert stored_trials(root) == reference("tpe")
    assert _study_names(root / "study.db") == ["tpe"]
    assert not list(root.glob(".*.partial"))


@pytest.mark.slow
@pytest.mark.parametrize("statement", [s for s in SCHEMA_STATEMENTS if "INDEX" in s])
def test_a_database_plain_optuna_left_half_made_is_healed(
    process_context: ForkServerContext, tmp_path: Path, statement: str
) -> None:
    root = tmp_path / "tpe"
    index = statement.rsplit(" ", 1)[1]  # killed before it is created
    code = run_in_process(
        process_context,
        target=resume_driver.create_with_plain_optuna,
        root=str(root),
        name="tpe",
        kill_at_sql=statement,
    )
    assert code == KILLED
    assert index not in _indexes(root / "study.db")
    # Each entry calls create_study(load_if_exists=True): without the index, a second study
    # of the same name would be added and every later entry would fail.
    assert run_in_process(process_context, root=str(root), name="tpe", until=4) == 0
    assert run_in_process(process_context, root=str(root), name="tpe") == 0
    assert stored_trials(root) == reference("tpe")
    assert _study_names(root / "study.db") == ["tpe"]
    assert _indexes(root / "study.db") == {"ix_studies_study_name", "ix_trials_study_id"}


@pytest.mark.slow
def test_processes_starting_together_on_a_new_database_all_open_it(
    process_context: ForkServerContext, tmp_path: Path
) -> None:
    roots = [tmp_path / name for name in ("a", "b", "c", "d")]
    barrier = process_context.Barrier(len(roots))
    processes = [
        process_context.Process(
            target=resume_driver.run_phase,
            kwargs={
                "root": str(root),
                "name": "tpe",
                "until": 3,
                "storage": "shared",
                "start_together": barrier,
            },
        )
        for root in roots
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(240)
    assert [process.exitcode for process in processes] == [0, 0, 0, 0]
    for root in roots:
        assert stored_trials(root, "shared") == reference("tpe", 3)
    assert sorted(_study_names(tmp_path / "shared.db")) == ["a", "b", "c", "d"]


def test_duplicate_studies_in_a_half_made_database_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "study"
    root.mkdir()
    db = root / "study.db"
    storage = optuna.storages.RDBStorage(f"sqlite:///{db}")
    with sqlite3.connect(db) as connection:
        connection.execute("DROP INDEX ix_studies_study_name")
    direction = [optuna.study.StudyDirection.MINIMIZE]
    storage.create_new_study(direction, "study")
    with pytest.raises(optuna.exceptions.StorageInternalError):
        storage.create_new_study(direction, "study")  # Optuna's own failure, row committed
    storage.engine.dispose()
    with (
        pytest.raises(UnsupportedStorageError) as caught,
        ResumableStudy(root, sampler=optuna.samplers.RandomSampler(seed=0)),
    ):
        pass
    assert str(caught.value) == (
        f"the database sqlite:///{db} lacks Optuna's unique index ix_studies_study_name (a "
        "process was killed while creating the database) and already holds rows that it "
        "would forbid, such as two studies of the same name: keep one of each "
        "(optuna.delete_study removes a study by name; back the database up first), then "
        "run again"
    )
    assert _study_names(db) == ["study", "study"]  # nothing changed
    assert "ix_studies_study_name" not in _indexes(db)
