"""Backups never lose the only copy of anything, and an unchanged study takes none.

Real re-runs of one script in subprocesses, with ``keep_backups=2``; the command line
lists what each backup holds and why it was taken.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import sys
    import optuna
    from optuna_resume import ResumableStudy, optimize_until

    root, until, rewind_to = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    with ResumableStudy(
        root,
        sampler=optuna.samplers.TPESampler(seed=5),
        keep_backups=2,
        rewind_to=None if rewind_to == "-" else int(rewind_to),
    ) as study:
        optimize_until(study, lambda t: t.suggest_float("x", 0.0, 1.0) ** 2, until)
    """
)


def _run(tmp_path: Path, until: int, rewind_to: str = "-") -> None:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "run"), str(until), rewind_to],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr


def _backups(tmp_path: Path) -> list[Path]:
    return sorted(
        (tmp_path / "run").glob("study_backup-*.db"), key=lambda p: int(p.stem.split("-")[-1])
    )


def _complete(db: Path) -> dict[int, float]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        rows = connection.execute(
            "SELECT t.number, p.param_value FROM trials t JOIN trial_params p "
            "ON p.trial_id = t.trial_id WHERE t.state = 'COMPLETE'"
        ).fetchall()
    return dict(rows)


def test_the_backup_holding_rewound_trials_outlives_any_number_of_routine_ones(
    tmp_path: Path,
) -> None:
    _run(tmp_path, 8)
    original = _complete(tmp_path / "run" / "study.db")
    _run(tmp_path, 2, rewind_to="2")  # trials 2..7 leave the live study
    for until in range(3, 9):  # six more runs, each adds a trial: six routine backups
        _run(tmp_path, until)
    backups = _backups(tmp_path)
    holding = [b for b in backups if set(_complete(b)) >= set(range(8))]
    assert holding, "no backup holds the rewound trials any more"
    assert {n: v for n, v in _complete(holding[0]).items() if n >= 2} == {
        n: v for n, v in original.items() if n >= 2
    }
    listing = subprocess.run(
        [sys.executable, "-m", "optuna_resume", "backups", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listing.returncode == 0, listing.stderr
    lines = [line for line in listing.stdout.splitlines() if not line.startswith("      ")]
    rewind_lines = [line for line in lines if "taken before a rewind" in line]
    assert len(rewind_lines) == 1
    assert "8 trial(s)" in rewind_lines[0] and "kept until removed by hand" in rewind_lines[0]
    routine = [line for line in lines if "taken on entry" in line]
    assert len(routine) == 2  # keep_backups counts the routine ones only


def test_an_unchanged_study_takes_no_new_backup(tmp_path: Path) -> None:
    _run(tmp_path, 4)
    _run(tmp_path, 4)  # backs up the 4 trials the first run made
    before = _backups(tmp_path)
    for _ in range(3):  # the same script, nothing to do
        _run(tmp_path, 4)
    assert _backups(tmp_path) == before
    _run(tmp_path, 5)  # the study changes: the next entry backs it up
    _run(tmp_path, 5)
    newest = int(before[-1].stem.split("-")[-1])
    assert [int(b.stem.split("-")[-1]) for b in _backups(tmp_path)][-1] == newest + 1
