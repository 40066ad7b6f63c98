"""Capturing the global random generators with the checkpoints, and putting them back."""

from __future__ import annotations

import functools
import random
import warnings
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch

from optuna_resume import (
    InexactResumeWarning,
    ResumableStudy,
    checkpointed_objective,
    list_checkpoints,
    optimize_until,
)
from optuna_resume._rng import capture_rng_state, restore_rng_state

N_TRIALS = 6
INTERRUPT_AT = 3


def draws() -> tuple[float, float, float]:
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def seed_everything() -> None:
    random.seed(7)
    np.random.seed(7)
    torch.manual_seed(7)


def loss(trial: optuna.Trial, interrupt: bool = False) -> float:
    x = trial.suggest_float("x", -1, 1)
    a, b, c = draws()  # e.g. weight init, shuffling, dropout
    if interrupt and trial.number == INTERRUPT_AT:
        raise KeyboardInterrupt
    return x + a + 10 * b + 100 * c


def sampler() -> optuna.samplers.TPESampler:
    return optuna.samplers.TPESampler(seed=0, n_startup_trials=2)


def values(study: optuna.Study) -> list[tuple[int, dict[str, object], float | None]]:
    return [(t.number, t.params, t.value) for t in study.get_trials() if t.value is not None]


def uninterrupted() -> list[tuple[int, dict[str, object], float | None]]:
    seed_everything()
    study = optuna.create_study(sampler=sampler())
    study.optimize(loss, n_trials=N_TRIALS)
    return values(study)


def interrupted_then_rerun(root: Path, in_study: bool, in_decorator: bool) -> optuna.Study:
    """A notebook: seed once, run the cell, interrupt it, run the cell again."""
    seed_everything()
    for interrupt in (True, False):
        objective = checkpointed_objective(capture_rng=in_decorator)(
            functools.partial(loss, interrupt=interrupt)
        )
        try:
            with ResumableStudy(root, sampler=sampler(), capture_rng=in_study) as study:
                optimize_until(study, objective, N_TRIALS)
        except KeyboardInterrupt:
            draws()  # the user does something random between the two runs of the cell
    return study


def test_capture_and_restore_round_trip() -> None:
    state = capture_rng_state()
    first = draws()
    draws()
    restore_rng_state(state)
    assert draws() == first


@pytest.mark.parametrize(
    ("in_study", "in_decorator"), [(True, False), (False, True), (True, True)]
)
def test_an_interrupted_trial_reruns_with_the_same_global_draws(
    tmp_path: Path, in_study: bool, in_decorator: bool
) -> None:
    study = interrupted_then_rerun(tmp_path / "rng", in_study, in_decorator)
    assert values(study) == uninterrupted()
    newest = list_checkpoints(tmp_path / "rng")[-1]
    assert newest.trial == N_TRIALS


def test_without_capture_the_rerun_trial_draws_other_numbers(tmp_path: Path) -> None:
    study = interrupted_then_rerun(tmp_path / "rng", False, False)
    got, expected = values(study), uninterrupted()
    assert got[:INTERRUPT_AT] == expected[:INTERRUPT_AT]
    assert got[INTERRUPT_AT] != expected[INTERRUPT_AT]


def test_the_resume_report_says_the_generators_were_restored(tmp_path: Path) -> None:
    root = tmp_path / "rng"
    objective = checkpointed_objective()(loss)
    with ResumableStudy(root, sampler=sampler(), capture_rng=True) as study:
        optimize_until(study, objective, 2)
    expected = draws()
    resumed = ResumableStudy(root, sampler=sampler())
    with resumed:
        assert draws() == expected
    assert resumed.report is not None and resumed.report.rng_restored
    assert "global random generators restored" in str(resumed.report)


def test_cuda_generators_missing_here_give_a_warning_not_a_wrong_state() -> None:
    state = capture_rng_state()
    expected = draws()
    state["cuda"] = [torch.get_rng_state()] * (torch.cuda.device_count() + 1)
    with pytest.warns(InexactResumeWarning, match="CUDA device"):
        restore_rng_state(state)
    assert draws() == expected  # the CPU generators were still restored


def test_no_capture_writes_no_generator_state(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    with ResumableStudy(root, sampler=sampler()) as study:
        optimize_until(study, checkpointed_objective()(loss), 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resumed = ResumableStudy(root, sampler=sampler())
        with resumed:
            pass
    assert resumed.report is not None and not resumed.report.rng_restored
