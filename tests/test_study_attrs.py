"""A re-run or rewind takes back what the discarded trials wrote, and nothing else.

The objective keeps a counter in ``study.user_attrs`` and a key per trial; the script writes
the metric names outside any trial; another process (standing in for the dashboard) writes
a note while a trial runs. Every phase is a real process running ``attrs_driver.py``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna

from optuna_resume import list_backups
from optuna_resume._optuna._storage import sqlite_url

DRIVER = Path(__file__).with_name("attrs_driver.py")


def _run(root: Path, *args: str, expect: int = 0) -> tuple[dict[str, Any], str]:
    done = subprocess.run(
        [sys.executable, str(DRIVER), str(root), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == expect, done.stderr
    lines = done.stdout.splitlines()
    shown = json.loads(lines[-1]) if lines else {}
    return shown, done.stderr


def _uninterrupted(tmp_path: Path, n_trials: int) -> dict[str, Any]:
    shown, _ = _run(tmp_path / "reference" / "attrs", "run", str(n_trials))
    return shown


def test_a_rerun_takes_back_the_cut_off_trials_writes_and_keeps_the_others(
    tmp_path: Path,
) -> None:
    root = tmp_path / "killed" / "attrs"
    _run(root, "run", "6", "3", expect=-signal.SIGKILL)
    killed, _ = _run(root, "show")
    assert killed["user_attrs"]["count"] == 4  # trials 0..3 counted, 3 cut off
    assert killed["user_attrs"]["note"] == "from the dashboard"

    resumed, log = _run(root, "run", "6")
    expected = _uninterrupted(tmp_path, 6)
    assert resumed["trials"] == expected["trials"]  # params and values: exact
    assert resumed["user_attrs"]["count"] == expected["user_attrs"]["count"] == 6
    # Written outside the discarded trial (the script; another process): still live.
    assert resumed["user_attrs"]["note"] == "from the dashboard"
    assert resumed["system_attrs"]["dashboard:note"] == "look"
    assert resumed["metric_names"] == ["loss"]
    # The resume report names what it took back; the backup keeps the discarded value.
    assert "study user attribute 'count' set back to 3" in log
    assert "seen_3" in log
    study = optuna.load_study(study_name="attrs", storage=sqlite_url(root / "study.db"))
    first = list_backups(study, root)[-1]  # taken by the resume
    assert first.storage_path is not None
    kept = optuna.load_study(
        study_name="attrs", storage=sqlite_url(Path(first.storage_path))
    ).user_attrs
    assert kept["count"] == 4


def test_a_rewind_takes_back_the_rewound_trials_writes(tmp_path: Path) -> None:
    root = tmp_path / "rewound" / "attrs"
    first, _ = _run(root, "run", "6")
    assert first["user_attrs"]["count"] == 6
    _run(root, "dashboard")  # after the trials: not theirs

    rewound, log = _run(root, "rewind", "3")
    assert rewound["user_attrs"]["count"] == 3  # as it was before trial 3
    assert {k for k in rewound["user_attrs"] if k.startswith("seen_")} == {
        "seen_0",
        "seen_1",
        "seen_2",
    }
    assert rewound["user_attrs"]["note"] == "from the dashboard"
    assert rewound["system_attrs"]["dashboard:note"] == "look"
    assert "study user attribute 'seen_5' removed" in log

    again, _ = _run(root, "run", "6")
    assert again["trials"] == first["trials"]
    assert again["user_attrs"]["count"] == 6


def test_a_samplers_own_study_attributes_go_back_with_its_trials(tmp_path: Path) -> None:
    # QMCSampler counts its draws in a study system attribute, written inside ask.
    def objective(trial: optuna.Trial) -> float:
        return trial.suggest_float("x", 0.0, 1.0)

    from optuna_resume import ResumableStudy

    def counters(study: optuna.Study) -> dict[str, Any]:
        attrs = study._storage.get_study_system_attrs(study._study_id)
        return {k: v for k, v in attrs.items() if k.startswith("qmc:")}

    root = tmp_path / "qmc"
    with ResumableStudy(root, sampler=optuna.samplers.QMCSampler(seed=1)) as study:
        study.optimize(objective, n_trials=2)
        at_two = counters(study)
        study.optimize(objective, n_trials=3)
        full = [t.params for t in study.trials]
        assert counters(study).keys() == at_two.keys()
        assert counters(study) != at_two  # trials 2..4 moved it on
    with ResumableStudy(root, sampler=optuna.samplers.QMCSampler(seed=1), rewind_to=2) as study:
        assert counters(study) == at_two
        study.optimize(objective, n_trials=3)
        assert [t.params for t in study.trials] == full
