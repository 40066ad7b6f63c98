"""A session's entry: back up, rewind if asked, settle the trial an interruption cut off,
restore the sampler and pruner, report.
"""

from __future__ import annotations

import shlex
import warnings
from typing import Any, cast

import optuna
from optuna.trial import FrozenTrial, TrialState

from ._backup import BackupInfo, keep_for, list_backups, take_backup
from ._carry import Carried, carry_over
from ._checkpoint import AFTER, BEFORE, Checkpoint, position_keys, read_meta, read_payload
from ._error import (
    CheckpointNotFoundError,
    CheckpointVersionError,
    CorruptCheckpointError,
    InexactResumeWarning,
    InvalidArgumentError,
    InvalidRewindError,
    OptunaResumeError,
    ResumeRequiredError,
    SamplerMismatchWarning,
)
from ._fault import fault_point
from ._history import record_event
from ._log import DETAIL, logger
from ._mirror import states_past
from ._optuna._access import set_study_id, storage_of, study_id_of, trial_id_of
from ._optuna._attr_writes import SYSTEM, TakeBack
from ._optuna._samplers import differing_settings, sampler_parts
from ._optuna._storage import (
    REWINDS_KEY,
    count_trials,
    enqueued_from,
    last_trial,
    refuse_in_memory,
    rewinds_applied,
    running_trials,
    state_position,
    study_fingerprint,
    take_back_plan,
    truncate_study,
)
from ._reading import one_listing
from ._rebuild import rebuild_guard
from ._recording import INTERRUPTED, RAISED, InterruptedPolicy, Recording
from ._report import ResumeReport
from ._rng import restore_rng_state
from ._serialization import Detached, global_name, join_code_parts
from ._workspace import discard_workspaces

_logger = logger


class Resuming(Recording):
    """A session's entry: back up, settle the cut-off trial, truncate (a rewind), restore
    the sampler, report."""

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

    @one_listing
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
        own = self.stream.resume(self.whole, sampler, rewind_to, backup)
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


__all__ = ["Resuming", "check_interrupted_policy", "check_rewind_target"]
