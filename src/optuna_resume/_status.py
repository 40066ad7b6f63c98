"""What a root holds now: the study, its trials, checkpoints, backups and lock.

:func:`study_status` reads it without changing anything (no lock is taken, nothing is
written), so it is safe to call while a session runs.
"""

from __future__ import annotations

import html
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.storages import BaseStorage

from ._backup import BackupInfo, list_backups, place_for
from ._checkpoint import CheckpointInfo
from ._engine import ResumeEngine
from ._error import StudyNotFoundError
from ._history import last_target
from ._lease import StudyLease
from ._lock import live_holder
from ._optuna._access import storage_of
from ._optuna._storage import DEFAULT_DB_NAME, describe, open_storage
from ._root import CHECKPOINTS, root_path
from ._store import FolderStore


def open_existing_study(
    root: str | os.PathLike[str],
    storage: str | BaseStorage | None = None,
    study_name: str | None = None,
    *,
    root_may_be_missing: bool = False,
) -> optuna.Study:
    """Load the study of a root without creating anything.

    With ``root_may_be_missing=True`` and a ``storage``, the root need not exist (a study
    whose states its database holds, read from another host).

    Raises:
        StudyNotFoundError: The root, its database or the study does not exist.
    """
    folder = root_path(root)
    if not folder.is_dir() and not (root_may_be_missing and storage is not None):
        raise StudyNotFoundError(f"{folder} is not a study root (no such folder)")
    if storage is None and not (folder / DEFAULT_DB_NAME).is_file():
        raise StudyNotFoundError(
            f"{folder} holds no {DEFAULT_DB_NAME}; if the study lives in another storage, pass it "
            "(--storage URL on the command line)"
        )
    opened = open_storage(storage, folder)
    name = study_name or folder.name
    try:
        return optuna.load_study(study_name=name, storage=opened)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(opened)]
        raise StudyNotFoundError(
            f"no study {name!r} in {describe(opened)} (studies there: {names or 'none'}); "
            "pass the study's name (--study-name on the command line)"
        ) from None


def local_time(timestamp: float) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in local time, as status, history and backups show it."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


