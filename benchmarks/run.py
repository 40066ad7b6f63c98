"""optuna-resume benchmarks: per-trial overhead, rewind, resume entry, disk, PostgreSQL, growth.

Usage:
    python benchmarks/run.py [--quick] [--out FOLDER] [--postgres URL]

Alternatives are measured side by side in one run: per-trial cases advance bare Optuna, the
pickle-in-a-callback recipe and optuna-resume in lock-step (one trial each in turn, the order
rotating), so that machine noise hits them alike. Figures are medians with min-max. Writes
``results.md`` (a Markdown table) and ``results.json`` to ``--out`` (default: this folder).
``--quick`` runs every case at a small size (a check that the benchmark works; its timings
mean little).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
)
from optuna.storages.journal import JournalFileBackend

import optuna_resume
from optuna_resume import ResumableStudy, checkpointed_objective
from optuna_resume._binding import bind_engine
from optuna_resume._engine import ResumeEngine, engine_of
from optuna_resume._optuna._storage import sqlite_url

optuna.logging.set_verbosity(optuna.logging.ERROR)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

DISTRIBUTIONS = {
    "x": FloatDistribution(-10, 10),
    "y": FloatDistribution(-10, 10),
    "z": IntDistribution(0, 9),
    "c": CategoricalDistribution(["a", "b", "c"]),
}


def trivial(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -10, 10)
    y = trial.suggest_float("y", -10, 10)
    z = trial.suggest_int("z", 0, 9)
    c = trial.suggest_categorical("c", ["a", "b", "c"])
    return (x - 1) ** 2 + (y + 2) ** 2 + z + {"a": 0.0, "b": 1.0, "c": 2.0}[c]


def tpe() -> optuna.samplers.TPESampler:
    return optuna.samplers.TPESampler(seed=0)


def summary(values: list[float]) -> dict[str, float]:
    """Median with min and max, in milliseconds when given seconds."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def ms(stat: dict[str, float]) -> str:
    return f"{stat['median'] * 1e3:.2f} ms ({stat['min'] * 1e3:.2f}-{stat['max'] * 1e3:.2f})"


def secs(stat: dict[str, float]) -> str:
    return f"{stat['median']:.3f} s ({stat['min']:.3f}-{stat['max']:.3f})"


# -- 1. per-trial overhead -------------------------------------------------------------------


def _storage(kind: str, folder: Path) -> Any:
    if kind == "sqlite":
        return f"sqlite:///{folder / 'study.db'}"
    if kind.startswith("postgresql"):
        return kind  # a server URL
    return optuna.storages.JournalStorage(JournalFileBackend(str(folder / "journal.log")))


class _EngineTimer:
    """Time spent inside the engine (the library's own time per trial)."""

    def __init__(self) -> None:
        self.spent = 0.0

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        names = ("save", "trial_started", "_after_ask")
        originals = {name: getattr(ResumeEngine, name) for name in names}
        depth = [0]

        def timed(original: Callable[..., Any]) -> Callable[..., Any]:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                depth[0] += 1
                start = time.perf_counter()
                try:
                    return original(*args, **kwargs)
                finally:
                    depth[0] -= 1
                    if depth[0] == 0:
                        self.spent += time.perf_counter() - start

            return wrapper

        for name, original in originals.items():
            setattr(ResumeEngine, name, timed(original))
        try:
            yield
        finally:
            for name, original in originals.items():
                setattr(ResumeEngine, name, original)


