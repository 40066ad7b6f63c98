"""One single-process session per study, whatever root or host it runs from.

Two sessions on one study from two roots (two folders, or two hosts sharing a database)
would each go on from the same state and draw the same parameters. The second is refused,
naming the first; a holder that died is taken over, at once on the same host and once its
lease goes stale from another.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from conftest import another_process
from services import require

import optuna_resume
import optuna_resume._lease as lease_module
from optuna_resume import ResumableStudy, RootLockedError, list_backups
from optuna_resume._lease import worker_lease_key
from optuna_resume._optuna._access import storage_of, study_id_of
from optuna_resume._optuna._storage import LEASE_KEY

HOLDER = """
import sys
import optuna
from optuna_resume import ResumableStudy
optuna.logging.set_verbosity(optuna.logging.ERROR)
root, url, name = sys.argv[1:4]
storage = url
if url.startswith("journal:"):
    from optuna.storages.journal import JournalFileBackend
    storage = optuna.storages.JournalStorage(JournalFileBackend(url[len("journal:"):]))
with ResumableStudy(
    root, storage=storage, study_name=name, sampler=optuna.samplers.TPESampler(seed=0)
) as study:
    study.optimize(lambda t: t.suggest_float("x", 0, 1) + t.suggest_int("y", 0, 9), n_trials=3)
    print("ready", flush=True)
    sys.stdin.readline()
"""


def objective(trial: optuna.Trial) -> float:
    return trial.suggest_float("x", 0, 1) + trial.suggest_int("y", 0, 9)


def uninterrupted(n_trials: int) -> list[dict[str, Any]]:
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(objective, n_trials=n_trials)
    return [t.params for t in study.trials]


def _storage(kind: str, tmp_path: Path) -> tuple[str, Any]:
    """(what the holder process is given, what this process opens) for storage ``kind``."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'shared.db'}"
        return url, url
    if kind == "journal":
        from optuna.storages.journal import JournalFileBackend

        path = tmp_path / "shared.log"
        return f"journal:{path}", optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    url = require(kind)
    return url, url


@contextlib.contextmanager
def holder_process(kind: str, tmp_path: Path) -> Iterator[tuple[Any, Any, str]]:
    """A real process with a session open from root ``first`` on a new study of storage
    ``kind``; yields it, the storage as this process opens it, and the study's name."""
    given, storage = _storage(kind, tmp_path)
    name = f"lease-{uuid.uuid4().hex[:8]}"
    with another_process(HOLDER, tmp_path / "first", given, name) as (holder, line):
        assert line == "ready"
        yield holder, storage, name


@pytest.mark.parametrize("kind", ["sqlite", "journal", "postgres"])
def test_a_second_session_from_another_root_is_refused_while_the_first_lives(
    tmp_path: Path, kind: str
) -> None:
    with holder_process(kind, tmp_path) as (holder, storage, name):
        started = time.monotonic()
        with pytest.raises(RootLockedError, match=f"PID {holder.pid} on {socket.gethostname()}"):
            ResumableStudy(tmp_path / "second", storage=storage, study_name=name).__enter__()
        assert time.monotonic() - started < 5
        assert not (tmp_path / "second" / "checkpoints").exists() or not any(
            (tmp_path / "second" / "checkpoints").glob("*.pt")
        )
    # The first has closed its block: the next session goes on (with the journal storage,
    # from the first root, which holds the states).
    root = tmp_path / ("first" if kind == "journal" else "second")
    with ResumableStudy(root, storage=storage, study_name=name) as study:
        study.optimize(objective, n_trials=3)
        assert [t.params for t in study.trials] == uninterrupted(6)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_killed_holder_is_taken_over_at_once_from_a_new_empty_root(
    tmp_path: Path, kind: str
) -> None:
    with holder_process(kind, tmp_path) as (holder, storage, name):
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(30)
    started = time.monotonic()
    with ResumableStudy(tmp_path / "new", storage=storage, study_name=name) as study:
        assert time.monotonic() - started < 5
        study.optimize(objective, n_trials=3)
        assert [t.params for t in study.trials] == uninterrupted(6)


def _record(storage: Any, name: str) -> Any:
    study = optuna.load_study(study_name=name, storage=storage)
    return study._storage.get_study_system_attrs(study._study_id).get(LEASE_KEY)


