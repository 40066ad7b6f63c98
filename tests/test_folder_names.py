"""Any folder name works: every path put into a URL or a URI is escaped."""

from __future__ import annotations

import os
from multiprocessing.context import ForkServerContext
from pathlib import Path

import optuna
import pytest
from conftest import run_in_process
from resume_driver import reference, stored_trials

from optuna_resume import ResumableStudy, list_backups, optimize_until
from optuna_resume._optuna._storage import sqlite_url

NAMES = ["run#1", "exp?a", "lr%3D0.1", "with space", 'it\'s "quoted"', "é 漢字", "a&b=c;d"]


@pytest.mark.parametrize("name", NAMES)
def test_an_odd_folder_name_resumes_and_its_backups_hold_the_data(
    process_context: ForkServerContext, tmp_path: Path, name: str
) -> None:
    parent = tmp_path / "runs"
    root = parent / name
    assert run_in_process(process_context, root=str(root), name="tpe", until=8) == 0
    assert run_in_process(process_context, root=str(root), name="tpe", rewind_to=5) == 0
    assert stored_trials(root) == reference("tpe")
    assert sorted(os.listdir(parent)) == [name]  # nothing made beside the root
    study = optuna.load_study(study_name=name, storage=sqlite_url(root / "study.db"))
    backups = list_backups(study, root)
    assert backups, "no backup was taken"
    newest = backups[-1]
    assert newest.storage_path is not None and newest.storage_path.parent == root
    kept = optuna.load_study(study_name=name, storage=sqlite_url(newest.storage_path))
    assert [t.number for t in kept.trials] == list(range(8))  # with the rewound 5..7


@pytest.mark.parametrize("spelling", ["{root}/", "{root}/./", "{root}/../{name}", "{root}/x/.."])
def test_every_spelling_of_a_root_is_the_same_study(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spelling: str
) -> None:
    """``runs/a/``, ``runs/a/.`` and ``runs/x/../a`` name root ``runs/a``: its study ``a``
    in its database, not a study named ``..`` or ``.`` beside it."""
    monkeypatch.chdir(tmp_path)
    with ResumableStudy("runs/a", sampler=optuna.samplers.TPESampler(seed=0)) as study:
        optimize_until(study, _objective, 4)
    again = spelling.format(root="runs/a", name="a")
    with ResumableStudy(again, sampler=optuna.samplers.TPESampler(seed=0)) as study:
        assert study.study_name == "a"
        optimize_until(study, _objective, 8)
    with ResumableStudy(tmp_path / "b", sampler=optuna.samplers.TPESampler(seed=0)) as study:
        optimize_until(study, _objective, 8)
        uninterrupted = [(t.params, t.values) for t in study.trials]
    stored = optuna.load_study(study_name="a", storage=sqlite_url(tmp_path / "runs/a/study.db"))
    assert [(t.params, t.values) for t in stored.trials] == uninterrupted
    assert sorted(os.listdir(tmp_path / "runs")) == ["a"]  # (no "x" made on the way)
    assert optuna.get_all_study_names(sqlite_url(tmp_path / "runs/a/study.db")) == ["a"]


def _objective(trial: optuna.Trial) -> float:
    return trial.suggest_float("x", -1.0, 1.0) ** 2
