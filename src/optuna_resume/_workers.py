"""Several worker processes on one study: a checkpoint stream each, dead workers' trials re-run.

A worker is a process that opens the study with ``ResumableStudy(root, worker=...)``. Its
stream lives in ``<root>/workers/<id>/`` (checkpoints, backups, history, workspaces) under a
lock of its own, so two live workers never share one. Every trial a worker asks for is
tagged with the worker's id (a trial system attribute). A trial left RUNNING by a worker
that is no longer alive (its lock is free, its process gone) is settled once: marked FAIL
(a state change the storage makes atomically: of several workers seeing it, one wins) and
enqueued again with the parameters it had drawn; the next ``ask`` of any worker runs it.

Whether a worker is alive is proven from where it runs, never guessed. Every trial also
records its holder (host and PID). On its own host a worker is dead when its lock in this
root is free or its process is gone. From another host, only the storage can tell: on RDB
storages a worker records Optuna's heartbeat of each of its running trials (every
``heartbeat_interval`` seconds, the storage's or 10), and a trial whose heartbeat is older
than the grace period (the storage's, or 60 s) is stale: its worker is dead. On storages
without heartbeats (the journal storages, the gRPC proxy) each worker id holds a lease in
the study instead (a study system attribute naming its host and PID, renewed every 10 s,
see ``_lease``): a worker whose lease has gone unrenewed for 60 s, or has since been taken
over by a new process of its id, is dead. A worker nobody can prove dead is alive, and its
trials are never failed from here.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np
import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState, create_trial

from ._atomic import pid_alive
from ._error import InvalidArgumentError, InvalidRewindError, RootLockedError
from ._lease import describe_holder, holder_is_dead, lease_settings, worker_leases
from ._lock import live_holder
from ._log import logger
from ._optuna._access import storage_of, study_id_of, trial_id_of
from ._optuna._hooks import create_trials_plainly, create_trials_with
from ._optuna._samplers import sampler_parts
from ._optuna._storage import heartbeat_ages, heartbeat_settings, rdb_of, running_trials

WORKERS = "workers"
WORKER_KEY = "optuna_resume:worker"
HOLDER_KEY = "optuna_resume:holder"  # [host, PID] of the process that runs the trial
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


def refuse_rewind_with_live_workers(
    root: Path, own: str, study_name: str, study: optuna.Study | None = None
) -> None:
    """Raise :class:`InvalidRewindError` naming the other live workers, if any.

    Those of ``root`` on this host, and with ``study``, those whose lease in the study is
    live (other roots and hosts, on storages without heartbeats).
    """
    others = live_workers(root, but=own)
    if study is not None:
        grace = lease_settings(storage_of(study))[1]
        system_attrs = storage_of(study).get_study_system_attrs(study_id_of(study))
        for worker, record in worker_leases(system_attrs).items():
            if worker != own and worker not in others and not holder_is_dead(record, grace):
                others[worker] = describe_holder(record)
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


def holder_tag() -> list[str | int]:
    """This process, as a trial records its holder: ``[host, PID]``."""
    return [socket.gethostname(), os.getpid()]


class _Liveness:
    """Tells, for one look at the study, which workers' RUNNING trials are proven dead."""

    def __init__(self, study: optuna.Study, root: Path) -> None:
        self._study = study
        self._root = root
        self._host = socket.gethostname()
        self._settings = heartbeat_settings(storage_of(study))
        self._ages: dict[int, float] | None = None
        self._locks: dict[str, bool] = {}
        self._leases: dict[str, dict[str, object]] | None = None

    def heartbeat_age(self, trial: FrozenTrial) -> float | None:
        """Seconds since ``trial``'s last heartbeat (database clock); ``None``: none recorded."""
        if self._settings is None:
            return None
        if self._ages is None:
            self._ages = heartbeat_ages(storage_of(self._study), study_id_of(self._study))
        return self._ages.get(trial_id_of(trial))

    def stale(self, trial: FrozenTrial) -> bool:
        age = self.heartbeat_age(trial)
        return age is not None and self._settings is not None and age > self._settings[1]

    def local_verdict(self, trial: FrozenTrial, *, own: bool) -> bool | None:
        """Dead (True) or alive (False) as this host can prove it; ``None``: it cannot."""
        holder = trial.system_attrs.get(HOLDER_KEY)
        host, pid = (holder[0], holder[1]) if isinstance(holder, list) and holder else (None, 0)
        if host is not None and host != self._host:
            return None  # another host: only the storage can tell
        if own:
            # This worker holds its lock now: an earlier process of it on this host is dead
            # unless it still runs (in another root).
            return host is None or pid == os.getpid() or not pid_alive(int(pid))
        worker = str(trial.system_attrs.get(WORKER_KEY))
        folder = worker_root(self._root, worker)
        if folder.is_dir():
            if worker not in self._locks:
                self._locks[worker] = live_holder(folder) is None
            return self._locks[worker]  # its lock here is free: dead; held: alive
        if host is not None and not pid_alive(int(pid)):
            return True  # another root on this host, its process gone
        return None

    def lease_lapsed(self, trial: FrozenTrial) -> bool:
        """Whether the lease of ``trial``'s worker proves its process dead (no heartbeats).

        Dead when the lease went unrenewed for the grace period, or when another process of
        the worker id has taken it over since (which it did only once the first was proven
        dead). No lease: nobody can tell.
        """
        if self._leases is None:
            storage, study_id = storage_of(self._study), study_id_of(self._study)
            self._leases = worker_leases(storage.get_study_system_attrs(study_id))
        record = self._leases.get(str(trial.system_attrs.get(WORKER_KEY)))
        if record is None:
            return False
        holder = trial.system_attrs.get(HOLDER_KEY)
        if isinstance(holder, list) and [record.get("host"), record.get("pid")] != holder[:2]:
            return True
        return holder_is_dead(record, lease_settings(storage_of(self._study))[1])

    def dead(self, trial: FrozenTrial) -> bool:
        """Whether another worker's RUNNING ``trial`` is proven dead (nobody proves: alive)."""
        verdict = self.local_verdict(trial, own=False)
        if verdict is not None:
            return verdict
        return self.lease_lapsed(trial) if self._settings is None else self.stale(trial)


