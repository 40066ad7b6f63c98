"""Check a root: every checkpoint's integrity, and the checkpoints against the storage."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from optuna.storages import BaseStorage

from ._checkpoint import BEFORE, position_keys, read_checkpoint
from ._engine import ResumeEngine
from ._error import OptunaResumeError
from ._export import check_state, database_states
from ._options import check_loading
from ._optuna._access import storage_of, study_id_of
from ._optuna._storage import UID_KEY
from ._root import CHECKPOINTS, root_path
from ._status import open_existing_study
from ._store import FolderStore


@dataclass(frozen=True)
class Finding:
    """One problem found by :func:`verify_root`.

    Attributes:
        subject: The file (or ``"study"``) it is about.
        message: What is wrong and what to do.
    """

    subject: str
    message: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.message}"


@dataclass(frozen=True)
class VerifyResult:
    """What :func:`verify_root` checked and found.

    Attributes:
        checked: How many checkpoint files were read and verified.
        n_trials: Trials in the storage.
        findings: The problems (none: the root is consistent and resumes exactly).
        checked_in_database: How many states committed in the study's database were read
            and verified.
    """

    checked: int
    n_trials: int
    findings: list[Finding]
    checked_in_database: int = 0

    @property
    def ok(self) -> bool:
        return not self.findings


def verify_root(
    root: str | os.PathLike[str],
    storage: str | BaseStorage | None = None,
    study_name: str | None = None,
    *,
    trusted: bool = False,
    allowed_globals: Iterable[object] = (),
) -> VerifyResult:
    """Read every checkpoint of a root with the safe loader and compare them with the storage.

    The states committed in the study's database (an RDB storage) are read too: given the
    ``storage``, the root may be missing (another host). Changes nothing. Found: unreadable,
    truncated, tampered or renamed checkpoints, missing blobs, checkpoints of another study,
    checkpoints newer than the storage (it lost trials), and a study whose current state
    neither a checkpoint file nor the database holds (the next entry could not resume
    exactly).
    """
    allowed_globals = check_loading(trusted, allowed_globals)
    study = open_existing_study(root, storage, study_name, root_may_be_missing=True)
    folder = root_path(root) / CHECKPOINTS
    attr = storage_of(study).get_study_system_attrs(study_id_of(study)).get(UID_KEY)
    uid = attr if isinstance(attr, str) else None
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    n_trials = len(trials)
    findings: list[Finding] = []
    checkpoints = FolderStore(folder).infos()
    readable = set()
    for info in checkpoints:
        try:
            read_checkpoint(
                info,
                study_uid=uid,
                trusted=trusted,
                allowed_globals=allowed_globals,
            )
        except (OptunaResumeError, OSError) as e:
            findings.append(Finding(str(info.path), str(e)))
            continue
        readable.add((info.trial, info.phase))
        if info.position > n_trials:
            findings.append(
                Finding(
                    str(info.path),
                    f"is the state before trial {info.position}, but the storage holds only "
                    f"{n_trials} trial(s): the storage lost trials (e.g. it was restored from an "
                    "older backup). The next resume sets such states aside (into a backup) and "
                    f"goes on from the state before trial {n_trials}; to get the lost trials "
                    "back instead, restore the backup whose study matches these checkpoints.",
                )
            )
    in_database = database_states(study)
    for found in in_database:
        try:
            check_state(
                found,
                uid,
                study.study_name,
                trusted=trusted,
                allowed_globals=allowed_globals,
            )
        except OptunaResumeError as e:
            findings.append(Finding(f"{found.where}, state of trial {found.trial}", str(e)))
            continue
        readable.add((found.trial, found.phase))
    cut = ResumeEngine(folder).interrupted_trial(trials)
    needed = cut.number if cut is not None else n_trials
    holds_needed = any(key in readable for key in position_keys(needed))
    if n_trials and not holds_needed:
        findings.append(
            Finding(
                "study",
                f"no valid checkpoint holds the state before trial {needed} "
                f"({FolderStore(folder).path(needed, BEFORE).name}, nor the study's database): "
                "the next entry cannot resume "
                "exactly. Rewind to a trial that has one (rewind ROOT --to N), or resume with "
                "allow_inexact=True.",
            )
        )
    return VerifyResult(len(checkpoints), n_trials, findings, len(in_database))


__all__ = ["Finding", "VerifyResult", "verify_root"]