def per_trial(kind: str, n_trials: int, folder: Path) -> dict[str, Any]:
    """Bare Optuna, the pickle-in-a-callback recipe and optuna-resume, in lock-step."""
    folder.mkdir(parents=True)
    roots = {name: folder / name for name in ("bare", "pickle", "library")}
    for root in roots.values():
        root.mkdir()
    names = {name: f"bench-{os.getpid()}-{name}-{time.time_ns()}" for name in roots}
    bare = optuna.create_study(
        storage=_storage(kind, roots["bare"]), sampler=tpe(), study_name=names["bare"]
    )
    pickled = optuna.create_study(
        storage=_storage(kind, roots["pickle"]), sampler=tpe(), study_name=names["pickle"]
    )
    session = ResumableStudy(
        roots["library"],
        storage=None if kind == "sqlite" else _storage(kind, roots["library"]),
        sampler=tpe(),
        study_name=names["library"],
    )
    library = session.__enter__()
    objective = checkpointed_objective()(trivial)
    sampler_file = roots["pickle"] / "sampler.pkl"

    def pickle_sampler(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        with open(sampler_file, "wb") as f:  # the common recipe: not atomic, not durable
            pickle.dump(study.sampler, f)

    timer = _EngineTimer()
    runs: dict[str, Callable[[], None]] = {
        "bare": lambda: bare.optimize(trivial, n_trials=1),
        "pickle": lambda: pickled.optimize(trivial, n_trials=1, callbacks=[pickle_sampler]),
        "library": lambda: library.optimize(objective, n_trials=1),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    inside: list[float] = []
    order = list(runs)
    with timer.installed():
        for i in range(n_trials):
            for name in order[i % 3 :] + order[: i % 3]:
                spent_before = timer.spent
                start = time.perf_counter()
                runs[name]()
                times[name].append(time.perf_counter() - start)
                if name == "library":
                    inside.append(timer.spent - spent_before)
    session.__exit__(None, None, None)
    assert [t.params for t in bare.trials] == [t.params for t in library.trials]
    if kind.startswith("postgresql"):
        for study in (bare, pickled, library):
            optuna.delete_study(study_name=study.study_name, storage=kind)
        kind = "postgresql"
    window = min(100, n_trials)
    result: dict[str, Any] = {"storage": kind, "trials": n_trials, "windows": {}}
    parts = [("first", slice(0, window))]
    if n_trials > window:
        parts.append(("last", slice(n_trials - window, None)))
    for label, part in parts:
        extra = [
            lib - b for lib, b in zip(times["library"][part], times["bare"][part], strict=True)
        ]
        result["windows"][label] = {
            "range": f"{range(n_trials)[part][0]}-{range(n_trials)[part][-1]}",
            "bare": summary(times["bare"][part]),
            "pickle": summary(times["pickle"][part]),
            "library": summary(times["library"][part]),
            "library_extra": summary(extra),
            "library_inside": summary(inside[part]),
            "overhead_ratio": statistics.median(times["library"][part])
            / statistics.median(times["bare"][part])
            - 1,
        }
    newest = max((roots["library"] / "checkpoints").glob("trial-*.before.pt"))
    result["checkpoint_bytes_last"] = newest.stat().st_size
    return result


# -- building large studies fast -------------------------------------------------------------


def build_study(
    storage_url: str, name: str, n_trials: int, root: Path | None, keep_every: int = 1
) -> optuna.Study:
    """A study of ``n_trials`` COMPLETE trials, inserted in bulk (seconds, not minutes).

    With ``root``, the study is bound to it and gets the checkpoints a real run leaves: a
    valid one before trial ``n_trials // 2`` and before ``n_trials``, and files of the same
    size for every other trial (every ``keep_every``-th one and the newest 100, as retention
    ``keep_checkpoints=100, keep_trials=range(0, n, keep_every)`` leaves them).
    """
    from sqlalchemy import text

    if root is not None:
        root.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(storage=storage_url, study_name=name, sampler=tpe())
    rdb = optuna_resume._optuna._storage.rdb_of(study._storage)
    assert rdb is not None
    sid = study._study_id
    start = "2026-01-01 00:00:00"
    with rdb.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO trials (number, study_id, state, datetime_start, datetime_complete) "
                "VALUES (:n, :sid, 'COMPLETE', :t, :t)"
            ),
            [{"n": n, "sid": sid, "t": start} for n in range(n_trials)],
        )
        ids = [
            row[0]
            for row in connection.execute(
                text("SELECT trial_id FROM trials WHERE study_id = :sid ORDER BY number"),
                {"sid": sid},
            )
        ]
        params = []
        for i, trial_id in enumerate(ids):
            for pname, dist in DISTRIBUTIONS.items():
                internal = float(i % 3) if pname == "c" else float((i * 7919) % 10)
                params.append(
                    {
                        "tid": trial_id,
                        "name": pname,
                        "value": internal,
                        "dist": distribution_to_json(dist),
                    }
                )
        connection.execute(
            text(
                "INSERT INTO trial_params (trial_id, param_name, param_value, distribution_json) "
                "VALUES (:tid, :name, :value, :dist)"
            ),
            params,
        )
        connection.execute(
            text(
                "INSERT INTO trial_values (trial_id, objective, value, value_type) "
                "VALUES (:tid, 0, :v, 'FINITE')"
            ),
            [{"tid": tid, "v": float(i % 97)} for i, tid in enumerate(ids)],
        )
    optuna_resume._optuna._storage.forget_cached_trials(study._storage)
    if root is not None:
        engine = bind_engine(study, root)
        middle = engine.save(n_trials // 2, "before", kind="ask")
        engine.save(n_trials, "before", kind="final")
        folder = root / "checkpoints"
        rows = []
        for n in range(n_trials):
            target = folder / f"trial-{n:06d}.before.pt"
            kept = n % keep_every == 0 or n >= n_trials - 100
            if kept and not target.exists():
                shutil.copyfile(middle.path, target)
            if n >= n_trials - 100 and n not in (n_trials // 2, n_trials):
                rows.append({"n": n})
        # The database holds the states before the newest 100 trials as rows, as a real run
        # leaves it (it commits one with each trial and lets the oldest go).
        document = middle.path.read_bytes()
        with rdb.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO optuna_resume_states "
                    "(study_id, worker, trial, phase, study_uid, document) "
                    "SELECT study_id, worker, :n, phase, study_uid, document "
                    "FROM optuna_resume_states WHERE study_id = :sid AND trial = :middle "
                    "AND phase = 'before'"
                ),
                [{**row, "sid": sid, "middle": n_trials // 2} for row in rows],
            )
        assert len(document) > 0
        engine.detach()
    return study


# -- 2. rewind, 3. resume entry, 6. growth -------------------------------------------------


def rewind_case(n_trials: int, folder: Path, repeats: int, keep_every: int = 1) -> dict[str, Any]:
    """Rewind to the middle, backup included, against re-creating the study by Optuna's API.

    ``keep_every > 1``: the checkpoint folder as retention leaves it (see ``build_study``).
    """
    samples, components = [], []
    retention: dict[str, Any] = {}
    if keep_every > 1:
        retention = {"keep_checkpoints": 100, "keep_trials": range(0, n_trials, keep_every)}
    for r in range(repeats):
        root = folder / f"rewind-{n_trials}-{keep_every}-{r}"
        build_study(f"sqlite:///{root / 'study.db'}", root.name, n_trials, root, keep_every)
        spent = _profile_entry(root, rewind_to=n_trials // 2, **retention)
        samples.append(spent.pop("entry_total"))
        components.append(spent)
        shutil.rmtree(root, ignore_errors=True)
    baseline = []
    for r in range(repeats if n_trials <= 1000 and keep_every == 1 else 0):
        root = folder / f"api-{n_trials}-{r}"
        root.mkdir(parents=True)
        url = f"sqlite:///{root / 'study.db'}"
        source = build_study(url, "source", n_trials, None)
        start = time.perf_counter()
        kept = [t for t in source.get_trials(deepcopy=False) if t.number < n_trials // 2]
        rebuilt = optuna.create_study(storage=url, study_name="rebuilt")
        for t in kept:
            rebuilt.add_trial(t)
        baseline.append(time.perf_counter() - start)
        shutil.rmtree(root, ignore_errors=True)
    result: dict[str, Any] = {
        "trials": n_trials,
        "keep_every": keep_every,
        "rewind": summary(samples),
    }
    result["components"] = {k: statistics.median(c[k] for c in components) for k in components[0]}
    if baseline:
        result["recreate_via_api"] = summary(baseline)
        result["speedup"] = statistics.median(baseline) / statistics.median(samples)
    return result


def _profile_entry(root: Path, rewind_to: int | None = None, **options: Any) -> dict[str, float]:
    """Where an entry spends its time (one entry, each step timed)."""
    from optuna_resume import _engine

    spent: dict[str, float] = {}
    names = {
        "backup": ("ResumeEngine", "backup"),
        "truncate": ("ResumeEngine", "_truncate"),
        "load_checkpoint": ("ResumeEngine", "_state_at"),
    }
    originals = {}
    for label, (_, method) in names.items():
        original = getattr(_engine.ResumeEngine, method)
        originals[method] = original

        def timed(*args: Any, _o: Any = original, _l: str = label, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return _o(*args, **kwargs)
            finally:
                spent[_l] = spent.get(_l, 0.0) + time.perf_counter() - start

        setattr(_engine.ResumeEngine, method, timed)
    try:
        start = time.perf_counter()
        with ResumableStudy(root, rewind_to=rewind_to, sampler=tpe(), **options) as study:
            spent["entry_total"] = time.perf_counter() - start
        if rewind_to is not None:
            assert len(study.trials) == rewind_to
    finally:
        for method, original in originals.items():
            setattr(_engine.ResumeEngine, method, original)
    return spent


def resume_case(n_trials: int, folder: Path, repeats: int, resumes: int) -> dict[str, Any]:
    """Entry on a study of ``n_trials``, against ``optuna.load_study``; and after many resumes."""
    root = folder / f"resume-{n_trials}"
    url = f"sqlite:///{root / 'study.db'}"
    build_study(url, root.name, n_trials, root)
    load, entry, by_resume = [], [], []
    for i in range(max(repeats, resumes)):
        start = time.perf_counter()
        optuna.load_study(study_name=root.name, storage=url, sampler=tpe())
        if i < repeats:
            load.append(time.perf_counter() - start)
        start = time.perf_counter()
        with ResumableStudy(root, sampler=tpe()):
            elapsed = time.perf_counter() - start
        by_resume.append(elapsed)
        if i < repeats:
            entry.append(elapsed)
    result = {
        "trials": n_trials,
        "load_study": summary(load),
        "entry": summary(entry),
        "entry_beyond_load_study": statistics.median(entry) - statistics.median(load),
        "components": _profile_entry(root),
        "entry_first_resumes": summary(by_resume[:5]),
        "entry_last_resumes": summary(by_resume[-5:]),
        "resumes": len(by_resume),
    }
    shutil.rmtree(root, ignore_errors=True)
    return result


# -- 4. disk ---------------------------------------------------------------------------------


def disk_case(n_tpe: int, grid_points: int, folder: Path) -> dict[str, Any]:
    """Checkpoint bytes per trial: TPE after ``n_tpe`` trials, a Grid of ``grid_points``."""
    root = folder / "disk-tpe"
    objective = checkpointed_objective()(trivial)
    with ResumableStudy(root, sampler=tpe()) as study:
        study.optimize(objective, n_trials=n_tpe)
    tpe_files = sorted((root / "checkpoints").glob("trial-*.pt"))
    tpe_last = (root / "checkpoints" / f"trial-{n_tpe:06d}.before.pt").stat().st_size
    side = round(grid_points**0.5)
    grid = {"x": [float(i) for i in range(side)], "y": [float(i) for i in range(side)]}

    def grid_objective(trial: optuna.Trial) -> float:
        return trial.suggest_float("x", 0, side) + trial.suggest_float("y", 0, side)

    root = folder / "disk-grid"
    with ResumableStudy(root, sampler=optuna.samplers.GridSampler(grid, seed=0)) as study:
        study.optimize(checkpointed_objective()(grid_objective), n_trials=20)
    grid_files = sorted((root / "checkpoints").glob("trial-*.before.pt"))
    blobs = sum(p.stat().st_size for p in (root / "checkpoints" / "blobs").glob("*.pt"))
    pickled = len(pickle.dumps(optuna.samplers.GridSampler(grid, seed=0)))
    return {
        "tpe_trials": n_tpe,
        "tpe_checkpoint_bytes_last": tpe_last,
        "tpe_folder_bytes_per_trial": sum(p.stat().st_size for p in tpe_files) / n_tpe,
        "grid_points": side * side,
        "grid_checkpoint_bytes_median": statistics.median(p.stat().st_size for p in grid_files),
        "grid_blob_bytes_once": blobs,
        "grid_sampler_pickle_bytes": pickled,
    }


# -- 5. PostgreSQL ---------------------------------------------------------------------------


def postgres_case(url: str, n_trials: int, folder: Path) -> dict[str, Any]:
    """Backup and rewind of a study on the local PostgreSQL server."""
    name = f"bench-{os.getpid()}-{n_trials}"
    root = folder / name
    try:
        study = build_study(url, name, n_trials, root)
    except Exception as e:  # no server, no driver: say so in the results
        return {"skipped": f"{type(e).__name__}: {e}".splitlines()[0]}
    try:
        engine = engine_of(study) or bind_engine(study, root)
        start = time.perf_counter()
        engine.backup()
        backup = time.perf_counter() - start
        engine.detach()
        start = time.perf_counter()
        with ResumableStudy(
            root,
            storage=url,
            study_name=name,
            rewind_to=n_trials // 2,
            backup=False,
            sampler=tpe(),
        ) as resumed:
            rewind_total = time.perf_counter() - start
        assert len(resumed.trials) == n_trials // 2
        return {"trials": n_trials, "backup_s": backup, "rewind_entry_s": rewind_total}
    finally:
        optuna.delete_study(study_name=name, storage=url)


def _allocated(folder: Path) -> int:
    """Bytes allocated on disk under ``folder``, a file with several links counted once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for path, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            stat = os.lstat(os.path.join(path, name))
            if (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                total += stat.st_blocks * 512
    return total


def backups_case(n_trials: int, folder: Path, count: int = 10) -> dict[str, Any]:
    """``count`` backups of a study of ``n_trials`` on SQLite: time and disk per backup.

    A backup is an online copy of the database beside links to the checkpoint files (a
    state is never changed once written: nothing is copied). Disk is what the backups add
    under the root, a file with several links counted once (``st_blocks``).
    """
    root = folder / f"backups-{n_trials}"
    study = build_study(f"sqlite:///{root / 'study.db'}", root.name, n_trials, root)
    engine = bind_engine(study, root)
    before = _allocated(root)
    times = []
    for _ in range(count):
        start = time.perf_counter()
        info = engine.backup(reason="manual")
        times.append(time.perf_counter() - start)
        assert info is not None
    added = _allocated(root) - before
    engine.detach()
    shutil.rmtree(root, ignore_errors=True)
    return {
        "trials": n_trials,
        "backups": count,
        "backup_s": summary(times),
        "study_bytes": before,
        "disk_per_backup_bytes": added / count,
    }


# -- report ----------------------------------------------------------------------------------

_PER_TRIAL_TARGETS = {"sqlite": "≤ 1.0 ms", "postgresql": "≤ 1.0 ms", "journal": "≤ 1.5 ms"}


def cli_case(folder: Path, repeats: int) -> dict[str, Any]:
    """How fast the command line answers, in lock-step with Optuna's own.

    Each command is a fresh process (what a user waits for), in turn: ``optuna --help`` and
    ``optuna-resume --help``; ``optuna trials`` and ``optuna-resume status`` on a 20-trial
    root (both open the storage).
    """
    root = folder / "cli"
    with optuna_resume.ResumableStudy(root, sampler=tpe()) as study:
        study.optimize(trivial, n_trials=20)
    bin_dir = Path(sys.executable).parent
    commands = {
        "optuna --help": [str(bin_dir / "optuna"), "--help"],
        "optuna-resume --help": [str(bin_dir / "optuna-resume"), "--help"],
        "optuna trials": [
            str(bin_dir / "optuna"),
            "trials",
            "--storage",
            sqlite_url(root / "study.db"),
            "--study-name",
            "cli",
        ],
        "optuna-resume status": [str(bin_dir / "optuna-resume"), "status", str(root)],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, command in commands.items():
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            times[name].append(time.perf_counter() - start)
    return {name: summary(values) for name, values in times.items()}


def machine() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "optuna": optuna.__version__,
        "torch": torch.__version__,
        "optuna_resume": optuna_resume.__version__,
        "cpus": str(os.cpu_count()),
        "platform": platform.platform(),
    }


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"Machine: {m['cpus']} CPUs, {m['platform']}; Python {m['python']}, Optuna "
        f"{m['optuna']}, torch {m['torch']}, optuna-resume {m['optuna_resume']}. "
        f"Command: `{results['command']}`. Medians (min-max).",
        "",
        "| case | bare Optuna | pickle in a callback | optuna-resume | extra per trial "
        "(median of lock-step differences) | optuna-resume's own time per trial | target |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for case in results["per_trial"]:
        if "skipped" in case:
            lines.append(f"| per trial, {case['storage']} | skipped: {case['skipped']} |||||")
        for w in case["windows"].values():
            lines.append(
                f"| per trial, {case['storage']}, trials {w['range']} | {ms(w['bare'])} | "
                f"{ms(w['pickle'])} | {ms(w['library'])} ({w['overhead_ratio']:+.1%}) | "
                f"{ms(w['library_extra'])} | {ms(w['library_inside'])} | "
                f"{_PER_TRIAL_TARGETS[case['storage']]} |"
            )
    lines += ["", "| case | measured | target |", "| --- | --- | --- |"]
    for case in results["rewind"]:
        kept = (
            f", retention keeps 100 newest + every {case['keep_every']}th"
            if case["keep_every"] > 1
            else ""
        )
        row = (
            f"| rewind {case['trials']} trials to {case['trials'] // 2}, backup included{kept} | "
        )
        row += secs(case["rewind"])
        if "recreate_via_api" in case:
            row += (
                f"; re-creating via Optuna's API: {secs(case['recreate_via_api'])} "
                f"({case['speedup']:.0f}x slower)"
            )
        parts = ", ".join(
            f"{k} {v:.3f} s" for k, v in case["components"].items() if k != "entry_total"
        )
        lines.append(f"{row} (of which {parts}) | ≤ 0.25 s at 10,000; ≥ 100x |")
    for case in results["resume"]:
        parts = ", ".join(
            f"{k} {v:.3f} s" for k, v in case["components"].items() if k != "entry_total"
        )
        lines.append(
            f"| resume entry, {case['trials']} trials | {secs(case['entry'])}; "
            f"`optuna.load_study` {secs(case['load_study'])}; beyond it "
            f"{case['entry_beyond_load_study']:.3f} s (of which {parts}) | ≤ 0.5 s beyond |"
        )
        lines.append(
            f"| resume entry after {case['resumes']} resumes, {case['trials']} trials | first 5: "
            f"{secs(case['entry_first_resumes'])}; last 5: {secs(case['entry_last_resumes'])} | "
            "no growth |"
        )
    d = results["disk"]
    lines.append(
        f"| disk, TPE after {d['tpe_trials']} trials | newest checkpoint "
        f"{d['tpe_checkpoint_bytes_last'] / 1e3:.1f} KB; folder "
        f"{d['tpe_folder_bytes_per_trial'] / 1e3:.1f} KB per trial | ≤ 20 KB per trial |"
    )
    lines.append(
        f"| disk, Grid of {d['grid_points']} points | per-trial checkpoint "
        f"{d['grid_checkpoint_bytes_median'] / 1e3:.1f} KB; grid stored once "
        f"{d['grid_blob_bytes_once'] / 1e3:.1f} KB (the sampler pickles to "
        f"{d['grid_sampler_pickle_bytes'] / 1e3:.1f} KB) | ≤ 20 KB per trial |"
    )
    for case in results.get("backups", []):
        lines.append(
            f"| {case['backups']} backups of {case['trials']} trials (SQLite) | "
            f"{secs(case['backup_s'])} each; disk {case['disk_per_backup_bytes'] / 1e6:.2f} MB "
            f"per backup (the study and its checkpoints: {case['study_bytes'] / 1e6:.1f} MB) | "
            "not a copy of every state per backup |"
        )
    cli = results.get("cli")
    if cli:
        lines.append(
            "| command line, a fresh process each | "
            + "; ".join(f"`{name}` {secs(stat)}" for name, stat in cli.items())
            + " | about as fast as Optuna's own |"
        )
    for case in results["postgres"]:
        if "skipped" in case:
            lines.append(f"| PostgreSQL | not run: {case['skipped']} | ≤ 1 s each |")
        else:
            lines.append(
                f"| PostgreSQL, {case['trials']} trials | backup {case['backup_s']:.3f} s; "
                f"rewind to {case['trials'] // 2}, backup included, "
                f"{case['rewind_entry_s']:.3f} s | ≤ 1 s each |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: check it works")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "OPTUNA_RESUME_POSTGRES_URL", "postgresql://postgres@127.0.0.1/test"
        ),
        help="a PostgreSQL URL for case 5 ('' skips it)",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="optuna-resume-bench-") as tmp:
        work = Path(tmp)
        n_per_trial = 30 if quick else 1000
        sizes = [200] if quick else [1000, 10000]
        results: dict[str, Any] = {
            "machine": machine(),
            "command": "python " + " ".join(["benchmarks/run.py", *(argv or sys.argv[1:])]),
            "quick": quick,
        }
        print("per-trial overhead ...", flush=True)
        results["per_trial"] = [
            per_trial(kind, n_per_trial, work / f"per-trial-{kind}")
            for kind in ("sqlite", "journal")
        ]
        if args.postgres:
            try:
                case = per_trial(args.postgres, n_per_trial, work / "per-trial-postgresql")
            except Exception as e:  # no server, no driver: say so in the results
                case = {"storage": "postgresql", "skipped": str(e).splitlines()[0], "windows": {}}
            results["per_trial"].append(case)
        print("rewind ...", flush=True)
        results["rewind"] = [rewind_case(n, work, 1 if quick else 3) for n in sizes]
        results["rewind"].append(rewind_case(sizes[-1], work, 1 if quick else 3, keep_every=100))
        print("resume entry ...", flush=True)
        results["resume"] = [
            resume_case(n, work, 1 if quick else 5, 3 if quick else 30) for n in sizes
        ]
        print("disk ...", flush=True)
        results["disk"] = disk_case(30 if quick else 1000, 400 if quick else 10000, work)
        print("backups ...", flush=True)
        results["backups"] = [backups_case(n, work, 3 if quick else 10) for n in sizes]
        print("command line ...", flush=True)
        results["cli"] = cli_case(work, 3 if quick else 15)
        print("postgres ...", flush=True)
        results["postgres"] = (
            [postgres_case(args.postgres, n, work) for n in sizes] if args.postgres else []
        )
    results["seconds"] = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (args.out / "results.md").write_text(table)
    print(table)
    print(f"took {results['seconds']:.0f} s; wrote {args.out / 'results.md'} and results.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
