"""States committed with their trials in the study's database: any root, any host.

On SQLite, PostgreSQL and MySQL the state before trial N is committed with trial N and the
state after it with its finish, so the database alone resumes the study exactly: from a new,
empty root (another host, a lost folder), after a real SIGKILL anywhere, including inside
the very transaction that writes a state.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy
from services import require

from optuna_resume import list_checkpoints
from optuna_resume._optuna._state_table import ROW_WINDOW, STATES_TABLE, TRIM_EVERY

DRIVER = Path(__file__).with_name("state_rows_driver.py")
TOTAL = 10


def run(
    root: Path,
    storage: str,
    name: str,
    total: int,
    kill_at: int = -1,
    rewind_to: int | None = None,
    **env: str,
) -> subprocess.CompletedProcess[str]:
    rewind = [] if rewind_to is None else [str(rewind_to)]
    return subprocess.run(
        [sys.executable, str(DRIVER), str(root), storage, name, str(total), str(kill_at), *rewind],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
        cwd=root.parent,
    )


def complete_trials(done: subprocess.CompletedProcess[str]) -> list[object]:
    assert done.returncode == 0, done.stderr
    result: list[object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def trial_numbers(storage: str, name: str) -> set[int]:
    engine = sqlalchemy.create_engine(storage)
    query = sqlalchemy.text(
        "SELECT t.number FROM trials t JOIN studies s ON t.study_id = s.study_id "
        "WHERE s.study_name = :name"
    )
    with engine.connect() as connection:
        found = {int(n) for n in connection.execute(query, {"name": name}).scalars()}
    engine.dispose()
    return found


def delete_studies(storage: str, *names: str) -> None:
    rdb = optuna.storages.RDBStorage(storage)
    for name in names:
        rdb.delete_study(rdb.get_study_id_from_name(name))
    rdb.engine.dispose()


def rows_of(storage: str, name: str) -> dict[str, set[int]]:
    """The trial numbers of the states the database holds for study ``name``, by phase."""
    engine = sqlalchemy.create_engine(storage)
    query = sqlalchemy.text(
        f"SELECT s.trial, s.phase FROM {STATES_TABLE} s JOIN studies t "
        "ON s.study_id = t.study_id WHERE t.study_name = :name"
    )
    with engine.connect() as connection:
        found: dict[str, set[int]] = {"before": set(), "after": set()}
        for trial, phase in connection.execute(query, {"name": name}):
            found[phase].add(trial)
    engine.dispose()
    return found


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    return require(request.param)


def test_a_killed_study_resumes_exactly_from_an_empty_root(tmp_path: Path, storage: str) -> None:
    name = f"rows-{uuid.uuid4().hex[:10]}"
    reference = complete_trials(run(tmp_path / "reference", storage, f"{name}-ref", TOTAL))

    host_a = tmp_path / "host-a"
    killed = run(host_a, storage, name, TOTAL, kill_at=4)
    assert killed.returncode == -9, killed.stderr
    shutil.rmtree(host_a)  # the first host is gone with its folder

    host_b = tmp_path / "host b #2"  # another host: an empty root of another name
    killed = run(host_b, storage, name, TOTAL, kill_at=7)
    assert killed.returncode == -9, killed.stderr
    # Every trial the database holds was committed with the state before it.
    assert trial_numbers(storage, name) <= rows_of(storage, name)["before"]

    host_c = tmp_path / "host-c"
    assert complete_trials(run(host_c, storage, name, TOTAL)) == reference
    if not storage.startswith("sqlite"):
        delete_studies(storage, name, f"{name}-ref")


@pytest.mark.parametrize("hit", [1, 4, 6])
def test_a_kill_inside_the_transaction_of_a_state_loses_nothing(tmp_path: Path, hit: int) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    reference = complete_trials(run(tmp_path / "reference", storage, "ref", TOTAL))
    killed = run(
        tmp_path / "first", storage, "s", TOTAL, OPTUNA_RESUME_FAULT=f"state_row.written@{hit}"
    )
    assert killed.returncode == -9, killed.stderr
    # The transaction was not committed: no state row without its trial, no trial without.
    assert trial_numbers(storage, "s") <= rows_of(storage, "s")["before"]
    assert complete_trials(run(tmp_path / "second", storage, "s", TOTAL)) == reference


def test_the_database_keeps_one_state_after_a_trial_and_drops_rewound_ones(
    tmp_path: Path,
) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    reference = complete_trials(run(tmp_path / "reference", storage, "ref", TOTAL))
    complete_trials(run(tmp_path / "a", storage, "s", 6))
    rows = rows_of(storage, "s")
    assert rows["before"] >= set(range(6)) and rows["after"] == {5}
    rewound = run(tmp_path / "b", storage, "s", 3, rewind_to=3)
    # From an empty root the rewind finds the state before trial 3 in the database.
    assert complete_trials(rewound) == reference[:3]
    rows = rows_of(storage, "s")
    assert max(rows["before"]) == 3 and not rows["after"] - {2}
    assert complete_trials(run(tmp_path / "c", storage, "s", TOTAL)) == reference


def test_the_database_keeps_a_window_of_states_and_the_folder_keeps_all(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    total = ROW_WINDOW + 30
    reference = complete_trials(run(tmp_path / "reference", storage, "ref", total + 5))
    complete_trials(run(tmp_path / "a", storage, "s", total))
    rows = rows_of(storage, "s")
    # Bounded: backups and truncations of a large study handle few rows (those that leave
    # the window go every TRIM_EVERY trials).
    assert rows["before"] >= set(range(total - ROW_WINDOW + 1, total + 1))
    assert len(rows["before"]) <= ROW_WINDOW + TRIM_EVERY
    assert rows["after"] == {total - 1}
    files = {c.trial for c in list_checkpoints(tmp_path / "a") if c.phase == "before"}
    assert files == set(range(total + 1))

    # From an empty root: goes on exactly; a rewind out of the window says what is there.
    assert complete_trials(run(tmp_path / "b", storage, "s", total + 5)) == reference
    old = run(tmp_path / "c", storage, "s", 3, rewind_to=3)
    assert old.returncode == 1 and "CheckpointNotFoundError" in old.stderr, old.stderr
    # From the root that holds every state, the same rewind goes on exactly.
    rewound = run(tmp_path / "a", storage, "s", 3, rewind_to=3)
    assert complete_trials(rewound) == reference[:3]


@pytest.mark.parametrize("step", [1, 2, 7])
def test_the_window_stays_bounded_whatever_trial_numbers_a_stream_sees(
    tmp_path: Path, step: int
) -> None:
    # A worker among others may see only odd numbers (or every 7th): its rows that leave
    # the window must still go, though its trial numbers never hit a multiple of TRIM_EVERY.
    from optuna_resume._optuna._state_table import StateRows

    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'study.db'}")
    study_id = storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], "s")
    rows = StateRows(storage, study_id, "uid", "w")
    written = list(range(1, 1 + step * (ROW_WINDOW + 5 * TRIM_EVERY), step))
    for trial in written:
        rows.write_now(trial, "before", b"before %d" % trial, {})
        # (A worker keeps the state after each of its trials: a window of them too.)
        rows.write_now(trial, "after", b"after %d" % trial, {}, keep_all_afters=True)
    held = rows.keys()  # (a store's keys, oldest first)
    newest = written[-1]
    for phase in ("before", "after"):
        kept = [trial for trial, kind in held if kind == phase]
        assert kept == [t for t in written if t >= min(kept)]  # the newest, none missing
        assert min(kept) <= newest - ROW_WINDOW + 1 or kept == written
        # Bounded: those older than the window go within TRIM_EVERY of this stream's writes.
        assert min(kept) > newest - ROW_WINDOW - step * TRIM_EVERY
    storage.engine.dispose()


@pytest.mark.parametrize("upsert", [True, False])
def test_a_state_written_again_replaces_its_row_and_no_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, upsert: bool
) -> None:
    # One statement where the database has an upsert; a delete and an insert where it has
    # none (SQLite before 3.24): either way the row of the same key is replaced.
    import sqlite3

    from optuna_resume._optuna import _state_table

    if not upsert:
        monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 23, 0))
    monkeypatch.setattr(_state_table, "_statements", {})
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'study.db'}")
    study_id = storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], "s")
    rows = _state_table.StateRows(storage, study_id, "uid", "")
    for trial in range(3):
        rows.write_now(trial, "before", b"first %d" % trial, {})
    rows.write_now(1, "before", b"again", {})
    assert (_state_table._statements["sqlite"]["put"] is not None) == upsert
    assert [rows.document(t, "before") for t in range(3)] == [b"first 0", b"again", b"first 2"]
    storage.engine.dispose()


def test_a_damaged_file_is_replaced_by_the_state_committed_with_its_trial(
    tmp_path: Path,
) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    reference = complete_trials(run(tmp_path / "reference", storage, "ref", TOTAL))
    killed = run(tmp_path / "a", storage, "s", TOTAL, kill_at=5)
    assert killed.returncode == -9, killed.stderr
    damaged = tmp_path / "a" / "checkpoints" / "trial-000005.before.pt"
    damaged.write_bytes(damaged.read_bytes()[:100])  # e.g. a power loss before the writeback
    resumed = run(tmp_path / "a", storage, "s", TOTAL)
    assert complete_trials(resumed) == reference
    assert "replaces it" in resumed.stderr


@pytest.mark.parametrize("kill", ["1:objective", "3:told", "5:objective", "6:told"])
def test_an_ask_tell_loop_with_enqueued_trials_resumes_from_an_empty_root(
    tmp_path: Path, kill: str
) -> None:
    """Pops of enqueued trials and tells commit their states too (no decorated objective)."""
    driver = str(Path(__file__).with_name("asktell_rows_driver.py"))

    def loop(root: str, storage: str, kill_at: str = "-") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, driver, str(tmp_path / root), storage, "9", kill_at],
            capture_output=True,
            text=True,
            timeout=300,
        )

    reference = complete_trials(loop("reference", f"sqlite:///{tmp_path / 'ref.db'}"))
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    killed = loop("first", storage, kill)
    assert killed.returncode == -9, killed.stderr
    shutil.rmtree(tmp_path / "first")
    assert complete_trials(loop("second", storage)) == reference


def test_a_postgres_backup_holds_the_states_and_a_restore_puts_them_back(tmp_path: Path) -> None:
    url = require("postgres")
    name = f"rows-{uuid.uuid4().hex[:10]}"
    reference = complete_trials(run(tmp_path / "reference", url, f"{name}-ref", 6))
    complete_trials(run(tmp_path / "a", url, name, 4))
    complete_trials(run(tmp_path / "a", url, name, 6))  # its entry backs up the first 4
    command = ["optuna_resume", "restore", str(tmp_path / "a"), "1"]
    restored = subprocess.run(
        [sys.executable, "-m", *command, "--storage", url, "--study-name", name],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert restored.returncode == 0, restored.stderr
    assert "has 4 trial(s)" in restored.stdout
    assert rows_of(url, name)["before"] >= set(range(5))
    # The restored study goes on exactly from the database alone (a new, empty root).
    assert complete_trials(run(tmp_path / "b", url, name, 6)) == reference
    delete_studies(url, name, f"{name}-ref")


def test_a_finish_the_server_rolls_back_as_a_deadlocks_victim_is_committed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Optuna runs the creation of a trial again after a deadlock, not its finish; our state
    # row in that transaction takes locks beside other workers' rows (MySQL, PostgreSQL).
    import pymysql  # type: ignore[import-untyped]

    from optuna_resume import ResumableStudy, checkpointed_objective
    from optuna_resume._optuna import _state_table

    write = _state_table._write
    victims: list[int] = []

    def write_or_deadlock(connection: sqlalchemy.Connection, pending: Any) -> None:
        if pending.phase == "after" and not victims:
            victims.append(pending.trial)
            raise sqlalchemy.exc.OperationalError(
                "DELETE FROM optuna_resume_states ...",
                {},
                pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock"),
            )
        write(connection, pending)

    monkeypatch.setattr(_state_table, "_write", write_or_deadlock)
    root = tmp_path / "study"

    @checkpointed_objective()
    def objective(trial: optuna.Trial) -> float:
        return trial.suggest_float("x", -1, 1) ** 2

    with ResumableStudy(root, sampler=optuna.samplers.TPESampler(seed=0)) as study:
        study.optimize(objective, n_trials=3)
        states = [t.state for t in study.trials]
    assert victims == [0]
    assert states == [optuna.trial.TrialState.COMPLETE] * 3
    rows = sqlalchemy.create_engine(f"sqlite:///{root / 'study.db'}")
    with rows.connect() as connection:
        afters = connection.execute(
            sqlalchemy.text(f"SELECT trial FROM {STATES_TABLE} WHERE phase = 'after'")
        ).all()
    rows.dispose()
    assert afters == [(2,)]  # (the newest state after a trial is the one kept)


def test_the_state_rows_of_a_deleted_study_go_at_the_next_entry(tmp_path: Path) -> None:
    from optuna_resume import ResumableStudy

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    for name in ("deleted", "kept"):
        with ResumableStudy(tmp_path / name, storage=url) as study:
            study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)

    def rows_by_study() -> dict[str, int]:
        engine = sqlalchemy.create_engine(url)
        query = sqlalchemy.text(
            f"SELECT s.study_name, COUNT(*) FROM {STATES_TABLE} r "
            "LEFT JOIN studies s ON s.study_id = r.study_id GROUP BY s.study_name"
        )
        with engine.connect() as connection:
            found = {str(name): int(n) for name, n in connection.execute(query)}
        engine.dispose()
        return found

    assert set(rows_by_study()) == {"deleted", "kept"}
    optuna.delete_study(study_name="deleted", storage=url)
    assert set(rows_by_study()) == {"None", "kept"}  # (Optuna does not know our table)
    kept = rows_by_study()["kept"]
    with ResumableStudy(tmp_path / "kept", storage=url) as study:
        assert len(study.trials) == 3
    assert rows_by_study() == {"kept": kept}