def _plant(url: str, name: str, renewed: float) -> None:
    """A lease of a session on another host, renewed at ``renewed``."""
    study = optuna.create_study(study_name=name, storage=url, load_if_exists=True)
    record: dict[str, Any] = {
        "host": "elsewhere",
        "pid": 1,
        "root": "/x",
        "token": "t",
        "renewed": renewed,
    }
    study._storage.set_study_system_attr(study._study_id, LEASE_KEY, record)


@pytest.fixture
def short_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    """Leases renewed every 0.2 s and stale after 1.5 s (instead of 10 s and 60 s)."""
    monkeypatch.setattr(lease_module, "heartbeat_settings", lambda storage: (0.2, 1.5))
    monkeypatch.setattr(lease_module, "_POLL", 0.05)


def test_a_stale_lease_of_another_host_is_taken_over_at_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    _plant(url, "s", renewed=time.time() - 3600)
    started = time.monotonic()
    with ResumableStudy(tmp_path / "r", storage=url, study_name="s"):
        assert time.monotonic() - started < 5
        assert _record(url, "s")["host"] == socket.gethostname()


@pytest.mark.usefixtures("short_lease")
def test_a_fresh_lease_of_another_host_is_waited_for_until_it_goes_stale(tmp_path: Path) -> None:
    """A preempted job restarted elsewhere: its old lease is not renewed any more."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    renewed = time.time()
    _plant(url, "s", renewed=renewed)
    started = time.monotonic()
    with ResumableStudy(tmp_path / "r", storage=url, study_name="s"):
        entered = time.time()
        assert _record(url, "s")["pid"] == os.getpid()
    assert entered - renewed >= 1.5  # not before the lease went stale
    assert time.monotonic() - started < 10


@contextlib.contextmanager
def renewed_elsewhere(url: str, name: str, every: float) -> Iterator[None]:
    """A live session on another host: its lease renewed every ``every`` seconds."""
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(every):
            _plant(url, name, renewed=time.time())

    _plant(url, name, renewed=time.time())
    thread = threading.Thread(target=renew)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@pytest.mark.usefixtures("short_lease")
def test_a_live_session_of_another_host_is_refused_and_its_lease_kept(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    with renewed_elsewhere(url, "s", every=0.2):
        with pytest.raises(RootLockedError, match="PID 1 on elsewhere, root /x"):
            ResumableStudy(tmp_path / "r", storage=url, study_name="s").__enter__()
        assert _record(url, "s")["host"] == "elsewhere"


@pytest.mark.usefixtures("short_lease")
def test_the_lease_is_renewed_while_open_and_ended_at_the_exit(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    with ResumableStudy(tmp_path / "r", storage=url, study_name="s") as study:
        first = _record(url, "s")["renewed"]
        study.optimize(objective, n_trials=2)
        time.sleep(0.6)
        assert _record(url, "s")["renewed"] > first
    assert _record(url, "s") is None


def test_the_lease_is_no_change_that_takes_a_backup(tmp_path: Path) -> None:
    with ResumableStudy(tmp_path / "s", backup=True) as study:
        study.optimize(objective, n_trials=2)
    with ResumableStudy(tmp_path / "s", backup=True) as study:
        pass
    with ResumableStudy(tmp_path / "s", backup=True) as study:
        assert len(list_backups(study, tmp_path / "s")) == 2  # entries 1 and 2, not 3


def _trials(storage: Any, name: str) -> list[tuple[int, str, dict[str, Any]]]:
    study = optuna.load_study(study_name=name, storage=storage)
    return [(t.number, t.state.name, t.params) for t in study.trials]


@pytest.mark.parametrize("action", ["rewind", "restore_backup", "resume_study"])
def test_the_functions_refuse_to_change_a_study_another_live_session_runs(
    tmp_path: Path, action: str
) -> None:
    """``rewind`` from another root under a live session would pull its trials away."""
    with holder_process("sqlite", tmp_path) as (holder, storage, name):
        before = _trials(storage, name)
        study = optuna.load_study(study_name=name, storage=storage)
        calls: dict[str, Callable[[], object]] = {
            "rewind": lambda: optuna_resume.rewind(study, tmp_path / "second", 1),
            "restore_backup": lambda: optuna_resume.restore_backup(study, tmp_path / "first", 0),
            "resume_study": lambda: optuna_resume.resume_study(study, tmp_path / "second"),
        }
        with pytest.raises(RootLockedError, match=f"PID {holder.pid} on {socket.gethostname()}"):
            calls[action]()
        assert _trials(storage, name) == before
        assert _record(storage, name)["pid"] == holder.pid  # its lease untouched
    # The session has ended: the same call goes through, and the lease is not left behind.
    calls[action]()
    assert _record(storage, name) is None


def test_a_rewind_inside_this_process_s_own_session_keeps_its_lease(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    sampler = optuna.samplers.TPESampler(seed=0)
    with ResumableStudy(tmp_path / "r", storage=url, study_name="s", sampler=sampler) as study:
        study.optimize(objective, n_trials=4)
        token = _record(url, "s")["token"]
        optuna_resume.rewind(study, tmp_path / "r", 2)
        assert _record(url, "s")["token"] == token
        study.optimize(objective, n_trials=2)
        assert [t.params for t in study.trials] == uninterrupted(4)


def test_status_names_the_session_of_another_root_that_holds_the_study(tmp_path: Path) -> None:
    (tmp_path / "second").mkdir()  # another root, empty: the states are in the database
    with holder_process("sqlite", tmp_path) as (holder, storage, name):
        status = optuna_resume.study_status(tmp_path / "second", storage, name)
        assert status.lock_holder is None  # not this root's session
        assert f"PID {holder.pid} on {socket.gethostname()}" in str(status.study_holder)
        assert status.as_dict()["study_session"] == status.study_holder
        assert f"PID {holder.pid}" in dict(status.rows())["study session"]
    status = optuna_resume.study_status(tmp_path / "second", storage, name)
    assert status.study_holder is None
    assert dict(status.rows())["study session"] == "none"


def test_a_worker_s_lease_is_no_change_and_no_backup_holds_it(tmp_path: Path) -> None:
    """On the journal storage a worker's lease is renewed in the study: not a change that
    takes a backup, and cleared in the backup's copy (a restored backup holds no worker)."""
    from optuna.storages.journal import JournalFileBackend

    storage = optuna.storages.JournalStorage(JournalFileBackend(str(tmp_path / "j.log")))
    reports = []
    for n_trials in (2, 0, 0):
        session = ResumableStudy(tmp_path / "r", storage=storage, study_name="s", worker="w")
        with session as study:
            study.optimize(objective, n_trials=n_trials)
            key = worker_lease_key("w")
            assert study._storage.get_study_system_attrs(study._study_id)[key]["pid"] == (
                os.getpid()
            )
        assert session.report is not None
        reports.append(session.report.backup)
    assert reports[1] is not None and reports[2] is None  # the third entry: unchanged
    copy = reports[1].storage_path
    assert copy is not None
    backed_up = optuna.load_study(study_name=None, storage=f"sqlite:///{copy}")
    attrs = backed_up._storage.get_study_system_attrs(backed_up._study_id)
    assert attrs.get(key) is None
    assert study._storage.get_study_system_attrs(study._study_id)[key] is None  # ended


