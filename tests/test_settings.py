"""Settings that change between runs are said, and one root holds one study."""

from __future__ import annotations

import os
from pathlib import Path

import optuna
import pytest
from small_study import objective, run, snapshot

from optuna_resume import (
    CheckpointMismatchError,
    InvalidArgumentError,
    ResumableStudy,
    SamplerMismatchWarning,
    optimize_until,
)


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.name != ".lock")


def test_changed_sampler_settings_are_named_and_the_checkpoint_goes_on(tmp_path: Path) -> None:
    root = tmp_path / "s"
    with ResumableStudy(root, sampler=optuna.samplers.TPESampler(seed=0)) as study:
        optimize_until(study, objective, 3)
    changed = optuna.samplers.TPESampler(seed=0, n_startup_trials=2, n_ei_candidates=7)
    with (
        pytest.warns(SamplerMismatchWarning) as warned,
        ResumableStudy(root, sampler=changed) as study,
    ):
        sampler = study.sampler
        assert isinstance(sampler, optuna.samplers.TPESampler)
        assert sampler._n_startup_trials == 10
    message = " ".join(str(w.message) for w in warned)
    assert "n_startup_trials=10 (checkpoint) instead of 2 (passed)" in message
    assert "n_ei_candidates=24 (checkpoint) instead of 7 (passed)" in message


def test_the_same_sampler_passed_again_is_no_change(tmp_path: Path) -> None:
    """Seeded or not, the same settings resume without a word (warnings are errors here)."""
    for make in (
        lambda: optuna.samplers.TPESampler(seed=0, n_startup_trials=3),
        lambda: optuna.samplers.TPESampler(n_startup_trials=3),
        lambda: optuna.samplers.QMCSampler(warn_asynchronous_seeding=False),
        lambda: optuna.samplers.NSGAIISampler(population_size=4),
    ):
        root = tmp_path / type(make()).__name__ / str(id(make))
        for n in (3, 5):
            with ResumableStudy(root, sampler=make()) as study:
                optimize_until(study, objective, n)


@pytest.mark.parametrize("passed", [{"direction": "maximize"}, {"directions": ["minimize"] * 2}])
def test_a_changed_direction_is_refused_before_anything_is_touched(
    tmp_path: Path, passed: dict[str, object]
) -> None:
    root = tmp_path / "s"
    before = snapshot(run(root, 3))
    files = _files(root)
    with pytest.raises(InvalidArgumentError, match=r"created to minimize.*another study_name"):
        ResumableStudy(root, **passed).__enter__()  # type: ignore[arg-type]
    assert _files(root) == files
    assert snapshot(run(root, 3)) == before


def test_a_second_study_in_one_root_is_refused_and_the_first_goes_on(tmp_path: Path) -> None:
    root = tmp_path / "shared"
    run(root, 3, study_name="first")
    checkpoints = sorted(os.listdir(root / "checkpoints"))
    with pytest.raises(CheckpointMismatchError, match=r"study 'first'.*one root per study"):
        run(root, 3, study_name="second")
    assert sorted(os.listdir(root / "checkpoints")) == checkpoints  # nothing set aside
    resumed = snapshot(run(root, 6, study_name="first"))
    assert resumed == snapshot(run(tmp_path / "alone", 6, study_name="first"))
