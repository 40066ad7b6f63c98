"""The checkpoint engine behind every front (decorator, context manager, functions).

The engine keeps, for each trial N, the state just before trial N was asked for: the
sampler and the study's system attributes. With it, a stop, crash, kill or rewind all come
down to one operation: put the storage back to "trials 0..N-1" and the sampler back to
that state, then let Optuna ask for trial N again.

One engine, one part per job, each in its module:

- :mod:`._reading`: the engine's state, and how a state is read back (its checkpoint,
  loaded and checked; the folder brought level with the database's rows);
- :mod:`._recording`: what is saved when (before each trial, after it, at exit);
- :mod:`._resuming`: a session's entry (backup, rewind, the cut-off trial, the sampler);
- this module: the binding to a study (the registry, attach, the hooked ``ask``);
- :mod:`._stream`: how the process takes part in the study, a strategy the engine is
  given (alone, or :mod:`._worker_stream`'s worker);
- :mod:`._optuna`: every use of Optuna's internals.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import optuna

from ._checkpoint import AFTER, read_meta
from ._error import CheckpointMismatchError, OptunaResumeError
from ._log import logger
from ._optuna._access import storage_of, study_id_of
from ._optuna._attr_writes import hook_storage_class
from ._optuna._finish_hook import hook_finishes
from ._optuna._hooks import install_hooks
from ._optuna._state_table import StateRows
from ._optuna._storage import (
    check_schema_version,
    describe,
    is_in_memory,
    ping_idle_connections,
    rdb_of,
    repair_missing_indexes,
)
from ._reading import one_listing
from ._rebuild import repair_cut_off_rebuild
from ._recording import INTERRUPTED, PRUNED, RAISED, RETURNED, InterruptedPolicy
from ._resuming import Resuming, check_interrupted_policy, check_rewind_target

_logger = logger

_ENGINES: weakref.WeakKeyDictionary[optuna.Study, ResumeEngine] = weakref.WeakKeyDictionary()


def engine_of(study: optuna.Study) -> ResumeEngine | None:
    """The engine a study is bound to, if any."""
    return _ENGINES.get(study)


class ResumeEngine(Resuming):
    """Checkpoints one study into one folder and resumes it from there (its arguments:
    :class:`~._reading.Reading`'s)."""

    # -- binding -------------------------------------------------------------------------

    @one_listing
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
