"""The seed design's functions (Helios's Optuna plugin), on this library's engine.

Code written against ``helios.plugins.optuna`` works after changing its import. Where the
seed's code departed from its own documentation or lost data, these follow the documentation
and keep the data: backups are named ``<name>_backup-<n>`` (not ``_bkp-``), a checkpoint is
picked by trial number (not by list position), and rewinding removes only this study's later
trials (the seed rebuilt the whole SQLite file, dropping every other study in it). They also
give this library's guarantee: an interrupted trial runs again under its number with its
parameters, and the sampler goes on exactly.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Sequence
from typing import Any, Literal, TypedDict

import optuna
from optuna.study import StudyDirection

from ._backup import place_for, take_backup
from ._engine import ResumeEngine, engine_of
from ._error import CheckpointNotFoundError, InvalidRewindError, UnsupportedStorageError
from ._functions import _load_sampler_from
from ._optuna._access import set_study_id, storage_of, study_id_of
from ._optuna._storage import is_in_memory, take_back_plan, truncate_study
from ._root import CHECKPOINTS


class StudyArgs(TypedDict, total=False):
    """The arguments of ``optuna.create_study``, as a type hint.

    Attributes:
        storage: Database URL or storage object (``None``: in-memory, one process only).
        sampler: The sampler.
        pruner: The pruner.
        study_name: The study's name.
        direction: Direction of optimization.
        load_if_exists: Load the study if it exists (these functions default it to True).
        directions: Directions for multi-objective optimization.
    """

    storage: str | optuna.storages.BaseStorage | None
    sampler: optuna.samplers.BaseSampler | None
    pruner: optuna.pruners.BasePruner | None
    study_name: str | None
    direction: Literal["minimize", "maximize"] | StudyDirection | None
    load_if_exists: bool
    directions: Sequence[Literal["minimize", "maximize"] | StudyDirection] | None


def _backup(
    study: optuna.Study,
    sampler_path: str | os.PathLike[str] | None,
    backup_study: bool,
    backup_samplers: bool,
    reason: str,
) -> None:
    folder = pathlib.Path(sampler_path) if sampler_path is not None else None
    if not backup_study and not (backup_samplers and folder is not None):
        return
    place = place_for(
        storage_of(study),
        folder.parent if folder is not None else pathlib.Path.cwd(),
        study.study_name,
        folder if backup_samplers else None,
        with_storage=backup_study,
    )
    take_backup(place, storage_of(study), study_id_of(study), reason=reason)


def _engine(
    study: optuna.Study, sampler_path: str | os.PathLike[str] | None
) -> ResumeEngine | None:
    engine = engine_of(study)
    if engine is None and sampler_path is not None:
        engine = ResumeEngine(pathlib.Path(sampler_path))
        engine.attach(study)
    return engine


def _create(study_args: dict[str, Any]) -> optuna.Study:
    study_args.setdefault("load_if_exists", True)
    return optuna.create_study(**study_args)


def checkpoint_sampler(trial: optuna.Trial, chkpt_root: str | os.PathLike[str]) -> None:
    """Checkpoint the sampler; call it at the start and at the end of the objective.

    The first call in a trial records the state before the trial, the second the state
    after it. Checkpoints are written with ``torch.save``, atomically and durably.

    Args:
        trial: The current trial.
        chkpt_root: The folder for the checkpoints.
    """
    engine = engine_of(trial.study)
    if engine is None:
        engine = ResumeEngine(pathlib.Path(chkpt_root))
        engine.attach(trial.study)
    engine.checkpoint_call(trial)


def restore_sampler(
    chkpt_root: str | os.PathLike[str], trial_id: int | None = None
) -> optuna.samplers.BaseSampler | None:
    """The checkpointed sampler: as it was before trial ``trial_id``, or the newest state.

    Returns ``None`` when the folder holds no checkpoint.

    Raises:
        CheckpointNotFoundError: ``trial_id`` was given and no checkpoint holds that state.
    """
    folder = pathlib.Path(chkpt_root)
    if not any(folder.glob("trial-*.pt")) and (folder / CHECKPOINTS).is_dir():
        folder = folder / CHECKPOINTS  # a ResumableStudy root was passed
    try:
        return _load_sampler_from(folder, trial_id, False, ())
    except CheckpointNotFoundError:
        if trial_id is not None and any(folder.glob("trial-*.pt")):
            raise
        return None


def create_or_load_study(
    sampler_path: str | os.PathLike[str] | None = None,
    backup_study: bool = False,
    backup_samplers: bool = False,
    **study_args: Any,
) -> optuna.Study:
    """Start a study, or continue one exactly where it stopped.

    With ``sampler_path`` (the folder :func:`checkpoint_sampler` writes to) the sampler is
    restored and a trial cut off by an interruption runs again under its number with its
    parameters. Backups are named ``<name>_backup-<n>``, ``n`` counting from 0.

    Args:
        sampler_path: The checkpoint folder.
        backup_study: Back up the study's database first.
        backup_samplers: Back up the checkpoint folder first.
        study_args: Arguments for ``optuna.create_study`` (``load_if_exists`` defaults to
            True).
    """
    study = _create(dict(study_args))
    if is_in_memory(storage_of(study)):
        raise UnsupportedStorageError(
            "create_or_load_study needs a storage that outlives the process: pass storage="
            "'sqlite:///study.db' (or another database URL); an in-memory study cannot be "
            "loaded again"
        )
    _backup(study, sampler_path, backup_study, backup_samplers, "entry")
    engine = _engine(study, sampler_path)
    if engine is not None:
        engine.resume(sampler=study_args.get("sampler"), backup=False, allow_inexact=True)
    return study


def create_study_starting_from_trial(
    trial_id: int,
    backup_study: bool = True,
    backup_samplers: bool = True,
    sampler_path: str | os.PathLike[str] | None = None,
    **study_args: Any,
) -> optuna.Study:
    """Open the study with the trials numbered below ``trial_id`` only.

    Trials ``trial_id`` and above leave the live study (they stay in the backup); other
    studies in the same storage are not touched. With ``sampler_path`` the sampler is put
    back to its state just before trial ``trial_id``, so running on reproduces the original
    trials.

    Args:
        trial_id: The first trial to drop.
        backup_study: Back up the study's database first.
        backup_samplers: Back up the checkpoint folder first.
        sampler_path: The checkpoint folder.
        study_args: Arguments for ``optuna.create_study``.
    """
    if isinstance(trial_id, bool) or not isinstance(trial_id, int) or trial_id < 0:
        raise InvalidRewindError(
            f"trial_id must be the number of a trial (an int >= 0), not {trial_id!r}; nothing "
            "was changed"
        )
    study = _create(dict(study_args))
    engine = _engine(study, sampler_path)
    n_trials = len(study.get_trials(deepcopy=False))
    if n_trials == 0:
        return study
    _backup(study, sampler_path, backup_study, backup_samplers, "rewind")
    if trial_id >= n_trials:
        if engine is not None:
            engine.resume(sampler=study_args.get("sampler"), backup=False, allow_inexact=True)
        return study
    if engine is not None:
        study.sampler = engine.rewind(trial_id, study_args.get("sampler"))
    else:
        storage = storage_of(study)
        take_back = take_back_plan(storage, study_id_of(study), trial_id)
        set_study_id(study, truncate_study(storage, study_id_of(study), trial_id, take_back))
    return study


__all__ = [
    "StudyArgs",
    "checkpoint_sampler",
    "create_or_load_study",
    "create_study_starting_from_trial",
    "restore_sampler",
]
