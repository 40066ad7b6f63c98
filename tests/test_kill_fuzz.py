"""SIGKILL anywhere: at every named step once, then hundreds of times at seeded points.

After every killed life: the COMPLETE trials equal an uninterrupted run, no checkpoint is
torn, no completed trial is missing from the live study and its backups; at the end the
study equals the uninterrupted run exactly. ``--fuzz-kills N`` (per sampler) runs a longer
soak; with ``OPTUNA_RESUME_RELIABILITY_DIR`` set, each run's figures are written there.
"""

from __future__ import annotations

import dataclasses
import json
import os
from multiprocessing.context import ForkServerContext
from pathlib import Path

import pytest
from kill_fuzz import (
    ALL_POINTS,
    KILLED,
    N_TRIALS,
    check_invariants,
    fuzz,
    rewound,
    run_life,
    uninterrupted,
)
from resume_driver import stored_trials

# (sampler, storage): on SQLite the states are committed with the trials in the database;
# on a journal file they are only the root's files, and a rewind or re-run rebuilds the study.
FUZZ_CASES = [
    ("tpe", "sqlite"),
    ("cmaes", "sqlite"),
    ("qmc_sobol_scrambled", "sqlite"),
    ("tpe", "journal"),
]
REWIND_TO = 2


def _record(name: str, figures: dict[str, object]) -> None:
    folder = os.environ.get("OPTUNA_RESUME_RELIABILITY_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / f"{name}.json").write_text(json.dumps(figures, sort_keys=True))


# The rebuild's steps happen on storages that cannot delete a trial (the journal):
# test_journal_rebuild.py kills there. This study is on SQLite.
SQLITE_POINTS = sorted(p for p in ALL_POINTS if not p.startswith("rebuild."))


@pytest.mark.slow
@pytest.mark.parametrize("point", SQLITE_POINTS)
def test_a_kill_at_each_named_step_is_survived(
    process_context: ForkServerContext, tmp_path: Path, point: str
) -> None:
    root = tmp_path / "tpe"
    seen: set[int] = set()

    def life(fault: str = "", rewind_to: int | None = None, until: int = N_TRIALS) -> int:
        nonlocal seen
        code = run_life(process_context, root, "tpe", fault, rewind_to=rewind_to, until=until)
        seen = check_invariants(root, "tpe", seen)
        return code

    assert life(until=4) == 0
    truncating = point.startswith("truncate.")
    if truncating:
        # The truncation that re-runs a cut-off trial; the rewind's comes below.
        assert life("objective.running@2") == KILLED
    hit = 1 if truncating or point.startswith(("backup.", "final.")) else 5
    assert life(f"{point}@{hit}") == KILLED, f"{point} was not reached"
    assert life() == 0
    if truncating:
        before = set(seen)
        assert life(f"{point}@1", rewind_to=REWIND_TO) == KILLED
        again = None if rewound(root, REWIND_TO, before) else REWIND_TO
        assert life(rewind_to=again) == 0
    assert stored_trials(root) == list(uninterrupted("tpe").values())
    kills = {point: 2, "objective.running": 1} if truncating else {point: 1}
    _record(f"step-{point}", {"points": kills})


@pytest.mark.slow
@pytest.mark.parametrize(("sampler", "storage"), FUZZ_CASES)
def test_hundreds_of_kills_at_seeded_points_are_survived(
    process_context: ForkServerContext,
    tmp_path: Path,
    sampler: str,
    storage: str,
    fuzz_kills: int,
) -> None:
    seed = FUZZ_CASES.index((sampler, storage))
    log = fuzz(process_context, tmp_path, sampler, seed, fuzz_kills, storage)
    assert log.kills >= fuzz_kills
    assert log.rewinds == log.studies
    _record(
        f"fuzz-{sampler}-{storage}",
        {"sampler": sampler, "storage": storage, "seed": seed, **dataclasses.asdict(log)},
    )
