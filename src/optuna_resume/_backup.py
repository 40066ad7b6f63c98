"""Backups: a consistent copy of the study and of its checkpoints, named ``<name>_backup-<n>``.

A SQLite database is copied with SQLite's online backup API (consistent while other
processes write; the live file is never copied byte by byte) to ``<stem>_backup-<n><suffix>``
beside it; when the file lies outside the root (other roots' studies may share it), the copy
is named after the study as well, ``<stem>_<study>_backup-<n><suffix>``, so that the backups of
studies sharing a file never mix. Other storages get a SQLite copy of the study in the root.
The checkpoint folder
is copied with hard links (its files never change once written) to
``<folder>_backup-<n>`` beside it. One backup number covers both parts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from optuna.storages import BaseStorage, RDBStorage

from ._atomic import (
    atomic_produce,
    atomic_write,
    fsync_folder,
    partial_path,
    remove_partial_files,
    write_error,
)
from ._error import CheckpointWriteError
from ._fault import fault_point
from ._optuna._state_table import copy_study_states, drop_study_rows, ensure_tables
from ._optuna._storage import (
    clear_leases,
    copy_study,
    copy_study_rows,
    forget_cached_trials,
    is_in_memory,
    rdb_of,
    sqlite_file,
    sqlite_uri,
    sqlite_url,
)
from ._store import parse_state_name
from ._workspace import WORKSPACES

DEFAULT_KEEP_BACKUPS = 10


# Backups taken before something is discarded (a rewind, the re-run of a cut-off trial, a
# restore, states set aside): they may hold the only copy of it, so retention keeps them.
KEEPING_REASONS = frozenset({"rewind", "rerun", "restore", "set-aside"})


@dataclass(frozen=True)
class BackupInfo:
    """One backup.

    Attributes:
        number: Its number ``n`` in ``<name>_backup-<n>``.
        storage_path: The copy of the study's database, if one was taken.
        checkpoints_path: The copy of the checkpoint folder, if one was taken.
        reason: Why it was taken: ``"entry"`` (a routine backup on entry), ``"rewind"``,
            ``"rerun"`` (before a cut-off trial was removed to run again), ``"restore"``,
            ``"set-aside"``, ``"manual"`` (:func:`backup`); ``None`` if not recorded.
        trials: How many trials of the study it holds (``None`` if not recorded).
        states: How many checkpoint files it holds (``None`` if not recorded).
        taken: When it was taken (seconds since the epoch; ``None`` if not recorded).
        fingerprint: What the study and its checkpoints looked like (to tell whether a
            study changed since).
    """

    number: int
    storage_path: Path | None
    checkpoints_path: Path | None
    reason: str | None = None
    trials: int | None = None
    states: int | None = None
    taken: float | None = None
    fingerprint: str | None = None

    @property
    def keeps_discarded(self) -> bool:
        """Whether it was taken before something was discarded (retention keeps it)."""
        return self.reason in KEEPING_REASONS


@dataclass(frozen=True)
class BackupPlace:
    """Where the backups of one study go.

    Attributes:
        storage_file: The live SQLite file, or ``None`` for other storages.
        folder: Where a non-SQLite study's copy goes (the root).
        study_name: The study's name.
        checkpoints: The live checkpoint folder, if any.
    """

    storage_file: Path | None
    folder: Path
    study_name: str
    checkpoints: Path | None
    with_storage: bool = True
    name_study_if_outside: bool = False
    label: str | None = None  # names the copies instead of the study (one worker's backups)

    @property
    def storage_pattern(self) -> tuple[Path, str, str]:
        file = self.storage_file
        if file is None:
            return self.folder, self.study_name, ".db"
        stem = file.stem
        if self.name_study_if_outside and file.parent.resolve() != self.folder.resolve():
            name = self.label or self.study_name
            stem = f"{stem}_{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}"
        return file.parent, stem, file.suffix

    def storage_backup(self, number: int) -> Path:
        folder, stem, suffix = self.storage_pattern
        return folder / f"{stem}_backup-{number}{suffix}"

    def record(self, number: int) -> Path:
        """The backup's record: what it holds and why it was taken."""
        folder, stem, _ = self.storage_pattern
        return folder / f"{stem}_backup-{number}.backup.json"

    def checkpoints_backup(self, number: int) -> Path | None:
        if self.checkpoints is None:
            return None
        return self.checkpoints.with_name(f"{self.checkpoints.name}_backup-{number}")


def place_for(
    storage: BaseStorage,
    folder: Path,
    study_name: str,
    checkpoints: Path | None,
    *,
    with_storage: bool = True,
    name_study_if_outside: bool = False,
    label: str | None = None,
) -> BackupPlace:
    file = sqlite_file(storage)
    return BackupPlace(
        file, folder, study_name, checkpoints, with_storage, name_study_if_outside, label
    )


