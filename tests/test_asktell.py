"""ask/tell loops resume exactly: a SIGKILL between a tell and the next ask, or before a tell."""

from __future__ import annotations

import signal
from multiprocessing.context import ForkServerContext
from pathlib import Path

import pytest
from asktell_driver import run_asktell
from conftest import run_in_process
from resume_driver import reference, stored_trials

KILLED = -signal.SIGKILL


@pytest.mark.parametrize("where", ["kill_after_tell", "kill_before_tell"])
@pytest.mark.parametrize("sampler", ["tpe", "cmaes", "qmc_sobol_scrambled", "nsga2", "grid"])
def test_an_ask_tell_loop_killed_anywhere_resumes_exactly(
    process_context: ForkServerContext, tmp_path: Path, sampler: str, where: str
) -> None:
    root = tmp_path / sampler
    for number in (2, 6):  # in the startup phase, then in the model phase
        code = run_in_process(
            process_context, target=run_asktell, root=str(root), name=sampler, **{where: number}
        )
        assert code == -signal.SIGKILL
    assert run_in_process(process_context, target=run_asktell, root=str(root), name=sampler) == 0
    assert stored_trials(root) == reference(sampler)


@pytest.mark.parametrize("storage", ["sqlite", "journal"])
@pytest.mark.parametrize("sampler", ["tpe", "cmaes"])
def test_an_ask_tell_loop_killed_inside_a_tell_after_its_commit_resumes_exactly(
    process_context: ForkServerContext, tmp_path: Path, sampler: str, storage: str
) -> None:
    """SIGKILL inside Optuna's tell, just after the storage finished the trial: the state
    after it was already durable (committed with it on SQLite, written before it on the
    journal file), so the study goes on exactly."""
    root = tmp_path / sampler
    for number in (2, 6):
        code = run_in_process(
            process_context,
            target=run_asktell,
            root=str(root),
            name=sampler,
            storage=storage,
            kill_inside_tell=number,
        )
        assert code == KILLED
    code = run_in_process(
        process_context, target=run_asktell, root=str(root), name=sampler, storage=storage
    )
    assert code == 0
    assert stored_trials(root, storage) == reference(sampler)
