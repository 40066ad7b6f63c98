"""Optuna's asks and tells of bound studies, routed through their engine."""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from ._attr_writes import trial_in_progress, trial_over
from ._state_table import created_with_heartbeat
from ._storage import heartbeat_settings, rdb_of


class BoundEngine(Protocol):
    """What the hooks call on the engine a study is bound to."""

    def ask(
        self, original: Callable[..., optuna.Trial], fixed_distributions: Any
    ) -> optuna.Trial: ...

    def telling(self, number: int, trial_id: int | None) -> None: ...

    def tell_over(self) -> None: ...

    def told(self, number: int, state: TrialState) -> None: ...

    def trial_run_starts(self) -> None: ...

    def trial_run_raised(self) -> None: ...


def install_hooks(engines: Mapping[optuna.Study, BoundEngine]) -> None:
    """Route the asks and tells of bound studies through their engine (installed once).

    ``Study.ask`` is wrapped on the class, not on each study: a bound study still pickles
    (to be sent to another process) and ``copy.deepcopy`` of it is a plain, unbound study.
    Optuna's one tell function (``study.tell`` and ``optimize`` both call it) is wrapped
    where those two modules hold it, and ``optimize``'s run of one trial (to see an
    exception end ``optimize`` from a trial). An unbound study pays one dictionary lookup per call.
    """
    import optuna.study._optimize as optimize_module
    import optuna.study.study as study_module

    original_ask = optuna.Study.ask
    if getattr(original_ask, "_optuna_resume_hook", False):
        return

    @functools.wraps(original_ask)
    def ask(study: optuna.Study, fixed_distributions: Any = None) -> optuna.Trial:
        engine = engines.get(study)
        if engine is None:
            return original_ask(study, fixed_distributions)
        return engine.ask(original_ask, fixed_distributions)

    original_tell = study_module._tell_with_warning  # type: ignore[attr-defined]

    @functools.wraps(original_tell)
    def tell(study: optuna.Study, trial: optuna.Trial | int, *args: Any, **kwargs: Any) -> Any:
        engine = engines.get(study)
        if engine is None:
            return original_tell(study, trial, *args, **kwargs)
        number = trial.number if isinstance(trial, optuna.Trial) else trial
        trial_id = trial._trial_id if isinstance(trial, optuna.Trial) else None
        engine.telling(number, trial_id)
        try:
            told = original_tell(study, trial, *args, **kwargs)
        finally:
            trial_over(study, trial_id)
            engine.tell_over()
        engine.told(number, told[0])  # (state, values, warning message)
        return told

    original_run_trial = optimize_module._run_trial

    @functools.wraps(original_run_trial)
    def run_trial(study: optuna.Study, func: Any, catch: Any) -> Any:
        # One trial of optimize: an exception out of it ends optimize, cutting its trial off.
        engine = engines.get(study)
        if engine is None:
            return original_run_trial(study, func, catch)
        engine.trial_run_starts()
        try:
            return original_run_trial(study, func, catch)
        except BaseException:
            engine.trial_run_raised()
            raise

    original_init = optuna.trial.Trial.__init__

    @functools.wraps(original_init)
    def init(trial: optuna.Trial, study: optuna.Study, trial_id: int) -> None:
        # Optuna made the trial (in ask): what its sampler writes from here on is the trial's.
        if study in engines:
            trial_in_progress(study, trial_id)
        original_init(trial, study, trial_id)

    ask._optuna_resume_hook = True  # type: ignore[attr-defined]
    optuna.Study.ask = ask  # type: ignore[method-assign,assignment]
    optuna.trial.Trial.__init__ = init  # type: ignore[method-assign,assignment]
    study_module._tell_with_warning = tell  # type: ignore[attr-defined]
    optimize_module._tell_with_warning = tell  # type: ignore[attr-defined]
    optimize_module._run_trial = run_trial


def create_trials_with(
    storage: BaseStorage, study_id: int, system_attrs: Callable[[], dict[str, Any]]
) -> None:
    """Have ``storage`` create study ``study_id``'s new trials with these system attributes.

    They are written in the transaction that creates the trial (and, where the storage
    keeps heartbeats, so is the trial's first heartbeat). Enqueued trials, and trials made
    from a template, are created as Optuna creates them.
    """
    create = type(storage).create_new_trial.__get__(storage)
    rdb = rdb_of(storage) if heartbeat_settings(storage) is not None else None

    def create_new_trial(asked_study_id: int, template_trial: FrozenTrial | None = None) -> int:
        if template_trial is None and asked_study_id == study_id:
            template_trial = FrozenTrial(
                number=-1,
                state=TrialState.RUNNING,
                value=None,
                datetime_start=datetime.datetime.now(),
                datetime_complete=None,
                params={},
                distributions={},
                user_attrs={},
                system_attrs=system_attrs(),
                intermediate_values={},
                trial_id=-1,
            )
            if rdb is not None:
                with created_with_heartbeat(rdb, asked_study_id):
                    return int(create(asked_study_id, template_trial))
        return int(create(asked_study_id, template_trial))

    storage.create_new_trial = create_new_trial  # type: ignore[method-assign,assignment]


def create_trials_plainly(storage: BaseStorage) -> None:
    """Undo :func:`create_trials_with`."""
    storage.__dict__.pop("create_new_trial", None)


__all__ = ["BoundEngine", "create_trials_plainly", "create_trials_with", "install_hooks"]
