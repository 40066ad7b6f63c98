"""The checkpoint engine behind every front (decorator, context manager, functions).

The engine keeps, for each trial N, the state just before trial N was asked for: the
sampler and the study's system attributes. With it, a stop, crash, kill or rewind all come
down to one operation: put the storage back to "trials 0..N-1" and the sampler back to
that state, then let Optuna ask for trial N again.
"""

from __future__ import annotations

import contextlib
import functools
import shlex
import threading
import warnings
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, Concatenate, Literal, ParamSpec, TypeVar, cast

import optuna
from optuna.trial import FrozenTrial, TrialState

from ._backup import (
    BackupInfo,
    BackupPlace,
    keep_for,
    list_backups,
    take_backup,
)
from ._carry import Carried, carry_over
from ._checkpoint import (
    AFTER,
    BEFORE,
    Checkpoint,
    CheckpointInfo,
    PayloadCache,
    check_loadable,
    encode_checkpoint,
    other_versions,
    position_keys,
    read_checkpoint,
    read_meta,
    read_payload,
    renumber_document,
    verify_document,
)
from ._error import (
    CheckpointMismatchError,
    CheckpointNotFoundError,
    CheckpointVersionError,
    CorruptCheckpointError,
    InexactResumeWarning,
    InvalidArgumentError,
    InvalidRewindError,
    OptunaResumeError,
    ResumeRequiredError,
    SamplerMismatchWarning,
    UnsafeCheckpointError,
)
from ._fault import fault_point
from ._history import record_event
from ._log import DETAIL, logger
from ._mirror import states_past
from ._options import EngineOptions
from ._optuna._access import set_study_id, storage_of, study_id_of, trial_id_of
from ._optuna._attr_writes import (
    SYSTEM,
    TakeBack,
    hook_storage_class,
)
from ._optuna._finish_hook import expect_finish, finishes_over, hook_finishes
from ._optuna._hooks import install_hooks
from ._optuna._samplers import differing_settings, pin_lazy_generators, sampler_parts
from ._optuna._state_table import ROW_WINDOW, StateRows
from ._optuna._storage import (
    REWINDS_KEY,
    check_schema_version,
    count_trials,
    describe,
    enqueued_from,
    is_in_memory,
    last_trial,
    ping_idle_connections,
    rdb_of,
    refuse_in_memory,
    repair_missing_indexes,
    rewinds_applied,
    running_trials,
    state_position,
    study_fingerprint,
    study_uid,
    take_back_plan,
    truncate_study,
)
from ._rebuild import rebuild_guard, repair_cut_off_rebuild
from ._report import ResumeReport
from ._retention import Retention
from ._rng import capture_rng_state, restore_rng_state
from ._serialization import Detached, global_name, join_code_parts
from ._signals import held
from ._store import FolderStore
from ._workspace import (
    WorkspacePolicy,
    discard_workspaces,
    remove_workspace,
    workspace_path,
)

_logger = logger

InterruptedPolicy = Literal["rerun", "fail"]
RETURNED, PRUNED, RAISED, INTERRUPTED = "returned", "pruned", "raised", "interrupted"
_KEEP_EVERY_STATE = Retention()
_TOLD_OUTCOMES = {TrialState.COMPLETE: RETURNED, TrialState.PRUNED: PRUNED}

_ENGINES: weakref.WeakKeyDictionary[optuna.Study, ResumeEngine] = weakref.WeakKeyDictionary()
_P = ParamSpec("_P")
_R = TypeVar("_R")