def list_backups(place: BackupPlace) -> list[BackupInfo]:
    """The backups of a place, oldest first."""
    numbers: dict[int, list[Path | None]] = {}
    folder, stem, suffix = place.storage_pattern
    pattern = re.compile(rf"^{re.escape(stem)}_backup-(\d+){re.escape(suffix)}$")
    if folder.is_dir():
        for path in folder.iterdir():
            match = pattern.match(path.name)
            if match:
                numbers.setdefault(int(match.group(1)), [None, None])[0] = path
    if place.checkpoints is not None and place.checkpoints.parent.is_dir():
        ck_pattern = re.compile(rf"^{re.escape(place.checkpoints.name)}_backup-(\d+)$")
        for path in place.checkpoints.parent.iterdir():
            match = ck_pattern.match(path.name)
            if match and path.is_dir():
                numbers.setdefault(int(match.group(1)), [None, None])[1] = path
    return [
        _with_record(place, BackupInfo(n, parts[0], parts[1]))
        for n, parts in sorted(numbers.items())
    ]


def _with_record(place: BackupPlace, info: BackupInfo) -> BackupInfo:
    try:
        record = json.loads(place.record(info.number).read_text())
    except (OSError, ValueError):
        return info
    if not isinstance(record, dict):
        return info
    return dataclasses.replace(
        info,
        reason=record.get("reason"),
        trials=record.get("trials"),
        states=record.get("states"),
        taken=record.get("taken"),
        fingerprint=record.get("fingerprint"),
    )


def _sqlite_online_copy(source: Path, target: Path) -> None:
    src = sqlite3.connect(sqlite_uri(source, mode="ro"), uri=True)
    try:
        dst = sqlite3.connect(target)
        try:
            # In one step (a consistent read); the fault point lies inside the copy.
            src.backup(dst, progress=lambda *_: fault_point("backup.copying"))
        finally:
            dst.close()
    finally:
        src.close()


def copy_study_to_sqlite(storage: BaseStorage, study_id: int, target: Path) -> None:
    backup_storage = RDBStorage(sqlite_url(target))  # Optuna's schema, empty
    rdb = rdb_of(storage)
    fault_point("backup.copying")
    try:
        if rdb is None:
            copy_study(storage, study_id, backup_storage)  # through the storage API
        else:
            ensure_tables(backup_storage)  # the study's states are copied with its rows
    finally:
        backup_storage.engine.dispose()
    if rdb is not None:
        copy_study_rows(rdb, study_id, target)  # the rows in bulk: seconds, not minutes


