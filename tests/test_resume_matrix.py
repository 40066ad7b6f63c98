"""The headline guarantee, sampler by sampler and scenario by scenario, in real processes.

Samplers that hold code (a lambda, a closure, a class defined inside a function) are in the
matrix too: their data is checkpointed and their code taken from the sampler passed again.

Each scenario cuts a seeded study off (a clean stop, an exception out of ``optimize``, a
``KeyboardInterrupt``, a real ``SIGKILL`` of the process inside a trial, a rewind) and
resumes it in a new process. The COMPLETE trials must equal one uninterrupted run of plain
Optuna exactly: numbers, params and values.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import signal
import sqlite3
from multiprocessing.context import ForkServerContext
from pathlib import Path
from typing import Any

import pytest
from conftest import run_in_process
from resume_driver import (
    EARLY_TRIAL,
    MODEL_PHASE_TRIAL,
    N_TRIALS,
    SAMPLERS,
    UNSEEDED,
    WITH_FUNCTIONS,
    reference,
    stored_trials,
)

KILLED = -signal.SIGKILL
K = MODEL_PHASE_TRIAL

# Each scenario: the phases, one process each, with the exit code each must end with.
SCENARIOS: dict[str, list[tuple[dict[str, Any], int]]] = {
    "stop": [({"until": K}, 0), ({}, 0)],
    "crash_early": [({"crash_at": EARLY_TRIAL}, 1), ({}, 0)],
    "crash": [({"crash_at": K}, 1), ({}, 0)],
    "interrupt": [({"interrupt_at": K}, 0)],
    "kill_early": [({"kill_at": EARLY_TRIAL}, KILLED), ({}, 0)],
    "kill": [({"kill_at": K}, KILLED), ({}, 0)],
    "rewind": [({}, 0), ({"rewind_to": K - 2}, 0)],
    "rewind_early": [({}, 0), ({"rewind_to": EARLY_TRIAL}, 0)],
    "crash_then_kill": [({"crash_at": EARLY_TRIAL}, 1), ({"kill_at": K}, KILLED), ({}, 0)],
}


JOURNAL_SAMPLERS = ["tpe", "cmaes", "nsga2", "qmc_sobol_scrambled", "grid", "gp"]
JOURNAL_SCENARIOS = ["crash", "kill", "rewind", "crash_then_kill"]


@functools.cache
def uninterrupted(name: str) -> list[tuple[int, dict[str, Any], list[float]]]:
    return reference(name)


@pytest.mark.slow
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
@pytest.mark.parametrize("sampler", sorted(SAMPLERS) + sorted(WITH_FUNCTIONS))
def test_resumed_study_equals_uninterrupted_run(
    process_context: ForkServerContext, tmp_path: Path, sampler: str, scenario: str
) -> None:
    root = tmp_path / sampler
    for phase, expected_exit in SCENARIOS[scenario]:
        exit_code = run_in_process(process_context, root=str(root), name=sampler, **phase)
        assert exit_code == expected_exit, (phase, exit_code)
    expected = uninterrupted(sampler)
    assert len(expected) == N_TRIALS
    assert stored_trials(root) == expected


@pytest.mark.slow
@pytest.mark.parametrize("scenario", JOURNAL_SCENARIOS)
@pytest.mark.parametrize("sampler", JOURNAL_SAMPLERS)
def test_journal_storage_resumes_exactly(
    process_context: ForkServerContext, tmp_path: Path, sampler: str, scenario: str
) -> None:
    """The journal file storage cannot delete trials: the study is rebuilt, exactly."""
    root = tmp_path / sampler
    for phase, expected_exit in SCENARIOS[scenario]:
        code = run_in_process(
            process_context, root=str(root), name=sampler, storage="journal", **phase
        )
        assert code == expected_exit, (phase, code)
    assert stored_trials(root, "journal") == uninterrupted(sampler)


# Each store alone: the other one is emptied before every process after the first.
STORE_SAMPLERS = ["tpe", "cmaes", "gp", "nsga2_constraints_lambda"]
STORE_SCENARIOS = ["kill", "kill_early", "rewind", "crash_then_kill"]


def _empty(root: Path, store: str) -> None:
    if store == "database":  # another host: no checkpoint file, only the study's database
        shutil.rmtree(root / "checkpoints", ignore_errors=True)
    else:  # a root that predates the states committed with the trials
        with contextlib.closing(sqlite3.connect(root / "study.db")) as database, database:
            database.execute("DELETE FROM optuna_resume_states")


@pytest.mark.slow
@pytest.mark.parametrize("store", ["database", "folder"])
@pytest.mark.parametrize("scenario", STORE_SCENARIOS)
@pytest.mark.parametrize("sampler", STORE_SAMPLERS)
def test_each_checkpoint_store_alone_resumes_exactly(
    process_context: ForkServerContext, tmp_path: Path, sampler: str, scenario: str, store: str
) -> None:
    """The scenarios with one store only: the states committed with the trials in the
    study's database (the checkpoint folder removed before each later process), or the
    checkpoint files (the database's state rows removed)."""
    root = tmp_path / sampler
    for i, (phase, expected_exit) in enumerate(SCENARIOS[scenario]):
        if i:
            _empty(root, store)
        code = run_in_process(process_context, root=str(root), name=sampler, **phase)
        assert code == expected_exit, (phase, code)
    assert stored_trials(root) == uninterrupted(sampler)


UNSEEDED_SCENARIOS = ["stop", "crash", "interrupt", "kill", "kill_early", "rewind"]


@pytest.mark.slow
@pytest.mark.parametrize("scenario", UNSEEDED_SCENARIOS)
@pytest.mark.parametrize("sampler", sorted(UNSEEDED))
def test_unseeded_sampler_goes_on_with_its_own_stream(
    process_context: ForkServerContext, tmp_path: Path, sampler: str, scenario: str
) -> None:
    """What most users run: no seed, or Optuna's default sampler.

    Each process takes other OS entropy (``entropy=i``); the reference is one uninterrupted
    run with the first process's entropy. The resumed study equals it exactly only if every
    later process went on with the generators saved by the first one: a fresh generator
    (the bug that repeats the first draws, or a state that could not be loaded) draws other
    values.
    """
    reference_root = tmp_path / "uninterrupted" / sampler
    assert run_in_process(process_context, root=str(reference_root), name=sampler, entropy=0) == 0
    expected = stored_trials(reference_root)
    assert len(expected) == N_TRIALS
    root = tmp_path / sampler
    for i, (phase, expected_exit) in enumerate(SCENARIOS[scenario]):
        code = run_in_process(process_context, root=str(root), name=sampler, entropy=i, **phase)
        assert code == expected_exit, (phase, code)
    assert stored_trials(root) == expected


def test_other_entropy_draws_other_values(
    process_context: ForkServerContext, tmp_path: Path
) -> None:
    """The unseeded comparison above can fail: another process's entropy gives other draws."""
    runs = []
    for entropy in (0, 1):
        root = tmp_path / str(entropy) / "default"
        assert (
            run_in_process(process_context, root=str(root), name="default", entropy=entropy) == 0
        )
        runs.append([params for _, params, _ in stored_trials(root)])
    assert runs[0] != runs[1]
    assert not set(map(str, runs[0])) & set(map(str, runs[1][:1]))