@pytest.mark.parametrize("kind", ["sqlite", "postgres", "mysql"])
def test_a_claimer_that_stalls_after_finding_no_holder_does_not_take_a_live_lease(
    tmp_path: Path, kind: str
) -> None:
    # B reads no holder, then stalls (a GC pause, a slow network) while another process
    # takes the lease. On an RDB storage B's claim checks and writes in one transaction: it
    # sees the live holder and backs off; both holding the study would draw alike.
    url = f"sqlite:///{tmp_path / 'shared.db'}" if kind == "sqlite" else require(kind)
    name = f"lease-{uuid.uuid4().hex[:8]}"
    storage = optuna.storages.RDBStorage(url)
    study = optuna.create_study(study_name=name, storage=storage)
    claimer = lease_module.StudyLease(study, tmp_path / "b")
    read = claimer._read
    meanwhile = contextlib.ExitStack()
    holders: list[int] = []

    def read_then_stall() -> dict[str, Any] | None:
        record = read()
        if not holders:
            holder, line = meanwhile.enter_context(
                another_process(HOLDER, tmp_path / "a", url, name)
            )
            assert line == "ready"
            holders.append(holder.pid)
        return record

    claimer._read = read_then_stall  # type: ignore[method-assign]
    try:
        with meanwhile:
            try:
                assert claimer.try_acquire() is False
                attrs = storage_of(study).get_study_system_attrs(study_id_of(study))
                assert attrs[LEASE_KEY]["pid"] == holders[0]
            finally:
                claimer.release()
        optuna.delete_study(study_name=name, storage=storage)
    finally:
        storage.engine.dispose()
