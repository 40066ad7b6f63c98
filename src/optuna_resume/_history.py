"""The root's history: resumes, rewinds, backups, restores and final checkpoints over time.

One JSON object per line in ``<root>/history.jsonl``, appended durably. Per-trial
checkpoints are not logged here (their files say when they were written).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ._atomic import durable_append
from ._log import logger

HISTORY = "history.jsonl"

_logger = logger


def record_event(root: Path, event: str, **fields: Any) -> None:
    """Append an event to the root's history; a failure to log never stops the study."""
    entry = {"time": time.time(), "event": event, "pid": os.getpid(), **fields}
    try:
        durable_append(root / HISTORY, json.dumps(entry, default=str, sort_keys=False))
    except OSError as e:
        _logger.warning("could not write to %s: %s", root / HISTORY, e)


def read_history(root: Path) -> list[dict[str, Any]]:
    """The root's events, oldest first (a torn last line is skipped)."""
    path = root / HISTORY
    if not path.exists():
        return []
    events = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and "event" in entry:
            events.append(entry)
    return events


def last_target(root: Path) -> int | None:
    """The trial total the last ``optimize_until`` aimed at, if any."""
    for entry in reversed(read_history(root)):
        if entry["event"] == "optimize_until" and isinstance(entry.get("target"), int):
            target: int = entry["target"]
            return target
    return None


__all__ = ["HISTORY", "last_target", "read_history", "record_event"]
