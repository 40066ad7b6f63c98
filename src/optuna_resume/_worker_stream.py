"""One worker among several on a study (``ResumableStudy(worker=...)``): the stream
strategy its engine is given.

It differs from a single process where other workers share the study: trials are
counted afresh before every ask and tagged with the worker's id; RUNNING trials of dead
workers are re-run once (see ``_workers``); the stream resumes from this worker's newest
state; a rewind takes every worker's stream back and refuses while others are active.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import filelock
import optuna
from optuna.trial import TrialState

from ._checkpoint import (
    AFTER,
    BEFORE,
    Checkpoint,
    CheckpointInfo,
    state_position,
    verify_document,
)
from ._engine import ResumeEngine, check_rewind_target
from ._error import CheckpointNotFoundError, CorruptCheckpointError
from ._log import logger
from ._mirror import record_state, recorded_state
from ._optuna._access import storage_of, study_id_of
from ._optuna._state_table import trials_taken_with
from ._optuna._storage import heartbeat_settings
from ._report import ResumeReport
from ._rng import restore_rng_state
from ._root import CHECKPOINTS
from ._store import FolderStore
from ._stream import Stream
from ._workers import (
    HOLDER_KEY,
    WORKER_KEY,
    Heartbeats,
    enqueue_rerun,
    holder_tag,
    refuse_rewind_with_live_workers,
    rerun_once,
    rerun_stale_trials_of_workers,
    reseed_for_worker,
    settle_dead_trials,
    start_heartbeats,
    study_root_of,
    tag_new_trials,
    untag_new_trials,
    worker_folders,
)

_logger = logger
IDENTITY_LOCK = ".identity.lock"  # in the study root, shared by its workers


class WorkerStream(Stream):
    """One worker's part in a study: its engine checkpoints its own stream into
    ``<study root>/workers/<id>/checkpoints``.

    Args:
        worker_id: The worker's id.
    """

    keeps_every_after = True  # after a rewind, its newest remaining one is where it goes on

    def __init__(self, worker_id: str) -> None:
        self.worker_id = worker_id
        self._heartbeats: Heartbeats | None = None
        self._undo_stale_callback: Callable[[], None] = lambda: None
        self._recorded_blobs: set[str] = set()  # blobs known to be recorded in the study

    def attached(self, engine: ResumeEngine, study: optuna.Study) -> None:
        tag_new_trials(study, self.worker_id)
        self._heartbeats = start_heartbeats(study)
        self._undo_stale_callback = rerun_stale_trials_of_workers(study)

    def detaching(self, engine: ResumeEngine) -> None:
        if self._heartbeats is not None:
            self._heartbeats.stop()
            self._heartbeats = None
        self._undo_stale_callback()
        self._undo_stale_callback = lambda: None
        if engine.study is not None:
            untag_new_trials(engine.study)

    def identify(self, engine: ResumeEngine, study: optuna.Study) -> str:
        # Workers starting together on a new study would each write an identity of their own
        # (the last one written stays, the others' checkpoints would then be refused): the
        # first one writes it, the others read it.
        lock = filelock.FileLock(str(study_root_of(engine.root) / IDENTITY_LOCK))
        with lock:
            return super().identify(engine, study)

    def next_ask_position(self, engine: ResumeEngine) -> int:
        # Other workers add trials: count afresh, and re-run the trials of dead ones.
        study_root = study_root_of(engine.root)
        settle_dead_trials(engine.bound_study, study_root, self.worker_id, own_is_dead=False)
        return engine._n_trials()

    def asking(self, engine: ResumeEngine) -> contextlib.AbstractContextManager[object]:
        # A WAITING trial the ask pops is tagged (and, with heartbeats, given its first
        # one) in the transaction that pops it, as a created one is in the one creating it.
        rows = engine._rows
        if rows is None:
            return contextlib.nullcontext()
        study = engine.bound_study
        tags = {WORKER_KEY: self.worker_id, HOLDER_KEY: holder_tag()}
        heartbeat = heartbeat_settings(storage_of(study)) is not None
        return trials_taken_with(rows.rdb, study_id_of(study), tags, heartbeat=heartbeat)

    def claimed(self, engine: ResumeEngine, number: int) -> None:
        # New trials are tagged as the storage creates them; a popped (enqueued) one now.
        # (A trial enqueued by Optuna's RetryHeartbeatStaleTrialCallback carries the tags of
        # the dead worker it copies: they are replaced.)
        storage, study_id = storage_of(engine.bound_study), study_id_of(engine.bound_study)
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
        attrs = storage.get_trial_system_attrs(trial_id)
        holder = holder_tag()
        if attrs.get(WORKER_KEY) != self.worker_id or attrs.get(HOLDER_KEY) != holder:
            storage.set_trial_system_attr(trial_id, WORKER_KEY, self.worker_id)
            storage.set_trial_system_attr(trial_id, HOLDER_KEY, holder)
        if self._heartbeats is not None:
            self._heartbeats.started(number, trial_id)

    def state_saved(
        self, engine: ResumeEngine, info: CheckpointInfo, document: bytes, blobs: dict[str, bytes]
    ) -> None:
        # Where the storage has no table of ours, the state after each trial is also
        # recorded in the study (before the trial's finish is committed), so that this
        # worker restarted on another host with an empty root goes on from it.
        if engine._rows is None and info.phase == AFTER:
            study = engine.bound_study
            record_state(
                storage_of(study),
                study_id_of(study),
                self.worker_id,
                info.trial,
                info.phase,
                document,
                blobs,
                self._recorded_blobs,
            )

    def told(self, engine: ResumeEngine, number: int) -> None:
        if self._heartbeats is not None:
            self._heartbeats.finished(number)

    def cut_off_at_exit(self, engine: ResumeEngine, n_trials: int) -> int | None:
        """Enqueue this worker's last trial again if an interruption cut it off."""
        number = engine._last_started
        if number is None:
            return None
        study = engine.bound_study
        storage = storage_of(study)
        trial = storage.get_trial(
            storage.get_trial_id_from_study_id_trial_number(study_id_of(study), number)
        )
        if trial.state == TrialState.RUNNING:
            rerun_once(study, trial)
        elif trial.state == TrialState.FAIL:
            enqueue_rerun(study, trial)
        else:
            return None
        return number

    def resume(
        self,
        engine: ResumeEngine,
        sampler: optuna.samplers.BaseSampler | None,
        rewind_to: int | None,
        backup: bool,
    ) -> ResumeReport:
        """Resume this worker's own stream; re-run the trials dead workers left RUNNING.

        (``interrupted_trial`` and ``allow_inexact`` do not apply to a worker: a trial cut off
        is enqueued again for any worker, and a worker without a state starts a new stream.)
        """
        study = engine.bound_study
        worker = self.worker_id
        root = study_root_of(engine.root)
        n_trials = engine._n_trials()
        report = ResumeReport(study.study_name, n_trials)
        engine._fresh_backup = None
        if rewind_to is not None:
            check_rewind_target(study.study_name, rewind_to, n_trials)
            refuse_rewind_with_live_workers(root, worker, study.study_name, study)
        if rewind_to is not None:
            report.backup = engine.backup("rewind")
        elif backup:
            report.backup = engine._backup_if_changed(report)  # (an unchanged study: none)
        if rewind_to is not None:
            self._rewind_workers(engine, root, rewind_to)
            report.rewound = (n_trials, rewind_to)
        settled = settle_dead_trials(study, root, worker, own_is_dead=True)
        if settled:
            report.notes.append(f"{settled} trial(s) of dead workers enqueued again")
        chosen = sampler
        own = self._own_trials(engine)
        taken = self._take_recorded_state(engine, own)
        if taken is not None:
            report.notes.append(taken)
        state = self._newest_own_state(engine)
        if state is not None:
            chosen = engine._choose_sampler(state.sampler, sampler)
            report.restored_from = str(state.info.path)
            started = [n for n in own if n >= state.info.position]
            if started:
                # It died inside a trial it started after that state: its draws were made
                # but not saved. New draws (a seed derived from the trial) rather than the
                # same ones again.
                reseed_for_worker(chosen, worker, salt=f"after-{max(started)}")
                report.notes.append(f"worker {worker}: new draws after its cut-off trial")
            elif state.rng is not None:
                restore_rng_state(state.rng)
                report.rng_restored = True
        else:
            chosen = chosen or study.sampler
            # A new stream: its own draws, from its id. A worker that ran trials before and
            # lost its states starts one that differs from its first (it would replay it).
            reseed_for_worker(chosen, worker, salt=f"restart-{n_trials}" if own else "")
            if own:
                report.notes.append(f"worker {worker}: no state of its own; a new stream")
        study.sampler = chosen
        engine._next_position = None
        return engine._report_resume(report, n_trials)

    def _newest_own_state(self, engine: ResumeEngine) -> Checkpoint | None:
        for info in reversed(engine.store.infos()):
            try:
                return engine.load(info)
            except CorruptCheckpointError as e:
                _logger.warning("%s (trying an older state of this worker)", e)
        return None

    def _own_trials(self, engine: ResumeEngine) -> list[int]:
        """The numbers of this worker's trials in the study."""
        study = engine.bound_study
        return [
            t.number
            for t in storage_of(study).get_all_trials(study_id_of(study), deepcopy=False)
            if t.system_attrs.get(WORKER_KEY) == self.worker_id
        ]

    def _take_recorded_state(self, engine: ResumeEngine, own: list[int]) -> str | None:
        """Put this worker's state recorded in the study into its folder where the folder has
        nothing as new (an empty root on another host); what was done, in words. ``own``:
        the numbers of this worker's trials."""
        if engine._rows is not None:
            return None  # the states are in the study's database, and already in the folder
        study = engine.bound_study
        worker = self.worker_id
        recorded = recorded_state(
            storage_of(study).get_study_system_attrs(study_id_of(study)), worker
        )
        if recorded is None:
            return None
        position = state_position(recorded.trial, recorded.phase)
        local = engine.store.positions()
        if local and local[-1] >= position:
            return None
        where = f"the state of worker {worker} recorded in study {study.study_name!r}"
        if recorded.trial not in own:
            # (A rewind removes such a record with the trials; a kill inside the rewind of
            # a rebuilt study could leave one.)
            _logger.warning("%s is of trial %d, not one of its: not used", where, recorded.trial)
            return None
        try:
            verify_document(recorded.document, where)
        except CorruptCheckpointError as e:
            _logger.warning("%s (not used)", e)
            return None
        engine.store.put(recorded.trial, recorded.phase, recorded.document, recorded.blobs)
        return f"worker {worker}: its state {recorded.phase} trial {recorded.trial} from the study"

    def _rewind_workers(self, engine: ResumeEngine, root: Path, to: int) -> None:
        """(Worker) Remove trials ``to`` and later; every worker's stream goes back with them."""
        folders = worker_folders(root)
        source = None
        for folder in folders:
            info = FolderStore(folder / CHECKPOINTS).info(to, BEFORE)
            if info is not None:
                source = engine.load(info)
                break
        if source is None:
            raise CheckpointNotFoundError(
                f"no worker's checkpoint holds the state before trial {to} of study "
                f"{engine.bound_study.study_name!r}; nothing was changed"
            )
        engine._truncate(to, rewind=True)  # the storage, this worker's stream
        for folder in folders:
            FolderStore(folder / CHECKPOINTS).remove_from(to)  # the others' streams


__all__ = ["WorkerStream"]
