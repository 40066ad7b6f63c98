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
from pathlib import Path
from typing import Any

import optuna

from ._atomic import pid_alive
from ._error import RootLockedError
from ._storage import GRACE_PERIOD, HEARTBEAT_INTERVAL, LEASE_KEY, heartbeat_settings

_POLL = 0.5  # seconds between reads while waiting for another host's record
_SETTLE = 0.05  # seconds between writing the record and reading it back
_logger = logging.getLogger("optuna_resume")


class StudyLease:
    """The lease of one session on one study.

    Args:
        study: The study (its id is read at each use: a rewind on the journal storage
            rebuilds the study under a new one).
        root: The session's root, recorded for messages.
    """

    def __init__(self, study: optuna.Study, root: Path) -> None:
        self._study = study
        self._storage = study._storage
        self._study_name = study.study_name
        self._root = root
        settings = heartbeat_settings(self._storage)
        self.interval, self.grace = settings or (HEARTBEAT_INTERVAL, GRACE_PERIOD)
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
                self._write()
                time.sleep(_SETTLE)
                ours = self._read()
                if ours is not None and ours.get("token") == self._token:
                    break
                continue  # another session wrote its own at the same moment: look again
            if record.get("host") == socket.gethostname():
                renewed_since = True  # its PID runs: alive
            else:
                if first_renewal is None:
                    first_renewal = record.get("renewed")
                renewed_since = record.get("renewed") != first_renewal
            if renewed_since and time.monotonic() - start >= timeout:
                raise RootLockedError(
                    f"study {self._study_name!r} is in use by another live session "
                    f"({_describe(record)}). "
                    "Two sessions on one study would each go on from the same state and draw "
                    "the same parameters. Wait for it to finish or stop that process (its "
                    "lease ends when it exits; one on another host is taken over "
                    f"{self.grace} s after its last renewal), or run several processes as "
                    "workers (worker=...)."
                )
            time.sleep(_POLL)
        self._thread = threading.Thread(
            target=self._renew, name="optuna-resume-study-lease", daemon=True
        )
        self._thread.start()

    def release(self) -> None:
        """End the lease (unless another session has taken it over since)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with contextlib.suppress(Exception):  # a failed storage: the record goes stale
            record = self._read()
            if record is not None and record.get("token") == self._token:
                self._storage.set_study_system_attr(self._study._study_id, LEASE_KEY, None)

    def _read(self) -> dict[str, Any] | None:
        value = self._storage.get_study_system_attrs(self._study._study_id).get(LEASE_KEY)
        return value if isinstance(value, dict) else None

    def _write(self) -> None:
        record: dict[str, Any] = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "root": str(self._root),
            "token": self._token,
            "renewed": time.time(),
        }
        self._storage.set_study_system_attr(self._study._study_id, LEASE_KEY, record)

    def _is_dead(self, record: dict[str, Any]) -> bool:
        """Whether the holder of ``record`` is proven to be gone."""
        try:
            pid, renewed = int(record["pid"]), float(record["renewed"])
        except (KeyError, TypeError, ValueError):
            return True  # not a record of this library
        if record.get("host") == socket.gethostname():
            return pid == os.getpid() or not pid_alive(pid)  # (this process: an earlier block)
        return time.time() - renewed >= self.grace

    def _renew(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                record = self._read()
                if record is not None and record.get("token") != self._token:
                    _logger.warning(
                        "the lease of study %r was taken over by %s",
                        self._study_name,
                        _describe(record),
                    )
                    return
                self._write()
            except Exception as e:  # the storage is unreachable for now: try again
                _logger.debug("could not renew the lease of study %r: %s", self._study_name, e)


def _describe(record: dict[str, Any]) -> str:
    return f"PID {record.get('pid')} on {record.get('host')}, root {record.get('root')}"


__all__ = ["LEASE_KEY", "StudyLease"]
