"""The root folder: where a study's database, checkpoints, backups and lock live."""

from __future__ import annotations

import os
from pathlib import Path

from ._error import InvalidArgumentError, RootError

CHECKPOINTS = "checkpoints"


def prepare_root(root: str | os.PathLike[str]) -> Path:
    """Create the root folder if needed and check that it can be used.

    Raises:
        RootError: ``root`` is a file, cannot be created, or is not writable.
    """
    if isinstance(root, bool) or not isinstance(root, (str, os.PathLike)):
        raise InvalidArgumentError(
            f"root must be a path (str or os.PathLike), not {type(root).__name__}"
        )
    path = Path(root).expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise RootError(
            f"root {path} is a file; pass a folder (it is created if missing) for the study's "
            "database, checkpoints and backups"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RootError(e.errno, f"cannot create root folder {path}: {e.strerror or e}") from e
    if not os.access(path, os.W_OK | os.X_OK):
        raise RootError(
            f"root folder {path} is not writable; pass a folder this user can write to"
        )
    return path


__all__ = ["CHECKPOINTS", "prepare_root"]
