"""Kill fuzzing: a study SIGKILLed again and again, at named steps and at random instants.

``life`` is the body of one process: it plans a fault (``OPTUNA_RESUME_FAULT``), installs
the test-only fault points inside Optuna's tell, opens the study with ``ResumableStudy`` and
runs it to its target, on the root's SQLite file (states committed in the database, the
files their copies) or on a journal file (states only in the root's files, each written
durably before its trial is created or finished). ``fuzz_study`` (in the test process) runs
lives until the study is done, killing them at seeded pseudo-random points, and checks after
every life that what the user relies on holds: COMPLETE trials equal an uninterrupted run, no
checkpoint is torn, no completed trial is missing from the live study and its backups.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import signal
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.context import ForkServerContext
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import JournalStorage, RDBStorage
from resume_driver import SAMPLERS, directions, evaluate, open_storage, reference, stored_trials
from sqlalchemy import event
from sqlalchemy.orm import Session

from optuna_resume import ResumableStudy, _fault, checkpointed_objective, optimize_until
from optuna_resume._checkpoint import read_meta

# Steps inside Optuna itself, hit by the hooks below (the library's own are in _fault.POINTS).
OPTUNA_POINTS = {
    "optuna.telling": "Optuna's tell: the result is about to be stored",
    "optuna.tell_commit": "Optuna's tell: inside the transaction that stores the result",
    "optuna.told": "Optuna's tell: the result is stored; the next trial not yet asked",
    "objective.running": "inside the objective, while it works",
}
ALL_POINTS = {**_fault.POINTS, **OPTUNA_POINTS}
# How often a point is reached in one life of a 10-trial study (to spread the kills).
TYPICAL_HITS = {
    "atomic.written": 24,
    "atomic.synced": 24,
    "atomic.replaced": 24,
    "backup.linking": 12,
    "backup.copying": 1,
    "backup.copied": 1,
    "truncate.backed_up": 1,
    "truncate.in_transaction": 1,
    "truncate.committed": 1,
    "truncate.done": 1,
    "final.saved": 1,
}
N_TRIALS = 10
WORK_S = 0.01  # the objective's own time, so that random instants also land inside it
KILLED = -signal.SIGKILL

_telling = threading.local()


def _install_optuna_points() -> None:
    for storage_class in (RDBStorage, JournalStorage):
        _hook_finish(storage_class)

    def before_commit(session: Session) -> None:
        if getattr(_telling, "active", False):
            _fault.fault_point("optuna.tell_commit")

    event.listen(Session, "before_commit", before_commit)


def _hook_finish(storage_class: Any) -> None:
    original = storage_class.set_trial_state_values

    def set_trial_state_values(self: Any, trial_id: int, state: Any, values: Any = None) -> bool:
        if not state.is_finished():
            return bool(original(self, trial_id, state, values))
        _fault.fault_point("optuna.telling")
        _telling.active = True
        try:
            result = original(self, trial_id, state, values)
        finally:
            _telling.active = False
        _fault.fault_point("optuna.told")
        return bool(result)

    storage_class.set_trial_state_values = set_trial_state_values


def life(
    root: str,
    name: str,
    fault: str,
    rewind_to: int | None = None,
    until: int = N_TRIALS,
    storage: str = "sqlite",
) -> None:
    """One process: plan ``fault``, open the study (rewinding if asked), run to ``until``."""
    _fault.POINTS.update(OPTUNA_POINTS)
    os.environ[_fault.ENV] = fault
    _fault.load_plan()
    _install_optuna_points()

    @checkpointed_objective()
    def objective(trial: optuna.Trial) -> float | tuple[float, float]:
        result = evaluate(trial, name)
        _fault.fault_point("objective.running")
        time.sleep(WORK_S)
        return result

    with ResumableStudy(
        root,
        storage=None if storage == "sqlite" else open_storage(root, storage),
        sampler=SAMPLERS[name](),
        directions=directions(name),
        rewind_to=rewind_to,
    ) as study:
        optimize_until(study, objective, until)


@dataclass
class FuzzLog:
    """What one fuzzed study went through."""

    kills: int = 0
    lives: int = 0
    points: dict[str, int] = field(default_factory=dict)  # kills at each named step
    timed: int = 0  # kills at a random instant
    rewinds: int = 0
    studies: int = 0


def _complete_numbers_in_backups(root: Path) -> set[int]:
    numbers: set[int] = set()
    # (A journal study's backups are SQLite copies in the root, named after the study.)
    for db in root.glob("*_backup-*.db"):
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
            rows = connection.execute("SELECT number FROM trials WHERE state = 'COMPLETE'")
            numbers.update(n for (n,) in rows)
    return numbers


def _storage_file(root: Path, storage: str) -> Path:
    return root / "study.db" if storage == "sqlite" else Path(f"{root}.{storage}")


def _stored(root: Path, storage: str) -> list[tuple[int, dict[str, Any], list[float]]]:
    if not _storage_file(root, storage).exists():
        return []
    try:
        return stored_trials(root, storage)
    except KeyError:  # killed before the study was created
        return []


@functools.cache
def uninterrupted(name: str) -> dict[int, tuple[int, dict[str, Any], list[float]]]:
    return {trial[0]: trial for trial in reference(name, N_TRIALS)}


def check_invariants(
    root: Path, name: str, seen_before: set[int], storage: str = "sqlite"
) -> set[int]:
    """Assert what must hold after any life; return the COMPLETE trial numbers now."""
    expected = uninterrupted(name)
    stored = _stored(root, storage)
    for trial in stored:
        assert trial == expected[trial[0]], f"trial {trial[0]} diverged"
    numbers = {number for number, _, _ in stored}
    lost = seen_before - numbers - _complete_numbers_in_backups(root)
    assert not lost, f"completed trials {sorted(lost)} are in neither the study nor a backup"
    for path in (root / "checkpoints").glob("trial-*.pt"):
        read_meta(path)  # raises on a torn or damaged file
    return numbers


def points_of(storage: str) -> list[str]:
    """The named steps a study on ``storage`` goes through: the state rows and the truncating
    transaction on SQLite; the rebuild (a journal cannot delete a trial) on a journal."""
    if storage == "sqlite":
        return sorted(p for p in ALL_POINTS if not p.startswith("rebuild."))
    in_a_database = ("state_row.", "optuna.tell_commit", "truncate.in_transaction")
    return sorted(p for p in ALL_POINTS if not p.startswith(in_a_database))


def _plan_fault(rng: random.Random, storage: str) -> tuple[str, float | None]:
    """A named step and hit, or a random instant (seconds after the start)."""
    if rng.random() < 0.35:
        return "", rng.uniform(0.0, 1.5)
    point = rng.choice(points_of(storage))
    hit = rng.randint(1, TYPICAL_HITS.get(point, N_TRIALS))
    return f"{point}@{hit}=kill", None


def run_life(
    context: ForkServerContext,
    root: Path,
    name: str,
    fault: str,
    delay: float | None = None,
    rewind_to: int | None = None,
    until: int = N_TRIALS,
    timeout: float = 120,
    storage: str = "sqlite",
) -> int:
    """Run one life; SIGKILL it after ``delay`` seconds if given. Returns its exit code."""
    kwargs = {
        "root": str(root),
        "name": name,
        "fault": fault,
        "rewind_to": rewind_to,
        "storage": storage,
    }
    process = context.Process(target=life, kwargs={**kwargs, "until": until})
    process.start()
    if delay is not None:
        process.join(delay)
        if process.is_alive():
            with contextlib.suppress(ProcessLookupError):  # it may end on its own meanwhile
                os.kill(process.pid, signal.SIGKILL)  # type: ignore[arg-type]
    process.join(timeout)
    if process.is_alive():
        process.kill()
        process.join()
        raise AssertionError(f"a life with fault {fault!r} hung")
    assert process.exitcode is not None
    return process.exitcode


def fuzz_study(
    context: ForkServerContext, root: Path, name: str, rng: random.Random, storage: str
) -> FuzzLog:
    """Run a study to its end through lives SIGKILLed at seeded points, with one rewind."""
    log = FuzzLog()
    seen: set[int] = set()
    rewind_to: int | None = None
    rewind_done = False
    while True:
        fault, delay = _plan_fault(rng, storage)
        if not rewind_done and rewind_to is None and len(seen) >= 6:
            rewind_to = rng.randint(1, len(seen) - 2)
        code = run_life(context, root, name, fault, delay, rewind_to, storage=storage)
        log.lives += 1
        assert code in (0, KILLED), f"life {log.lives} ({fault or delay}) exited with {code}"
        if code == KILLED:
            log.kills += 1
            if fault:
                point = fault.split("@")[0]
                log.points[point] = log.points.get(point, 0) + 1
            else:
                log.timed += 1
        before = seen
        seen = check_invariants(root, name, seen, storage)
        if rewind_to is not None and rewound(root, rewind_to, before, storage):
            rewind_done, rewind_to = True, None
            log.rewinds += 1
        if code == 0 and rewind_done and len(seen) == N_TRIALS:
            break
        assert log.lives < 200, "the study makes no progress"
    assert stored_trials(root, storage) == list(uninterrupted(name).values())
    return log


def fuzz(
    context: ForkServerContext,
    folder: Path,
    name: str,
    seed: int,
    kills: int,
    storage: str = "sqlite",
) -> FuzzLog:
    """Fuzz studies of sampler ``name`` one after another until ``kills`` kills were survived."""
    rng = random.Random(seed)
    total = FuzzLog()
    while total.kills < kills:
        log = fuzz_study(context, folder / f"{name}-{total.studies}", name, rng, storage)
        total.studies += 1
        total.kills += log.kills
        total.lives += log.lives
        total.timed += log.timed
        total.rewinds += log.rewinds
        for point, n in log.points.items():
            total.points[point] = total.points.get(point, 0) + n
    return total


def rewound(root: Path, to: int, before: set[int], storage: str = "sqlite") -> bool:
    """Whether the rewind to ``to`` took place (it is asked again until it has)."""
    history = (root / "history.jsonl").read_text() if (root / "history.jsonl").exists() else ""
    if f'"rewound_to": {to}' in history:
        return True
    # Killed after its transaction but before its report: the study ends at ``to``.
    numbers = _numbers(root, storage)
    return bool(before) and max(before) >= to and not [n for n in numbers if n >= to]


def _numbers(root: Path, storage: str) -> list[int]:
    if storage == "sqlite":
        with sqlite3.connect(f"file:{root / 'study.db'}?mode=ro", uri=True) as connection:
            return [n for (n,) in connection.execute("SELECT number FROM trials")]
    try:
        study = optuna.load_study(study_name=root.name, storage=open_storage(root, storage))
    except KeyError:  # killed inside a rebuild, after the old study was deleted
        return []
    return [t.number for t in study.get_trials(deepcopy=False)]