def settle_dead_trials(study: optuna.Study, root: Path, own: str, *, own_is_dead: bool) -> int:
    """Re-run, once, the RUNNING trials of workers that are proven dead; return how many.

    ``own_is_dead``: this worker's RUNNING trials are from a previous life of the worker
    (true at entry, when the worker has just taken its lock).

    Raises:
        RootLockedError: (at entry) A process of this worker id still runs one of its trials
            elsewhere: its heartbeat stayed fresh for a whole grace period.
    """
    storage, study_id = storage_of(study), study_id_of(study)
    settled = 0
    liveness = _Liveness(study, root)
    for trial in running_trials(storage, study_id):
        worker = trial.system_attrs.get(WORKER_KEY)
        if not isinstance(worker, str):
            continue  # not ours: a plain Optuna worker's trial
        if worker == own:
            if not own_is_dead:
                continue
            if not liveness.local_verdict(trial, own=True):
                _wait_until_stale(study, trial)
        elif not liveness.dead(trial):
            continue
        if rerun_once(study, trial):
            settled += 1
    return settled


def _wait_until_stale(study: optuna.Study, trial: FrozenTrial) -> None:
    """Wait for a trial of this worker id that another process ran to prove it dead.

    A process of this worker id on another host (a preempted job restarted elsewhere) may
    still be running, or may have died a moment ago: its heartbeat tells. A trial without one
    (the process died before its first heartbeat, or the storage keeps none) is this worker's
    to settle. A heartbeat that stays fresh for a grace period is a live process: refused.
    """
    settings = heartbeat_settings(storage_of(study))
    if settings is None:
        return
    interval, grace = settings
    deadline = time.monotonic() + grace + 2 * interval
    logged = False
    while True:
        age = heartbeat_ages(storage_of(study), study_id_of(study)).get(trial_id_of(trial))
        if age is None or age > grace:
            return
        state = storage_of(study).get_trial(trial_id_of(trial)).state
        if state != TrialState.RUNNING:
            return  # another worker settled it meanwhile
        holder = trial.system_attrs.get(HOLDER_KEY)
        where = f"PID {holder[1]} on {holder[0]}" if isinstance(holder, list) else "elsewhere"
        if time.monotonic() > deadline:
            raise RootLockedError(
                f"worker {trial.system_attrs.get(WORKER_KEY)} of study {study.study_name!r} is "
                f"still running trial {trial.number} ({where}: its heartbeat is {age:.0f} s "
                "old). Stop that process first, or start this one with another worker id; "
                "nothing was changed."
            )
        if not logged:
            _logger.warning(
                "trial %d of worker %s was last run by %s, whose heartbeat is %.0f s old: "
                "waiting up to %d s for it to go stale (grace period %d s)",
                trial.number,
                trial.system_attrs.get(WORKER_KEY),
                where,
                age,
                int(grace + 2 * interval),
                grace,
            )
            logged = True
        time.sleep(min(interval, 1.0))


