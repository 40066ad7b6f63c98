"""Per-trial workspaces: a folder where a trial keeps its own state between epochs.

Trial N's workspace is ``<root>/workspaces/trial-NNNNNN``. It survives an interruption and is
found again when the interrupted trial runs again under the same number. A rewind moves the
workspaces of the trials it discards into the backup it took (``<checkpoints>_backup-<n>/
workspaces``). When a trial has finished (COMPLETE or PRUNED and told), its workspace is kept
(``"keep"``, the default) or deleted (``"delete"``).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from typing import Literal

from ._atomic import fsync_folder
from ._error import InvalidArgumentError

WORKSPACES = "workspaces"
WorkspacePolicy = Literal["keep", "delete"]
_NAME = re.compile(r"^trial-(\d{6,})$")


def workspace_path(root: Path, number: int) -> Path:
    """Where trial ``number``'s workspace is (it may not exist)."""
    return root / WORKSPACES / f"trial-{number:06d}"


def check_workspace_policy(policy: object) -> None:
    if policy not in ("keep", "delete"):
        raise InvalidArgumentError(f"workspace_policy must be 'keep' or 'delete', not {policy!r}")


def list_workspaces(root: Path) -> dict[int, Path]:
    """The existing workspaces by trial number."""
    found: dict[int, Path] = {}
    folder = root / WORKSPACES
    if folder.is_dir():
        for path in folder.iterdir():
            match = _NAME.match(path.name)
            if match and path.is_dir():
                found[int(match.group(1))] = path
    return found


def discard_workspaces(
    root: Path, *, from_number: int, spare: int | None, into: Path | None
) -> list[Path]:
    """Move the workspaces of trials ``>= from_number`` (but ``spare``) out of the live root.

    They go to ``into/workspaces`` (a backup), or to ``<root>/workspaces_discarded/<time>``
    when no backup was taken. Nothing is deleted. Returns where they went.
    """
    doomed = sorted(
        (n, path) for n, path in list_workspaces(root).items() if n >= from_number and n != spare
    )
    if not doomed:
        return []
    target = (
        into / WORKSPACES
        if into is not None
        else root / f"{WORKSPACES}_discarded" / time.strftime("%Y%m%d-%H%M%S")
    )
    target.mkdir(parents=True, exist_ok=True)
    moved = []
    for _, path in doomed:
        destination = target / path.name
        if destination.exists():
            destination = target / f"{path.name}-{time.time_ns()}"
        os.replace(path, destination)
        moved.append(destination)
    fsync_folder(target)
    fsync_folder(root / WORKSPACES)
    return moved


def remove_workspace(root: Path, number: int) -> bool:
    """Delete trial ``number``'s workspace; return whether there was one."""
    path = workspace_path(root, number)
    if not path.is_dir():
        return False
    shutil.rmtree(path)
    return True


__all__ = [
    "WORKSPACES",
    "WorkspacePolicy",
    "check_workspace_policy",
    "discard_workspaces",
    "list_workspaces",
    "remove_workspace",
    "workspace_path",
]
