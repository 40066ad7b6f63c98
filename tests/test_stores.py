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
import uuid
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from services import require
from store_suite import CheckpointStoreTests, encoded_state

from optuna_resume._checkpoint import BEFORE
from optuna_resume._state_table import StateRows, drop_study_rows
from optuna_resume._storage import rdb_of, study_uid
from optuna_resume._store import FolderStore


class TestFolderStore(CheckpointStoreTests):
    @pytest.fixture
    def store(self, tmp_path: Path) -> FolderStore:
        return FolderStore(tmp_path / "odd name ü" / "checkpoints")

    def reopen(self, store: FolderStore) -> FolderStore:
        return FolderStore(store.folder)


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
