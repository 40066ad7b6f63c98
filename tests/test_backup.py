"""Backups and rewinds on SQLite: consistent copies, names, retention, other studies."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from optuna_resume import (
    InvalidArgumentError,
    ResumableStudy,
    backup,
    checkpointed_objective,
    list_backups,
    optimize_until,
    restore_backup,
)


@checkpointed_objective()
def objective(trial: optuna.Trial) -> float:
    return trial.suggest_float("x", -5, 5) ** 2


def qmc() -> optuna.samplers.QMCSampler:
    return optuna.samplers.QMCSampler(seed=0)


def run(root: Path, n: int, **kwargs: object) -> optuna.Study:
    with ResumableStudy(root, sampler=qmc(), **kwargs) as study:  # type: ignore[arg-type]
        optimize_until(study, objective, n)
    return study


def trials_of(study: optuna.Study) -> list[tuple[int, dict[str, object], object]]:
    return [(t.number, t.params, t.values) for t in study.get_trials()]


def test_backups_are_named_beside_the_originals_and_counted_from_zero(tmp_path: Path) -> None:
    run(tmp_path / "s", 2)
    run(tmp_path / "s", 3)
    names = sorted(p.name for p in (tmp_path / "s").iterdir() if "_backup-" in p.name)
    assert names == [
        "checkpoints_backup-0",
        "checkpoints_backup-1",
        "study_backup-0.backup.json",  # what each holds and why it was taken
        "study_backup-0.db",
        "study_backup-1.backup.json",
        "study_backup-1.db",
    ]
    with sqlite3.connect(tmp_path / "s" / "study_backup-1.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT COUNT(*) FROM trials").fetchone() == (2,)


def test_retention_keeps_the_newest(tmp_path: Path) -> None:
    for n in range(1, 6):
        run(tmp_path / "s", n, keep_backups=2)
    infos = list_backups(run(tmp_path / "s", 5, backup=False, keep_backups=2), tmp_path / "s")
    assert [b.number for b in infos] == [3, 4]


def test_rewind_leaves_other_studies_in_the_file_untouched(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    other = run(tmp_path / "other", 6, storage=url)
    other_attrs = other._storage.get_study_system_attrs(other._study_id)
    original = trials_of(run(tmp_path / "mine", 8, storage=url))
    with ResumableStudy(tmp_path / "mine", storage=url, sampler=qmc(), rewind_to=3) as study:
        assert [t.number for t in study.trials] == [0, 1, 2]
        optimize_until(study, objective, 8)
    assert trials_of(study) == original
    reloaded = optuna.load_study(study_name="other", storage=url)
    assert trials_of(reloaded) == trials_of(other)
    assert reloaded._storage.get_study_system_attrs(reloaded._study_id) == other_attrs
    # the backup beside the shared file (named after the study) still holds the rewound trials
    others = sorted(p.name for p in tmp_path.glob("shared_other_backup-*.db"))
    assert others == ["shared_other_backup-0.db"]  # the other study's own, untouched
    backups = sorted(tmp_path.glob("shared_mine_backup-*.db"))
    kept = optuna.load_study(study_name="mine", storage=f"sqlite:///{backups[-1]}")
    assert len(kept.trials) == 8


def test_rewind_restores_the_study_system_attrs(tmp_path: Path) -> None:
    run(tmp_path / "s", 6)
    storage = f"sqlite:///{tmp_path / 's' / 'study.db'}"
    with ResumableStudy(tmp_path / "s", sampler=qmc(), rewind_to=0):
        pass
    study = optuna.load_study(study_name="s", storage=storage)
    attrs = study._storage.get_study_system_attrs(study._study_id)
    assert not any(key.startswith("qmc:") for key in attrs)  # QMC's counter went back too


def test_restore_backup_brings_back_the_study_and_keeps_the_live_one(tmp_path: Path) -> None:
    full = trials_of(run(tmp_path / "s", 6))
    with ResumableStudy(tmp_path / "s", sampler=qmc(), rewind_to=2) as study:
        numbers = [b.number for b in list_backups(study, tmp_path / "s")]
        restored = restore_backup(study, tmp_path / "s", numbers[-1])
    assert trials_of(restored) == full
    assert [t.state for t in restored.trials] == [TrialState.COMPLETE] * 6


def test_backup_function_copies_study_and_checkpoints(tmp_path: Path) -> None:
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'db.sqlite'}", study_name="ask-tell", sampler=qmc()
    )
    trial = study.ask()
    study.tell(trial, trial.suggest_float("x", 0, 1))
    info = backup(study, tmp_path / "root")
    # the file lies outside the root: the copy beside it names the study too
    assert info.storage_path == tmp_path / "db_ask-tell_backup-0.sqlite"
    assert info.checkpoints_path == tmp_path / "root" / "checkpoints_backup-0"


@pytest.mark.parametrize("keep", [0, -1])
def test_bad_retention_is_refused(tmp_path: Path, keep: int) -> None:
    with pytest.raises(InvalidArgumentError, match="keep_backups must be an int >= 1"):
        ResumableStudy(tmp_path / "s", keep_backups=keep)
