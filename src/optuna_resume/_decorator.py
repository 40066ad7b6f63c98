"""``checkpointed_objective``: checkpoint the sampler around every trial of an objective."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

import optuna
import wrapt

from ._binding import bind_engine
from ._engine import (
    INTERRUPTED,
    PRUNED,
    RAISED,
    RETURNED,
    ResumeEngine,
    engine_of,
)
from ._error import OptunaResumeError
from ._fault import fault_point
from ._log import logger
from ._options import EngineOptions, check_allowed_globals
from ._root import check_root
from ._workspace import WorkspacePolicy

_logger = logger
_BINDING = threading.Lock()

F = TypeVar("F", bound=Callable[..., Any])


def _find_trial(args: tuple[Any, ...], kwargs: dict[str, Any]) -> optuna.Trial | None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, optuna.Trial):
            return value
    return None


def _engine_for(
    trial: optuna.Trial, root: str | os.PathLike[str] | None, options: EngineOptions
) -> ResumeEngine:
    if root is not None:
        with _BINDING:  # threads of one study (n_jobs > 1) bind it once
            alone = engine_of(trial.study) is None
            engine = bind_engine(trial.study, root, options)
            if alone:
                # The user opened the study: resume it now, before the body draws anything.
                try:
                    engine.adopt(trial)
                except BaseException:
                    engine.detach()  # the next trial checks again
                    raise
        return engine
    bound = engine_of(trial.study)
    if bound is None:
        raise OptunaResumeError(
            "checkpointed_objective has no root: pass root=... to the decorator, or run "
            "the study inside a ResumableStudy"
        )
    bound.configure(options)
    return bound


def checkpointed_objective(
    root: str | os.PathLike[str] | None = None,
    *,
    trusted: bool = False,
    allowed_globals: Iterable[object] = (),
    capture_rng: bool = False,
    workspace_policy: WorkspacePolicy | None = None,
) -> Callable[[F], F]:
    """Checkpoint the sampler before each trial's body runs and after it ends.

    The decorated objective is called unchanged and its result returned, or its exception
    re-raised, unchanged (``TrialPruned``, any error, ``KeyboardInterrupt``). It works on
    functions, methods, classmethods, staticmethods, callable objects and
    ``functools.partial``, and keeps name, docstring, signature and type hints.

    Inside a :class:`ResumableStudy` (the recommended way) the study is resumed on entry.
    Used alone, on a study you open yourself with a persistent storage, the decorator
    resumes the study at the first trial of the process, before the objective draws
    anything: the sampler goes on from the state saved before that trial, so a re-run
    script never repeats the study's first draws. Where that cannot be exact it stops with a
    clear error before anything is drawn (that trial is left FAIL): an earlier run was killed
    inside a trial (:class:`ResumeRequiredError`: call :func:`resume_study` before
    ``optimize``, or use :class:`ResumableStudy`, to re-run it under its number), the study
    has trials but the root holds no state (:class:`CheckpointNotFoundError`), or the study
    is in memory (:class:`UnsupportedStorageError`: nothing could resume it).

    Example:
        .. code-block:: python

            @checkpointed_objective(root="runs/demo")
            def objective(trial: optuna.Trial) -> float:
                x = trial.suggest_float("x", -10, 10)
                return (x - 2) ** 2

            study = optuna.create_study(
                study_name="demo",
                storage="sqlite:///demo.db",
                load_if_exists=True,
                sampler=optuna.samplers.TPESampler(seed=0),
            )
            study.optimize(objective, n_trials=50)  # a re-run goes on where it stopped

    Args:
        root: The root folder (checkpoints go to ``<root>/checkpoints``). Inside a
            :class:`ResumableStudy` it may be omitted.
        trusted: Load this root's checkpoints with the full unpickler.
        allowed_globals: Classes and functions the safe loader may use (custom samplers).
        capture_rng: Also save the global random generators (``random``, NumPy, torch CPU
            and CUDA) with every checkpoint; a resume or re-run puts them back, so an
            objective that draws from them gives the values of an uninterrupted run.
        workspace_policy: What happens to a trial's workspace (:func:`trial_dir`) once the
            trial is COMPLETE or PRUNED: ``"keep"`` (the default) or ``"delete"``.
    """
    if root is not None:
        check_root(root)  # here: not at the first trial, which it would leave FAIL
    options = EngineOptions(
        trusted=trusted,
        allowed_globals=check_allowed_globals(allowed_globals),
        capture_rng=capture_rng,
        workspace_policy=workspace_policy,
    )

    @wrapt.decorator
    def wrapper(
        wrapped: Callable[..., Any],
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        trial = _find_trial(args, kwargs)
        if trial is None:
            # A FrozenTrial or FixedTrial re-evaluation: nothing to checkpoint.
            return wrapped(*args, **kwargs)
        engine = _engine_for(trial, root, options)
        engine.trial_started(trial)
        try:
            result = wrapped(*args, **kwargs)
        except optuna.TrialPruned:
            _end(engine, trial, PRUNED)
            raise
        except Exception:
            _end(engine, trial, RAISED)
            raise
        except BaseException:
            _end(engine, trial, INTERRUPTED)
            raise
        fault_point("objective.returned")
        _end(engine, trial, RETURNED)
        fault_point("objective.saved")
        return result

    return cast(Callable[[F], F], wrapper)


def _end(engine: ResumeEngine, trial: optuna.Trial, outcome: str) -> None:
    # The trial's own result matters more than this checkpoint: a failed write is logged and
    # the resume falls back to the checkpoint taken before the next trial.
    try:
        engine.trial_ended(trial, outcome)
    except (OptunaResumeError, OSError) as e:
        _logger.error("could not checkpoint the end of trial %d: %s", trial.number, e)


__all__ = ["checkpointed_objective"]