def _one_listing(
    method: Callable[Concatenate[ResumeEngine, _P], _R],
) -> Callable[Concatenate[ResumeEngine, _P], _R]:
    """An entry step that reads the checkpoint folder several times lists it once (while
    the folder is unchanged: see ``FolderStore.listing_reused``)."""

    @functools.wraps(method)
    def step(engine: ResumeEngine, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with engine.store.listing_reused():
            return method(engine, *args, **kwargs)

    return step


def engine_of(study: optuna.Study) -> ResumeEngine | None:
    """The engine a study is bound to, if any."""
    return _ENGINES.get(study)


class Stream:
    """How the engine's process takes part in its study: alone (this class), or as one
    worker among several (``_worker_stream.WorkerStream``). The engine is given one and
    calls it at these points; it holds what is the stream's own (a worker's id, its
    heartbeats), the engine holds the rest.
    """

    #: Keep every "after" state (a worker: after a rewind, its newest remaining one is
    #: where it goes on), not only the newest one (a single process, see ``_state_at``).
    keeps_every_after = False

    def attached(self, engine: ResumeEngine, study: optuna.Study) -> None:
        """The engine was bound to ``study``."""

    def detaching(self, engine: ResumeEngine) -> None:
        """The engine is about to let go of its study."""

    def identify(self, engine: ResumeEngine, study: optuna.Study) -> str:
        """The study's identity in its storage (written by the first engine that asks)."""
        return study_uid(storage_of(study), study_id_of(study))

    def next_ask_position(self, engine: ResumeEngine) -> int:
        """The number the next trial will get (counted once, then followed)."""
        position = engine._next_position
        return engine._n_trials() if position is None else position

    def asking(self, engine: ResumeEngine) -> contextlib.AbstractContextManager[object]:
        """Around Optuna's ask: what the transaction that creates or pops the trial does."""
        return contextlib.nullcontext()

    def claimed(self, engine: ResumeEngine, number: int) -> None:
        """Optuna has handed out trial ``number`` to this process."""

    def state_saved(
        self, engine: ResumeEngine, info: CheckpointInfo, document: bytes, blobs: dict[str, bytes]
    ) -> None:
        """A state was written, before it is committed anywhere else."""

    def told(self, engine: ResumeEngine, number: int) -> None:
        """Trial ``number`` was told."""

    def cut_off_at_exit(self, engine: ResumeEngine, n_trials: int) -> int | None:
        """The trial an interruption cut off (the last one, if it did not finish)."""
        if not n_trials:
            return None
        study = engine.bound_study
        last = last_trial(storage_of(study), study_id_of(study), n_trials)
        return last.number if last.state in (TrialState.FAIL, TrialState.RUNNING) else None

    def resume(
        self,
        engine: ResumeEngine,
        sampler: optuna.samplers.BaseSampler | None,
        rewind_to: int | None,
        backup: bool,
    ) -> ResumeReport | None:
        """A resume of a stream of its own (a worker's); ``None``: the engine's own."""
        return None


ALONE = Stream()


class ResumeEngine:
    """Checkpoints one study into one folder and resumes it from there.

    Args:
        folder: The checkpoint folder (created if missing).
        options: What the front was told (a worker's folder is its own:
            ``<study root>/workers/<id>/checkpoints``).
        backup_place: Where backups go; ``None`` disables backups.
        stream: How this process takes part in the study (default: alone).
    """

    def __init__(
        self,
        folder: Path,
        options: EngineOptions | None = None,
        *,
        backup_place: BackupPlace | None = None,
        stream: Stream = ALONE,
    ) -> None:
        self.options = options or EngineOptions()
        self.stream = stream
        self.folder = Path(folder)
        self.root = self.folder.parent
        self.store = FolderStore(self.folder)  # where this engine's states live as files
        self.backup_place = backup_place
        self._learned_globals: tuple[object, ...] = ()  # the classes of samplers passed in
        self.study: optuna.Study | None = None
        self._uid: str | None = None
        self._storage_name = ""
        self._next_position: int | None = None
        self._snapshotted: set[int] = set()
        self._last_started: int | None = None
        self._newest_after: Path | None = None
        self._without_rng: set[int] = set()  # "before" states written without the generators
        self._finished: list[tuple[int, int]] = []  # (number, trial id) awaiting cleanup
        self._fresh_backup: BackupInfo | None = None
        self._lock = threading.RLock()
        self._pinned: weakref.ref[optuna.samplers.BaseSampler] | None = None
        self._after_saved: int | None = None  # the trial whose "after" state was saved last
        self.taken_back: list[str] = []  # study attributes put back by the last resume
        self._entry_notes: list[str] = []  # what binding did, for the next resume report
        self._rows: StateRows | None = None  # the states committed in the study's database
        self._synced_below: int | None = None  # "before" files under this number are fsynced
        self._payload_cache = PayloadCache()
        self._state_before_finish = False  # the state after a told trial: before its finish

    def configure(self, later: EngineOptions) -> None:
        """What a later binding may change (see :meth:`EngineOptions.joined`)."""
        self.options = self.options.joined(later)

    @property
    def keeps_every_after(self) -> bool:
        return self.stream.keeps_every_after

    @property
    def worker(self) -> str | None:
        return self.options.worker

    @property
    def trusted(self) -> bool:
        return self.options.trusted

    @property
    def allowed_globals(self) -> tuple[object, ...]:
        return self.options.allowed_globals + self._learned_globals

    @property
    def keep_backups(self) -> int | None:
        return self.options.keep_backups

    @property
    def capture_rng(self) -> bool:
        return self.options.capture_rng

    @property
    def workspace_policy(self) -> WorkspacePolicy:
        return self.options.workspace_policy or "keep"

    @property
    def retention(self) -> Retention:
        return self.options.retention or _KEEP_EVERY_STATE

    # -- binding -------------------------------------------------------------------------

    @_one_listing
    def attach(self, study: optuna.Study) -> None:
        """Bind to ``study``: checkpoint before every ``ask`` from now on."""
        other = engine_of(study)
        if other is not None and other is not self:
            raise CheckpointMismatchError(
                f"this study already checkpoints into {other.folder}; it cannot also use "
                f"{self.folder}. Omit the root inside a ResumableStudy, or pass the same one."
            )
        self.store.prepare()
        self.study = study
        rdb = rdb_of(storage_of(study))
        if rdb is not None:
            check_schema_version(rdb)  # our SQL is written for the installed Optuna's schema
            repair_missing_indexes(rdb)  # before this study's next create_study duplicates it
            ping_idle_connections(rdb)  # a session the server ended does not fail a tell
        repaired = repair_cut_off_rebuild(self.root, study)
        if repaired is not None:
            _logger.warning("%s", repaired)
            self._entry_notes.append(repaired)
        self._uid = self.stream.identify(self, study)
        if rdb is not None and not is_in_memory(rdb):
            self._rows = StateRows(rdb, study_id_of(study), self._uid, self.worker)
            self._fill_folder_from_rows()
        afters = self.store.infos(AFTER)
        for stale in afters[:-1]:
            stale.path.unlink(missing_ok=True)
        self._newest_after = afters[-1].path if afters else None
        self._refuse_another_studys_checkpoints(study)
        self._storage_name = describe(storage_of(study))
        install_hooks(_ENGINES)
        hook_storage_class(type(storage_of(study)))
        # (Not in memory: nothing there outlives a kill, and Optuna's own tests rely on the
        # order in which n_jobs > 1 threads finish their trials there.)
        self._state_before_finish = self._rows is None and not is_in_memory(storage_of(study))
        if self._state_before_finish:
            hook_finishes(type(storage_of(study)))
        _ENGINES[study] = self
        self.stream.attached(self, study)

    def ask(self, original: Callable[..., optuna.Trial], fixed_distributions: Any) -> optuna.Trial:
        """``study.ask`` of the bound study: the state before the new trial, then the ask."""
        # One ask at a time (n_jobs > 1): each checkpoint is the state before its trial.
        with self._lock:
            position = self._before_ask()
            try:
                with self.stream.asking(self):
                    trial = original(self.bound_study, fixed_distributions)
            finally:
                committed = self._rows is not None and self._rows.end_create()
            self._after_ask(position, trial.number, committed)
            return trial

    def _refuse_another_studys_checkpoints(self, study: optuna.Study) -> None:
        """One checkpoint folder, one study: never touch another study's states."""
        for name in reversed(self.store.names()):  # (the newest readable one)
            try:
                meta = read_meta(self.folder / name)
            except (OptunaResumeError, OSError):
                continue  # damaged: the resume deals with it
            owner = meta.get("study_uid")
            if owner is not None and owner != self._uid:
                raise CheckpointMismatchError(
                    f"{self.folder} holds the checkpoints of study {meta.get('study_name')!r} "
                    f"(storage {meta.get('storage')!r}), not of study {study.study_name!r}: "
                    "use one root per study (e.g. runs/<study name>). Nothing was changed. "
                    "If that study is gone for good, remove the folder's checkpoints first."
                )
            return

    def detach(self) -> None:
        """Stop checkpointing the study (it keeps working as a plain study)."""
        self.stream.detaching(self)
        study = self.study
        if study is not None and _ENGINES.get(study) is self:
            del _ENGINES[study]

    @property
    def bound_study(self) -> optuna.Study:
        if self.study is None:
            raise OptunaResumeError("the engine is not bound to a study")
        return self.study

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
            self.stream.state_saved(self, info, document, blobs)
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
            position = self.stream.next_ask_position(self)
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
            self.stream.claimed(self, number)
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

    def adopt(self, trial: optuna.Trial) -> None:
        """Resume a study the user opened alone, at its first trial in this process.

        The decorator used without :class:`ResumableStudy` first sees the study when Optuna
        has already asked for ``trial`` with the sampler the user created (fresh: it would
        repeat the study's first draws). Nothing has been suggested yet, so the saved state
        before this trial replaces that sampler and its ``before_trial`` runs again: the trial
        draws what an uninterrupted run would have drawn.

        Raises:
            UnsupportedStorageError: The study is in memory (nothing could ever resume it).
            ResumeRequiredError: An earlier run left a trial cut off; only a resume before
                the first ask can re-run it under its number.
            CheckpointNotFoundError: The study has trials but no state in this root.
        """
        study = self.bound_study
        refuse_in_memory(storage_of(study))
        number = trial.number
        # Cut off: RUNNING and started by a process that checkpointed into this root. Not a
        # trial that another thread of this process asked for before the engine was bound
        # (it has no state here yet), nor a live trial of a worker with a root of its own.
        cut = [
            t
            for t in running_trials(storage_of(study), study_id_of(study))
            if t.number != number and self.checkpoint(t.number, BEFORE) is not None
        ]
        if cut:
            first = min(cut, key=lambda t: t.number)
            raise ResumeRequiredError(
                f"trial {first.number} of study {study.study_name!r} was cut off by an "
                "interruption (it is still RUNNING), and Optuna has already asked for trial "
                f"{number}: the decorator alone cannot re-run trial {first.number} under its "
                "number. Resume the study before it asks: open it with "
                f"`with ResumableStudy({str(self.root)!r}, storage=..., study_name=...) as "
                "study:`, or call `optuna_resume.resume_study(study, root)` before "
                f"`study.optimize`. It re-runs trial {first.number} with its parameters and "
                f"goes on exactly; nothing was drawn for trial {number}, which stays FAIL and "
                "leaves the study at that resume."
            )
        finished = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        if not self.store.keys() and not storage_of(study).get_n_trials(
            study_id_of(study), state=finished
        ):
            return  # a new study (other threads' first trials may be running): nothing to resume
        if type(study.sampler) not in self.allowed_globals:
            # Passing a sampler is choosing to trust its class (as on a resume).
            self._learned_globals = (*self._learned_globals, type(study.sampler))
        state = self._state_at(number)
        if state is None:
            have = self.store.positions()
            raise CheckpointNotFoundError(
                f"study {study.study_name!r} has {number} trial(s) but no checkpoint in "
                f"{self.folder} holds the state after them (states available before trials: "
                f"{have or 'none'}), so its sampler cannot go on as it would have. Nothing "
                f"was drawn for trial {number}, which stays FAIL. To go on exactly, resume "
                "with a rewind to one of those states (`optuna_resume.resume_study(study, "
                "root, rewind_to=N)` before `study.optimize`); to go on with your sampler, "
                "whose draws will not match an uninterrupted run, call "
                "`optuna_resume.resume_study(study, root, allow_inexact=True)` first. Several "
                "processes on one study: give each a worker id "
                "(`ResumableStudy(root, storage=..., worker=...)`)."
            )
        sampler = self._choose_sampler(state.sampler, study.sampler)
        study.sampler = sampler
        self._restore_pruner(state, study.pruner)
        if state.rng is not None:
            restore_rng_state(state.rng)
        sampler.before_trial(study, storage_of(study).get_trial(trial_id_of(trial)))
        self._next_position = number
        _logger.info(
            "Resumed study %r at trial %d: the sampler goes on from the state saved before it "
            "(%s).",
            study.study_name,
            number,
            state.info.path,
        )

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
        self.stream.told(self, number)

    def _save_after_told(self, number: int, state: TrialState) -> None:
        with self._lock:
            if self._after_saved != number:
                outcome = _TOLD_OUTCOMES.get(state, RAISED)
                self.save(number, AFTER, outcome=outcome)
                self._after_saved = number

    def final(self, interrupted: bool) -> CheckpointInfo:
        """Write the state before the next trial; mark the last started trial if interrupted."""
        with self._lock:
            study = self.bound_study
            if not interrupted:
                self._clean_finished_workspaces()
            n_trials = self._n_trials()
            cut_off = self.stream.cut_off_at_exit(self, n_trials) if interrupted else None
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

    # -- reading -------------------------------------------------------------------------

    def load(self, info: CheckpointInfo) -> Checkpoint:
        return read_checkpoint(
            info,
            study_uid=self._uid,
            trusted=self.trusted,
            allowed_globals=self.allowed_globals,
        )

    def checkpoint(self, trial: int, phase: str) -> CheckpointInfo | None:
        return self.store.info(trial, phase)

    @staticmethod
    def _written_by_other_versions(info: CheckpointInfo) -> tuple[str, str] | None:
        try:
            return other_versions(read_meta(info.path))
        except (OptunaResumeError, OSError):
            return None

    def _state_at(self, position: int) -> Checkpoint | None:
        """The state just before trial ``position`` is asked for, if a checkpoint holds it."""
        self._take_rows_for(position)
        candidates = [self.checkpoint(*key) for key in position_keys(position)]
        errors: list[str] = []
        versions: list[tuple[str, str, str]] = []  # (theirs, ours, error) of states
        for info in candidates:
            if info is None:
                continue
            try:
                return self.load(info)
            except CheckpointMismatchError:
                raise
            except (CorruptCheckpointError, UnsafeCheckpointError) as e:
                other = self._written_by_other_versions(info)
                if other is None and isinstance(e, UnsafeCheckpointError):
                    raise
                if other is not None:
                    versions.append((*other, str(e)))
                else:
                    errors.append(str(e))
                _logger.warning("%s (trying an equivalent checkpoint)", e)
            except (OptunaResumeError, OSError) as e:
                errors.append(str(e))
                _logger.warning("%s (trying an equivalent checkpoint)", e)
        if versions and not errors:
            theirs, ours, error = versions[0]
            raise CheckpointVersionError(
                f"the state before trial {position} was written by {theirs} and cannot be "
                f"loaded by the versions running now ({ours}): {error} The checkpoints are not "
                "damaged and the trials are intact. Either keep the versions that wrote them "
                f"for this study (reinstall {theirs.split(',')[0]}), or go "
                "on with the sampler you pass, keeping the trials already run: "
                "allow_inexact=True (ResumableStudy or resume_study); the draws then differ "
                "from an uninterrupted run. Nothing was changed."
            )
        errors += [error for _, _, error in versions]
        if not errors:
            return None
        earlier = [p for p in self.store.positions() if p != position]
        raise CorruptCheckpointError(
            f"no intact checkpoint holds the state before trial {position}: "
            f"{' '.join(errors)} To repair: rewind to an earlier state (rewind_to=N; states "
            f"before trials {earlier[-5:] or 'none'} are on disk, `optuna-resume verify` says "
            "which are intact): trials N and later re-run exactly and the originals stay in a "
            "backup; or restore a backup (`optuna-resume restore`); or pass allow_inexact=True "
            "to go on with the sampler you pass. Nothing was changed."
        )

    def _fill_folder_from_rows(self) -> None:
        """Write into the folder the states the database holds and the folder lacks.

        The study's database is the record (each state was committed with its trial): a
        root that is empty (another host, a new folder) or behind gets the states it needs.
        """
        rows = self._rows
        if rows is None:
            return
        have = set(self.store.keys())
        keys = rows.keys()
        if not self.keeps_every_after:
            afters = [k for k in keys if k[1] == AFTER]
            keys = [k for k in keys if k[1] == BEFORE] + afters[-1:]
        missing = [k for k in keys if k not in have]
        for trial, phase in missing:
            self._take_row(trial, phase)
        if missing:
            note = (
                f"{len(missing)} state(s) committed with the study's trials in its database "
                f"were written into {self.folder}, which lacked them"
            )
            _logger.info("%s.", note)

    def _take_rows_for(self, position: int) -> None:
        """Make the files of the states before ``position`` match their database rows."""
        if self._rows is None:
            return
        for key in position_keys(position):
            self._take_row(*key)

    def _take_row(self, trial: int, phase: str) -> None:
        rows = self._rows
        assert rows is not None
        document = rows.document(trial, phase)
        if document is None:
            return
        path = self.store.path(trial, phase)
        try:
            on_disk = self.store.get(trial, phase)
        except OSError:
            on_disk = None
        if on_disk == document:
            return
        try:
            verify_document(document, f"the database row of {path.name}")
        except OptunaResumeError as e:
            _logger.warning("%s; the file %s is kept.", e, path)
            return
        if on_disk is not None:
            try:
                # A file that would run code is refused, not silently replaced: someone
                # put it there.
                check_loadable(
                    on_disk,
                    str(path),
                    trusted=self.trusted,
                    allowed_globals=self.allowed_globals,
                )
            except UnsafeCheckpointError as e:
                raise UnsafeCheckpointError(
                    f"{e} The study's database holds the state committed with trial {trial}: "
                    f"remove {path} (it is not this library's) and run again to go on from it."
                ) from None
            except OptunaResumeError as e:
                _logger.warning(
                    "%s The state committed with trial %d in the study's database replaces it.",
                    e,
                    trial,
                )
        blobs = rows.blobs(rows.blob_names() - self.store.blob_keys())
        self.store.put(trial, phase, document, blobs)
        if phase == AFTER and not self.keeps_every_after:
            for other in self.store.infos(AFTER):
                if other.trial != trial:
                    other.path.unlink(missing_ok=True)
            self._newest_after = path

    # -- resuming ------------------------------------------------------------------------

    def _fingerprint(self) -> str:
        """The study's fingerprint, with the checkpoint files the root holds for it."""
        study = self.bound_study
        names = self.store.names()
        newest = names[-1] if names else ""
        return f"{study_fingerprint(storage_of(study), study_id_of(study))}:{len(names)}:{newest}"

    def backup(self, reason: str = "manual", fingerprint: str | None = None) -> BackupInfo | None:
        """Back up the study and the checkpoints (if backups are enabled here).

        Args:
            reason: Why (see :class:`BackupInfo`); a backup taken before something is
                discarded is never removed by retention.
            fingerprint: The study's fingerprint, if the caller has just taken it.
        """
        if self.backup_place is None:
            return None
        study = self.bound_study
        info = take_backup(
            self.backup_place,
            storage_of(study),
            study_id_of(study),
            keep=self.keep_backups,
            reason=reason,
            trials=count_trials(storage_of(study), study_id_of(study)),
            fingerprint=fingerprint or self._fingerprint(),
        )
        self._fresh_backup = info
        record_event(
            self.root,
            "backup",
            study=study.study_name,
            number=info.number,
            storage_copy=info.storage_path,
            checkpoints_copy=info.checkpoints_path,
        )
        return info

    def _truncate(
        self, keep_below: int, spare_workspace: int | None = None, rewind: bool = False
    ) -> None:
        study = self.bound_study
        storage = storage_of(study)
        # Enqueued trials at or above the cut (the cut-off one, those still WAITING) are
        # enqueued again, in order: the study is as it was before trial ``keep_below``.
        enqueued = enqueued_from(storage, study_id_of(study), keep_below)
        take_back = take_back_plan(storage, study_id_of(study), keep_below)
        writes = list(take_back)
        system_attrs = storage.get_study_system_attrs(study_id_of(study))
        # Workers' states recorded in the study go with the trials they are of.
        writes += [
            TakeBack(SYSTEM, key, False, None) for key in states_past(system_attrs, keep_below)
        ]
        if rewind:  # recorded with the truncation: a rewind_to in code applies once
            done = rewinds_applied(storage, study_id_of(study))
            writes.append(TakeBack(SYSTEM, REWINDS_KEY, True, [*done, keep_below]))
        fault_point("truncate.backed_up")
        copy = None if self._fresh_backup is None else self._fresh_backup.storage_path
        with rebuild_guard(self.root, storage, study_id_of(study), study.study_name, copy):
            new_id = truncate_study(storage, study_id_of(study), keep_below, writes)
        fault_point("truncate.committed")
        if new_id != study_id_of(study):
            set_study_id(study, new_id)  # the storage had to rebuild the study under a new id
        for trial in enqueued:
            study.enqueue_trial(trial.system_attrs["fixed_params"], user_attrs=trial.user_attrs)
        for item in take_back:
            self.taken_back.append(f"{item} (written by a trial from {keep_below} on)")
            _logger.info("%s: written by trial %d or later", item, keep_below, extra=DETAIL)
        backup = self._fresh_backup
        discard_workspaces(
            self.root,
            from_number=keep_below,
            spare=spare_workspace,
            into=backup.checkpoints_path if backup is not None else None,
        )
        self.store.remove_from(keep_below)
        fault_point("truncate.done")
        self._snapshotted = {n for n in self._snapshotted if n < keep_below}
        self._next_position = keep_below

    def _choose_sampler(
        self, restored: Any, passed: optuna.samplers.BaseSampler | None
    ) -> optuna.samplers.BaseSampler:
        """The sampler the study goes on with: the restored one, completed from ``passed``."""
        sampler = _choose_part(restored, passed, self.bound_study.sampler, "sampler")
        _retarget_study_id(sampler, study_id_of(self.bound_study))
        return cast(optuna.samplers.BaseSampler, sampler)

    def _restore_pruner(
        self, state: Checkpoint | None, passed: optuna.pruners.BasePruner | None
    ) -> None:
        """Put back the pruner of ``state`` (Hyperband fixes its brackets once, for one)."""
        if state is None or state.pruner is None:
            return
        study = self.bound_study
        study.pruner = cast(
            optuna.pruners.BasePruner, _choose_part(state.pruner, passed, study.pruner, "pruner")
        )

    def interrupted_trial(self, trials: list[FrozenTrial]) -> FrozenTrial | None:
        """The trial an interruption cut off, among the study's ``trials`` (sorted by number)."""
        running = [t for t in trials if t.state == TrialState.RUNNING]
        return self._cut_trial(running, trials[-1] if trials else None)

    def settle_lookup(self) -> tuple[int, FrozenTrial | None]:
        """The bound study's trial count and interrupted trial, without loading every trial."""
        study = self.bound_study
        n_trials = state_position(storage_of(study), study_id_of(study))
        running = running_trials(storage_of(study), study_id_of(study))
        last = last_trial(storage_of(study), study_id_of(study), n_trials) if n_trials else None
        return n_trials, self._cut_trial(running, last)

    def _cut_trial(
        self, running: list[FrozenTrial], last: FrozenTrial | None
    ) -> FrozenTrial | None:
        if running:
            return min(running, key=lambda t: t.number)
        if last is None or last.state != TrialState.FAIL:
            return None
        marker = self.checkpoint(last.number + 1, BEFORE)
        if marker is not None:
            try:
                return (
                    last
                    if read_meta(marker.path).get("interrupted_trial") == last.number
                    else None
                )
            except (OptunaResumeError, OSError):
                pass
        after = self.checkpoint(last.number, AFTER)
        if after is not None:
            try:
                outcome = read_meta(after.path).get("outcome")
            except (OptunaResumeError, OSError):
                return None
            return last if outcome in (RAISED, INTERRUPTED) else None
        # Nothing was checkpointed after the trial began: the process ended inside it.
        return last if self.checkpoint(last.number, BEFORE) is not None else None

    def rewind(
        self, to: int, passed_sampler: optuna.samplers.BaseSampler | None = None
    ) -> optuna.samplers.BaseSampler:
        """Put the study back to just before trial ``to``; return the sampler of that moment.

        Trials numbered ``to`` and above leave the live study (their workspaces move into the
        backup taken last); take a backup first.
        """
        sampler, state = self._rewind(to, passed_sampler)
        self._restore_pruner(state, self.bound_study.pruner)
        return sampler

    def _rewind(
        self, to: int, passed_sampler: optuna.samplers.BaseSampler | None
    ) -> tuple[optuna.samplers.BaseSampler, Checkpoint | None]:
        study = self.bound_study
        n_trials = self._n_trials()
        check_rewind_target(study.study_name, to, n_trials)
        record_event(self.root, "rewind", study=study.study_name, trials=n_trials, to=to)
        state = self._state_at(to)
        if state is None:
            if to == 0 and passed_sampler is not None:
                self._truncate(0, rewind=True)
                return passed_sampler, None
            have = self.store.positions()
            raise CheckpointNotFoundError(
                f"no checkpoint holds the state before trial {to} of study "
                f"{study.study_name!r} (states available before trials: {have or 'none'}). "
                "Rewind to one of those; nothing was changed."
            )
        self._truncate(to, rewind=True)
        return self._choose_sampler(state.sampler, passed_sampler), state

    def _set_aside_stale_checkpoints(self, position: int, report: ResumeReport) -> None:
        # States after the study's last trial: the storage lost trials the checkpoints saw
        # (e.g. it was restored from an older copy). They are kept in a backup, then removed
        # so that no later resume can mistake them for states of the trials to come.
        stale = self.store.count_after(position)
        if not stale:
            return
        if self.backup_place is not None:
            if report.backup is None:
                report.backup = self.backup("set-aside")
            elif not report.backup.keeps_discarded:  # this entry's backup: it holds them
                report.backup = keep_for(self.backup_place, report.backup, "set-aside")
        self.store.remove_from(position)
        kept = "" if report.backup is None else f" (kept in backup {report.backup.number})"
        note = (
            f"the storage holds {position} trial(s) of study {self.bound_study.study_name!r} but "
            f"{stale} checkpoint(s) hold states after them: they were set aside{kept}; the "
            f"study goes on from the state before trial {position}"
        )
        report.notes.append(note)
        _logger.warning("%s", note)

    @_one_listing
    def resume(
        self,
        *,
        sampler: optuna.samplers.BaseSampler | None,
        rewind_to: int | None = None,
        interrupted_trial: InterruptedPolicy = "rerun",
        backup: bool = True,
        allow_inexact: bool = False,
        pruner: optuna.pruners.BasePruner | None = None,
        repeat_rewind: bool = False,
    ) -> ResumeReport:
        """Bring the bound study to the state an uninterrupted run would have now.

        Backs up, rewinds if asked, settles an interrupted trial and restores the sampler
        (``study.sampler`` is replaced). Nothing new is asked for.

        Args:
            sampler: The sampler the user passed (``None``: take the checkpoint's).
            rewind_to: Rewind to just before this trial first.
            interrupted_trial: ``"rerun"`` the interrupted trial under its number with its
                parameters, or leave it ``"fail"`` as Optuna does.
            backup: Take a backup even when nothing destructive happens.
            allow_inexact: Go on with ``sampler`` when no checkpoint holds the current state,
                instead of raising :class:`CheckpointNotFoundError`.
            pruner: The pruner the user passed (``None``: take the checkpoint's). The saved
                pruner goes on when it is of the same class (Hyperband keeps its brackets).
            repeat_rewind: Rewind even if the study was rewound to ``rewind_to`` before (the
                command line and :func:`rewind` do); a ``rewind_to`` written in code
                applies once, so that re-running the script does not throw its work away.
        """
        check_interrupted_policy(interrupted_trial)
        study = self.bound_study
        if sampler is not None and type(sampler) not in self.allowed_globals:
            # Passing a sampler is choosing to trust its class (not what it may refer to).
            self._learned_globals = (*self._learned_globals, type(sampler))
        own = self.stream.resume(self, sampler, rewind_to, backup)
        if own is not None:
            return own
        n_trials, cut = self.settle_lookup()
        report = ResumeReport(study.study_name, n_trials)
        report.notes.extend(self._entry_notes)
        self._entry_notes = []
        self.taken_back = []
        if (
            rewind_to is not None
            and not repeat_rewind
            and rewind_to in rewinds_applied(storage_of(study), study_id_of(study))
        ):
            note = (
                f"rewind_to={rewind_to} was applied by an earlier run and the study has "
                f"{n_trials} trial(s) now: not rewinding again (a rewind in code applies "
                "once; to rewind again on purpose: `optuna-resume rewind "
                f"{shlex.quote(str(self.root))} --to {rewind_to}`, or optuna_resume.rewind())"
            )
            report.notes.append(note)
            _logger.info("%s", note)
            rewind_to = None
        if rewind_to is not None:
            check_rewind_target(study.study_name, rewind_to, n_trials)
        self._fresh_backup = None
        if rewind_to is not None or cut is not None:
            report.backup = self.backup("rewind" if rewind_to is not None else "rerun")
        elif backup:
            report.backup = self._backup_if_changed(report)
        chosen: optuna.samplers.BaseSampler | None = None
        source: Checkpoint | None = None  # the state the study goes on from
        if rewind_to is not None:
            chosen, source = self._rewind(rewind_to, sampler)
            report.rewound = (n_trials, rewind_to)
            report.restored_from = str(self.store.path(rewind_to, BEFORE))
            n_trials, cut = self.settle_lookup()
        if cut is not None:
            report.interrupted_trial = cut.number
            report.interrupted_params = dict(cut.params)
            state = self._state_at(cut.number) if interrupted_trial == "rerun" else None
            if state is not None:
                self._truncate(cut.number, spare_workspace=cut.number)
                chosen = self._choose_sampler(state.sampler, sampler)
                source = state
                report.interrupted_action = "rerun"
                report.restored_from = str(self.store.path(cut.number, BEFORE))
            else:
                if interrupted_trial == "rerun":
                    report.notes.append(
                        f"no checkpoint before trial {cut.number}: it stays FAIL instead"
                    )
                if cut.state == TrialState.RUNNING:
                    storage_of(study).set_trial_state_values(trial_id_of(cut), TrialState.FAIL)
                report.interrupted_action = "fail"
                chosen = source = None
            n_trials = self._n_trials()
        position = n_trials
        upgrade_note: str | None = None
        if chosen is None and position > 0:
            try:
                state = self._state_at(position)
            except CorruptCheckpointError as e:
                if not allow_inexact:
                    raise
                state = None
                if isinstance(e, CheckpointVersionError):
                    upgrade_note = self._carry_over(position, sampler or study.sampler)
            if state is None and report.interrupted_action == "fail":
                older = [c for c in self.store.infos() if c.position <= position]
                if older:
                    state = self.load(older[-1])
                    report.notes.append("resumed from the newest older checkpoint (inexact)")
            if state is not None:
                chosen = self._choose_sampler(state.sampler, sampler)
                source = state
                report.restored_from = str(state.info.path)
            elif not allow_inexact:
                have = self.store.positions()
                raise CheckpointNotFoundError(
                    f"study {study.study_name!r} has {position} trial(s) but no checkpoint in "
                    f"{self.folder} holds the state after them (states available before "
                    f"trials: {have or 'none'}). To go on exactly, rewind to one of those "
                    "(rewind_to=N); to go on with the sampler you pass, whose draws will not "
                    "match an uninterrupted run, pass allow_inexact=True. Nothing was changed."
                )
            else:
                note = upgrade_note or (
                    f"no checkpoint holds the state of study {study.study_name!r} after "
                    f"{position} trial(s); going on with the sampler passed in"
                )
                report.notes.append(note)
                warnings.warn(note, InexactResumeWarning, stacklevel=3)
        if chosen is not None:
            study.sampler = chosen
        elif sampler is not None:
            study.sampler = sampler
        self._restore_pruner(source, pruner)
        if source is not None and source.rng is not None:
            restore_rng_state(source.rng)
            report.rng_restored = True
        self._set_aside_stale_checkpoints(position, report)
        self._next_position = position
        return self._report_resume(report, position)

    def _backup_if_changed(self, report: ResumeReport) -> BackupInfo | None:
        """A routine backup on entry, unless the newest backup already holds this state."""
        if self.backup_place is None:
            return None
        backups = list_backups(self.backup_place)
        fingerprint = self._fingerprint()
        if backups and backups[-1].fingerprint == fingerprint:
            report.notes.append(
                f"no new backup: the study has not changed since backup {backups[-1].number}"
            )
            return None
        return self.backup("entry", fingerprint)

    def _carry_over(self, position: int, sampler: optuna.samplers.BaseSampler) -> str:
        """Carry what fits of a state written by other versions into ``sampler``; say what."""
        found = (self.checkpoint(*key) for key in position_keys(position))
        info = next((i for i in found if i is not None), None)
        versions = None if info is None else self._written_by_other_versions(info)
        carried = Carried() if info is None else carry_over(read_payload(info.path), sampler)
        theirs, ours = versions or ("other versions", "the versions running now")
        stream = (
            "its random stream goes on where it was, so no draw of the earlier trials comes back"
            if carried.generators
            else "its random stream starts over from the seed"
        )
        return (
            f"the state of study {self.bound_study.study_name!r} after {position} trial(s) was "
            f"written by {theirs} and cannot be loaded by {ours}; going on with the sampler "
            f"passed in (allow_inexact=True), the trials already run kept. Carried over from "
            f"the saved sampler into the new one: {carried}; {stream}. The draws from here on "
            "may differ from an uninterrupted run under the old versions."
        )

    def _report_resume(self, report: ResumeReport, position: int) -> ResumeReport:
        study = self.bound_study
        self._fresh_backup = None
        report.notes.extend(f"{item}; the backup keeps it" for item in self.taken_back)
        self.taken_back = []
        report.next_trial = position
        _logger.info("%s", report.summary())
        _logger.info("%s", report, extra=DETAIL)
        record_event(
            self.root,
            "resume",
            study=study.study_name,
            trials=report.trials_found,
            next_trial=position,
            rewound_to=None if report.rewound is None else report.rewound[1],
            interrupted_trial=report.interrupted_trial,
            interrupted_action=report.interrupted_action,
            restored_from=report.restored_from,
            rng_restored=report.rng_restored,
            notes=report.notes,
        )
        return report


def _choose_part(restored: Any, passed: Any, code_source: Any, what: str) -> Any:
    """What a study goes on with: the saved sampler (or pruner), or the one passed.

    Another class passed wins, with a warning. Otherwise the saved one goes on (so that the
    study continues exactly) and each setting in which the one passed differs is named; its
    code (functions, local classes) comes from ``passed``, else from ``code_source``.
    """
    restored_class = (
        restored.class_name if isinstance(restored, Detached) else global_name(type(restored))
    )
    short = restored_class.rsplit(".", 1)[-1]
    if passed is not None and global_name(type(passed)) != restored_class:
        warnings.warn(
            f"the checkpoint holds a {short} but a {type(passed).__name__} was passed; using "
            f"the one passed (the study will not go on as the checkpointed {what} would have)",
            SamplerMismatchWarning,
            stacklevel=5,
        )
        return passed
    if passed is not None:
        changed = differing_settings(restored, passed)
        if changed:
            said = ", ".join(
                f"{name}={old!r} (checkpoint) instead of {new!r} (passed)"
                for name, old, new in changed
            )
            warnings.warn(
                f"the {short} passed has other settings than the checkpointed one; the study "
                f"goes on with the checkpoint's, so that it continues exactly: {said}. To use "
                "new settings, start a new study (another root or study_name).",
                SamplerMismatchWarning,
                stacklevel=5,
            )
    part, missing = join_code_parts(restored, passed if passed is not None else code_source)
    if missing:
        warnings.warn(
            f"the {what}'s functions {', '.join(missing)} are not saved in checkpoints (code "
            f"never is) and no {what} holding them was passed: pass the {what} again, built as "
            "before, or it fails when it calls them",
            SamplerMismatchWarning,
            stacklevel=5,
        )
    return part


def check_interrupted_policy(policy: object) -> None:
    if policy not in ("rerun", "fail"):
        raise InvalidArgumentError(
            f"interrupted_trial must be 'rerun' (run a cut-off trial again under its number) "
            f"or 'fail' (leave it FAIL, as Optuna does), not {policy!r}"
        )


def _retarget_study_id(sampler: object, study_id: int) -> None:
    """Point a sampler's caches (``IntersectionSearchSpace``, Optuna 5.1's GA generation
    cache) at the study's id.

    A checkpoint is only ever loaded into its own study (its identity is verified), so an
    id cached in it is this study's id from before the storage rebuilt the study.
    """
    for part in sampler_parts(sampler, modules=("optuna.",), into_dicts=True):
        ours = part is sampler or type(part).__module__.startswith("optuna.")
        state = getattr(part, "__dict__", None)
        if not (ours and isinstance(state, dict)):
            continue
        for key in _STUDY_ID_KEYS:
            if isinstance(state.get(key), int):
                state[key] = study_id


_STUDY_ID_KEYS = ("_study_id", "_cached_study_id")


def check_rewind_target(study_name: str, to: object, n_trials: int) -> None:
    """Raise :class:`InvalidRewindError` unless ``to`` is a trial of a study of ``n_trials``."""
    if isinstance(to, bool) or not isinstance(to, int):
        raise InvalidRewindError(f"rewind_to must be a trial number (an int), not {to!r}")
    if to < 0 or to >= n_trials:
        last = f"0..{n_trials - 1}" if n_trials else "none: the study has no trials"
        raise InvalidRewindError(
            f"cannot rewind study {study_name!r} to trial {to}: its trials are {last}"
        )


__all__ = [
    "INTERRUPTED",
    "PRUNED",
    "RAISED",
    "RETURNED",
    "InterruptedPolicy",
    "ResumeEngine",
    "check_interrupted_policy",
    "check_rewind_target",
    "engine_of",
]
