"""How the engine's process takes part in its study: alone, or as one worker among several
(the strategy the engine is given; :mod:`._worker_stream` holds the worker's).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import optuna
from optuna.trial import TrialState

from ._checkpoint import CheckpointInfo
from ._optuna._access import storage_of, study_id_of
from ._optuna._storage import last_trial, study_uid
from ._report import ResumeReport

if TYPE_CHECKING:
    from ._engine import ResumeEngine


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


__all__ = ["ALONE", "Stream"]
