"""The study's lease: one single-process session per study, whatever root or host it uses.

A root's lock keeps two sessions out of one folder; two sessions on one study from two roots
(two folders, or two hosts sharing a database) would each go on from the same state and
draw the same parameters. So a session also records itself in the study, in the storage
every host shares: a study system attribute naming its host, PID and root, renewed every
``interval`` seconds by a daemon thread and cleared at the exit.

Whether the holder is alive is read where it can be proven: on the same host from its PID;
from another host by the renewals (a record not renewed for ``grace`` seconds is stale, by
the wall clocks of the two hosts, which are assumed to agree within that). A holder that
cannot be proven dead is alive. A session that finds a fresh record of another host waits
for it to be renewed (alive: refused) or to go stale (a killed job: taken over), at most
``grace`` seconds.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna

from ._atomic import pid_alive
from ._error import RootLockedError
from ._optuna import _storage
from ._optuna._access import storage_of, study_id_of
from ._optuna._storage import (
    LEASE_KEY,
    WORKER_LEASE_PREFIX,
    claim_study_system_attr,
    heartbeat_settings,
)

_POLL = 0.5  # seconds between reads while waiting for another host's record
_SETTLE = 0.05  # seconds between writing the record and reading it back
_logger = logging.getLogger("optuna_resume")


def lease_settings(storage: Any) -> tuple[float, float]:
    """(renewal interval, grace period) of the leases recorded in ``storage``."""
    return heartbeat_settings(storage) or (_storage.HEARTBEAT_INTERVAL, _storage.GRACE_PERIOD)


def worker_lease_key(worker: str) -> str:
    """The study system attribute holding worker ``worker``'s lease."""
    return f"{WORKER_LEASE_PREFIX}{worker}"


