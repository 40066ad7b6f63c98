"""Plain functions for ask/tell loops and scripts that do not use ``ResumableStudy``.

Each binds the study to the checkpoint engine of ``<root>/checkpoints`` (once) and calls it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, cast

import optuna
from optuna.trial import TrialState

from ._backup import (
    BackupInfo,
    restore_checkpoints_from_backup,
    restore_study_from_backup,
)
from ._backup import list_backups as _list_backups
from ._binding import bind_engine
from ._checkpoint import BEFORE, CheckpointInfo, read_checkpoint, read_meta
from ._engine import InterruptedPolicy, ResumeEngine, engine_of
from ._error import (
    CheckpointNotFoundError,
    CorruptCheckpointError,
    InvalidArgumentError,
    OptunaResumeError,
)
from ._export import export_checkpoint
from ._history import record_event
from ._lease import sole_session
from ._options import EngineOptions, check_allowed_globals, check_flag, check_loading
from ._optuna._access import storage_of
from ._optuna._storage import DEFAULT_DB_NAME
from ._report import ResumeReport
from ._root import CHECKPOINTS, prepare_root
from ._serialization import join_code_parts
from ._store import FolderStore

FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def save_checkpoint(study: optuna.Study, root: str | os.PathLike[str]) -> CheckpointInfo:
    """Checkpoint the state before the study's next trial (e.g. after ``study.tell``)."""
    return bind_engine(study, root).final(interrupted=False)


def resume_study(
    study: optuna.Study,
    root: str | os.PathLike[str],
    *,
    rewind_to: int | None = None,
    interrupted_trial: InterruptedPolicy = "rerun",
    backup: bool = True,
    allow_inexact: bool = False,
    trusted: bool = False,
    allowed_globals: Iterable[object] = (),
) -> ResumeReport:
    """Do what ``ResumableStudy`` does on entry, to a study you opened yourself.

    The study's sampler is replaced by the restored one (see ``ResumableStudy``). A
    ``rewind_to`` applies once: called again with the same target after the study moved on,
    it does not rewind again (:func:`rewind` does).

    It is refused while another live session runs the study (:class:`RootLockedError`
    naming it). The function holds the study's lease only while it runs: a session opened
    elsewhere afterwards is not kept out, as it is by an open :class:`ResumableStudy`.
    """
    return _resume(
        study,
        root,
        trusted=trusted,
        allowed_globals=allowed_globals,
        rewind_to=rewind_to,
        interrupted_trial=interrupted_trial,
        backup=backup,
        allow_inexact=allow_inexact,
    )


def _resume(
    study: optuna.Study,
    root: str | os.PathLike[str],
    *,
    trusted: bool = False,
    allowed_globals: Iterable[object] = (),
    **options: Any,
) -> ResumeReport:
    """Bind ``study`` and resume it with the sampler and pruner it has (see ``resume``).

    Refused while another live session (another root, process or host) runs the study.
    """
    for flag in ("backup", "allow_inexact"):
        if flag in options:
            check_flag(flag, options[flag])
    engine_options = EngineOptions(
        trusted=trusted, allowed_globals=check_allowed_globals(allowed_globals)
    )
    engine = bind_engine(study, root, engine_options)
    with sole_session(study, engine.root):
        return engine.resume(sampler=study.sampler, pruner=study.pruner, **options)


def rewind(study: optuna.Study, root: str | os.PathLike[str], to: int) -> ResumeReport:
    """Back up, then put the study back to just before trial ``to`` (sampler included).

    A rewind on purpose: it applies every time it is called, unlike ``rewind_to=`` of
    :class:`ResumableStudy` and :func:`resume_study`, which applies once.

    Raises:
        RootLockedError: Another live session (another root, process or host) runs the
            study; nothing was changed.
    """
    return _resume(study, root, rewind_to=to, backup=True, repeat_rewind=True)


