"""Where states live: the checkpoint-store seam.

A store keeps encoded states (the ``torch.save`` documents of :mod:`._checkpoint`) and the
blobs they refer to, by key: ``(trial, phase)``. A store knows nothing of the format (it
never unpickles, decompresses or checks a document); the format knows nothing of places.

Two stores: :class:`FolderStore` (a file per state in a folder: the root's
``checkpoints/``, an export, a backup's copy) and the rows of the study's own database
(:class:`~optuna_resume._optuna._state_table.StateRows`, which also commits the library's per-trial
states inside Optuna's own transactions).

The protocol, and the order in which the library calls it:

1. :meth:`CheckpointStore.put` ``(trial, phase, document, blobs)``: the blobs first, then the
   document. It is atomic: once it returns, :meth:`~CheckpointStore.get` returns
   ``document``; a process killed inside it leaves the key's previous document (or none),
   never a part of one, and no key that :meth:`~CheckpointStore.keys` lists is unreadable.
   What "durable" means is the store's own contract (a folder store fsyncs unless told not
   to; the database's rows are as durable as the database's commit).
2. :meth:`~CheckpointStore.get`, :meth:`~CheckpointStore.keys`,
   :meth:`~CheckpointStore.blob` and :meth:`~CheckpointStore.blob_keys` read what earlier
   puts left, in any process (a put that is still running is not seen, or seen whole).
3. :meth:`~CheckpointStore.delete` removes one key (a key that is not there is no error).
   Blobs are never deleted by the library during a run: other states, and backups, may
   still refer to them.

Every store passes the same test suite (``tests/store_suite.py``).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

from ._atomic import atomic_write, fsync_file, fsync_folder, remove_partial_files
from ._checkpoint import AFTER, BEFORE, CheckpointInfo, state_position

_PHASES = frozenset({BEFORE, AFTER})
_PHASE_ORDER = {BEFORE: 0, AFTER: 1}
# A listing is reused only if the folder's modification time was this much older than the
# listing (a change made within one tick of the clock that stamps folders leaves the time
# as it was): a jiffy where times have nanoseconds, two seconds where they have whole ones.
_SETTLED_NS = 50_000_000
_SETTLED_COARSE_NS = 2_000_000_000

StateKey = tuple[int, str]


def check_key(trial: object, phase: object) -> None:
    """Refuse a key no store can hold (a negative trial, an unknown phase)."""
    if not isinstance(trial, int) or isinstance(trial, bool) or trial < 0:
        raise ValueError(f"a state's trial is a number >= 0, not {trial!r}")
    if phase not in _PHASES:
        raise ValueError(f"a state's phase is 'before' or 'after', not {phase!r}")


@runtime_checkable
class CheckpointStore(Protocol):
    """A place where encoded states live (see the module's docstring for the call order)."""

    def put(self, trial: int, phase: str, document: bytes, blobs: Mapping[str, bytes]) -> None:
        """Keep ``document`` as the state of ``trial`` in ``phase``, atomically, with the
        blobs it refers to (keyed by their SHA-256; one the store holds is not written
        again)."""

    def get(self, trial: int, phase: str) -> bytes | None:
        """The document of a state, or ``None`` where the store holds none."""

    def blob(self, sha256: str) -> bytes | None:
        """A blob, or ``None`` where the store holds none."""

    def keys(self) -> list[StateKey]:
        """``(trial, phase)`` of the states held, oldest state first."""

    def blob_keys(self) -> set[str]:
        """The SHA-256s of the blobs held (blobs are named by their content, so a store may
        share them between studies)."""

    def delete(self, trial: int, phase: str) -> None:
        """Remove one state (nothing happens where there is none)."""


class FolderStore:
    """States as files in one folder: ``trial-NNNNNN.<phase>.pt``, blobs in ``blobs/``.

    Each file is written atomically (a temporary file, ``os.replace``); with
    ``durable=True`` (the default) the file and the folder are fsynced too, so a put that
    returned survives a power cut. The library writes without fsync only while a database
    row holds the same state, and syncs the files (:meth:`sync`) before the row goes.

    Args:
        folder: The folder (created on the first put).
        durable: Fsync each put.
    """

    def __init__(self, folder: Path, *, durable: bool = True) -> None:
        self.folder = Path(folder)
        self.durable = durable
        self._prefix = str(self.folder) + os.sep
        self._made = False  # the folder was made (or found) by this instance
        self._reusing = 0  # inside listing_reused()
        self._listing: tuple[tuple[int, int], list[tuple[int, str, str]]] | None = None

    def __repr__(self) -> str:
        return f"FolderStore({str(self.folder)!r})"

    # -- the protocol

    def put(self, trial: int, phase: str, document: bytes, blobs: Mapping[str, bytes]) -> None:
        self.put_info(trial, phase, document, blobs)

    def get(self, trial: int, phase: str) -> bytes | None:
        try:
            return self.path(trial, phase).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def blob(self, sha256: str) -> bytes | None:
        try:
            return self.blob_path(sha256).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def keys(self) -> list[StateKey]:
        return [(trial, phase) for trial, phase, _ in self._scan()]

    def blob_keys(self) -> set[str]:
        try:
            names = os.listdir(self.folder / "blobs")
        except (FileNotFoundError, NotADirectoryError):
            return set()
        return {name[:-3] for name in names if name.endswith(".pt") and len(name) == 67}

    def delete(self, trial: int, phase: str) -> None:
        self._listing = None
        self.path(trial, phase).unlink(missing_ok=True)

    # -- what only a folder has

    def path(self, trial: int, phase: str) -> Path:
        """The file of a state (which may not exist)."""
        return Path(f"{self._prefix}trial-{trial:06d}.{phase}.pt")

    def blob_path(self, sha256: str) -> Path:
        return self.folder / "blobs" / f"{sha256}.pt"

    def prepare(self) -> None:
        """Create the folder; remove files that writers killed mid-write left."""
        self._listing = None
        self.folder.mkdir(parents=True, exist_ok=True)
        self._made = True
        remove_partial_files(self.folder)
        remove_partial_files(self.folder / "blobs")

    def put_info(
        self,
        trial: int,
        phase: str,
        document: bytes,
        blobs: Mapping[str, bytes],
        *,
        durable: bool | None = None,
    ) -> CheckpointInfo:
        """:meth:`put`, returning where the state went."""
        check_key(trial, phase)
        durable = self.durable if durable is None else durable
        if not self._made:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._made = True
        for sha, data in blobs.items():
            blob_path = self.blob_path(sha)
            if not blob_path.exists():
                blob_path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(blob_path, data, durable=durable)
        path = self.path(trial, phase)
        self._listing = None
        atomic_write(path, document, durable=durable)
        return CheckpointInfo(path, trial, phase)

    def info(self, trial: int, phase: str) -> CheckpointInfo | None:
        """The state of ``trial`` in ``phase``, if its file exists."""
        path = self.path(trial, phase)
        return CheckpointInfo(path, trial, phase) if path.exists() else None

    def infos(self, phase: str | None = None) -> list[CheckpointInfo]:
        """The states held (of one ``phase``, if given), oldest state first."""
        return [
            CheckpointInfo(Path(self._prefix + name), trial, kind)
            for trial, kind, name in self._scan()
            if phase is None or kind == phase
        ]

    def names(self) -> list[str]:
        """The file names, oldest state first (no path objects: cheap for a folder of
        10,000 states, where :meth:`infos` takes a fraction of a second)."""
        return [name for _, _, name in self._scan()]

    def positions(self) -> list[int]:
        """The positions (see :func:`state_position`) of the states held, ascending."""
        return sorted({state_position(t, p) for t, p, _ in self._scan()})

    def count_after(self, position: int) -> int:
        """How many states are of a position after ``position``."""
        return sum(state_position(t, p) > position for t, p, _ in self._scan())

    def remove_from(self, position: int) -> int:
        """Remove the states of positions after ``position``; how many there were."""
        removed = 0
        found, self._listing = self._scan(), None
        for trial, phase, name in found:
            if state_position(trial, phase) > position:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._prefix + name)
                removed += 1
        return removed

    def sync(self, trials: Iterable[int], phase: str) -> None:
        """Make these states' files (those that exist) and the folder durable."""
        for trial in trials:
            with contextlib.suppress(FileNotFoundError):
                fsync_file(self.path(trial, phase))
        fsync_folder(self.folder)

    @contextlib.contextmanager
    def listing_reused(self) -> Iterator[None]:
        """Inside: one listing of the folder serves every read of it until the folder changes.

        For the steps of one entry, which read a folder of 10,000 states several times
        while the root's lock keeps other sessions out. A listing is reused only while this
        store has changed nothing and the folder's modification time is the one it had when
        the listing was taken, a time old enough that no change can have left it as it was.
        """
        self._reusing += 1
        try:
            yield
        finally:
            self._reusing -= 1
            if not self._reusing:
                self._listing = None

    def _scan(self) -> list[tuple[int, str, str]]:
        """(trial, phase, file name) of the states, oldest first: names only, no stat."""
        if not self._reusing:
            return self._list()
        try:
            stat = os.stat(self.folder)
        except OSError:
            return self._list()
        stamp = (stat.st_ino, stat.st_mtime_ns)
        if self._listing is not None and self._listing[0] == stamp:
            return list(self._listing[1])
        found = self._list()
        settled = _SETTLED_COARSE_NS if stat.st_mtime_ns % 1_000_000_000 == 0 else _SETTLED_NS
        self._listing = (stamp, found) if time.time_ns() - stat.st_mtime_ns > settled else None
        return list(found)

    def _list(self) -> list[tuple[int, str, str]]:
        try:
            names = os.listdir(self.folder)
        except (FileNotFoundError, NotADirectoryError):
            return []
        found = []
        for name in names:
            key = parse_state_name(name)
            if key is not None:
                found.append((key[0], key[1], name))
        found.sort(key=lambda state: state[0] * 2 + _PHASE_ORDER[state[1]])  # oldest first
        return found


def parse_state_name(name: str) -> StateKey | None:
    """The key of a state's file name (``trial-NNNNNN.<phase>.pt``), or ``None``."""
    # Parsed without a regular expression: a third of the time on a folder of 10,000 states.
    if name[:6] != "trial-" or name[-3:] != ".pt":
        return None
    number, _, phase = name[6:-3].partition(".")
    if (phase in _PHASES) and len(number) >= 6 and number.isascii() and number.isdigit():
        return int(number), phase
    return None


__all__ = [
    "CheckpointStore",
    "FolderStore",
    "StateKey",
    "check_key",
    "parse_state_name",
]
