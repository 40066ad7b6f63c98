"""What an engine is told once: the options the fronts take from the user, validated there.

:class:`ResumableStudy`, :func:`checkpointed_objective` and the functions each build one
:class:`EngineOptions` from their keywords (the ones that mirror ``optuna.create_study`` stay
flat on those fronts) and pass it down; nothing below them re-declares or re-checks them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from ._backup import DEFAULT_KEEP_BACKUPS
from ._error import InvalidArgumentError
from ._retention import Retention
from ._workspace import WorkspacePolicy, check_workspace_policy


def check_flag(name: str, value: object) -> None:
    """Refuse a flag that is not ``True`` or ``False`` (``trusted="no"`` would be true)."""
    if not isinstance(value, bool):
        raise InvalidArgumentError(f"{name} must be True or False, not {value!r}")


def check_lock_timeout(value: object) -> None:
    """Refuse a wait that is not a number of seconds >= 0 (``math.inf``: wait for ever)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise InvalidArgumentError(
            f"lock_timeout must be a number of seconds >= 0 (math.inf: wait until the other "
            f"session ends), not {value!r}"
        )


def check_allowed_globals(value: object) -> tuple[object, ...]:
    """``allowed_globals`` as a tuple of classes and functions (each names itself, as
    pickle does: ``module.qualname``); a name given as a string is refused."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise InvalidArgumentError(
            f"allowed_globals must be a list of classes and functions, not {value!r}"
        )
    found = tuple(value)
    for item in found:
        if isinstance(item, str) or not (
            isinstance(getattr(item, "__module__", None), str)
            and isinstance(getattr(item, "__qualname__", None), str)
        ):
            raise InvalidArgumentError(
                f"allowed_globals holds {item!r}: pass the classes and functions themselves "
                "(e.g. allowed_globals=[MySampler]), not their names"
            )
    return found


def check_loading(trusted: object, allowed_globals: object) -> tuple[object, ...]:
    """Check the two options of the safe loader together (every front that loads states
    takes both); ``allowed_globals`` as :func:`check_allowed_globals` returns it."""
    check_flag("trusted", trusted)
    return check_allowed_globals(allowed_globals)


@dataclass(frozen=True)
class EngineOptions:
    """How an engine saves, loads and keeps states (frozen: validated when made).

    Attributes:
        trusted: Load states with the full unpickler.
        allowed_globals: Classes and functions the safe loader may use besides its
            allowlist (custom samplers).
        keep_backups: How many redundant backups to keep (``None``: all).
        capture_rng: Also save (and put back) the global random generators.
        workspace_policy: What happens to a finished trial's workspace (``None``: ``"keep"``
            for a new engine; an engine already bound keeps its own).
        retention: Which "before" states stay (``None``: every one; an engine already
            bound keeps its own).
        worker: The worker id (``None``: a single process).
    """

    trusted: bool = False
    allowed_globals: tuple[object, ...] = ()
    keep_backups: int | None = DEFAULT_KEEP_BACKUPS
    capture_rng: bool = False
    workspace_policy: WorkspacePolicy | None = None
    retention: Retention | None = None
    worker: str | None = None

    def __post_init__(self) -> None:
        check_flag("capture_rng", self.capture_rng)
        # (An iterable of globals is taken as given, once: a generator would be used up.)
        allowed = check_loading(self.trusted, self.allowed_globals)
        object.__setattr__(self, "allowed_globals", allowed)
        keep = self.keep_backups
        if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
            raise InvalidArgumentError(
                f"keep_backups must be an int >= 1 (how many redundant backups to keep) or None "
                f"(keep all), not {keep!r}"
            )
        if self.workspace_policy is not None:
            check_workspace_policy(self.workspace_policy)
        if self.retention is not None and not isinstance(self.retention, Retention):
            raise InvalidArgumentError(
                f"retention must be a Retention (keep_checkpoints=, keep_trials=), not "
                f"{self.retention!r}"
            )

    def joined(self, later: EngineOptions) -> EngineOptions:
        """These options (an engine's, already bound) with what a later binding may change:
        the capture of the global generators can be turned on, and a workspace policy or a
        retention given then replaces this one."""
        return dataclasses.replace(
            self,
            capture_rng=self.capture_rng or later.capture_rng,
            workspace_policy=later.workspace_policy or self.workspace_policy,
            retention=later.retention or self.retention,
        )


__all__ = [
    "EngineOptions",
    "check_allowed_globals",
    "check_flag",
    "check_loading",
    "check_lock_timeout",
]
