"""Several worker processes on one study: a checkpoint stream each, dead workers' trials re-run.

A worker is a process that opens the study with ``ResumableStudy(root, worker=...)``. Its
stream lives in ``<root>/workers/<id>/`` (checkpoints, backups, history, workspaces) under a
lock of its own, so two live workers never share one. Every trial a worker asks for is
tagged with the worker's id (a trial system attribute). A trial left RUNNING by a worker
that is no longer alive (its lock is free, its process gone) is settled once: marked FAIL
(a state change the storage makes atomically: of several workers seeing it, one wins) and
enqueued again with the parameters it had drawn; the next ``ask`` of any worker runs it.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState, create_trial

from ._error import InvalidArgumentError, InvalidRewindError
from ._lock import live_holder
from ._log import logger
from ._sampler_graph import sampler_parts
from ._storage import running_trials

WORKERS = "workers"
WORKER_KEY = "optuna_resume:worker"
RERUN_OF_KEY = "optuna_resume:rerun_of"
_RERUN_DONE_PREFIX = "optuna_resume:rerun_enqueued:"
AUTO = "auto"
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_logger = logger


def check_worker_id(worker: object) -> str:
    """Return ``worker`` if it can name a worker's folder, else raise an error."""
    if not isinstance(worker, str) or not _ID.match(worker) or set(worker) <= {"."}:
        raise InvalidArgumentError(
            f"worker must be 'auto' or an id of letters, digits, '_', '.', '-' (at most 64), "
            f"not {worker!r}"
        )
    return worker


def worker_root(root: Path, worker: str) -> Path:
    return root / WORKERS / worker


def study_root_of(worker_folder: Path) -> Path:
    return worker_folder.parent.parent


def worker_folders(root: Path) -> list[Path]:
    """The folders of the workers that ever ran on ``root``, by id."""
    folder = root / WORKERS
    return [folder / name for name in sorted(os.listdir(folder))] if folder.is_dir() else []


def live_workers(root: Path, but: str | None = None) -> dict[str, str]:
    """The workers of ``root`` whose process is alive: {id: "PID n on host"}."""
    found: dict[str, str] = {}
    for folder in worker_folders(root):
        holder = live_holder(folder) if folder.name != but else None
        if holder is not None:
            found[folder.name] = holder
    return found


def refuse_rewind_with_live_workers(root: Path, own: str, study_name: str) -> None:
    """Raise :class:`InvalidRewindError` naming the other live workers, if any."""
    others = live_workers(root, but=own)
    if others:
        names = ", ".join(f"{w} ({holder})" for w, holder in others.items())
        raise InvalidRewindError(
            f"cannot rewind study {study_name!r} while other workers are active: {names}. "
            "Stop them first (their trials would be removed under them); nothing was changed."
        )


def reseed_for_worker(sampler: optuna.samplers.BaseSampler, worker: str, salt: str = "") -> None:
    """Give ``sampler``'s random generators a seed derived from the worker id (and ``salt``).

    Workers started from the same seeded sampler would otherwise draw the same values. The
    derivation is deterministic, so a worker's stream is reproducible from its id.
    """
    generators = [
        part
        for part in sampler_parts(sampler, modules=("optuna.", "numpy."))
        if isinstance(part, np.random.RandomState)
    ]
    for index, generator in enumerate(generators):
        digest = hashlib.sha256(f"{worker}:{salt}:{index}".encode()).digest()
        generator.seed(int.from_bytes(digest[:4], "little"))


def settle_dead_trials(study: optuna.Study, root: Path, own: str, *, own_is_dead: bool) -> int:
    """Re-run, once, the RUNNING trials of workers that are gone; return how many.

    ``own_is_dead``: this worker's RUNNING trials are from a previous life of the worker
    (true at entry, when the worker has just taken its lock).
    """
    storage, study_id = study._storage, study._study_id
    settled = 0
    alive: dict[str, bool] = {}
    for trial in running_trials(storage, study_id):
        worker = trial.system_attrs.get(WORKER_KEY)
        if not isinstance(worker, str):
            continue  # not ours: a plain Optuna worker's trial
        if worker == own:
            dead = own_is_dead
        else:
            if worker not in alive:
                alive[worker] = _not_proven_dead(worker_root(root, worker))
            dead = not alive[worker]
        if dead and rerun_once(study, trial):
            settled += 1
    return settled


