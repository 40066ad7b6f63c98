"""What the engine saves when: the state before each trial, after it, and at exit."""

from __future__ import annotations

import functools
import weakref
from pathlib import Path
from typing import Any, Literal

import optuna
from optuna.trial import TrialState

from ._checkpoint import AFTER, BEFORE, CheckpointInfo, encode_checkpoint, renumber_document
from ._error import CheckpointNotFoundError
from ._fault import fault_point
from ._history import record_event
from ._log import logger
from ._optuna._access import storage_of, study_id_of, trial_id_of
from ._optuna._finish_hook import expect_finish, finishes_over
from ._optuna._samplers import pin_lazy_generators
from ._optuna._state_table import ROW_WINDOW
from ._optuna._storage import state_position
from ._reading import Reading
from ._rng import capture_rng_state
from ._signals import held
from ._workspace import remove_workspace, workspace_path

_logger = logger

InterruptedPolicy = Literal["rerun", "fail"]
RETURNED, PRUNED, RAISED, INTERRUPTED = "returned", "pruned", "raised", "interrupted"
_TOLD_OUTCOMES = {TrialState.COMPLETE: RETURNED, TrialState.PRUNED: PRUNED}


class Recording(Reading):
    """What is saved when: the state before each trial (with the ask that creates it), after
    it (with the tell that finishes it, or as its objective ends) and at exit."""

    # -- writing -------------------------------------------------------------------------

    def _n_trials(self) -> int:
        study = self.bound_study
        return state_position(storage_of(study), study_id_of(study))

    def save(
        self, trial: int, phase: str, *, commit: int | None = None, **extra: Any
    ) -> CheckpointInfo:
        """Write the sampler's state now as the checkpoint of ``trial`` in ``phase``.

        On an RDB storage the state is also committed in the study's database: with the
        transaction that creates trial ``trial`` (``phase="before"``, ``commit=-1``: the
        ask that follows), with the one that finishes it (``phase="after"``, ``commit``:
        the trial's id), or else in a transaction of its own (``commit=None``).
        """
        with self._lock, held():  # a SIGTERM waits until the checkpoint is written
            info, document, blobs = self._write_state(trial, phase, **extra)
            self.stream.state_saved(self.whole, info, document, blobs)
            rows = self._rows
            if rows is not None:
                if phase == BEFORE:
                    self._sync_files_leaving_the_database(trial)
                if commit is None:
                    rows.write_now(
                        trial,
                        phase,
                        document,
                        blobs,
                        keep_all_afters=self.keeps_every_after,
                        drop_before=self.retention.dropped_at(trial) if phase == BEFORE else None,
                    )
                elif phase == BEFORE:
                    rows.expect_create(
                        trial, document, blobs, drop_before=self.retention.dropped_at(trial)
                    )
                else:
                    rows.expect_finish(
                        trial, commit, document, blobs, keep_all=self.keeps_every_after
                    )
            return info

    def _sync_files_leaving_the_database(self, position: int) -> None:
        """Fsync the "before" files whose rows the database is about to let go.

        The database keeps the states before the newest ``ROW_WINDOW`` trials; the files
        keep them all, written without an fsync while a row holds the same state. A file is
        made durable before its row goes, half a window at a time (one folder fsync per 50
        trials, on files the kernel has mostly written back already).
        """
        oldest_kept = position - ROW_WINDOW + 1
        if self._synced_below is None:
            self._synced_below = max(0, oldest_kept)
        if oldest_kept <= self._synced_below:
            return
        upto = max(oldest_kept, position - ROW_WINDOW // 2 + 1)
        self.store.sync(range(self._synced_below, upto), BEFORE)
        self._synced_below = upto

    def _write_state(
        self, trial: int, phase: str, **extra: Any
    ) -> tuple[CheckpointInfo, bytes, dict[str, bytes]]:
        """Encode the sampler's state and write its file; the encoded document and blobs."""
        study = self.bound_study
        with self._lock:
            self._pin(study.sampler)
            rng = capture_rng_state() if self.capture_rng else None
            document, blobs = encode_checkpoint(
                trial,
                phase,
                study.sampler,
                {
                    "study_name": study.study_name,
                    "study_id": study_id_of(study),
                    "study_uid": self._uid,
                    "storage": self._storage_name,
                    "rng_captured": rng is not None,
                    "worker": self.worker,
                    **extra,
                },
                rng,
                study.pruner,
                self._payload_cache,
            )
            # With the state committed in the study's database, the file is its copy.
            info = self.store.put_info(trial, phase, document, blobs, durable=self._rows is None)
            if phase == BEFORE:
                if rng is None:
                    self._without_rng.add(trial)
                else:
                    self._without_rng.discard(trial)
            if phase == AFTER and not self.keeps_every_after:
                # Only the newest "after" state is ever needed (see _state_at).
                if self._newest_after is not None and self._newest_after != info.path:
                    self._newest_after.unlink(missing_ok=True)
                self._newest_after = info.path
            return info, document, blobs

    def _pin(self, sampler: optuna.samplers.BaseSampler) -> None:
        """Make an unseeded sampler's generators once, before its first state is saved."""
        if self._pinned is None or self._pinned() is not sampler:
            pin_lazy_generators(sampler)
            self._pinned = weakref.ref(sampler)

    def _before_ask(self) -> int:
        with self._lock:
            self._clean_finished_workspaces()
            position = self.stream.next_ask_position(self.whole)
            self.save(position, BEFORE, commit=-1, kind="ask")
            self._forget_old_state(position)
            fault_point("ask.saved")
            return position

    def _forget_old_state(self, position: int) -> None:
        # One file per ask: the folder stays bounded without scanning it.
        old = self.retention.dropped_at(position)
        if old is not None:
            self.store.delete(old, BEFORE)

    def _after_ask(self, position: int, number: int, committed: bool = False) -> None:
        with self._lock:
            fault_point("ask.taken")
            self._asked_here.number = number
            self._escaped = None  # (a trial asked after it: the study went on)
            self.stream.claimed(self.whole, number)
            if number != position:
                # A waiting (enqueued) trial was popped: the state is the one before it.
                document = renumber_document(self._before(position), number)
                self.store.put(number, BEFORE, document, {})
                self.store.delete(position, BEFORE)
                self._next_position = None
            else:
                document = None  # (the file written before the ask, read only if needed)
                self._next_position = number + 1
            if self._rows is not None and not committed:
                self._rows.write_now(number, BEFORE, document or self._before(number), {})
            self._snapshotted.add(number)

    def _before(self, number: int) -> bytes:
        """The encoded state before trial ``number``, which this process has just written."""
        document = self.store.get(number, BEFORE)
        if document is None:
            raise CheckpointNotFoundError(
                f"the state before trial {number} is gone from {self.folder}: something "
                "removed it while the study ran"
            )
        return document

    def trial_started(self, trial: optuna.Trial) -> None:
        """Make sure trial ``N`` has a ``before`` checkpoint (called as its objective starts)."""
        with self._lock:
            if trial.number not in self._snapshotted:
                self.save(trial.number, BEFORE, kind="trial-start")
                self._snapshotted.add(trial.number)
                self._next_position = trial.number + 1
            elif self.capture_rng and trial.number in self._without_rng:
                self._add_rng_to_before(trial.number)
            self._last_started = trial.number

    def _add_rng_to_before(self, number: int) -> None:
        # The capture was turned on (by the decorator) after this trial's "before" state was
        # written. Samplers draw from their own generators, so the global ones are still as
        # they were before the ask: add them to that state.
        info = self.checkpoint(number, BEFORE)
        if info is None:
            return
        state = self.load(info)
        keep = ("study_name", "study_id", "study_uid", "storage", "kind")
        document, blobs = encode_checkpoint(
            number,
            BEFORE,
            state.sampler,
            {**{k: state.meta[k] for k in keep if k in state.meta}, "rng_captured": True},
            capture_rng_state(),
            state.pruner,
        )
        self.store.put(number, BEFORE, document, blobs)
        if self._rows is not None:
            self._rows.write_now(number, BEFORE, document, blobs)
        self._without_rng.discard(number)

    def workspace(self, number: int) -> Path:
        """Trial ``number``'s workspace folder (created if missing)."""
        path = workspace_path(self.root, number)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _clean_finished_workspaces(self) -> None:
        finished, self._finished = self._finished, []
        study = self.study
        if study is None:
            return
        for number, trial_id in finished:
            if not workspace_path(self.root, number).is_dir():
                continue
            state = storage_of(study).get_trial(trial_id).state
            if state in (TrialState.COMPLETE, TrialState.PRUNED):
                remove_workspace(self.root, number)

    def checkpoint_call(self, trial: optuna.Trial) -> None:
        """A call of the seed design's ``checkpoint_sampler``: start of the body, then end."""
        if trial.number == self._last_started:
            self.trial_ended(trial, RETURNED)
        else:
            self.trial_started(trial)

    def trial_ended(self, trial: optuna.Trial, outcome: str) -> None:
        """Write trial ``N``'s ``after`` checkpoint (called as its objective ends)."""
        self.save(trial.number, AFTER, commit=trial_id_of(trial), outcome=outcome)
        self._after_saved = trial.number
        if self.workspace_policy == "delete" and outcome in (RETURNED, PRUNED):
            # Deleted once Optuna has recorded the result (at the next ask or the final
            # checkpoint): a kill before that re-runs the trial, which may still need it.
            self._finished.append((trial.number, trial_id_of(trial)))

    def telling(self, number: int, trial_id: int | None) -> None:
        """Trial ``number`` is about to be told: its state after goes into the same commit.

        Unless its objective already saved it, the state after the trial is taken when the
        storage is asked to finish it (after the sampler's ``after_trial``): on an RDB
        storage inside the transaction that finishes it, and committed with it; elsewhere
        written durably just before (``_finish_hook``).
        """
        rows = self._rows
        if self._after_saved == number:
            return
        study = self.bound_study
        if trial_id is None:
            try:
                trial_id = storage_of(study).get_trial_id_from_study_id_trial_number(
                    study_id_of(study), number
                )
            except KeyError:
                return  # Optuna's tell says what is wrong
        if rows is None:
            if self._state_before_finish:
                write = functools.partial(self._save_after_told, number)
                expect_finish(storage_of(study), trial_id, write)
            return

        def produce(state: TrialState) -> tuple[int, bytes, dict[str, bytes]] | None:
            with self._lock, held():
                if self._after_saved == number:
                    return None
                outcome = _TOLD_OUTCOMES.get(state, RAISED)
                _, document, blobs = self._write_state(number, AFTER, outcome=outcome)
                self._after_saved = number
                return number, document, blobs

        rows.expect_finish_with(trial_id, produce, keep_all=self.keeps_every_after)

    def tell_over(self) -> None:
        """The tell is over (committed or not): nothing waits for its commit any more."""
        if self._rows is not None:
            self._rows.finishes_over()
        else:
            finishes_over()

    def told(self, number: int, state: TrialState) -> None:
        """Trial ``number`` was told: keep the state after it, unless its objective did.

        Without this, an ask/tell loop (or an objective that is not decorated) killed between
        a tell and the next ask would leave no state after its last trial. A trial told FAIL
        counts as raised, as with a decorated objective: without a clean exit after it, the
        next entry re-runs it.
        """
        self._save_after_told(number, state)
        self.stream.told(self.whole, number)

    def _save_after_told(self, number: int, state: TrialState) -> None:
        with self._lock:
            if self._after_saved != number:
                outcome = _TOLD_OUTCOMES.get(state, RAISED)
                self.save(number, AFTER, outcome=outcome)
                self._after_saved = number

    def trial_run_starts(self) -> None:
        """``optimize`` is about to run one trial in this thread (ask, objective, tell)."""
        self._asked_here.number = None

    def trial_run_raised(self) -> None:
        """An exception ends ``optimize`` from the trial this thread asked for last (if any).

        Caught by the caller or not, it cut that trial off: unless another trial is asked for
        after it, the final checkpoint marks it, and the next entry runs it again.
        """
        number = getattr(self._asked_here, "number", None)
        if number is not None:
            self._escaped = number

    def final(self, interrupted: bool) -> CheckpointInfo:
        """Write the state before the next trial; mark the last started trial if interrupted.

        It was interrupted too when an exception ended ``optimize`` from the last trial asked
        for, even if the caller caught it before the exit.
        """
        with self._lock:
            study = self.bound_study
            if not interrupted:
                self._clean_finished_workspaces()
            n_trials = self._n_trials()
            escaped, self._escaped = self._escaped is not None, None
            cut_off = (
                self.stream.cut_off_at_exit(self.whole, n_trials)
                if interrupted or escaped
                else None
            )
            self._next_position = None
            info = self.save(n_trials, BEFORE, kind="final", interrupted_trial=cut_off)
            self._forget_old_state(n_trials)
            record_event(
                self.root,
                "final",
                study=study.study_name,
                trials=n_trials,
                interrupted_trial=cut_off,
                checkpoint=str(info.path),
            )
            return info


__all__ = ["INTERRUPTED", "PRUNED", "RAISED", "RETURNED", "InterruptedPolicy", "Recording"]
