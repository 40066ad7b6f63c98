"""A small seeded TPE study that in-process tests open, cut off and resume."""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.trial import TrialState

from optuna_resume import ResumableStudy, checkpointed_objective, optimize_until

Snapshot = list[tuple[int, TrialState, dict[str, object], object]]


def loss(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -10, 10)
    y = trial.suggest_int("y", -3, 3)
    return (x - 2) ** 2 + y**2


objective = checkpointed_objective()(loss)


def tpe() -> optuna.samplers.TPESampler:
    return optuna.samplers.TPESampler(seed=3, n_startup_trials=3)


def run(root: Path, n: int, **kwargs: object) -> optuna.Study:
    """Open ``root`` with ``ResumableStudy(**kwargs)`` and run the study to ``n`` trials."""
    with ResumableStudy(root, sampler=tpe(), **kwargs) as study:  # type: ignore[arg-type]
        optimize_until(study, objective, n)
    return study


def snapshot(study: optuna.Study) -> Snapshot:
    return [(t.number, t.state, t.params, t.values) for t in study.get_trials()]


def stored(root: Path) -> Snapshot:
    """The study in ``root``'s SQLite file, as the next process would load it."""
    storage = f"sqlite:///{root / 'study.db'}"
    return snapshot(optuna.load_study(study_name=root.name, storage=storage))


def files_only(root: Path) -> None:
    """Make ``root``'s states files only, as in a root written before states were committed
    in the study's database: the rows of ``root/study.db`` are deleted (the files stay)."""
    import sqlalchemy

    from optuna_resume._optuna._state_table import STATES_TABLE

    engine = sqlalchemy.create_engine(f"sqlite:///{root / 'study.db'}")
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text(f"DELETE FROM {STATES_TABLE}"))
    engine.dispose()
