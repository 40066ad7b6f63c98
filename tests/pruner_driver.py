"""Studies with a pruner, run in real processes by ``test_pruners.py``.

The objective reports a learning curve step by step and asks the pruner at every step, so
that PRUNED and COMPLETE trials both occur; a phase may SIGKILL its own process inside a
trial, after some steps were reported.
"""

from __future__ import annotations

import os
import signal
import warnings
from collections.abc import Callable
from typing import Any

import optuna
from optuna.pruners import (
    BasePruner,
    HyperbandPruner,
    MedianPruner,
    NopPruner,
    PatientPruner,
    PercentilePruner,
    SuccessiveHalvingPruner,
    ThresholdPruner,
    WilcoxonPruner,
)
from optuna.trial import TrialState

from optuna_resume import ResumableStudy, checkpointed_objective, optimize_until

N_STEPS = 8
N_TRIALS = 14
KILL_AT = 9  # a trial after the pruners' warm-up, cut at step KILL_STEP
KILL_STEP = 0  # after its first report: every trial gets there, pruned or not

PRUNERS: dict[str, Callable[[], BasePruner]] = {
    "median": lambda: MedianPruner(n_startup_trials=2, n_warmup_steps=1),
    "percentile": lambda: PercentilePruner(40.0, n_startup_trials=2),
    "successive_halving": lambda: SuccessiveHalvingPruner(),
    "hyperband_auto": lambda: HyperbandPruner(min_resource=1, max_resource="auto"),
    "hyperband_fixed": lambda: HyperbandPruner(min_resource=1, max_resource=N_STEPS),
    "threshold": lambda: ThresholdPruner(upper=6.0),
    "patient": lambda: PatientPruner(MedianPruner(n_startup_trials=2), patience=1),
    "wilcoxon": lambda: WilcoxonPruner(p_threshold=0.2),
    "nop": lambda: NopPruner(),
}


def curve(trial: optuna.Trial, kill_at: int | None) -> float:
    x = trial.suggest_float("x", -3.0, 3.0)
    value = 0.0
    # Curves of several lengths: what Hyperband's max_resource="auto" sees at its first
    # prune() depends on the trials finished by then (in the first process, only trial 0).
    for step in range(2 + trial.number % (N_STEPS - 1)):
        # Falling for most x; rising for x > 0.5 (so that patience runs out, too).
        value = (x - 1.0) ** 2 + 4.0 / (step + 1) + (2.0 * step if x > 0.5 else 0.0)
        trial.report(value, step)
        if trial.number == kill_at and step == KILL_STEP:
            os.kill(os.getpid(), signal.SIGKILL)
        if trial.should_prune():
            raise optuna.TrialPruned
    return value


Outcome = list[tuple[int, str, dict[str, Any], Any]]


def outcome(study: optuna.Study) -> Outcome:
    """Number, state, params and value of every finished trial."""
    finished = (TrialState.COMPLETE, TrialState.PRUNED)
    return [
        (t.number, t.state.name, dict(t.params), t.value)
        for t in study.get_trials(deepcopy=False, states=finished)
    ]


def reference(name: str) -> Outcome:
    """One uninterrupted run with plain Optuna, in memory."""
    study = optuna.create_study(  # named as the root: Hyperband's brackets hash the name
        study_name=name, sampler=optuna.samplers.RandomSampler(seed=2), pruner=PRUNERS[name]()
    )
    with warnings.catch_warnings():  # Wilcoxon's note on curves of other lengths
        warnings.simplefilter("ignore", UserWarning)
        study.optimize(lambda t: curve(t, None), n_trials=N_TRIALS)
    return outcome(study)


def run_phase(root: str, name: str, kill_at: int | None = None) -> None:
    """Open the study (the pruner passed again, fresh), run it to ``N_TRIALS`` trials."""
    objective = checkpointed_objective()(lambda trial: curve(trial, kill_at))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with ResumableStudy(
        root, sampler=optuna.samplers.RandomSampler(seed=2), pruner=PRUNERS[name]()
    ) as study:
        optimize_until(study, objective, N_TRIALS)