class StudyLease:
    """The lease of one session (or one worker id) on one study.

    Args:
        study: The study (its id is read at each use: a rewind on the journal storage
            rebuilds the study under a new one).
        root: The session's root, recorded for messages.
        worker: A worker id: the lease is that worker's (one live process per worker id,
            whatever its root or host), not the study's.
    """

    def __init__(self, study: optuna.Study, root: Path, worker: str | None = None) -> None:
        self._study = study
        self._storage = storage_of(study)
        self._study_name = study.study_name
        self._root = root
        self._worker = worker
        self._key = LEASE_KEY if worker is None else worker_lease_key(worker)
        self.interval, self.grace = lease_settings(self._storage)
        self._token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self, timeout: float = 0.0) -> None:
        """Take the lease, or raise :class:`RootLockedError` naming the live holder.

        Args:
            timeout: Seconds to wait for a live holder to let go.
        """
        start = time.monotonic()
        first_renewal: Any = None
        while True:
            record = self._read()
            if record is None or self._is_dead(record):
                if self._claim():
                    break
                continue  # another session wrote its own at the same moment: look again
            if record.get("host") == socket.gethostname():
                renewed_since = True  # its PID runs: alive
            else:
                if first_renewal is None:
                    first_renewal = record.get("renewed")
                renewed_since = record.get("renewed") != first_renewal
            if renewed_since and time.monotonic() - start >= timeout:
                raise RootLockedError(self._refusal(record))
            time.sleep(_POLL)
        self._start_renewals()

    def try_acquire(self) -> bool:
        """Take the lease if nobody alive holds it; never wait (``"auto"`` worker ids).

        A record that is not proven dead (this host: its PID runs; another host: renewed
        within the grace period) counts as held, even by a process killed a moment ago.
        """
        record = self._read()
        if record is not None and not self._is_dead(record):
            return False
        if not self._claim():
            return False  # another process claimed it at the same moment
        self._start_renewals()
        return True

    def _claim(self) -> bool:
        """Take the lease if nobody alive holds it: whether it is ours now.

        On an RDB storage the check and the write are one transaction. Elsewhere this
        session's record is written, then read back after a moment: whether it is still ours.
        """
        won = claim_study_system_attr(
            self._storage, study_id_of(self._study), self._key, self._record(), self._claimable
        )
        if won is not None:
            return won
        self._write()
        time.sleep(_SETTLE)
        ours = self._read()
        return ours is not None and ours.get("token") == self._token

    def _ours(self, current: Any) -> bool:
        """Whether a lease whose record is ``current`` is this session's to renew (a record
        cleared meanwhile is written again)."""
        return not isinstance(current, dict) or current.get("token") == self._token

    def _claimable(self, current: Any) -> bool:
        """Whether a lease whose record is ``current`` may be taken."""
        return self._ours(current) or self._is_dead(current)

    def _start_renewals(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._renew, name="optuna-resume-study-lease", daemon=True
        )
        self._thread.start()

    def _refusal(self, record: dict[str, Any]) -> str:
        if self._worker is not None:
            return (
                f"worker {self._worker} of study {self._study_name!r} is running in another "
                f"live process ({describe_holder(record)}). Two processes of one worker id would "
                "share one checkpoint stream. Stop that process first (a killed one on "
                f"another host is taken over {self.grace:g} s after its last renewal), or "
                "start this one with another worker id; nothing was changed."
            )
        return (
            f"study {self._study_name!r} is in use by another live session "
            f"({describe_holder(record)}). "
            "Two sessions on one study would each go on from the same state and draw "
            "the same parameters. Wait for it to finish or stop that process (its "
            "lease ends when it exits; one on another host is taken over "
            f"{self.grace:g} s after its last renewal), or run several processes as "
            "workers (worker=...)."
        )

    def release(self) -> None:
        """End the lease (unless another session has taken it over since)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with contextlib.suppress(Exception):  # a failed storage: the record goes stale
            record = self._read()
            if record is not None and record.get("token") == self._token:
                self._storage.set_study_system_attr(study_id_of(self._study), self._key, None)

    def _read(self) -> dict[str, Any] | None:
        return _record_of(self._study, self._key)

    def holder(self) -> str | None:
        """The live holder of the study's lease, described, or ``None`` (read only, no wait).

        A record of this host counts as live while its PID runs (this process's included);
        one of another host until it has gone unrenewed for the grace period.
        """
        record = self._read()
        if record is None:
            return None
        ours = record.get("host") == socket.gethostname() and record.get("pid") == os.getpid()
        return describe_holder(record) if ours or not self._is_dead(record) else None

    def _record(self) -> dict[str, Any]:
        return {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "root": str(self._root),
            "token": self._token,
            "renewed": time.time(),
        }

    def _write(self) -> None:
        self._storage.set_study_system_attr(study_id_of(self._study), self._key, self._record())

    def _is_dead(self, record: dict[str, Any]) -> bool:
        """Whether the holder of ``record`` is proven to be gone."""
        return holder_is_dead(record, self.grace)

    def _renew(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                renewed = claim_study_system_attr(
                    self._storage, study_id_of(self._study), self._key, self._record(), self._ours
                )
                if renewed is None:  # (no transaction to hold: read, then write)
                    record = self._read()
                    renewed = self._ours(record)
                    if renewed:
                        self._write()
                if not renewed:
                    _logger.warning(
                        "the lease of study %r was taken over by %s",
                        self._study_name,
                        describe_holder(self._read() or {}),
                    )
                    return
            except Exception as e:  # the storage is unreachable for now: try again
                _logger.debug("could not renew the lease of study %r: %s", self._study_name, e)


@contextlib.contextmanager
def sole_session(study: optuna.Study, root: Path) -> Iterator[None]:
    """Inside: no other live session runs ``study`` (its lease is held meanwhile).

    For what changes a study outside :class:`ResumableStudy` (the functions' resume, rewind
    and restore of a backup). A lease this process already holds (an open session's) is
    left as it is.

    Raises:
        RootLockedError: Another live session holds the study.
    """
    record = _record_of(study)
    if (
        record is not None
        and record.get("host") == socket.gethostname()
        and record.get("pid") == os.getpid()
    ):
        yield
        return
    lease = StudyLease(study, root)
    lease.acquire()
    try:
        yield
    finally:
        lease.release()


def holder_is_dead(record: dict[str, Any], grace: float) -> bool:
    """Whether the holder of lease ``record`` is proven to be gone.

    On this host from its PID (this very process counts as gone: an earlier block of it);
    from another host by the record going unrenewed for ``grace`` seconds.
    """
    try:
        pid, renewed = int(record["pid"]), float(record["renewed"])
    except (KeyError, TypeError, ValueError):
        return True  # not a record of this library
    if record.get("host") == socket.gethostname():
        return pid == os.getpid() or not pid_alive(pid)
    return time.time() - renewed >= grace


def worker_leases(system_attrs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The workers' lease records among a study's system attributes: {worker id: record}."""
    return {
        key[len(WORKER_LEASE_PREFIX) :]: value
        for key, value in system_attrs.items()
        if key.startswith(WORKER_LEASE_PREFIX) and isinstance(value, dict)
    }


def _record_of(study: optuna.Study, key: str = LEASE_KEY) -> dict[str, Any] | None:
    value = storage_of(study).get_study_system_attrs(study_id_of(study)).get(key)
    return value if isinstance(value, dict) else None


def describe_holder(record: dict[str, Any]) -> str:
    """A lease's holder, for messages: ``PID n on host, root r``."""
    return f"PID {record.get('pid')} on {record.get('host')}, root {record.get('root')}"


__all__ = [
    "LEASE_KEY",
    "StudyLease",
    "describe_holder",
    "holder_is_dead",
    "lease_settings",
    "sole_session",
    "worker_lease_key",
    "worker_leases",
]