@dataclass
class StudyStatus:
    """A root's study at one moment.

    Attributes:
        root: The root folder.
        study_name: The study.
        storage: The storage, password removed.
        trials_by_state: How many trials are in each state (``COMPLETE``, ``PRUNED``, ...).
        n_trials: All trials.
        target: The total the last ``optimize_until`` aimed at, if known.
        last_checkpoint: The newest checkpoint file in the root.
        last_checkpoint_time: When it was written (seconds since the epoch).
        newest_state: Where the newest state is held when no file of the root holds it
            (the study's database, read from another host), and the trial it comes before.
        interrupted_trial: A trial an interruption cut off, which the next entry settles.
        backups: The backups, oldest first.
        lock_holder: The live process holding the root, if any.
        study_holder: The live session holding the study's lease (whatever its root or
            host), if any.
    """

    root: Path
    study_name: str
    storage: str
    trials_by_state: dict[str, int]
    n_trials: int
    target: int | None = None
    last_checkpoint: CheckpointInfo | None = None
    last_checkpoint_time: float | None = None
    newest_state: tuple[int, str] | None = None
    interrupted_trial: int | None = None
    backups: list[BackupInfo] = field(default_factory=list)
    lock_holder: str | None = None
    study_holder: str | None = None

    def rows(self) -> list[tuple[str, str]]:
        """The status as (label, value) pairs."""
        states = ", ".join(f"{n} {s}" for s, n in sorted(self.trials_by_state.items()))
        done = f"{self.n_trials}" + (f" of {self.target}" if self.target is not None else "")
        if self.newest_state is not None and self.last_checkpoint is None:
            position, where = self.newest_state
            checkpoint = f"the state before trial {position}, in {where}"
        elif self.last_checkpoint is None:
            checkpoint = "none"
        else:
            when = (
                local_time(self.last_checkpoint_time)
                if self.last_checkpoint_time is not None
                else "?"
            )
            checkpoint = f"{self.last_checkpoint.path.name} ({when})"
        if self.interrupted_trial is None:
            interrupted = "none"
        elif self._running_in is not None:
            interrupted = (
                f"none: trial {self.interrupted_trial} is running in the live session "
                f"({self._running_in})"
            )
        else:
            interrupted = f"trial {self.interrupted_trial} (the next entry re-runs it)"
        backups = (
            f"{len(self.backups)} (newest: {self.backups[-1].number})" if self.backups else "none"
        )
        return [
            ("study", self.study_name),
            ("root", str(self.root)),
            ("storage", self.storage),
            ("trials", f"{done} ({states or 'none yet'})"),
            ("last checkpoint", checkpoint),
            ("interrupted trial", interrupted),
            ("backups", backups),
            ("study session", self.study_holder or "none"),
            (
                "lock",
                f"held by a running session ({self.lock_holder})" if self.lock_holder else "free",
            ),
        ]

    @property
    def _running_in(self) -> str | None:
        return self.lock_holder or self.study_holder

    def as_dict(self) -> dict[str, object]:
        """The status as plain data (``--format json`` / ``yaml``)."""
        running = self._running_in is not None
        return {
            "study": self.study_name,
            "root": str(self.root),
            "storage": self.storage,
            "trials": self.n_trials,
            "target": self.target,
            "trials_by_state": dict(sorted(self.trials_by_state.items())),
            "last_checkpoint": None
            if self.last_checkpoint is None
            else str(self.last_checkpoint.path),
            "last_checkpoint_time": self.last_checkpoint_time,
            "newest_state": None
            if self.newest_state is None
            else {"before_trial": self.newest_state[0], "where": self.newest_state[1]},
            "running_trial": self.interrupted_trial if running else None,
            "interrupted_trial": None if running else self.interrupted_trial,
            "backups": [b.number for b in self.backups],
            "session": self.lock_holder,
            "study_session": self.study_holder,
        }

    def __str__(self) -> str:
        width = max(len(label) for label, _ in self.rows())
        return "\n".join(f"{label:<{width}}  {value}" for label, value in self.rows())

    def __repr__(self) -> str:
        target = "" if self.target is None else f"/{self.target}"
        return (
            f"<StudyStatus {self.study_name!r}: {self.n_trials}{target} trials, "
            f"interrupted={self.interrupted_trial}, backups={len(self.backups)}, "
            f"lock={self.lock_holder or 'free'}>"
        )

    def _repr_html_(self) -> str:
        cells = "".join(
            f"<tr><th style='text-align:left'>{html.escape(label)}</th>"
            f"<td style='text-align:left'>{html.escape(value)}</td></tr>"
            for label, value in self.rows()
        )
        return f"<table>{cells}</table>"


def study_status(
    root: str | os.PathLike[str],
    storage: str | BaseStorage | None = None,
    study_name: str | None = None,
) -> StudyStatus:
    """The status of the study in ``root`` (read only).

    Given the study's ``storage``, the root need not exist (another host): the states its
    database holds are shown.

    Raises:
        StudyNotFoundError: There is no such study.
    """
    from ._export import database_states

    study = open_existing_study(root, storage, study_name, root_may_be_missing=True)
    folder = root_path(root)
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    checkpoints = FolderStore(folder / CHECKPOINTS).infos()
    newest = max(checkpoints, key=lambda c: (c.position, c.phase), default=None)
    held = None
    if newest is None:
        state = max(database_states(study), key=lambda s: s.position, default=None)
        held = None if state is None else (state.position, state.where)
    interrupted = ResumeEngine(folder / CHECKPOINTS).interrupted_trial(trials)
    place = place_for(
        storage_of(study),
        folder,
        study.study_name,
        folder / CHECKPOINTS,
        name_study_if_outside=True,
    )
    return StudyStatus(
        root=folder,
        study_name=study.study_name,
        storage=describe(storage_of(study)),
        trials_by_state=dict(Counter(t.state.name for t in trials)),
        n_trials=len(trials),
        target=last_target(folder),
        last_checkpoint=newest,
        last_checkpoint_time=newest.path.stat().st_mtime if newest is not None else None,
        newest_state=held,
        interrupted_trial=None if interrupted is None else interrupted.number,
        backups=list_backups(place),
        lock_holder=live_holder(folder),
        study_holder=StudyLease(study, folder).holder(),
    )


__all__ = ["StudyStatus", "local_time", "open_existing_study", "study_status"]
