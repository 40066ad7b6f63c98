"""Enqueued trials: a cut-off one re-runs with its enqueued params; WAITING ones are kept."""

from __future__ import annotations

import signal
from multiprocessing.context import ForkServerContext
from pathlib import Path

import optuna
import pytest
from conftest import run_in_process
from enqueue_driver import ENQUEUED, described, reference, run_enqueued
from optuna.trial import TrialState

from optuna_resume._optuna._storage import sqlite_url

KILLED = -signal.SIGKILL


def _study(root: Path) -> optuna.Study:
    return optuna.load_study(study_name=root.name, storage=sqlite_url(root / "study.db"))


@pytest.mark.parametrize(
    "cut", [{"kill_in": 1}, {"kill_after_tell": 0}, {"kill_after_tell": 2}, {"kill_in": 5}]
)
@pytest.mark.parametrize("sampler", ["tpe", "cmaes", "random"])
def test_a_killed_study_with_enqueued_trials_resumes_exactly(
    process_context: ForkServerContext, tmp_path: Path, sampler: str, cut: dict[str, int]
) -> None:
    root = tmp_path / sampler
    code = run_in_process(
        process_context, target=run_enqueued, root=str(root), name=sampler, **cut
    )
    assert code == KILLED
    if "kill_in" in cut and cut["kill_in"] < len(ENQUEUED):
        waiting = _study(root).get_trials(states=(TrialState.WAITING,))
        assert [t.number for t in waiting] == list(range(cut["kill_in"] + 1, len(ENQUEUED)))
    assert run_in_process(process_context, target=run_enqueued, root=str(root), name=sampler) == 0
    study = _study(root)
    assert described(study) == reference(sampler)
    assert [t.params for t in study.trials[: len(ENQUEUED)]] == ENQUEUED
    assert all(t.user_attrs == {"source": "enqueued"} for t in study.trials[2 : len(ENQUEUED)])


def test_a_rewind_keeps_the_waiting_trials_in_order(tmp_path: Path) -> None:
    root = tmp_path / "tpe"
    run_enqueued(str(root), "tpe", until=2)  # trial 2 is still WAITING
    assert [t.state for t in _study(root).trials] == [TrialState.COMPLETE] * 2 + [
        TrialState.WAITING
    ]
    run_enqueued(str(root), "tpe", rewind_to=1, until=1)
    trials = _study(root).trials
    assert [(t.state, t.system_attrs["fixed_params"]) for t in trials[1:]] == [
        (TrialState.WAITING, ENQUEUED[1]),
        (TrialState.WAITING, ENQUEUED[2]),
    ]
