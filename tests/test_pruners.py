"""The pruner is state too: saved and restored with the sampler, for every built-in pruner."""

from __future__ import annotations

import signal
from multiprocessing.context import ForkServerContext
from pathlib import Path

import optuna
import pytest
from conftest import run_in_process
from pruner_driver import KILL_AT, PRUNERS, outcome, reference, run_phase

from optuna_resume import ResumableStudy, SamplerMismatchWarning
from optuna_resume._optuna._storage import sqlite_url

KILLED = -signal.SIGKILL


def _stored(root: Path) -> list[tuple[int, str, dict[str, object], object]]:
    study = optuna.load_study(study_name=root.name, storage=sqlite_url(root / "study.db"))
    return outcome(study)


@pytest.mark.parametrize("pruner", sorted(PRUNERS))
def test_a_killed_study_prunes_as_the_uninterrupted_one(
    process_context: ForkServerContext, tmp_path: Path, pruner: str
) -> None:
    root = tmp_path / pruner
    code = run_in_process(
        process_context, target=run_phase, root=str(root), name=pruner, kill_at=KILL_AT
    )
    assert code == KILLED
    assert run_in_process(process_context, target=run_phase, root=str(root), name=pruner) == 0
    expected = reference(pruner)
    if pruner not in ("nop",):
        assert any(state == "PRUNED" for _, state, _, _ in expected)  # the test can tell
    assert _stored(root) == expected


def test_hyperbands_brackets_are_restored_not_recomputed(tmp_path: Path) -> None:
    from pruner_driver import curve

    root = tmp_path / "s"
    with ResumableStudy(root, pruner=PRUNERS["hyperband_auto"]()) as study:
        study.optimize(lambda t: curve(t, None), n_trials=4)
        brackets = len(study.pruner._pruners)  # type: ignore[attr-defined]
    with ResumableStudy(root, pruner=PRUNERS["hyperband_auto"]()) as study:
        restored = study.pruner
        assert isinstance(restored, optuna.pruners.HyperbandPruner)
        assert len(restored._pruners) == brackets  # fixed at the first prune, kept


def test_a_pruner_with_other_settings_is_named(tmp_path: Path) -> None:
    root = tmp_path / "s"
    with ResumableStudy(root, pruner=optuna.pruners.MedianPruner(n_startup_trials=2)) as study:
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    with (
        pytest.warns(
            SamplerMismatchWarning, match=r"n_startup_trials=2 \(checkpoint\) instead of 7"
        ),
        ResumableStudy(root, pruner=optuna.pruners.MedianPruner(n_startup_trials=7)) as study,
    ):
        assert study.pruner._n_startup_trials == 2  # type: ignore[attr-defined]


def test_another_pruner_class_is_used_as_passed_with_a_warning(tmp_path: Path) -> None:
    root = tmp_path / "s"
    with ResumableStudy(root, pruner=optuna.pruners.MedianPruner()) as study:
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    nop = optuna.pruners.NopPruner()
    with (
        pytest.warns(SamplerMismatchWarning, match="MedianPruner but a NopPruner was passed"),
        ResumableStudy(root, pruner=nop) as study,
    ):
        assert study.pruner is nop