def load_sampler(
    root: str | os.PathLike[str],
    trial: int | None = None,
    *,
    storage: str | optuna.storages.BaseStorage | None = None,
    study_name: str | None = None,
    worker: str | None = None,
    trusted: bool = False,
    allowed_globals: Iterable[object] = (),
) -> optuna.samplers.BaseSampler:
    """The sampler as it was just before trial ``trial`` was asked for (default: newest).

    ``root`` is a root folder, or a file written by :func:`export_checkpoint` (which holds
    one state: ``trial`` is then that state's or ``None``). Given the study's ``storage``
    (and ``study_name``, default the root folder's name) or a ``worker``, the state is
    looked for where :func:`export_checkpoint` looks: the study's database (the root may
    be empty or missing, as on another host), the state a worker recorded in the study,
    then the root's files. Without them the root's files are read; where none of them
    holds an intact state and the root holds its ``study.db``, the database is read.

    Raises:
        CheckpointNotFoundError: No checkpoint holds that state.
        CorruptCheckpointError: The only copies of that state are damaged.
    """
    path = Path(root).expanduser()
    options = (trusted, check_loading(trusted, allowed_globals))
    if path.is_file():
        return _load_exported(path, trial, *options)
    if storage is not None or study_name is not None or worker is not None:
        return _load_through_export(path, trial, storage, study_name, worker, *options)
    folder = prepare_root(root) / CHECKPOINTS
    try:
        return _load_sampler_from(folder, trial, *options)
    except (CheckpointNotFoundError, CorruptCheckpointError):
        if not (path / DEFAULT_DB_NAME).is_file():
            raise
        # The states committed with the trials: the files are their copies, written
        # without an fsync, and may be gone or torn after a power loss.
        with contextlib.suppress(OptunaResumeError):
            return _load_through_export(path, trial, None, None, None, *options)
        raise


def _load_through_export(
    root: Path,
    trial: int | None,
    storage: str | optuna.storages.BaseStorage | None,
    study_name: str | None,
    worker: str | None,
    trusted: bool,
    allowed_globals: tuple[object, ...],
) -> optuna.samplers.BaseSampler:
    """The state :func:`export_checkpoint` finds, written to a file of its own and loaded."""
    with tempfile.TemporaryDirectory(prefix="optuna-resume-") as scratch:
        info = export_checkpoint(
            root,
            Path(scratch) / "state.pt",
            trial,
            storage=storage,
            study_name=study_name,
            worker=worker,
        )
        return _load_exported(info.path, None, trusted, allowed_globals)


def _load_exported(
    path: Path, trial: int | None, trusted: bool, allowed_globals: tuple[object, ...]
) -> optuna.samplers.BaseSampler:
    meta = read_meta(path)
    info = CheckpointInfo(path, meta.get("trial", -1), meta.get("phase", BEFORE))
    if trial is not None and info.position != trial:
        raise CheckpointNotFoundError(
            f"{path} holds the state before trial {info.position}, not before trial {trial}"
        )
    sampler = read_checkpoint(
        info, study_uid=None, trusted=trusted, allowed_globals=allowed_globals
    ).sampler
    return cast(optuna.samplers.BaseSampler, join_code_parts(sampler, None)[0])


def _load_sampler_from(
    folder: os.PathLike[str] | str,
    trial: int | None,
    trusted: bool,
    allowed_globals: tuple[object, ...],
) -> optuna.samplers.BaseSampler:
    infos = FolderStore(Path(folder)).infos()
    if trial is not None:
        infos = [i for i in infos if i.position == trial]
        infos.sort(key=lambda i: i.phase != BEFORE)
        if not infos:
            raise CheckpointNotFoundError(
                f"no checkpoint in {folder} holds the state before trial {trial}"
            )
        chosen = infos[0]
    else:
        if not infos:
            raise CheckpointNotFoundError(f"no checkpoint in {folder}")
        chosen = max(infos, key=lambda i: (i.position, i.phase == BEFORE))
    sampler = read_checkpoint(
        chosen, study_uid=None, trusted=trusted, allowed_globals=allowed_globals
    ).sampler
    # No sampler to take functions and local classes from: a function left out stays a
    # placeholder that says so when called; a sampler of a local class cannot be rebuilt.
    return cast(optuna.samplers.BaseSampler, join_code_parts(sampler, None)[0])


