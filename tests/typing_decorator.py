"""Checked by mypy --strict (not run): the decorator keeps the objective's type."""

from __future__ import annotations

import optuna
from typing_extensions import assert_type

from optuna_resume import checkpointed_objective


@checkpointed_objective(root="runs/typing")
def objective(trial: optuna.Trial) -> float:
    return trial.suggest_float("x", 0, 1)


@checkpointed_objective(capture_rng=True, workspace_policy="delete")
def training(trial: optuna.Trial, epochs: int = 3) -> float:
    return float(epochs)


class Model:
    @checkpointed_objective()
    def objective(self, trial: optuna.Trial) -> float:
        return trial.suggest_float("x", 0, 1)


def check(trial: optuna.Trial) -> None:
    assert_type(objective(trial), float)
    assert_type(Model().objective(trial), float)
    assert_type(training(trial, 5), float)
    training(trial, "five")  # type: ignore[arg-type]
    # Were the signature lost (Any), these ignores would be unused: an error under --strict.
    objective("not a trial")  # type: ignore[arg-type]
    Model().objective(trial, 1)  # type: ignore[call-arg]
