"""Checkpoint retention: which trials' "before" states stay on disk.

By default every trial keeps its state, so any trial can be rewound to (about 8 KB per trial
for TPE). ``keep_last=N`` keeps the states before the newest N trials only, plus those
before the trials in ``keep_trials``: the folder stays bounded, and a rewind to a trial
whose state was dropped raises :class:`CheckpointNotFoundError` naming the ones there are.
Each new trial drops at most one state (the one that slides out of the window), so states
kept under an earlier policy are never swept away at once.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass

from ._error import InvalidArgumentError


@dataclass(frozen=True)
class Retention:
    """Which "before" states to keep.

    Attributes:
        keep_last: How many of the newest states to keep (``None``: all).
        keep_trials: Trials whose state is always kept (e.g. ``range(0, 10**9, 100)``).
    """

    keep_last: int | None = None
    keep_trials: Container[int] = ()

    def __post_init__(self) -> None:
        last = self.keep_last
        if last is not None and (isinstance(last, bool) or not isinstance(last, int) or last < 1):
            raise InvalidArgumentError(
                f"keep_checkpoints must be an int >= 1 (the states before the newest N trials) "
                f"or None (keep every state), not {last!r}"
            )
        if not isinstance(self.keep_trials, Container):
            raise InvalidArgumentError(
                "keep_trials must be a container of trial numbers (a set, a range)"
            )

    def dropped_at(self, position: int) -> int | None:
        """The one state that saving the state before ``position`` pushes out, if any."""
        if self.keep_last is None:
            return None
        old = position - self.keep_last
        return old if old >= 0 and old not in self.keep_trials else None


__all__ = ["Retention"]
