"""What an engine is told once: the options the fronts take from the user, validated there.

:class:`ResumableStudy`, :func:`checkpointed_objective` and the functions each build one
:class:`EngineOptions` from their keywords (the ones that mirror ``optuna.create_study`` stay
flat on those fronts) and pass it down; nothing below them re-declares or re-checks them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ._backup import DEFAULT_KEEP_BACKUPS
from ._error import InvalidArgumentError
from ._retention import Retention
from ._workspace import WorkspacePolicy, check_workspace_policy


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
        # (An iterable of globals is taken as given, once: a generator would be used up.)
        object.__setattr__(self, "allowed_globals", tuple(self.allowed_globals))
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


__all__ = ["EngineOptions"]
