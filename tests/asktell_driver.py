"""An ask/tell loop (no ``optimize``, no decorated objective), in a process of its own."""

from __future__ import annotations

import os
import signal
from typing import Any

from resume_driver import ALL_SAMPLERS, N_TRIALS, directions, evaluate, open_storage

from optuna_resume import ResumableStudy


def run_asktell(
    root: str,
    name: str,
    kill_after_tell: int | None = None,
    kill_before_tell: int | None = None,
    kill_inside_tell: int | None = None,
    storage: str = "sqlite",
) -> None:
    """Ask, evaluate and tell until the study has ``N_TRIALS`` trials; maybe SIGKILL itself.

    ``kill_after_tell``: right after that trial's tell, before the next ask.
    ``kill_before_tell``: after that trial's parameters were drawn, before its tell.
    ``kill_inside_tell``: inside that trial's tell, as soon as the storage has finished the
    trial (committed), before the tell returns.
    ``storage``: a kind of ``resume_driver.open_storage``.
    """
    opened = open_storage(root, storage)
    if kill_inside_tell is not None:
        _kill_once_finished(opened, kill_inside_tell)
    with ResumableStudy(
        root,
        storage=opened,
        study_name=os.path.basename(root),
        sampler=ALL_SAMPLERS[name](),
        directions=directions(name),
    ) as study:
        while len(study.trials) < N_TRIALS:
            trial = study.ask()
            values = evaluate(trial, name)
            if trial.number == kill_before_tell:
                os.kill(os.getpid(), signal.SIGKILL)
            study.tell(trial, values)
            if trial.number == kill_after_tell:
                os.kill(os.getpid(), signal.SIGKILL)


def _kill_once_finished(storage: Any, number: int) -> None:
    """SIGKILL this process once ``storage`` has finished trial ``number``."""
    import optuna

    cls = type(storage) if not isinstance(storage, str) else optuna.storages.RDBStorage
    finish = cls.set_trial_state_values

    def set_trial_state_values(self: Any, trial_id: int, state: Any, values: Any = None) -> bool:
        done = finish(self, trial_id, state, values)
        if state.is_finished() and self.get_trial(trial_id).number == number:
            os.kill(os.getpid(), signal.SIGKILL)
        return done

    cls.set_trial_state_values = set_trial_state_values  # type: ignore[method-assign]
