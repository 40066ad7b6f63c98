"""A trial's workspace and the training-loop helper: resume a trial from its last epoch.

Inside a checkpointed objective, :func:`trial_dir` is the trial's own folder. The helper
keeps one file there, ``training_state.pt``: model, optimizer and scheduler state dicts, the
epoch, the global random generators, and the trial's intermediate values and user
attributes. It is written atomically and loaded with the same safe loader as the sampler
checkpoints, so "resume from the last epoch" takes three lines::

    start = load_training_state(trial, model, optimizer, scheduler)
    for epoch in range(start, n_epochs):
        ...
        save_training_state(trial, epoch, model, optimizer, scheduler)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import optuna

from ._atomic import atomic_write
from ._engine import engine_of
from ._error import (
    CheckpointMismatchError,
    CorruptCheckpointError,
    InvalidArgumentError,
    OptunaResumeError,
)
from ._log import logger
from ._options import check_loading
from ._optuna._access import frozen_trial_of
from ._rng import capture_rng_state, restore_rng_state
from ._serialization import dump_object, load_object

_logger = logger

TRAINING_STATE = "training_state.pt"
_FORMAT = "optuna-resume-training-state"


class Stateful(Protocol):
    """Anything with ``state_dict`` and ``load_state_dict`` (modules, optimizers, schedulers)."""

    def state_dict(self) -> Mapping[str, Any]: ...

    def load_state_dict(self, state_dict: Any, /) -> Any: ...


def trial_dir(trial: optuna.Trial) -> Path:
    """The trial's workspace: ``<root>/workspaces/trial-NNNNNN`` (created if missing).

    It survives an interruption and is found again when the interrupted trial runs again
    under the same number; a rewind that discards the trial moves it into the backup; when
    the trial has finished it is kept or deleted as ``workspace_policy`` says.

    Raises:
        OptunaResumeError: The trial's study is not checkpointed (no
            ``checkpointed_objective`` or ``ResumableStudy`` around it).
    """
    if not isinstance(trial, optuna.Trial):
        raise InvalidArgumentError(
            f"trial_dir needs the optuna.Trial of a running study, not a {type(trial).__name__}"
        )
    engine = engine_of(trial.study)
    if engine is None:
        raise OptunaResumeError(
            "this trial's study is not checkpointed, so it has no workspace: decorate the "
            "objective with checkpointed_objective, or run it inside a ResumableStudy"
        )
    return engine.workspace(trial.number)


def save_training_state(
    trial: optuna.Trial,
    epoch: int,
    model: Stateful,
    optimizer: Stateful | None = None,
    scheduler: Stateful | None = None,
    *,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Save the training state after ``epoch`` into the trial's workspace, atomically.

    Saved: the state dicts, the epoch, the global random generators (``random``, NumPy,
    torch CPU and CUDA), the trial's intermediate values and user attributes, and ``extra``
    (tensors, numbers, strings, lists and dicts).

    Returns:
        The file written.
    """
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise InvalidArgumentError(f"epoch must be a non-negative int, not {epoch!r}")
    frozen = frozen_trial_of(trial)
    content = {
        "format": _FORMAT,
        "trial": trial.number,
        "epoch": epoch,
        "params": dict(frozen.params),
        "model": model.state_dict(),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "rng": capture_rng_state(),
        "intermediate_values": dict(frozen.intermediate_values),
        "user_attrs": dict(frozen.user_attrs),
        "extra": None if extra is None else dict(extra),
    }
    path = trial_dir(trial) / TRAINING_STATE
    atomic_write(path, dump_object(content))
    return path


def load_training_state(
    trial: optuna.Trial,
    model: Stateful,
    optimizer: Stateful | None = None,
    scheduler: Stateful | None = None,
    *,
    extra: dict[str, Any] | None = None,
    map_location: Any = "cpu",
    trusted: bool = False,
    allowed_globals: Iterable[object] = (),
) -> int:
    """Load the trial's saved training state, if any, and return the epoch to start from.

    With no saved state it changes nothing and returns 0. Otherwise it loads the state
    dicts, puts the global random generators back, reports the saved intermediate values
    and user attributes the trial does not have yet, fills ``extra`` with what was saved
    there, and returns the saved epoch + 1.

    Args:
        trial: The running trial.
        model: Loaded with ``load_state_dict``; so are ``optimizer`` and ``scheduler``.
        optimizer: Pass it when it was saved.
        scheduler: Pass it when it was saved.
        extra: A dict to update with the saved ``extra``.
        map_location: Where tensors are loaded (``load_state_dict`` then copies them to
            the model's device).
        trusted: Load with the full unpickler.
        allowed_globals: Classes and functions the safe loader may use.

    Raises:
        CheckpointMismatchError: The state was saved by a trial with other parameters.
        CorruptCheckpointError: The file is damaged, or lacks a part that was passed.
    """
    allowed = check_loading(trusted, allowed_globals)
    path = trial_dir(trial) / TRAINING_STATE
    if not path.exists():
        return 0
    content = load_object(
        path.read_bytes(),
        trusted=trusted,
        allowed_globals=allowed,
        what=str(path),
        map_location=map_location,
    )
    if not isinstance(content, dict) or content.get("format") != _FORMAT:
        raise CorruptCheckpointError(f"{path} is not a training state saved by optuna-resume")
    params = frozen_trial_of(trial).params
    saved_params = content["params"]
    shared = saved_params.keys() & params.keys()
    differing = sorted(k for k in shared if saved_params[k] != params[k])
    if differing:
        raise CheckpointMismatchError(
            f"{path} was saved by a trial {trial.number} with other parameters "
            f"({', '.join(f'{k}={saved_params[k]!r}, now {params[k]!r}' for k in differing)}): "
            "it is not this trial's state. Move the folder away to start this trial afresh."
        )
    for name, part in (("optimizer", optimizer), ("scheduler", scheduler)):
        if part is not None and content[name] is None:
            raise CorruptCheckpointError(f"{path} holds no {name} state, but one was passed")
    model.load_state_dict(content["model"])
    if optimizer is not None:
        optimizer.load_state_dict(content["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(content["scheduler"])
    restore_rng_state(content["rng"])
    reported = frozen_trial_of(trial).intermediate_values
    for step, value in sorted(content["intermediate_values"].items()):
        if step not in reported:
            trial.report(value, step)
    for key, value in content["user_attrs"].items():
        if key not in frozen_trial_of(trial).user_attrs:
            trial.set_user_attr(key, value)
    if extra is not None and content["extra"] is not None:
        extra.update(content["extra"])
    epoch: int = content["epoch"]
    _logger.info("trial %d resumes after epoch %d (from %s)", trial.number, epoch, path)
    return epoch + 1


__all__ = ["Stateful", "load_training_state", "save_training_state", "trial_dir"]
