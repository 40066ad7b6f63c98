"""Every checkpoint store passes the same suite (``store_suite.py``).

The folder store (files in a root) and the database store (rows beside the study's trials
in SQLite, PostgreSQL and MySQL), each on its real place; then what only a folder has: a
writer killed mid-write leaves nothing a reader could take for a state, and durability.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from services import require
from store_suite import CheckpointStoreTests, encoded_state

from optuna_resume._checkpoint import BEFORE
from optuna_resume._optuna._state_table import (
    STATES_TABLE,
    StateRows,
    _in_own_transaction,
    drop_study_rows,
)
from optuna_resume._optuna._storage import rdb_of, study_uid
from optuna_resume._store import FolderStore


class TestFolderStore(CheckpointStoreTests):
    @pytest.fixture
    def store(self, tmp_path: Path) -> FolderStore:
        return FolderStore(tmp_path / "odd name ü" / "checkpoints")

    def reopen(self, store: FolderStore) -> FolderStore:
        return FolderStore(store.folder)


class TestFolderStoreReusingItsListing(TestFolderStore):
    """The same contract while one listing serves an entry's reads (``listing_reused``)."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[FolderStore]:
        store = FolderStore(tmp_path / "checkpoints")
        with store.listing_reused():
            yield store


def _settle(folder: Path) -> None:
    """Date the folder's last change 10 s back, as an earlier session would have left it."""
    then = time.time_ns() - 10_000_000_000
    os.utime(folder, ns=(then, then))


def test_a_reused_listing_sees_what_other_writers_change(tmp_path: Path) -> None:
    store = FolderStore(tmp_path / "checkpoints")
    other = FolderStore(store.folder)  # (another process, or code that bypasses the store)
    store.put(0, BEFORE, b"state 0", {})
    _settle(store.folder)
    with store.listing_reused():
        assert store.keys() == [(0, BEFORE)]
        other.put(1, BEFORE, b"state 1", {})
        assert store.keys() == [(0, BEFORE), (1, BEFORE)]
        _settle(store.folder)
        assert store.keys() == [(0, BEFORE), (1, BEFORE)]
        other.path(0, BEFORE).unlink()
        assert store.keys() == [(1, BEFORE)]
        assert store.remove_from(0) == 1
        assert store.keys() == []


def test_a_settled_folder_is_listed_once_per_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FolderStore(tmp_path / "checkpoints")
    for trial in range(5):
        store.put(trial, BEFORE, b"state", {})
    _settle(store.folder)
    listed: list[object] = []
    real_listdir = os.listdir

    def counting_listdir(path: str | os.PathLike[str]) -> list[str]:
        listed.append(path)
        return real_listdir(path)

    monkeypatch.setattr(os, "listdir", counting_listdir)
    with store.listing_reused():
        assert store.keys() == [(t, BEFORE) for t in range(5)]
        assert len(store.names()) == 5 and store.positions() == list(range(5))
        assert len(listed) == 1
        store.delete(4, BEFORE)  # its own change: listed again
        assert store.keys() == [(t, BEFORE) for t in range(4)]
        assert len(listed) == 2
    assert store.keys() == [(t, BEFORE) for t in range(4)]  # outside: always listed
    assert len(listed) == 3


