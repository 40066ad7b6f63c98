"""The root folder: where a study's database, checkpoints, backups and lock live."""

from __future__ import annotations

import os
from pathlib import Path

from ._error import InvalidArgumentError, RootError

CHECKPOINTS = "checkpoints"


def check_root(root: object) -> None:
    """Refuse what cannot name a root folder (checked where it is given, before anything
    runs).

    Raises:
        InvalidArgumentError: ``root`` is not a path, or is empty (which would put the
            study's files into the current folder).
    """
    if isinstance(root, bool) or not isinstance(root, (str, os.PathLike)):
        raise InvalidArgumentError(
            f"root must be a path (str or os.PathLike), not {type(root).__name__}"
        )
    if not os.fspath(root):
        raise InvalidArgumentError(
            "root is an empty path: pass the folder for the study's database, checkpoints "
            'and backups ("." for the current folder, if that is what you mean)'
        )


def root_path(root: str | os.PathLike[str]) -> Path:
    """The absolute, normalised path of a root (``~`` expanded; ``a/../b`` is ``b``, whose
    name names the study by default, and whose database URL identifies its storage)."""
    return Path(os.path.abspath(Path(root).expanduser()))


def prepare_root(root: str | os.PathLike[str]) -> Path:
    """Create the root folder if needed and check that it can be used.

    Raises:
        InvalidArgumentError: ``root`` is not a path, or is empty.
        RootError: ``root`` is a file, cannot be created, or is not writable.
    """
    check_root(root)
    path = root_path(root)
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


__all__ = ["CHECKPOINTS", "check_root", "prepare_root", "root_path"]