class Heartbeats:
    """Records Optuna's heartbeat of this worker's running trials (a daemon thread).

    A trial's first heartbeat is recorded as soon as it starts, then every ``interval``
    seconds until it is told, so that a worker on another host can tell a live trial from
    one whose process died.
    """

    def __init__(self, study: optuna.Study, interval: float) -> None:
        self._storage = storage_of(study)
        self._interval = interval
        self._running: dict[int, int] = {}  # number -> trial id
        self._new: set[int] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(
            target=self._run, name="optuna-resume-heartbeats", daemon=True
        )
        self._thread.start()

    def started(self, number: int, trial_id: int) -> None:
        with self._lock:
            self._running[number] = trial_id
            self._new.add(trial_id)
        self._wake.set()

    def finished(self, number: int) -> None:
        with self._lock:
            self._running.pop(number, None)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        next_round = time.monotonic() + self._interval
        while True:
            self._wake.wait(timeout=max(0.0, next_round - time.monotonic()))
            self._wake.clear()
            if self._stopping:
                return
            with self._lock:
                if time.monotonic() >= next_round:
                    due = set(self._running.values())
                    next_round = time.monotonic() + self._interval
                else:
                    due = self._new & set(self._running.values())
                self._new.clear()
            for trial_id in sorted(due):
                try:
                    self._storage.record_heartbeat(trial_id)
                except Exception as e:  # a dropped connection: the next round tries again
                    _logger.warning("could not record the heartbeat of a trial: %s", e)


def start_heartbeats(study: optuna.Study) -> Heartbeats | None:
    """Record the heartbeats of this worker's trials, where the storage keeps them."""
    settings = heartbeat_settings(storage_of(study))
    return None if settings is None else Heartbeats(study, settings[0])


def rerun_stale_trials_of_workers(study: optuna.Study) -> Callable[[], None]:
    """Have Optuna's own stale-trial check re-run a worker's trial once, as a dead worker's.

    Where the storage's heartbeat is enabled, ``optimize`` fails stale trials itself and calls
    the storage's ``heartbeat_stale_trial_callback``. A user's callback (e.g.
    ``RetryHeartbeatStaleTrialCallback``) is kept; without one, a worker's trial failed that
    way is enqueued again with its parameters. Returns the function that undoes it.
    """
    rdb = rdb_of(storage_of(study))
    if rdb is None or rdb.heartbeat_interval is None or rdb.heartbeat_stale_trial_callback:
        return lambda: None

    def rerun(stale_study: optuna.Study, trial: FrozenTrial) -> None:
        if isinstance(trial.system_attrs.get(WORKER_KEY), str):
            enqueue_rerun(stale_study, trial)

    rdb.heartbeat_stale_trial_callback = rdb.failed_trial_callback = rerun

    def undo() -> None:
        if rdb.heartbeat_stale_trial_callback is rerun:
            rdb.heartbeat_stale_trial_callback = rdb.failed_trial_callback = None

    return undo


def rerun_once(study: optuna.Study, trial: FrozenTrial) -> bool:
    """Fail the RUNNING ``trial`` and enqueue it again, unless another worker did it first."""
    try:
        if not storage_of(study).set_trial_state_values(trial_id_of(trial), TrialState.FAIL):
            return False
    except UpdateFinishedTrialError:
        return False  # another worker settled it first
    enqueue_rerun(study, trial)
    return True