def _url(kind: str, tmp_path: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    return require(kind)


class TestDatabaseStore(CheckpointStoreTests):
    """The rows of one study's states in its own database (one store per study and worker)."""

    @pytest.fixture(params=["sqlite", "postgres", "mysql"])
    def store(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateRows]:
        url = _url(request.param, tmp_path)
        name = f"stores-{uuid.uuid4().hex[:10]}"
        study = optuna.create_study(study_name=name, storage=url)
        rdb = rdb_of(study._storage)
        assert rdb is not None
        rows = StateRows(rdb, study._study_id, study_uid(rdb, study._study_id), "w")
        self.opened = [rdb]
        try:
            yield rows
        finally:
            drop_study_rows(rdb, study._study_id)
            optuna.delete_study(study_name=name, storage=rdb)
            for opened in self.opened:
                opened.engine.dispose()

    def reopen(self, store: StateRows) -> StateRows:
        rdb = optuna.storages.RDBStorage(store.rdb.engine.url.render_as_string(False))
        self.opened.append(rdb)
        return StateRows(rdb, store.study_id, store.study_uid, store.worker)

    def test_another_studys_or_workers_states_are_not_seen(self, store: StateRows) -> None:
        document, blobs = encoded_state(0, BEFORE)
        store.put(0, BEFORE, document, blobs)
        for other in (
            StateRows(store.rdb, store.study_id, store.study_uid, "another worker"),
            StateRows(store.rdb, store.study_id, "another study's identity", store.worker),
        ):
            assert other.keys() == []
            assert other.get(0, BEFORE) is None
            other.delete(0, BEFORE)
        assert store.get(0, BEFORE) == document


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_a_write_the_server_rolls_back_as_a_deadlocks_victim_is_run_again(
    tmp_path: Path, kind: str
) -> None:
    # Two writers lock two state rows in opposite orders: the server picks one as the
    # deadlock's victim and rolls it back. Its write runs again; both land.
    url = _url(kind, tmp_path)
    name = f"deadlock-{uuid.uuid4().hex[:10]}"
    study = optuna.create_study(study_name=name, storage=url)
    rdb = rdb_of(study._storage)
    assert rdb is not None
    rows = {w: StateRows(rdb, study._study_id, "uid", w) for w in ("a", "b")}
    for worker, store in rows.items():
        store.put(0, BEFORE, worker.encode(), {})
    meeting = threading.Barrier(2, timeout=30)
    attempts: list[str] = []
    failures: list[BaseException] = []
    update = sqlalchemy.text(
        f"UPDATE {STATES_TABLE} SET document = :document "
        "WHERE study_id = :study AND worker = :worker AND trial = 0"
    )

    def writer(first: str, second: str) -> None:
        def work(connection: sqlalchemy.Connection) -> None:
            attempts.append(first)
            values = {"study": study._study_id, "document": f"by {first}".encode()}
            connection.execute(update, {**values, "worker": first})
            if attempts.count(first) == 1:
                meeting.wait()  # both hold their first row
            connection.execute(update, {**values, "worker": second})

        try:
            _in_own_transaction(rdb, work)
        except BaseException as e:
            failures.append(e)

    threads = [
        threading.Thread(target=writer, args=("a", "b")),
        threading.Thread(target=writer, args=("b", "a")),
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert failures == []
        assert len(attempts) == 3  # one of them ran twice
        again = attempts[-1]
        assert [rows[w].get(0, BEFORE) for w in ("a", "b")] == [f"by {again}".encode()] * 2
    finally:
        drop_study_rows(rdb, study._study_id)
        optuna.delete_study(study_name=name, storage=rdb)
        rdb.engine.dispose()


_WRITER = """
import sys
from pathlib import Path
from optuna_resume._store import FolderStore
FolderStore(Path(sys.argv[1])).put(3, "before", b"new state" * 100_000, {})
"""


@pytest.mark.parametrize(
    ("point", "left"),
    [("atomic.written", b"old state"), ("atomic.synced", b"old state"), ("atomic.replaced", None)],
)
def test_a_writer_killed_inside_a_put_leaves_one_whole_state(
    tmp_path: Path, point: str, left: bytes | None
) -> None:
    store = FolderStore(tmp_path / "checkpoints")
    store.put(3, BEFORE, b"old state", {})
    done = subprocess.run(
        [sys.executable, "-c", _WRITER, str(store.folder)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OPTUNA_RESUME_FAULT": f"{point}=kill"},
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    expected = left if left is not None else b"new state" * 100_000
    assert store.keys() == [(3, BEFORE)]
    assert store.get(3, BEFORE) == expected
    store.prepare()  # (as the next session's entry does: the dead writer's leftovers go)
    assert [name for name in os.listdir(store.folder) if name.endswith(".partial")] == []
    assert store.get(3, BEFORE) == expected


@pytest.mark.parametrize("durable", [True, False])
def test_a_durable_folder_store_fsyncs_each_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, durable: bool
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    store = FolderStore(tmp_path / "checkpoints", durable=durable)
    monkeypatch.setattr(os, "fsync", counting_fsync)
    store.put(0, BEFORE, b"state", {})
    assert bool(synced) == durable
    synced.clear()
    store.sync([0], BEFORE)
    assert len(synced) == 2  # the file, then the folder
