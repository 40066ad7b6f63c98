"""Study scenarios run in real processes by the end-to-end resume tests.

``run_phase`` is the body of one process: it opens the study with ``ResumableStudy``, runs
until a target number of trials, and may cut itself off on the way: an exception out of
``optimize`` (crash), ``KeyboardInterrupt`` (interrupt, then resume in the same process) or a
real ``SIGKILL`` of its own process while a trial's objective runs (kill).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import random
import signal
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import optuna
import torch
from optuna.samplers import (
    BaseSampler,
    BruteForceSampler,
    CmaEsSampler,
    GPSampler,
    GridSampler,
    NSGAIIISampler,
    NSGAIISampler,
    PartialFixedSampler,
    QMCSampler,
    RandomSampler,
    TPESampler,
)
from optuna.storages.journal import JournalFileBackend
from services import server_storage

from optuna_resume import ResumableStudy, _fault, checkpointed_objective, optimize_until
from optuna_resume._optuna._storage import rdb_of, sqlite_url

# Imported here once, so that processes forked from a server that imported this module do not
# each spend a second on what the QMC and GP samplers import lazily.
for _lazy in (
    "scipy.stats.qmc",
    "scipy.optimize",
    "cmaes",
    "alembic",
    "sqlalchemy.dialects.sqlite",
):
    importlib.import_module(_lazy)
optuna.storages.RDBStorage("sqlite:///:memory:").engine.dispose()  # Optuna's lazy imports
torch.set_num_threads(1)  # two test workers share two cores: GP's torch math stays serial

warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
optuna.logging.set_verbosity(optuna.logging.WARNING)

X_STEP = 0.25
GRID: dict[str, list[str | float | int | bool | None]] = {
    "x": [i * X_STEP for i in range(-8, 9)],
    "y": list(range(-3, 4)),
    "c": ["a", "b", "c"],
}


class SeededRandomWalkSampler(optuna.samplers.RandomSampler):
    """A user's own sampler: random, plus state of its own that changes every trial."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed=seed)
        self.calls = 0

    def sample_independent(self, study: Any, trial: Any, name: str, dist: Any) -> Any:
        self.calls += 1
        return super().sample_independent(study, trial, name, dist)


SAMPLERS: dict[str, Callable[[], BaseSampler]] = {
    "random": lambda: RandomSampler(seed=1),
    "tpe": lambda: TPESampler(seed=1, n_startup_trials=4),
    "tpe_multivariate": lambda: TPESampler(seed=1, n_startup_trials=4, multivariate=True),
    "tpe_group": lambda: TPESampler(seed=1, n_startup_trials=4, multivariate=True, group=True),
    "tpe_constant_liar": lambda: TPESampler(seed=1, n_startup_trials=4, constant_liar=True),
    "tpe_multi_objective": lambda: TPESampler(seed=1, n_startup_trials=4),
    "cmaes": lambda: CmaEsSampler(seed=1, popsize=4),
    "cmaes_separable": lambda: CmaEsSampler(seed=1, popsize=4, use_separable_cma=True),
    "cmaes_with_margin": lambda: CmaEsSampler(seed=1, popsize=4, with_margin=True),
    "gp": lambda: GPSampler(seed=1, n_startup_trials=4),
    "qmc_sobol_scrambled": lambda: QMCSampler(qmc_type="sobol", scramble=True, seed=1),
    "qmc_halton": lambda: QMCSampler(qmc_type="halton", scramble=False, seed=1),
    "grid": lambda: GridSampler(GRID, seed=1),
    "brute_force": lambda: BruteForceSampler(seed=1),
    "nsga2": lambda: NSGAIISampler(seed=1, population_size=4),
    "nsga3": lambda: NSGAIIISampler(seed=1, population_size=4),
    "partial_fixed": lambda: PartialFixedSampler(
        {"c": "b"}, TPESampler(seed=1, n_startup_trials=4)
    ),
    "custom": lambda: SeededRandomWalkSampler(seed=1),
}
# What most users run: no seed, or no sampler at all (Optuna's default). Their generators take
# their entropy from the OS; a test makes a run reproducible with ``fixed_entropy`` only.
UNSEEDED: dict[str, Callable[[], BaseSampler | None]] = {
    "default": lambda: None,
    "unseeded_random": lambda: RandomSampler(),
    "unseeded_tpe": lambda: TPESampler(n_startup_trials=4),
    "unseeded_tpe_multivariate": lambda: TPESampler(n_startup_trials=4, multivariate=True),
    "unseeded_cmaes": lambda: CmaEsSampler(popsize=4),
    "unseeded_gp": lambda: GPSampler(n_startup_trials=4),
    "unseeded_qmc": lambda: QMCSampler(
        qmc_type="sobol", scramble=True, warn_asynchronous_seeding=False
    ),
    "unseeded_grid": lambda: GridSampler(GRID),
    "unseeded_brute_force": lambda: BruteForceSampler(),
    "unseeded_nsga2": lambda: NSGAIISampler(population_size=4),
    "unseeded_nsga3": lambda: NSGAIIISampler(population_size=4),
}


