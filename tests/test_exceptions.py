"""An exception out of ``optimize``: wherever the script catches it, its trial runs again.

Each run is a real process running the script below, as a user re-runs it. A one-off error
(``Boom``: an out-of-memory, a lost file system) ends ``optimize`` from inside trial 3; the
script catches it inside the ``with`` block, outside it, or not at all, or it uses the plain
functions (``resume_study`` and ``save_checkpoint``). Run again, the study must equal one
uninterrupted run: trial 3 again under its number with its parameters.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import optuna

    from optuna_resume import (
        ResumableStudy,
        checkpointed_objective,
        optimize_until,
        resume_study,
        save_checkpoint,
    )

    root, where, boom_at, n_total = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    optuna.logging.set_verbosity(optuna.logging.WARNING)


    class Boom(Exception):
        pass


    @checkpointed_objective()
    def objective(trial):
        x = trial.suggest_float("x", -10, 10)
        y = trial.suggest_int("y", -3, 3)
        if trial.number == boom_at:
            raise Boom("a one-off error")
        return (x - 2) ** 2 + y**2


    def sampler():
        if where == "default-sampler":
            return None  # Optuna's default, unseeded
        return optuna.samplers.TPESampler(seed=3, n_startup_trials=3)


    if where == "functions":
        Path(root).parent.mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{Path(root).parent / 'plain.db'}"
        study = optuna.create_study(
            storage=storage, study_name="plain", load_if_exists=True, sampler=sampler()
        )
        resume_study(study, root)
        try:
            optimize_until(study, objective, n_total)
        except Boom:
            print("caught", file=sys.stderr)
        save_checkpoint(study, root)
    elif where == "outside":
        try:
            with ResumableStudy(root, sampler=sampler()) as study:
                optimize_until(study, objective, n_total)
        except Boom:
            print("caught", file=sys.stderr)
    else:
        with ResumableStudy(root, sampler=sampler()) as study:
            try:
                optimize_until(study, objective, n_total)
            except Boom:
                print("caught", file=sys.stderr)
            if where == "inside-then-more":
                optimize_until(study, objective, n_total)  # the study goes on past trial 3
    """
)

Snapshot = list[tuple[int, TrialState, dict[str, object], object]]


def _run(tmp_path: Path, root: Path, where: str, boom_at: int, n_total: int) -> str:
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), str(root), where, str(boom_at), str(n_total)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stderr


def _trials(root: Path, where: str) -> Snapshot:
    if where == "functions":
        storage, name = f"sqlite:///{root.parent / 'plain.db'}", "plain"
    else:
        storage, name = f"sqlite:///{root / 'study.db'}", root.name
    study = optuna.load_study(study_name=name, storage=storage)
    return [(t.number, t.state, t.params, t.values) for t in study.get_trials()]


@pytest.mark.parametrize("where", ["inside", "outside", "functions", "default-sampler"])
def test_an_exception_out_of_optimize_runs_its_trial_again(tmp_path: Path, where: str) -> None:
    root = tmp_path / "cut" / "study"
    assert "caught" in _run(tmp_path, root, where, boom_at=3, n_total=8)
    first = _trials(root, where)
    assert [(n, s) for n, s, _, _ in first][-1] == (3, TrialState.FAIL)
    cut_params = first[3][2]
    err = _run(tmp_path, root, where, boom_at=-1, n_total=8)
    if where != "functions":
        assert "trial 3 was cut off and runs again" in err
    resumed = _trials(root, where)
    assert [t[:2] for t in resumed] == [(n, TrialState.COMPLETE) for n in range(8)]
    assert resumed[3][2] == cut_params  # the cut-off trial again, with its parameters
    assert resumed[:3] == first[:3]
    if where == "default-sampler":
        drawn = [tuple(sorted(params.items())) for _, _, params, _ in resumed]
        assert len(set(drawn)) == len(drawn), "a draw was repeated"
        return
    reference = tmp_path / "reference" / "study"
    _run(tmp_path, reference, where, boom_at=-1, n_total=8)
    assert resumed == _trials(reference, where)


def test_a_failed_trial_the_study_went_on_from_stays_failed(tmp_path: Path) -> None:
    """Caught, then more trials in the same block: trial 3 stays FAIL (Optuna's way); the
    next run goes on after the newest trial and takes nothing back."""
    root = tmp_path / "cut" / "study"
    _run(tmp_path, root, "inside-then-more", boom_at=3, n_total=6)
    first = _trials(root, "inside")
    assert [(n, s) for n, s, _, _ in first] == [
        (n, TrialState.FAIL if n == 3 else TrialState.COMPLETE) for n in range(6)
    ]
    err = _run(tmp_path, root, "inside", boom_at=-1, n_total=8)
    assert "cut off" not in err
    again = _trials(root, "inside")
    assert again[:6] == first
    assert [t[:2] for t in again[6:]] == [(6, TrialState.COMPLETE), (7, TrialState.COMPLETE)]


def test_a_re_run_trial_that_fails_again_under_catch_stays_failed(tmp_path: Path) -> None:
    """One ``ResumableStudy`` entered three times: the exception caught inside the first
    block re-runs trial 3 at the second entry, where it fails again under ``catch=``; that
    failure is the study's own (Optuna's way), and the third entry takes nothing back."""
    from optuna_resume import ResumableStudy

    class Boom(Exception):
        pass

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -5, 5)
        if trial.number == 3:
            raise Boom("every time")
        return x * x

    session = ResumableStudy(tmp_path / "study", sampler=optuna.samplers.TPESampler(seed=0))
    with session as study, pytest.raises(Boom):
        study.optimize(objective, n_trials=5)
    with session as study:
        assert len(study.trials) == 3  # trial 3 taken back, to run again
        study.optimize(objective, n_trials=1, catch=(Boom,))
    with session as study:
        assert [(t.number, t.state) for t in study.trials] == [
            *[(n, TrialState.COMPLETE) for n in range(3)],
            (3, TrialState.FAIL),
        ]
