"""A study's storage and id, a trial's id: Optuna keeps them in private attributes."""

from __future__ import annotations

from typing import Any

import optuna


def storage_of(study: optuna.Study) -> Any:
    """The storage the study reads and writes (``optuna.storages.BaseStorage``)."""
    return study._storage


def study_id_of(study: optuna.Study) -> int:
    """The study's id in its storage."""
    return study._study_id


def set_study_id(study: optuna.Study, study_id: int) -> None:
    """Point the study object at another study of its storage (a study replaced whole)."""
    study._study_id = study_id


def frozen_trial_of(trial: optuna.Trial) -> optuna.trial.FrozenTrial:
    """What a running trial has recorded so far, as Optuna keeps it (no storage read)."""
    return trial._cached_frozen_trial


def trial_id_of(trial: optuna.Trial | optuna.trial.FrozenTrial) -> int:
    """The trial's id in its storage."""
    return trial._trial_id


__all__ = ["frozen_trial_of", "set_study_id", "storage_of", "study_id_of", "trial_id_of"]