def list_checkpoints(root: str | os.PathLike[str]) -> list[CheckpointInfo]:
    """The checkpoints of a root, oldest state first."""
    return FolderStore(prepare_root(root) / CHECKPOINTS).infos()


def backup(study: optuna.Study, root: str | os.PathLike[str]) -> BackupInfo:
    """Back up the study and its checkpoints now."""
    info = bind_engine(study, root).backup()
    assert info is not None
    return info


def list_backups(study: optuna.Study, root: str | os.PathLike[str]) -> list[BackupInfo]:
    """The backups of the study, oldest first."""
    engine = bind_engine(study, root)
    assert engine.backup_place is not None
    return _list_backups(engine.backup_place)


def restore_backup(study: optuna.Study, root: str | os.PathLike[str], number: int) -> optuna.Study:
    """Replace the live study and its checkpoints by backup ``number``.

    The live state is backed up first, so nothing is lost. Other studies in the same
    storage are not touched. Returns the study, reloaded and resumed from the backup.

    Raises:
        InvalidArgumentError: ``number`` is not a backup's number (an int >= 0).
        CheckpointNotFoundError: There is no backup ``number``.
        RootLockedError: Another live session (another root, process or host) runs the
            study; nothing was changed.
    """
    if isinstance(number, bool) or not isinstance(number, int) or number < 0:
        raise InvalidArgumentError(
            f"a backup's number is an int >= 0 (see list_backups), not {number!r}"
        )
    engine = bind_engine(study, root)
    assert engine.backup_place is not None
    found = [b for b in _list_backups(engine.backup_place) if b.number == number]
    if not found:
        have = [b.number for b in _list_backups(engine.backup_place)]
        raise CheckpointNotFoundError(f"no backup {number} (backups: {have or 'none'})")
    with sole_session(study, engine.root):
        return _restore(study, root, engine, found[0], number)


def _restore(
    study: optuna.Study,
    root: str | os.PathLike[str],
    engine: ResumeEngine,
    found: BackupInfo,
    number: int,
) -> optuna.Study:
    engine.backup("restore")
    record_event(engine.root, "restore", study=study.study_name, number=number)
    engine.detach()
    restore_study_from_backup(found, storage_of(study), study.study_name)
    restore_checkpoints_from_backup(found, engine.folder)
    restored = optuna.load_study(
        study_name=study.study_name,
        storage=storage_of(study),
        sampler=study.sampler,
        pruner=study.pruner,
    )
    # The backup's own sampler state goes on (the study's sampler only lends its code).
    bind_engine(restored, root).resume(sampler=None, backup=False, allow_inexact=True)
    return restored


def n_finished_trials(study: optuna.Study) -> int:
    """Trials that ran to an end (complete, pruned or failed)."""
    return len(study.get_trials(deepcopy=False, states=FINISHED_STATES))


def optimize_until(
    study: optuna.Study,
    func: Callable[[optuna.Trial], float | Sequence[float]],
    n_trials: int,
    **optimize_kwargs: Any,
) -> None:
    """Run ``study.optimize`` until the study has ``n_trials`` finished trials in total.

    Re-running a script or a notebook cell then continues the same study instead of adding
    another ``n_trials`` (``Study.optimize`` counts per call).
    """
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 0:
        raise InvalidArgumentError(
            f"n_trials must be a non-negative int (the total the study should reach), not "
            f"{n_trials!r}"
        )
    finished = n_finished_trials(study)
    engine = engine_of(study)
    if engine is not None:
        record_event(
            engine.root, "optimize_until", study=study.study_name, target=n_trials, done=finished
        )
    remaining = n_trials - finished
    if remaining > 0:
        study.optimize(func, n_trials=remaining, **optimize_kwargs)


__all__ = [
    "backup",
    "list_backups",
    "list_checkpoints",
    "load_sampler",
    "n_finished_trials",
    "optimize_until",
    "restore_backup",
    "resume_study",
    "rewind",
    "save_checkpoint",
]
