"""The status object, its repr and HTML, and the one line an interrupted block leaves."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import optuna
import pytest

from optuna_resume import (
    ResumableStudy,
    StudyNotFoundError,
    StudyStatus,
    checkpointed_objective,
    optimize_until,
    study_status,
)

TARGET = 6
CUT = 3


def sampler() -> optuna.samplers.TPESampler:
    return optuna.samplers.TPESampler(seed=0, n_startup_trials=2)


def make_objective(interrupt_at: int | None) -> optuna.study.study.ObjectiveFuncType:
    @checkpointed_objective()
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -1, 1)
        if trial.number == interrupt_at:
            raise KeyboardInterrupt
        return x**2

    return objective


def interrupted_study(root: Path, policy: str = "rerun") -> ResumableStudy:
    session = ResumableStudy(root, sampler=sampler(), interrupted_trial=policy)  # type: ignore[arg-type]
    with pytest.raises(KeyboardInterrupt), session as study:
        optimize_until(study, make_objective(CUT), TARGET)
    return session


def test_status_of_an_interrupted_study(tmp_path: Path) -> None:
    root = tmp_path / "nb"
    session = interrupted_study(root)
    status = session.status()
    assert status == study_status(root)
    assert status.study_name == "nb"
    assert status.n_trials == CUT + 1
    assert status.target == TARGET
    assert status.trials_by_state == {"COMPLETE": CUT, "FAIL": 1}
    assert status.interrupted_trial == CUT
    assert status.last_checkpoint is not None
    assert status.last_checkpoint.path.name == f"trial-{CUT + 1:06d}.before.pt"
    assert [b.number for b in status.backups] == [0]
    assert status.lock_holder is None
    text = str(status)
    assert f"trials             {CUT + 1} of {TARGET} ({CUT} COMPLETE, 1 FAIL)" in text
    assert f"interrupted trial  trial {CUT} (the next entry re-runs it)" in text
    assert "lock               free" in text
    assert repr(status) == (
        f"<StudyStatus 'nb': {CUT + 1}/{TARGET} trials, interrupted={CUT}, backups=1, lock=free>"
    )
    assert repr(session) == f"<ResumableStudy closed {status!r}>"
    html = session._repr_html_()
    assert html.startswith("<table>") and html.endswith("</table>")
    row = "<th style='text-align:left'>interrupted trial</th><td style='text-align:left'>"
    assert f"{row}trial {CUT} (the next entry re-runs it)</td>" in html


def test_status_names_the_live_holder_and_the_rerun_clears_the_cut(tmp_path: Path) -> None:
    root = tmp_path / "nb"
    interrupted_study(root)
    session = ResumableStudy(root, sampler=sampler())
    with session as study:
        assert session.status().lock_holder == f"PID {os.getpid()} on {socket.gethostname()}"
        assert "open" in repr(session)
        optimize_until(study, make_objective(None), TARGET)
    after = session.status()
    assert after.lock_holder is None
    assert after.interrupted_trial is None
    assert after.trials_by_state == {"COMPLETE": TARGET}


def test_a_new_session_repr_does_not_fail(tmp_path: Path) -> None:
    session = ResumableStudy(tmp_path / "never-opened")
    assert "never-opened" in repr(session)
    assert "no such folder" in session._repr_html_()
    with pytest.raises(StudyNotFoundError, match="not a study root"):
        session.status()


@pytest.mark.parametrize(
    ("policy", "then"),
    [
        ("rerun", f"re-runs trial {CUT} with the same parameters"),
        ("fail", f"leaves trial {CUT} FAIL and goes on with trial {CUT + 1}"),
    ],
)
def test_an_interrupted_block_says_in_one_line_what_was_saved_and_what_comes_next(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, policy: str, then: str
) -> None:
    caplog.set_level(logging.WARNING, logger="optuna_resume")
    root = tmp_path / "nb"
    interrupted_study(root, policy)
    ours = [r for r in caplog.records if r.name == "optuna_resume"]
    assert [r.getMessage() for r in ours] == [
        f"KeyboardInterrupt in trial {CUT} of study 'nb': saved "
        f"{root / 'checkpoints' / f'trial-{CUT + 1:06d}.before.pt'}; the next run {then}"
    ]
    assert all(r.exc_info is None for r in ours)  # no traceback of our own


def test_a_stop_between_trials_says_where_it_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="optuna_resume")
    root = tmp_path / "nb"
    with pytest.raises(KeyboardInterrupt), ResumableStudy(root, sampler=sampler()) as study:
        optimize_until(study, make_objective(None), 2)
        raise KeyboardInterrupt
    assert [r.getMessage() for r in caplog.records if r.name == "optuna_resume"] == [
        f"KeyboardInterrupt between trials of study 'nb': saved "
        f"{root / 'checkpoints' / 'trial-000002.before.pt'}; the next run goes on with trial 2"
    ]


def test_status_needs_an_existing_study(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(StudyNotFoundError, match=r"holds no study\.db"):
        study_status(tmp_path / "empty")
    optuna.create_study(storage=f"sqlite:///{tmp_path / 'empty' / 'study.db'}", study_name="a")
    with pytest.raises(
        StudyNotFoundError, match=r"no study 'empty' .* \(studies there: \['a'\]\)"
    ):
        study_status(tmp_path / "empty")
    assert not (tmp_path / "nothing").exists()
    with pytest.raises(FileNotFoundError):
        study_status(tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()  # reading never creates anything
    assert isinstance(study_status(tmp_path / "empty", study_name="a"), StudyStatus)
