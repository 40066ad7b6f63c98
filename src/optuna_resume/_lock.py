"""The root's lock: one live session per root, released when its process dies."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path
from types import TracebackType

import filelock

from ._atomic import atomic_write, pid_alive
from ._error import RootLockedError

LOCK_NAME = ".lock"
_HELD: dict[str, int] = {}  # roots this process holds (resolved path -> the holder's PID)
OWNER_NAME = ".lock.owner"


class RootLock:
    """An exclusive lock on a root folder.

    It is an OS file lock (``flock``), so it dies with the process that holds it, even when
    that process is SIGKILLed. The holder's PID and host are kept beside it so that a second
    session can say who holds it.

    Args:
        root: The root folder (it must exist).
        timeout: Seconds to wait for a busy lock before :class:`RootLockedError`.
    """

    def __init__(self, root: Path, timeout: float = 0.0) -> None:
        self._root = root
        self._timeout = timeout
        self._lock = filelock.FileLock(str(root / LOCK_NAME), is_singleton=False)

    @property
    def is_locked(self) -> bool:
        return self._lock.is_locked

    def acquire(self) -> None:
        key = str(self._root.resolve())
        if _HELD.get(key) == os.getpid():
            raise RootLockedError(
                f"{self._root} is already open in this process (PID {os.getpid()}): a "
                "ResumableStudy block on it has not been closed (nested `with` blocks, or a "
                "notebook cell that opened one without `with`). Use the study of the open "
                "block, or close it first."
            )
        try:
            self._lock.acquire(timeout=self._timeout)
        except filelock.Timeout:
            raise RootLockedError(
                f"{self._root} is in use by another live session ({describe_holder(self._root)}). "
                "Wait for it to finish or stop that process; the lock is freed as soon as it "
                "exits, also when it is killed."
            ) from None
        owner = {"pid": os.getpid(), "host": socket.gethostname()}
        try:
            atomic_write(self._root / OWNER_NAME, json.dumps(owner).encode())
        except BaseException:
            self._lock.release()  # not held unless its holder is named (e.g. the disk is full)
            raise
        _HELD[key] = os.getpid()

    def release(self) -> None:
        if self._lock.is_locked:
            # Who held it is kept only while it is held (a killed holder leaves a stale file:
            # live_holder checks that its process still runs).
            with contextlib.suppress(OSError):
                (self._root / OWNER_NAME).unlink()
            self._lock.release()
            _HELD.pop(str(self._root.resolve()), None)

    def __enter__(self) -> RootLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def describe_holder(root: Path) -> str:
    """Say which process holds (or last held) the root's lock, e.g. ``"PID 1234 on host"``."""
    try:
        owner = json.loads((root / OWNER_NAME).read_text())
        return f"PID {owner['pid']} on {owner['host']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "PID unknown"


def live_holder(root: Path) -> str | None:
    """Which live process holds the root's lock, if any (``None``: it is free).

    Read from the holder's record, without touching the lock itself; a record left by a
    killed process is ignored. A holder on another host is assumed to be alive.
    """
    try:
        owner = json.loads((root / OWNER_NAME).read_text())
        pid, host = int(owner["pid"]), str(owner["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if host == socket.gethostname() and not pid_alive(pid):
        return None
    return f"PID {pid} on {host}"


__all__ = ["RootLock", "describe_holder", "live_holder"]
