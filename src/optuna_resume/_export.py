"""Export one state of a study as a self-contained ``.pt`` file.

A study's states live where its storage keeps them: committed with its trials in the
study's database (SQLite, PostgreSQL, MySQL), recorded in the study for a worker on the
journal storages or the gRPC proxy, and as files in its root. :func:`export_checkpoint`
finds one state wherever it is (the database first: it is the record), checks it, and
writes it as a single ``torch.save`` file that carries the large parts it refers to, so the
file needs no root beside it: :func:`load_sampler` reads it back, and
``torch.load(path, weights_only=True)`` reads its metadata. Nothing of the study is
changed.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from ._atomic import atomic_write
from ._checkpoint import (
    BEFORE,
    CheckpointInfo,
    decode_document,
    meta_digest,
    state_position,
)
from ._error import (
    CheckpointMismatchError,
    CheckpointNotFoundError,
    InvalidArgumentError,
    OptunaResumeError,
)
from ._mirror import recorded_state
from ._optuna._access import storage_of, study_id_of
from ._optuna._state_table import StateRows, has_tables
from ._optuna._storage import UID_KEY, describe, is_in_memory, rdb_of
from ._root import CHECKPOINTS, root_path
from ._serialization import load_object
from ._store import CheckpointStore, FolderStore, StateKey
from ._workers import check_worker_id, worker_root

_SHA = re.compile(rb"[0-9a-f]{64}")


@dataclass(frozen=True)
class FoundState:
    """One state and where it is held (its document and blobs are read when asked for).

    Attributes:
        trial: The trial it is of.
        phase: ``"before"`` or ``"after"``.
        where: Where it is, in words.
        document: Reads its encoded checkpoint (``None``: gone since it was listed).
        blobs: Reads those of the given blobs that are held beside it.
    """

    trial: int
    phase: str
    where: str
    document: Callable[[], bytes | None]
    blobs: Callable[[set[str]], dict[str, bytes]]

    @property
    def position(self) -> int:
        return state_position(self.trial, self.phase)

    @property
    def label(self) -> str:
        """Where it is held, and which state it is (for messages)."""
        return f"{self.where} (state of trial {self.trial}, {self.phase})"


def _in_database(study: optuna.Study, uid: str | None, worker: str | None) -> Iterator[FoundState]:
    rdb = rdb_of(storage_of(study))
    if rdb is None or uid is None or is_in_memory(rdb) or not has_tables(rdb):
        return  # (nothing is created where nothing was ever committed)
    rows = StateRows(rdb, study_id_of(study), uid, worker)
    yield from _in_store(rows, lambda key: f"the study's database ({describe(storage_of(study))})")


def _in_store(store: CheckpointStore, where: Callable[[StateKey], str]) -> Iterator[FoundState]:
    """The states a store holds, newest first (each read when asked for; an unreadable one
    reads as gone)."""

    def blobs(names: set[str]) -> dict[str, bytes]:
        found = {}
        for sha in names:
            with contextlib.suppress(OSError):
                blob = store.blob(sha)
                if blob is not None:
                    found[sha] = blob
        return found

    def document(trial: int, phase: str) -> bytes | None:
        try:
            return store.get(trial, phase)
        except OSError:
            return None

    for key in reversed(store.keys()):
        yield FoundState(*key, where(key), functools.partial(document, *key), blobs)


def _in_study(study: optuna.Study, worker: str | None) -> Iterator[FoundState]:
    if worker is None or rdb_of(storage_of(study)) is not None:
        return
    state = recorded_state(storage_of(study).get_study_system_attrs(study_id_of(study)), worker)
    if state is None:
        return
    yield FoundState(
        state.trial,
        state.phase,
        f"worker {worker!r}'s state recorded in the study",
        lambda: state.document,
        lambda names: {s: d for s, d in state.blobs.items() if s in names},
    )


def _in_folder(folder: Path) -> Iterator[FoundState]:
    store = FolderStore(folder)
    yield from _in_store(store, lambda key: str(store.path(*key)))


def _uid(study: optuna.Study) -> str | None:
    uid = storage_of(study).get_study_system_attrs(study_id_of(study)).get(UID_KEY)
    return uid if isinstance(uid, str) else None


def _checkpoints(folder: Path, worker: str | None) -> Path:
    return (folder if worker is None else worker_root(folder, worker)) / CHECKPOINTS


def find_states(study: optuna.Study, folder: Path, worker: str | None = None) -> list[FoundState]:
    """The states of ``study`` (of one ``worker``'s stream) held anywhere, newest first in
    each place: its database (the record), a worker's state recorded in the study, the
    checkpoint files of root ``folder``. Nothing is read but their names."""
    sources = [
        _in_database(study, _uid(study), worker),
        _in_study(study, worker),
        _in_folder(_checkpoints(folder, worker)),
    ]
    return [found for source in sources for found in source]


def database_states(study: optuna.Study, worker: str | None = None) -> list[FoundState]:
    """The states of ``study`` (of one ``worker``'s stream) its database holds, newest first
    (none where the storage is not an RDB or the library never committed one there)."""
    return list(_in_database(study, _uid(study), worker))


def check_state(
    found: FoundState,
    study_uid: str | None,
    study_name: str,
    *,
    trusted: bool = False,
    allowed_globals: Iterable[object] = (),
) -> None:
    """Raise what loading ``found`` into study ``study_name`` (identity ``study_uid``) would
    raise: checksums, the trial and phase it is filed under, its study, and the safe loader
    (which runs nothing).

    Raises:
        CorruptCheckpointError: It is damaged.
        CheckpointMismatchError: It is filed under another trial or phase, or belongs to
            another study.
        UnsafeCheckpointError: Loading it would call code outside the allowlist.
    """
    document = _checked(found, study_uid, study_name, decompress=True)
    load_object(
        document["payload"],
        trusted=trusted,
        allowed_globals=tuple(allowed_globals),
        what=found.label,
    )


def export_checkpoint(
    root: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    trial: int | None = None,
    *,
    storage: str | optuna.storages.BaseStorage | None = None,
    study_name: str | None = None,
    worker: str | None = None,
) -> CheckpointInfo:
    """Write one state of a study as a self-contained ``.pt`` file (a ``torch.save`` file).

    The state is taken from the study's database where it was committed with the trials
    (an RDB storage: the root may then be empty or missing, as on another host), from the
    state a worker recorded in the study (journal storages, gRPC proxy), or from the root's
    checkpoint files; it is checked (checksums, study identity) before it is written. The
    large parts it refers to are written into the file, which then needs nothing beside it:
    :func:`load_sampler` loads it (``load_sampler(destination)``), and
    ``torch.load(destination, weights_only=True)["meta"]`` is its metadata. The study is not
    changed.

    Args:
        root: The study's root folder (its ``study.db`` is the default storage, its name the
            default study name).
        destination: The file to write (it must not exist), or an existing folder to write
            ``trial-NNNNNN.<phase>.pt`` into.
        trial: The state just before this trial was asked for (default: the newest state).
        storage: The study's storage, when it is not the root's ``study.db``.
        study_name: The study's name (default: the root folder's name).
        worker: The worker whose state to export (a study run by workers).

    Returns:
        Where the file was written, and the state it holds.

    Raises:
        StudyNotFoundError: There is no such study.
        CheckpointNotFoundError: No intact state is held for ``trial``.
        InvalidArgumentError: ``trial`` is not a trial number, or ``destination`` exists.
    """
    from ._status import open_existing_study

    if trial is not None and (isinstance(trial, bool) or not isinstance(trial, int) or trial < 0):
        raise InvalidArgumentError(f"trial must be a non-negative int or None, not {trial!r}")
    if worker is not None:
        check_worker_id(worker)
    folder = root_path(root)
    study = open_existing_study(folder, storage, study_name, root_may_be_missing=True)
    try:
        return _export(study, folder, Path(destination), trial, worker)
    finally:
        rdb = rdb_of(storage_of(study))
        if rdb is not None and not isinstance(storage, optuna.storages.BaseStorage):
            rdb.engine.dispose()  # opened here from a URL: its connections are closed here


def _export(
    study: optuna.Study, folder: Path, destination: Path, trial: int | None, worker: str | None
) -> CheckpointInfo:
    uid = _uid(study)
    checkpoints = _checkpoints(folder, worker)
    candidates = find_states(study, folder, worker)
    if trial is None:
        newest = max((c.position for c in candidates), default=None)
        wanted = [] if newest is None else [c for c in candidates if c.position == newest]
    else:
        wanted = [c for c in candidates if c.position == trial]
    wanted.sort(key=lambda c: c.phase != BEFORE)  # (stable: the database first)
    problems: list[str] = []
    for found in wanted:
        try:
            document = _checked(found, uid, study.study_name)
        except CheckpointMismatchError:
            raise
        except OptunaResumeError as e:
            problems.append(str(e))
            continue
        target = _target(destination.expanduser().absolute(), found)
        _write_export(target, document, found)
        return CheckpointInfo(target, found.trial, found.phase)
    what = "any state" if trial is None else f"the state before trial {trial}"
    held = sorted({c.position for c in candidates})
    raise CheckpointNotFoundError(
        f"no intact checkpoint of study {study.study_name!r} holds {what} (looked in "
        f"{describe(storage_of(study))} and {checkpoints}; states held before trials: "
        f"{held[-10:] or 'none'}){': ' + ' '.join(problems) if problems else ''}. "
        "Nothing was written."
    )


def _checked(
    found: FoundState, uid: str | None, study_name: str, *, decompress: bool = False
) -> dict[str, Any]:
    """The decoded document of ``found``, verified (checksums, its name, its study)."""
    data = found.document()
    if data is None:
        raise CheckpointNotFoundError(f"{found.where} no longer holds the state")
    label = found.label
    document = decode_document(data, label, decompress=decompress)
    meta = document["meta"]
    if (meta.get("trial"), meta.get("phase")) != (found.trial, found.phase):
        raise CheckpointMismatchError(
            f"{label} holds the state of trial {meta.get('trial')} ({meta.get('phase')}), not "
            "the one it is filed under; nothing was written"
        )
    if uid is not None and meta.get("study_uid") not in (None, uid):
        raise CheckpointMismatchError(
            f"{label} belongs to study {meta.get('study_name')!r} in storage "
            f"{meta.get('storage')!r}, not to study {study_name!r}; nothing was written"
        )
    return document


def _target(destination: Path, found: FoundState) -> Path:
    if destination.is_dir():
        destination = FolderStore(destination).path(found.trial, found.phase)
    if destination.exists() or destination.is_symlink():
        raise InvalidArgumentError(
            f"{destination} exists: nothing was written (remove it, or export to another name)"
        )
    if not destination.parent.is_dir():
        raise InvalidArgumentError(
            f"{destination.parent} is not a folder: nothing was written (create it first)"
        )
    return destination


def _write_export(target: Path, document: dict[str, Any], found: FoundState) -> None:
    """Write ``document`` with the blobs its payload names, as a ``torch.save`` file."""
    import zlib

    import torch  # here, not at import: the command line answers without it

    payload: bytes = document["payload"]
    raw = zlib.decompress(payload) if document["meta"].get("compression") == "zlib" else payload
    named = {m.decode("ascii") for m in _SHA.findall(raw)}
    blobs = found.blobs(named) if named else {}
    meta = {
        **document["meta"],
        "exported_from": found.where,
        "exported": time.time(),
    }
    exported = {
        **document,
        "meta": meta,
        "meta_sha256": meta_digest(meta),
        "payload": torch.frombuffer(bytearray(payload), dtype=torch.uint8),
        "blobs": {
            sha: torch.frombuffer(bytearray(data), dtype=torch.uint8)
            for sha, data in sorted(blobs.items())
        },
    }
    buffer = io.BytesIO()
    torch.save(exported, buffer)
    atomic_write(target, buffer.getvalue())


__all__ = ["FoundState", "check_state", "database_states", "export_checkpoint", "find_states"]