def _link_tree(source: Path, target: Path) -> list[str]:
    """Link (or copy) ``source`` into ``target`` atomically; the top level's file names."""

    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    partial = partial_path(target)
    try:
        names = _link_folder(source, partial, link_or_copy)
        os.replace(partial, target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    fsync_folder(target.parent)
    return names


def _link_folder(source: Path, target: Path, link: Callable[[str, str], None]) -> list[str]:
    # os.scandir and plain strings: a checkpoint folder holds a file per trial (10,000s).
    os.mkdir(target)
    into = str(target) + os.sep
    linked = []
    with os.scandir(source) as entries:
        for entry in entries:
            name = entry.name
            if name.endswith(".partial") or name == WORKSPACES:
                continue
            if entry.is_dir(follow_symlinks=False):
                _link_folder(Path(entry.path), target / name, link)
            else:
                link(entry.path, into + name)
                linked.append(name)
                fault_point("backup.linking")
    fsync_folder(target)
    return linked


def take_backup(
    place: BackupPlace,
    storage: BaseStorage,
    study_id: int,
    *,
    keep: int | None = DEFAULT_KEEP_BACKUPS,
    reason: str = "manual",
    trials: int | None = None,
    fingerprint: str | None = None,
) -> BackupInfo:
    """Back up the study and its checkpoints under the next free number.

    Args:
        place: Where the backups go.
        storage: The live storage.
        study_id: The study (copied alone where the storage is not a SQLite file).
        keep: How many routine backups to keep (older ones are removed); ``None`` keeps
            all. A backup taken before something was discarded (``KEEPING_REASONS``) is
            never removed: it may hold the only copy of trials and states.
        reason: Why it is taken (recorded with it; see :class:`BackupInfo`).
        trials: How many trials the study has (recorded).
        fingerprint: The study's fingerprint now (recorded).
    """
    remove_partial_files(place.storage_pattern[0])
    if place.checkpoints is not None:
        remove_partial_files(place.checkpoints.parent)
    existing = list_backups(place)
    number = existing[-1].number + 1 if existing else 0
    storage_target = place.storage_backup(number) if place.with_storage else None
    checkpoints_target = place.checkpoints_backup(number)
    if place.checkpoints is None or not place.checkpoints.is_dir():
        checkpoints_target = None
    states = None
    try:
        if storage_target is not None:
            source = place.storage_file

            def produce(target: Path) -> None:
                if source is not None:
                    _sqlite_online_copy(source, target)
                else:
                    copy_study_to_sqlite(storage, study_id, target)
                clear_leases(target)  # a backup holds no session

            atomic_produce(storage_target, produce)
            fault_point("backup.copied")
        if checkpoints_target is not None and place.checkpoints is not None:
            linked = _link_tree(place.checkpoints, checkpoints_target)
            states = sum(parse_state_name(name) is not None for name in linked)
    except OSError as e:
        # No half backup stays behind (a killed process leaves only leftovers, cleaned above).
        if storage_target is not None:
            storage_target.unlink(missing_ok=True)
        if isinstance(e, CheckpointWriteError):
            raise
        raise write_error(
            e,
            f"could not back up study {place.study_name!r}",
            "Nothing was changed; free space or fix permissions and run again.",
        ) from e
    info = BackupInfo(
        number,
        storage_target,
        checkpoints_target,
        reason,
        trials,
        states,
        time.time(),
        fingerprint,
    )
    _write_record(place, info)
    if keep is not None and keep > 0:
        routine = [b for b in [*existing, info] if not b.keeps_discarded]
        for old in routine[:-keep]:
            remove_backup(old, place)
    return info


def keep_for(place: BackupPlace, info: BackupInfo, reason: str) -> BackupInfo:
    """Record that backup ``info`` now holds what ``reason`` discards (retention keeps it)."""
    kept = dataclasses.replace(info, reason=reason)
    _write_record(place, kept)
    return kept


_RECORDED = ("reason", "trials", "states", "taken", "fingerprint")


def _write_record(place: BackupPlace, info: BackupInfo) -> None:
    """Write what backup ``info`` holds and why it was taken (read by ``list_backups``)."""
    record = {name: getattr(info, name) for name in _RECORDED}
    atomic_write(place.record(info.number), json.dumps(record).encode())


def remove_backup(info: BackupInfo, place: BackupPlace | None = None) -> None:
    """Remove a backup; a large checkpoint copy is deleted in the background.

    The copy is first renamed to a leftover name of this process (one rename, whatever its
    size): a process killed before the deletion ends leaves it to the next entry's cleanup.
    """
    if info.storage_path is not None:
        with contextlib.suppress(FileNotFoundError):
            info.storage_path.unlink()
    if place is not None:
        place.record(info.number).unlink(missing_ok=True)
    if info.checkpoints_path is not None:
        doomed = partial_path(info.checkpoints_path)
        try:
            os.replace(info.checkpoints_path, doomed)
        except FileNotFoundError:
            return
        threading.Thread(
            target=shutil.rmtree, args=(doomed,), kwargs={"ignore_errors": True}, daemon=True
        ).start()


def restore_study_from_backup(info: BackupInfo, storage: BaseStorage, study_name: str) -> int:
    """Replace the live study by its copy in a backup; return the study's new id.

    Only this study changes: other studies in the same storage are left alone. Take a backup
    of the live state first (``ResumableStudy`` and :func:`restore_backup` do).
    """
    if info.storage_path is None or not info.storage_path.exists():
        raise FileNotFoundError(f"backup {info.number} has no copy of the study")
    backup_storage = RDBStorage(sqlite_url(info.storage_path), skip_compatibility_check=True)
    try:
        backup_id = backup_storage.get_study_id_from_name(study_name)
        rdb = rdb_of(storage)
        rdb = None if rdb is None or is_in_memory(rdb) else rdb
        with contextlib.suppress(KeyError):
            old_id = storage.get_study_id_from_name(study_name)
            if rdb is not None:  # first: the database may give the copy the same id
                drop_study_rows(rdb, old_id)
            storage.delete_study(old_id)
        forget_cached_trials(storage)
        new_id = copy_study(backup_storage, backup_id, storage)
        if rdb is not None:
            copy_study_states(backup_storage, backup_id, rdb, new_id)
        return new_id
    finally:
        backup_storage.engine.dispose()


def restore_checkpoints_from_backup(info: BackupInfo, checkpoints: Path) -> None:
    """Make the live checkpoint folder equal to the backup's copy."""
    if info.checkpoints_path is None:
        return
    old = checkpoints.with_name(f".{checkpoints.name}.replaced")
    shutil.rmtree(old, ignore_errors=True)
    staged = checkpoints.with_name(f".{checkpoints.name}.restoring")
    shutil.rmtree(staged, ignore_errors=True)
    _link_tree(info.checkpoints_path, staged)
    if checkpoints.exists():
        os.replace(checkpoints, old)
    os.replace(staged, checkpoints)
    fsync_folder(checkpoints.parent)
    shutil.rmtree(old, ignore_errors=True)


__all__ = [
    "DEFAULT_KEEP_BACKUPS",
    "KEEPING_REASONS",
    "BackupInfo",
    "BackupPlace",
    "copy_study_to_sqlite",
    "keep_for",
    "list_backups",
    "place_for",
    "remove_backup",
    "restore_checkpoints_from_backup",
    "restore_study_from_backup",
    "take_backup",
]