def _gamma_closure(cap: int) -> Callable[[int], int]:
    def gamma(n: int) -> int:
        return min(n, cap)

    return gamma


def _local_class_sampler() -> BaseSampler:
    class LocalRandomWalk(RandomSampler):  # defined inside a function: not importable
        def __init__(self) -> None:
            super().__init__(seed=1)
            self.calls = 0

        def sample_independent(self, study: Any, trial: Any, name: str, dist: Any) -> Any:
            self.calls += 1
            return super().sample_independent(study, trial, name, dist)

    return LocalRandomWalk()


def _with_functions(make: Callable[[], BaseSampler]) -> Callable[[], BaseSampler]:
    def build() -> BaseSampler:
        with warnings.catch_warnings():  # Optuna 5 deprecates these function arguments
            warnings.simplefilter("ignore", FutureWarning)
            return make()

    return build


# Samplers holding code: a lambda, a closure, a class defined inside a function. Their data is
# saved; the code comes from the sampler passed again on resume.
WITH_FUNCTIONS: dict[str, Callable[[], BaseSampler]] = {
    "nsga2_constraints_lambda": _with_functions(
        lambda: NSGAIISampler(
            seed=1, population_size=4, constraints_func=lambda t: [t.params["x"] - 1.0]
        )
    ),
    "tpe_gamma_closure": _with_functions(
        lambda: TPESampler(seed=1, n_startup_trials=4, gamma=_gamma_closure(2))
    ),
    "local_class": _local_class_sampler,
}
ALL_SAMPLERS: dict[str, Callable[[], BaseSampler | None]] = {
    **SAMPLERS,
    **UNSEEDED,
    **WITH_FUNCTIONS,
}
MULTI_OBJECTIVE = {
    "tpe_multi_objective",
    "nsga2",
    "nsga3",
    "unseeded_nsga2",
    "unseeded_nsga3",
    "nsga2_constraints_lambda",
}
# Trials that fall in the model-based phase (after TPE's/GP's 4 startup trials, after the
# first CMA-ES generation of 4 and the first GA generation of 4).
MODEL_PHASE_TRIAL = 7
EARLY_TRIAL = 1
N_TRIALS = 11


@contextlib.contextmanager
def fixed_entropy(seed: int | None) -> Iterator[None]:
    """Unseeded NumPy generators made inside take their entropy from ``seed`` (tests only).

    NumPy draws a fresh ``SeedSequence``'s entropy from ``secrets.randbits``; replacing it
    makes one run of an unseeded sampler reproducible, so that a resumed study can be
    compared exactly with an uninterrupted one. Each process of a scenario gets its own
    seed: a resume that made a fresh generator instead of restoring the saved one draws
    other values than the reference, and the comparison fails.
    """
    if seed is None:
        yield
        return
    import numpy.random.bit_generator as bit_generator

    saved = bit_generator.randbits  # type: ignore[attr-defined]
    bit_generator.randbits = random.Random(seed).getrandbits  # type: ignore[attr-defined]
    try:
        yield
    finally:
        bit_generator.randbits = saved  # type: ignore[attr-defined]


def directions(name: str) -> list[Literal["minimize", "maximize"]]:
    return ["minimize", "minimize"] if name in MULTI_OBJECTIVE else ["minimize"]


def evaluate(trial: optuna.Trial, name: str) -> float | tuple[float, float]:
    x = trial.suggest_float("x", -2.0, 2.0, step=X_STEP)
    y = trial.suggest_int("y", -3, 3)
    c = trial.suggest_categorical("c", ["a", "b", "c"])
    loss = (x - 0.7) ** 2 + (y - 1) ** 2 + {"a": 0.0, "b": 0.5, "c": 1.0}[c]
    if name in MULTI_OBJECTIVE:
        return loss, (x + 1.0) ** 2 + abs(y)
    return loss


def make_objective(
    name: str,
    crash_at: int | None = None,
    kill_at: int | None = None,
    interrupt_at: int | None = None,
    hang_at: int | None = None,
    hang_marker: str | None = None,
) -> Callable[[optuna.Trial], float | tuple[float, float]]:
    @checkpointed_objective()
    def objective(trial: optuna.Trial) -> float | tuple[float, float]:
        result = evaluate(trial, name)  # suggests first: the cut comes after the draws
        if trial.number == crash_at:
            raise RuntimeError(f"injected crash in trial {trial.number}")
        if trial.number == interrupt_at:
            raise KeyboardInterrupt
        if trial.number == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if trial.number == hang_at and hang_marker is not None:
            Path(hang_marker).touch()  # the test sends its signal now
            time.sleep(600)
        return result

    return objective


def reference(
    name: str, n_trials: int = N_TRIALS, entropy: int | None = None
) -> list[tuple[int, dict[str, Any], list[float]]]:
    """One uninterrupted run with plain Optuna (no checkpoints), in memory."""
    with fixed_entropy(entropy):
        study = optuna.create_study(sampler=ALL_SAMPLERS[name](), directions=directions(name))
        study.optimize(lambda t: evaluate(t, name), n_trials=n_trials)
    return complete_trials(study)


