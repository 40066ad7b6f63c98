"""The demo behind ``optuna-resume demo``: kill a study, resume it, compare.

It runs a small seeded TPE study on the embedded SQLite default in a child process that is
SIGKILLed in the middle of a trial, resumes it in a new process, runs the same study
uninterrupted, and prints the trials side by side. For contrast it also shows what a plain
Optuna restart with a fresh seeded sampler does: it repeats the first draws.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import optuna

from ._decorator import checkpointed_objective
from ._functions import optimize_until
from ._optuna._storage import sqlite_url
from ._study import ResumableStudy

N_TRIALS = 16
KILL_AT = 6
SEED = 0


def _sampler() -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(seed=SEED, n_startup_trials=10)


def _loss(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -10, 10)
    y = trial.suggest_int("y", -5, 5)
    return (x - 2) ** 2 + (y + 1) ** 2


def run_worker(root: str, kill_at: int | None) -> None:
    """The demo's study in this process; SIGKILL itself inside trial ``kill_at``."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    @checkpointed_objective()
    def objective(trial: optuna.Trial) -> float:
        value = _loss(trial)
        if trial.number == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return value

    with ResumableStudy(root, sampler=_sampler(), direction="minimize") as study:
        optimize_until(study, objective, N_TRIALS)


def _child(root: Path, kill_at: int | None) -> int:
    command = [sys.executable, "-m", "optuna_resume", "_worker", str(root)]
    if kill_at is not None:
        command += ["--kill-at", str(kill_at)]
    return subprocess.run(command, check=False).returncode


def _plain_restart(root: Path) -> list[optuna.trial.FrozenTrial]:
    storage = sqlite_url(root / "plain.db")
    for n in (KILL_AT, N_TRIALS - KILL_AT):  # a run cut at KILL_AT, then a plain restart
        study = optuna.create_study(
            storage=storage, study_name="plain", sampler=_sampler(), load_if_exists=True
        )
        study.optimize(_loss, n_trials=n)
    return study.get_trials(deepcopy=False)


def _trials(root: Path) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=root.name, storage=sqlite_url(root / "study.db"))
    return study.get_trials(deepcopy=False)


def run_demo(folder: Path) -> bool:
    """Run the demo in ``folder``; print the comparison; return whether it was exact."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    folder.mkdir(parents=True, exist_ok=True)
    resumed_root, straight_root = folder / "resumed", folder / "uninterrupted"
    for root in (resumed_root, straight_root, folder / "plain.db"):
        if root.exists():
            raise FileExistsError(f"{root} exists; give the demo an empty folder")
    print(
        f"1. running {N_TRIALS} TPE trials in {resumed_root}; the process is SIGKILLed "
        f"inside trial {KILL_AT}"
    )
    code = _child(resumed_root, KILL_AT)
    print(
        f"   process ended with {code} (killed by signal {-code})"
        if code < 0
        else f"   process ended with {code}"
    )
    print("2. the same command again, in a new process: it resumes")
    if _child(resumed_root, None) != 0:
        return False
    print("3. the same study run once without interruption, for comparison")
    if _child(straight_root, None) != 0:
        return False
    plain = _plain_restart(folder)
    resumed, straight = _trials(resumed_root), _trials(straight_root)
    print()
    print(
        f"{'trial':>5}  {'resumed (x, y)':>22}  {'uninterrupted (x, y)':>22}  same  "
        f"{'plain Optuna restart':>22}"
    )
    exact = len(resumed) == len(straight) == N_TRIALS
    for r, s, p in zip(resumed, straight, plain, strict=False):
        same = r.params == s.params and r.values == s.values and r.state == s.state
        exact = exact and same

        def show(t: optuna.trial.FrozenTrial) -> str:
            return f"({t.params['x']:.4f}, {t.params['y']})"

        repeat = ""
        if p.number >= KILL_AT and plain[p.number - KILL_AT].params == p.params:
            repeat = f"  <- repeats trial {p.number - KILL_AT}"
        print(
            f"{r.number:>5}  {show(r):>22}  {show(s):>22}  {'yes' if same else 'NO':>4}  "
            f"{show(p):>22}{repeat}"
        )
    print()
    if exact:
        print(
            f"The study killed in trial {KILL_AT} and resumed equals the uninterrupted run, "
            "trial for trial. The plain restart repeats its first draws (optuna#3255)."
        )
    else:
        print("MISMATCH: the resumed study differs from the uninterrupted run")
    print()
    print(f"To look at what it made (kept in {folder}; remove the folder when done):")
    for command in ("status", "history", "backups", "verify"):
        print(f"  optuna-resume {command} {shlex.quote(str(resumed_root))}")
    return exact


__all__ = ["run_demo", "run_worker"]
