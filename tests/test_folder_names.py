"""Any folder name works: every path put into a URL or a URI is escaped."""

from __future__ import annotations

import os
from multiprocessing.context import ForkServerContext
from pathlib import Path

import optuna
import pytest
from conftest import run_in_process
from resume_driver import reference, stored_trials

from optuna_resume import list_backups
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
