"""``ResumableStudy``: a ``with`` block that resumes a study exactly where it stopped."""

from __future__ import annotations

import dataclasses
import html
import os
from collections.abc import Collection, Container, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal

import optuna
from optuna.storages import BaseStorage
from optuna.study import StudyDirection

from . import _signals as signals
from ._backup import DEFAULT_KEEP_BACKUPS
from ._binding import bind_engine
from ._engine import InterruptedPolicy, ResumeEngine, check_interrupted_policy
from ._error import InvalidArgumentError, OptunaResumeError, RootError, RootLockedError
from ._fault import fault_point
from ._lease import StudyLease
from ._lock import RootLock
from ._log import logger
from ._options import EngineOptions, check_allowed_globals, check_flag, check_lock_timeout
from ._optuna._access import storage_of
from ._optuna._storage import heartbeat_settings, open_storage, rdb_of, refuse_in_memory
from ._report import ResumeReport
from ._retention import Retention
from ._root import check_root, prepare_root
from ._status import StudyStatus, study_status
from ._workers import (
    AUTO,
    WORKERS,
    check_worker_id,
    scheduler_worker_id,
    worker_ids,
    worker_root,
)
from ._workspace import WorkspacePolicy

_logger = logger


class ResumableStudy:
    """A context manager that opens a study so that it goes on exactly where it stopped.

    On entry it locks the root, backs up the study and its checkpoints, rewinds if asked,
    settles a trial that an interruption cut off (by default it runs again under the same
    number with the same parameters), restores the sampler and logs a resume report. It
    returns an ordinary :class:`optuna.Study`. On exit, also when the block raises
    (``KeyboardInterrupt`` included), it writes a final checkpoint and releases the lock; the
    exception is never swallowed.

    SIGTERM (what schedulers send before they kill a job) inside the block is handled like
    ``KeyboardInterrupt`` (the running trial is recorded as interrupted and re-runs on the next
    entry); once the final checkpoint is written the process exits with status 143. See
    :class:`TerminatedBySignal`.

    Example:
        .. code-block:: python

            with ResumableStudy("runs/demo", sampler=optuna.samplers.TPESampler(seed=0)) as study:
                study.optimize(objective, n_trials=50)

    Args:
        root: The study's folder: database (by default), checkpoints, backups and lock.
        storage: A database URL or an Optuna storage; default ``sqlite:///<root>/study.db``.
            In-memory storage is refused.
        study_name: Default: the root folder's name (of the path as normalised: ``runs/x/..``
            is ``runs``).
        sampler: The sampler for a new study. On resume, the checkpointed sampler replaces
            it when it is of the same class; one of another class is used as passed, with a
            warning.
        pruner: Passed to Optuna.
        direction: Passed to Optuna.
        directions: Passed to Optuna.
        rewind_to: Put the study back to just before this trial first. Applies once: an
            entry after the study was rewound to this trial does not rewind again (it says
            so in one line), so a script re-run after a crash keeps its work. To rewind
            again on purpose: ``optuna-resume rewind ROOT --to N`` or :func:`rewind`.
        backup: Back up on every entry (a backup is always taken before a rewind or before
            an interrupted trial is removed).
        keep_backups: How many backups to keep (``None``: all).
        keep_checkpoints: Keep the states before the newest N trials only (``None``, the
            default: before every trial, so that any trial can be rewound to). With a number,
            the folder stays bounded; ``keep_trials`` names the trials you want to be able to
            rewind to as well.
        keep_trials: Trials whose "before" state is always kept (a ``range`` works, e.g.
            ``range(0, 10**9, 100)`` keeps every 100th).
        interrupted_trial: ``"rerun"`` (default) runs a cut-off trial again under its number
            with its parameters; ``"fail"`` leaves it FAIL, as Optuna does.
        allow_inexact: Go on with ``sampler`` when no checkpoint holds the study's current
            state, instead of raising :class:`CheckpointNotFoundError`.
        trusted: Load checkpoints with the full unpickler.
        allowed_globals: Classes and functions the safe checkpoint loader may use besides
            Optuna's samplers, NumPy's arrays and random states, builtins and the class of
            ``sampler`` (passing a sampler trusts its class).
        lock_timeout: Seconds to wait for another session to release the root.
        capture_rng: Also save the global random generators (``random``, NumPy, torch CPU
            and CUDA) with every checkpoint; they are put back on entry, so an objective
            that draws from them goes on as in an uninterrupted run.
        workspace_policy: What happens to a trial's workspace (:func:`trial_dir`) once the
            trial is COMPLETE or PRUNED: ``"keep"`` (the default) or ``"delete"``.
        handle_sigterm: Handle SIGTERM as described above (only in the main thread, and
            only when the program has not installed a SIGTERM handler of its own).
        worker: Run as one of several worker processes on the study (see README, "Scaling
            out"): an id of your choice (a restarted worker passes the same id and goes on
            with its own sampler stream), or ``"auto"``: in a Kubernetes Indexed Job or a
            SLURM job array the job's index (``JOB_COMPLETION_INDEX``;
            ``SLURM_ARRAY_TASK_ID``, with ``.SLURM_PROCID`` where the job runs several
            tasks), which a restarted job keeps wherever it runs; elsewhere the first id
            ("0", "1", ...) that no live worker holds, on this host or another one sharing
            the study. Its checkpoints, backups and lock are in
            ``<root>/workers/<id>/``; trials that dead workers left RUNNING are enqueued again
            with the same parameters; a rewind refuses to run while other workers are
            active. ``None`` (default): one process at a time, exact resume.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        storage: str | BaseStorage | None = None,
        study_name: str | None = None,
        sampler: optuna.samplers.BaseSampler | None = None,
        pruner: optuna.pruners.BasePruner | None = None,
        direction: Literal["minimize", "maximize"] | StudyDirection | None = None,
        directions: Sequence[Literal["minimize", "maximize"] | StudyDirection] | None = None,
        rewind_to: int | None = None,
        backup: bool = True,
        keep_backups: int | None = DEFAULT_KEEP_BACKUPS,
        keep_checkpoints: int | None = None,
        keep_trials: Container[int] = (),
        interrupted_trial: InterruptedPolicy = "rerun",
        allow_inexact: bool = False,
        trusted: bool = False,
        allowed_globals: Iterable[object] = (),
        lock_timeout: float = 0.0,
        capture_rng: bool = False,
        workspace_policy: WorkspacePolicy = "keep",
        handle_sigterm: bool = True,
        worker: str | None = None,
    ) -> None:
        check_interrupted_policy(interrupted_trial)
        # (Validated here, once; the worker id is set when the session knows it.)
        self._options = EngineOptions(
            trusted=trusted,
            allowed_globals=check_allowed_globals(allowed_globals),
            keep_backups=keep_backups,
            retention=Retention(keep_checkpoints, keep_trials),
            capture_rng=capture_rng,
            workspace_policy=workspace_policy,
        )
        check_root(root)
        for flag, value in (
            ("backup", backup),
            ("allow_inexact", allow_inexact),
            ("handle_sigterm", handle_sigterm),
        ):
            check_flag(flag, value)
        check_lock_timeout(lock_timeout)
        if storage is not None and not isinstance(storage, (str, BaseStorage)):
            raise InvalidArgumentError(
                f"storage must be a URL (str), an Optuna storage or None (the root's SQLite "
                f"file), not {storage!r}"
            )
        if study_name is not None and not isinstance(study_name, str):
            raise InvalidArgumentError(f"study_name must be a str or None, not {study_name!r}")
        self.root = root
        self._storage = storage
        self._study_name = study_name
        self._sampler = sampler
        self._pruner = pruner
        self._direction = direction
        self._directions = directions
        self._rewind_to = rewind_to
        self._repeat_rewind = False  # the command line rewinds on purpose, again if asked
        self._backup = backup
        self._interrupted_trial: InterruptedPolicy = interrupted_trial
        self._allow_inexact = allow_inexact
        self._lock_timeout = lock_timeout
        self._handle_sigterm = handle_sigterm
        self._worker = None if worker is None else check_worker_id(worker)
        self.worker: str | None = None  # the worker id in use while open
        self._sigterm_installed = False
        self._sigterm_received = False
        self._engine: ResumeEngine | None = None
        self._opened_storage: BaseStorage | None = None
        self._lock: RootLock | None = None
        self._lease: StudyLease | None = None
        self.study: optuna.Study | None = None
        self.report: ResumeReport | None = None

    def __enter__(self) -> optuna.Study:
        if self._lock is not None:
            raise RuntimeError("this ResumableStudy is already open; make a new one")
        root = prepare_root(self.root)
        worker = self._worker
        if worker == AUTO:
            given = scheduler_worker_id()
            if given is not None:  # a stable id: the job's index, wherever it runs
                worker = given[0]
                _logger.info("Worker id %s (from %s).", worker, given[1])
        engine_root, lock = self._take_lock(root, worker)
        self._lock = lock
        self.worker = None if engine_root == root else engine_root.name
        # Held during the entry; raised inside the block; at the exit, 143 once all is saved.
        self._sigterm_installed = self._handle_sigterm and signals.install()
        self._sigterm_received = False
        try:
            storage = open_storage(self._storage, root)
            if not isinstance(self._storage, BaseStorage):
                self._opened_storage = storage  # ours to close: its pooled connections
            refuse_in_memory(storage)
            name = self._study_name or root.name
            study = optuna.create_study(
                storage=storage,
                sampler=self._sampler,
                pruner=self._pruner,
                study_name=name,
                direction=self._direction,
                directions=self._directions,
                load_if_exists=True,
            )
            self._check_directions(study)
            if self.worker is None:  # (workers share a study by design)
                self._lease = StudyLease(study, root)
                self._lease.acquire(self._lock_timeout)
            elif worker == AUTO:
                engine_root = self._claim_free_worker_id(study, root, engine_root)
            elif heartbeat_settings(storage) is None:
                # No heartbeats to tell a live worker on another host from a dead one: its
                # id's lease does (one live process per worker id, whatever its host).
                self._lease = StudyLease(study, engine_root, worker=self.worker)
                self._lease.acquire(self._lock_timeout)
            options = dataclasses.replace(self._options, worker=self.worker)
            engine = bind_engine(study, engine_root, options)
            self._engine = engine
            self.report = engine.resume(
                sampler=self._sampler,
                rewind_to=self._rewind_to,
                repeat_rewind=self._repeat_rewind,
                interrupted_trial=self._interrupted_trial,
                backup=self._backup,
                allow_inexact=self._allow_inexact,
                pruner=self._pruner,
            )
        except BaseException:
            self._close()
            raise
        self.study = study
        if signals.received():
            self._close()
            raise SystemExit(signals.EXIT_STATUS)  # nothing ran yet: nothing more to save
        signals.raise_on_sigterm(self._sigterm_installed)
        return study

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        signals.raise_on_sigterm(False)
        try:
            engine = self._engine
            if engine is not None and engine.study is not None:
                info = engine.final(interrupted=exc_type is not None)
                fault_point("final.saved")
                if exc_type is not None:
                    _logger.warning("%s", self._stop_message(engine, exc, exc_type, info.path))
        except Exception:
            if exc_type is None:
                raise
            _logger.exception("could not write the final checkpoint")
        finally:
            self._close()
        if self._sigterm_received:
            raise SystemExit(signals.EXIT_STATUS) from exc

    def _check_directions(self, study: optuna.Study) -> None:
        """Optuna loads an existing study whatever direction is passed: refuse a change."""
        asked = (
            self._directions
            if self._directions is not None
            else (None if self._direction is None else [self._direction])
        )
        if asked is None:
            return
        wanted = [d if isinstance(d, StudyDirection) else StudyDirection[d.upper()] for d in asked]
        if wanted != list(study.directions):
            have = ", ".join(d.name.lower() for d in study.directions)
            want = ", ".join(d.name.lower() for d in wanted)
            raise InvalidArgumentError(
                f"study {study.study_name!r} was created to {have}, but {want} was passed. "
                "Nothing was changed. A study keeps its directions: pass the same, or start "
                "another study (another study_name or root)."
            )

    def _stop_message(
        self,
        engine: ResumeEngine,
        exc: BaseException | None,
        exc_type: type[BaseException],
        saved: Path,
    ) -> str:
        """One line: what stopped the block, what was saved, what the next run will do."""
        study = engine.bound_study
        name = "SIGTERM" if issubclass(exc_type, signals.TerminatedBySignal) else exc_type.__name__
        database = _database_failure(exc)
        if database is not None:
            # (Optuna reports a failed tell as "AssertionError: Should not reach.")
            name = f"The study's database failed ({database})"
        if engine.worker is not None:
            return (
                f"{name} in worker {engine.worker} of study {study.study_name!r}: saved {saved}; "
                "a trial it cut off is enqueued again with the same parameters"
            )
        n_trials, cut = engine.settle_lookup()  # without loading every trial
        where = "between trials" if cut is None else f"in trial {cut.number}"
        if cut is None:
            then = f"goes on with trial {n_trials}"
        elif self._interrupted_trial == "rerun":
            then = f"re-runs trial {cut.number} with the same parameters"
            if not issubclass(exc_type, KeyboardInterrupt) and database is None:
                then += (
                    f" (if {exc_type.__name__} comes from the objective itself, it will come back:"
                    " fix it first, or pass interrupted_trial='fail' to leave the trial FAIL)"
                )
        else:
            then = f"leaves trial {cut.number} FAIL and goes on with trial {n_trials}"
        return f"{name} {where} of study {study.study_name!r}: saved {saved}; the next run {then}"

    def _take_lock(
        self, root: Path, worker: str | None, taken: Collection[str] = ()
    ) -> tuple[Path, RootLock]:
        """The folder this session checkpoints into, locked: the root, or a worker's own.

        For ``worker="auto"``, the first id not in ``taken`` whose folder is free here.
        """
        if worker is None:
            lock = RootLock(root, timeout=self._lock_timeout)
            lock.acquire()
            return root, lock
        for candidate in worker_ids(worker):
            if candidate in taken:
                continue
            folder = worker_root(root, candidate)
            folder.mkdir(parents=True, exist_ok=True)
            lock = RootLock(folder, timeout=self._lock_timeout)
            try:
                lock.acquire()
            except RootLockedError:
                if worker != AUTO:
                    raise
                continue  # in use: the next id
            return folder, lock
        raise RootError(f"no free worker id under {root / WORKERS}")

    def _claim_free_worker_id(self, study: optuna.Study, root: Path, folder: Path) -> Path:
        """``worker="auto"``: the first id no live worker holds, here or on another host.

        The root's lock only tells the workers of this root apart; a worker on another host
        (another root, the same study) holds its id's lease in the study. An id whose lease is
        live (renewed within the grace period, even by a worker killed a moment ago) is
        skipped, so two hosts never share one checkpoint stream.
        """
        taken: set[str] = set()
        while True:
            lease = StudyLease(study, folder, worker=folder.name)
            if lease.try_acquire():
                self._lease = lease
                self.worker = folder.name
                return folder
            taken.add(folder.name)
            assert self._lock is not None
            self._lock.release()
            self._lock = None
            folder, self._lock = self._take_lock(root, AUTO, taken)

    def status(self) -> StudyStatus:
        """The study's status now: trials done and targeted, checkpoint, backups, lock."""
        storage = storage_of(self.study) if self.study is not None else self._storage
        return study_status(self.root, storage, self._study_name)

    def __repr__(self) -> str:
        state = "open" if self._lock is not None else "closed"
        try:
            return f"<ResumableStudy {state} {self.status()!r}>"
        except (OptunaResumeError, OSError) as e:
            return f"<ResumableStudy {state} root={str(self.root)!r}: {e}>"

    def _repr_html_(self) -> str:
        try:
            return self.status()._repr_html_()
        except (OptunaResumeError, OSError) as e:
            return f"<p>ResumableStudy {html.escape(str(self.root))}: {html.escape(str(e))}</p>"

    def _close(self) -> None:
        if self._engine is not None:
            self._engine.detach()
            self._engine = None
        if self._lease is not None:
            self._lease.release()
            self._lease = None
        rdb = rdb_of(self._opened_storage) if self._opened_storage is not None else None
        if rdb is not None:
            rdb.engine.dispose()  # the study stays usable: connections reopen on demand
        self._opened_storage = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        if self._sigterm_installed:
            self._sigterm_installed = False
            self._sigterm_received = signals.uninstall()


def _database_failure(exc: BaseException | None) -> str | None:
    """The database's own error behind ``exc`` (a lost connection, ...), if there is one."""
    from sqlalchemy.exc import DBAPIError

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DBAPIError):
            return str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        exc = exc.__cause__ or exc.__context__
    return None


__all__ = ["ResumableStudy"]
