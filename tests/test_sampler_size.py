"""A GPSampler's saved state stays small, and a study resumed from it goes on exactly.

GPSampler keeps its fitted regressors (training data and an n x n x d matrix) between trials
only as the starting point of the next fit: a saved state keeps just that starting point.
"""

from __future__ import annotations

from pathlib import Path

import optuna
from small_study import loss, snapshot

from optuna_resume import ResumableStudy, checkpointed_objective, optimize_until
from optuna_resume._store import FolderStore

objective = checkpointed_objective()(loss)


def gp() -> optuna.samplers.GPSampler:
    return optuna.samplers.GPSampler(seed=5, n_startup_trials=3)


def _state_bytes(root: Path, trial: int) -> int:
    """The state before ``trial``: its document and the blobs it refers to (none here)."""
    blobs = root / "checkpoints" / "blobs"
    size = FolderStore(root / "checkpoints").path(trial, "before").stat().st_size
    return size + sum(p.stat().st_size for p in blobs.glob("*.pt")) if blobs.is_dir() else size


def test_a_gp_sampler_state_stays_small_and_resumes_exactly(tmp_path: Path) -> None:
    once = optuna.create_study(sampler=gp())
    once.optimize(loss, n_trials=24)
    for stop in (8, 16, 24):  # stopped and resumed twice after the regressors exist
        with ResumableStudy(tmp_path / "s", sampler=gp()) as study:
            optimize_until(study, objective, stop)
    assert snapshot(study) == snapshot(once)
    small, large = _state_bytes(tmp_path / "s", 8), _state_bytes(tmp_path / "s", 24)
    # Saved whole, the state grew with the square of the trials (x9 from 8 to 24 trials).
    assert large < 1.5 * small, (small, large)
    assert large < 40_000
