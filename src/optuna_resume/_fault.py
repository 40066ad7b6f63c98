"""Named fault points: the steps where a crash or a failed write is tested on purpose.

Every step that could leave something half-done calls :func:`fault_point` with its name.
Normally that is one dictionary lookup. With the environment variable
``OPTUNA_RESUME_FAULT`` set (read when the library is imported), the named step fails as
told, so that a test (or a user's own drill) hits it deliberately instead of by luck of
timing::

    OPTUNA_RESUME_FAULT="atomic.synced@3=kill"   # SIGKILL at the 3rd durable write's rename
    OPTUNA_RESUME_FAULT="backup.copying=enospc"  # the disk is full during a backup

The format is ``<point>[@<hit>][=<action>]``, several separated by commas: ``hit`` counts
the times this process reached the point (from 1; default 1) and ``action`` is ``kill``
(SIGKILL of this process, the default), ``enospc`` or ``eio`` (raise that ``OSError``), or
``stop`` (SIGSTOP of this process: the drill does something to it, e.g. cuts its database
connections, then sends SIGCONT and it goes on from there).
"""

from __future__ import annotations

import errno
import os
import signal

ENV = "OPTUNA_RESUME_FAULT"

POINTS: dict[str, str] = {
    "atomic.written": "a durable write: the temp file is written, not yet fsynced",
    "atomic.synced": "a durable write: the temp file is fsynced, not yet renamed over",
    "atomic.replaced": "a durable write: renamed over, the folder not yet fsynced",
    "ask.saved": "the state before a trial is saved; Optuna has not created the trial",
    "ask.taken": "Optuna created the trial (or popped an enqueued one); nothing after it done",
    "objective.returned": "the objective ended; its 'after' checkpoint is not yet written",
    "objective.saved": "the 'after' checkpoint is written; Optuna has not told the result",
    "backup.copying": "inside the copy of the study's database",
    "backup.copied": "the database is copied; the checkpoints are not yet linked",
    "backup.linking": "inside the hard-linking of the checkpoint folder",
    "state_row.writing": "inside a trial's transaction, before the state's row is written",
    "state_row.written": "a state's row is written inside its trial's transaction, uncommitted",
    "truncate.backed_up": "before a rewind or a re-run: the backup is taken, nothing removed",
    "truncate.in_transaction": "inside the transaction that removes trials (not committed)",
    "truncate.committed": "trials removed from the storage; their checkpoints not yet",
    "rebuild.deleted": "a journal study's rebuild: the old study deleted, nothing written",
    "rebuild.trial": "a journal study's rebuild: after each kept trial is written again",
    "rebuild.repairing": "the next entry puts back a study whose rebuild was cut off",
    "truncate.done": "trials and checkpoints removed; the sampler not yet restored",
    "final.saved": "the final checkpoint is written; the root's lock not yet released",
}
ACTIONS = ("kill", "enospc", "eio", "stop")

_plan: dict[str, tuple[int, str]] = {}
_hits: dict[str, int] = {}


def parse_plan(text: str) -> dict[str, tuple[int, str]]:
    """Parse ``OPTUNA_RESUME_FAULT`` (see the module's docstring) into {point: (hit, action)}.

    Raises:
        ValueError: An unknown point or action, or a malformed entry.
    """
    plan: dict[str, tuple[int, str]] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        where, _, action = entry.partition("=")
        point, _, hit = where.partition("@")
        action = action or "kill"
        if point not in POINTS:
            raise ValueError(f"{ENV}: unknown fault point {point!r} (known: {', '.join(POINTS)})")
        if action not in ACTIONS:
            raise ValueError(f"{ENV}: unknown action {action!r} (known: {', '.join(ACTIONS)})")
        if hit and not (hit.isdigit() and int(hit) >= 1):
            raise ValueError(f"{ENV}: the hit in {entry!r} must be a number from 1")
        plan[point] = (int(hit or 1), action)
    return plan


def load_plan(text: str | None = None) -> None:
    """(Re)read the plan from ``text`` or the environment and reset the hit counts."""
    global _plan
    _plan = parse_plan(os.environ.get(ENV, "") if text is None else text)
    _hits.clear()


def fault_point(name: str) -> None:
    """Fail here if the plan says so (see the module's docstring); else do nothing."""
    if not _plan or name not in _plan:
        return
    hit, action = _plan[name]
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] != hit:
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if action == "stop":
        os.kill(os.getpid(), signal.SIGSTOP)
        return
    code = errno.ENOSPC if action == "enospc" else errno.EIO
    raise OSError(code, f"{os.strerror(code)} (injected at {name})")


load_plan()

__all__ = ["ENV", "POINTS", "fault_point", "load_plan", "parse_plan"]