def enqueue_rerun(study: optuna.Study, trial: FrozenTrial) -> None:
    """Enqueue ``trial``'s parameters again, once (its worker's cut-off trial).

    An enqueued trial goes again with its enqueued parameters (and those it drew), even if
    it was cut off before its first ``suggest_*``; any other trial cut off before its first
    ``suggest_*`` drew nothing and is not enqueued.
    """
    enqueued = trial.system_attrs.get("fixed_params")
    params = {**(enqueued if isinstance(enqueued, dict) else {}), **trial.params}
    if not params:
        return  # cut off before it drew a parameter: nothing to run again
    key = f"{_RERUN_DONE_PREFIX}{trial.number}"
    storage = storage_of(study)
    if key in storage.get_study_system_attrs(study_id_of(study)):
        return
    storage.set_study_system_attr(study_id_of(study), key, True)
    study.add_trial(
        create_trial(
            state=TrialState.WAITING,
            system_attrs={"fixed_params": params, RERUN_OF_KEY: trial.number},
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
    right after an ``ask`` leaves no RUNNING trial that nobody can tell is its own; where the
    storage keeps heartbeats, so is the trial's first heartbeat, so that such a trial goes
    stale (a dead worker's, re-run by the others) instead of looking alive for ever.
    """
    create_trials_with(
        storage_of(study),
        study_id_of(study),
        lambda: {WORKER_KEY: worker, HOLDER_KEY: holder_tag()},
    )


def untag_new_trials(study: optuna.Study) -> None:
    create_trials_plainly(storage_of(study))


def scheduler_worker_id(environ: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """The worker id a job scheduler gives this process, stable across its restarts.

    ``(id, where it comes from)``, or ``None`` outside such a job:

    - a Kubernetes Indexed Job: ``JOB_COMPLETION_INDEX`` (``"3"``);
    - a SLURM job array: ``SLURM_ARRAY_TASK_ID`` (``"3"``), with ``SLURM_PROCID`` after a
      dot where the job runs several tasks (``"3.1"``); a job of several tasks that is not an
      array: ``SLURM_PROCID``.

    A requeued or rescheduled job keeps its index, wherever it runs: the worker goes on from
    its own newest state.
    """
    env = os.environ if environ is None else environ
    index = env.get("JOB_COMPLETION_INDEX", "").strip()
    if index:
        return _check_scheduler_id(index, "JOB_COMPLETION_INDEX"), "JOB_COMPLETION_INDEX"
    parts: list[str] = []
    names: list[str] = []
    array_task = env.get("SLURM_ARRAY_TASK_ID", "").strip()
    if array_task:
        parts.append(array_task)
        names.append("SLURM_ARRAY_TASK_ID")
    try:
        several_tasks = int(env.get("SLURM_NTASKS", "1") or "1") > 1
    except ValueError:
        several_tasks = False
    procid = env.get("SLURM_PROCID", "").strip()
    if several_tasks and procid:
        parts.append(procid)
        names.append("SLURM_PROCID")
    if not parts:
        return None
    where = " and ".join(names)
    return _check_scheduler_id(".".join(parts), where), where


def _check_scheduler_id(worker: str, where: str) -> str:
    """``worker`` if it can be a worker id, else an error naming the variable it came from."""
    try:
        return check_worker_id(worker)
    except InvalidArgumentError:
        raise InvalidArgumentError(
            f'worker="auto" takes the worker id from {where}, whose value {worker!r} cannot '
            "name a worker (letters, digits, '_', '.', '-', at most 64): pass worker=... "
            "explicitly"
        ) from None


def worker_ids(worker: str) -> Iterator[str]:
    """The ids to try for ``worker``: itself, or for ``"auto"`` "0", "1", ..."""
    if worker != AUTO:
        yield worker
        return
    yield from (str(index) for index in range(10_000))


__all__ = [
    "AUTO",
    "HOLDER_KEY",
    "RERUN_OF_KEY",
    "WORKERS",
    "WORKER_KEY",
    "Heartbeats",
    "check_worker_id",
    "enqueue_rerun",
    "holder_tag",
    "live_workers",
    "refuse_rewind_with_live_workers",
    "rerun_once",
    "rerun_stale_trials_of_workers",
    "reseed_for_worker",
    "scheduler_worker_id",
    "settle_dead_trials",
    "start_heartbeats",
    "study_root_of",
    "tag_new_trials",
    "untag_new_trials",
    "worker_folders",
    "worker_ids",
    "worker_root",
]
