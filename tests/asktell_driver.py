"""An ask/tell loop (no ``optimize``, no decorated objective), in a process of its own."""

from __future__ import annotations

import os
import signal

from resume_driver import ALL_SAMPLERS, N_TRIALS, directions, evaluate

from optuna_resume import ResumableStudy


def run_asktell(
    root: str,
    name: str,
    kill_after_tell: int | None = None,
    kill_before_tell: int | None = None,
) -> None:
    """Ask, evaluate and tell until the study has ``N_TRIALS`` trials; maybe SIGKILL itself.

    ``kill_after_tell``: right after that trial's tell, before the next ask.
    ``kill_before_tell``: after that trial's parameters were drawn, before its tell.
    """
    with ResumableStudy(root, sampler=ALL_SAMPLERS[name](), directions=directions(name)) as study:
        while len(study.trials) < N_TRIALS:
            trial = study.ask()
            values = evaluate(trial, name)
            if trial.number == kill_before_tell:
                os.kill(os.getpid(), signal.SIGKILL)
            study.tell(trial, values)
            if trial.number == kill_after_tell:
                os.kill(os.getpid(), signal.SIGKILL)