def _not_proven_dead(folder: Path) -> bool:
    """Whether a worker may be alive: a worker nobody can prove dead is alive.

    Dead: its folder is in this root and its lock is free (released, or its process on this
    host is gone). A worker without a folder here runs from another root (another host, on
    the same storage): nothing here can tell, so it is alive, and its trials are never
    failed from here (its own restart, or Optuna's heartbeat, settles them).
    """
    if not folder.is_dir():
        return True
    return live_holder(folder) is not None


def rerun_once(study: optuna.Study, trial: FrozenTrial) -> bool:
    """Fail the RUNNING ``trial`` and enqueue it again, unless another worker did it first."""
    try:
        if not study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):
            return False
    except UpdateFinishedTrialError:
        return False  # another worker settled it first
    enqueue_rerun(study, trial)
    return True


def enqueue_rerun(study: optuna.Study, trial: FrozenTrial) -> None:
    """Enqueue ``trial``'s parameters again, once (its worker's cut-off trial).

    A trial cut off before its first ``suggest_*`` drew nothing and is not enqueued.
    """
    if not trial.params:
        return  # cut off before it drew a parameter: nothing to run again
    key = f"{_RERUN_DONE_PREFIX}{trial.number}"
    storage = study._storage
    if key in storage.get_study_system_attrs(study._study_id):
        return
    storage.set_study_system_attr(study._study_id, key, True)
    study.add_trial(
        create_trial(
            state=TrialState.WAITING,
            system_attrs={"fixed_params": dict(trial.params), RERUN_OF_KEY: trial.number},
            user_attrs=dict(trial.user_attrs),
        )
    )
    _logger.warning(
        "trial %d of study %r was cut off (worker %s); enqueued again with the same parameters",
        trial.number,
        study.study_name,
        trial.system_attrs.get(WORKER_KEY),
    )


def tag_new_trials(study: optuna.Study, worker: str) -> None:
    """Have the storage create this study's new trials already tagged with ``worker``.

    The tag is written in the transaction that creates the trial, so that a worker killed
    right after an ``ask`` leaves no RUNNING trial that nobody can tell is its own.
    """
    storage = study._storage
    create = type(storage).create_new_trial.__get__(storage)

    def create_new_trial(study_id: int, template_trial: FrozenTrial | None = None) -> int:
        if template_trial is None and study_id == study._study_id:
            template_trial = FrozenTrial(
                number=-1,
                state=TrialState.RUNNING,
                value=None,
                datetime_start=datetime.datetime.now(),
                datetime_complete=None,
                params={},
                distributions={},
                user_attrs={},
                system_attrs={WORKER_KEY: worker},
                intermediate_values={},
                trial_id=-1,
            )
        return int(create(study_id, template_trial))

    storage.create_new_trial = create_new_trial  # type: ignore[method-assign]


def untag_new_trials(study: optuna.Study) -> None:
    study._storage.__dict__.pop("create_new_trial", None)


def worker_ids(worker: str) -> Iterator[str]:
    """The ids to try for ``worker``: itself, or for ``"auto"`` "0", "1", ..."""
    if worker != AUTO:
        yield worker
        return
    yield from (str(index) for index in range(10_000))


__all__ = [
    "AUTO",
    "RERUN_OF_KEY",
    "WORKERS",
    "WORKER_KEY",
    "check_worker_id",
    "enqueue_rerun",
    "live_workers",
    "refuse_rewind_with_live_workers",
    "rerun_once",
    "reseed_for_worker",
    "settle_dead_trials",
    "study_root_of",
    "tag_new_trials",
    "untag_new_trials",
    "worker_folders",
    "worker_ids",
    "worker_root",
]