def complete_trials(study: optuna.Study) -> list[tuple[int, dict[str, Any], list[float]]]:
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return [
        (t.number, dict(t.params), list(t.values)) for t in sorted(done, key=lambda t: t.number)
    ]


def open_storage(root: Path | str, kind: str) -> str | optuna.storages.BaseStorage:
    """The storage of a scenario: the root's SQLite file, a shared one, or a journal file."""
    if kind == "sqlite":
        return sqlite_url(Path(root) / "study.db")
    if kind in ("postgres", "mysql", "redis"):
        return server_storage(kind, Path(root).name)
    if kind.startswith("grpc:"):  # a proxy server the test runs on this port
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.GrpcStorageProxy(host="127.0.0.1", port=int(kind[5:]))
    if kind == "shared":  # one SQLite file beside the roots, for several studies
        return f"sqlite:///{Path(root).parent / 'shared.db'}"
    if kind == "journal":
        backend = JournalFileBackend(f"{root}.journal")
        return optuna.storages.JournalStorage(backend)
    raise ValueError(kind)


def stored_trials(
    root: Path, storage: str = "sqlite"
) -> list[tuple[int, dict[str, Any], list[float]]]:
    study = optuna.load_study(study_name=root.name, storage=open_storage(root, storage))
    try:
        return complete_trials(study)
    finally:
        close(study)


def close(study: optuna.Study) -> None:
    """Close a study's database connections (a server's are not left to the collector)."""
    rdb = rdb_of(study._storage)
    if rdb is not None:
        rdb.engine.dispose()


def kill_before_sql(prefix: str) -> None:
    """SIGKILL this process just before it sends a SQL statement starting with ``prefix``."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def before_cursor_execute(*args: Any) -> None:
        statement = args[2]
        if statement.lstrip().startswith(prefix):
            os.kill(os.getpid(), signal.SIGKILL)

    event.listen(Engine, "before_cursor_execute", before_cursor_execute)


def create_with_plain_optuna(root: str, name: str, kill_at_sql: str) -> None:
    """Plain Optuna creates the root's database and study, SIGKILLed at a SQL statement."""
    kill_before_sql(kill_at_sql)
    Path(root).mkdir(parents=True, exist_ok=True)
    optuna.create_study(
        study_name=Path(root).name,
        storage=open_storage(root, "sqlite"),
        sampler=SAMPLERS[name](),
        directions=directions(name),
        load_if_exists=True,
    )


def run_phase(
    root: str,
    name: str,
    until: int = N_TRIALS,
    crash_at: int | None = None,
    kill_at: int | None = None,
    interrupt_at: int | None = None,
    rewind_to: int | None = None,
    hang_at: int | None = None,
    hang_marker: str | None = None,
    storage: str = "sqlite",
    kill_at_sql: str | None = None,
    start_together: Any = None,
    entropy: int | None = None,
    fault: str | None = None,
) -> None:
    """One process's life: open the study, run to ``until`` trials, maybe get cut off.

    ``kill_at_sql``: SIGKILL this process before the first SQL statement that starts with
    it. ``start_together``: a barrier that the processes of a test pass at once.
    ``entropy``: the seed of this process's OS entropy for unseeded generators.
    ``fault``: the library's fault plan for this process (``OPTUNA_RESUME_FAULT``).
    """
    if fault is not None:
        _fault.load_plan(fault)
    with fixed_entropy(entropy):
        _live(
            root, name, until, crash_at, kill_at, interrupt_at, rewind_to, hang_at, hang_marker,
            storage, kill_at_sql, start_together,
        )  # fmt: skip


def _live(
    root: str,
    name: str,
    until: int,
    crash_at: int | None,
    kill_at: int | None,
    interrupt_at: int | None,
    rewind_to: int | None,
    hang_at: int | None,
    hang_marker: str | None,
    storage: str,
    kill_at_sql: str | None,
    start_together: Any,
) -> None:
    if kill_at_sql is not None:
        kill_before_sql(kill_at_sql)
    if start_together is not None:
        start_together.wait()

    def open_study(rewind: int | None = None) -> ResumableStudy:
        return ResumableStudy(
            root,
            storage=None if storage == "sqlite" else open_storage(root, storage),
            sampler=ALL_SAMPLERS[name](),
            directions=directions(name),
            rewind_to=rewind,
        )

    objective = make_objective(name, crash_at, kill_at, interrupt_at, hang_at, hang_marker)
    if interrupt_at is not None:
        try:
            with open_study(rewind_to) as study:
                optimize_until(study, objective, until)
        except KeyboardInterrupt:
            pass
        with open_study() as study:  # the notebook user re-runs the cell
            optimize_until(study, make_objective(name), until)
        return
    with open_study(rewind_to) as study:
        optimize_until(study, objective, until)


if __name__ == "__main__":
    run_phase(**json.loads(sys.argv[1]))
