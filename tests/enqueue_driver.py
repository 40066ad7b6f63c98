"""A study that starts with enqueued trials, run in real processes by ``test_enqueue.py``."""

from __future__ import annotations

import os
import signal

import optuna
from resume_driver import N_TRIALS, SAMPLERS, evaluate

from optuna_resume import ResumableStudy, checkpointed_objective, optimize_until

ENQUEUED = [
    {"x": 0.5, "y": 1, "c": "a"},
    {"x": -1.0, "y": 2, "c": "b"},
    {"x": 1.25, "y": -1, "c": "c"},
]


def enqueue_first(study: optuna.Study) -> None:
    """What the script does on a new study: enqueue the points to try first."""
    if not study.trials:
        for params in ENQUEUED:
            study.enqueue_trial(params, user_attrs={"source": "enqueued"})


def reference(name: str) -> list[tuple[int, str, dict[str, object], object]]:
    study = optuna.create_study(sampler=SAMPLERS[name]())
    enqueue_first(study)
    study.optimize(lambda t: evaluate(t, name), n_trials=N_TRIALS)
    return described(study)


def described(study: optuna.Study) -> list[tuple[int, str, dict[str, object], object]]:
    return [(t.number, t.state.name, t.params, t.value) for t in study.get_trials()]


def run_enqueued(
    root: str,
    name: str,
    kill_in: int | None = None,
    kill_after_tell: int | None = None,
    rewind_to: int | None = None,
    until: int = N_TRIALS,
) -> None:
    """One run of the script; SIGKILL inside trial ``kill_in`` or right after its tell."""

    @checkpointed_objective()
    def objective(trial: optuna.Trial) -> float:
        value = evaluate(trial, name)
        if trial.number == kill_in:
            os.kill(os.getpid(), signal.SIGKILL)
        assert isinstance(value, float)
        return value

    def after_tell(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.number == kill_after_tell:
            os.kill(os.getpid(), signal.SIGKILL)

    with ResumableStudy(root, sampler=SAMPLERS[name](), rewind_to=rewind_to) as study:
        enqueue_first(study)
        optimize_until(study, objective, until, callbacks=[after_tell])
