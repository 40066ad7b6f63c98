"""Atomic and durable file updates: the one way this library writes a file."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from ._error import CheckpointWriteError
from ._fault import fault_point

_TEMP_SUFFIX = ".partial"


def partial_path(path: Path) -> Path:
    """A temporary name beside ``path`` that says which process is writing it."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}{_TEMP_SUFFIX}")


def _writer_is_alive(leftover: Path) -> bool:
    try:
        pid = int(leftover.name.split(".")[-3])
    except (IndexError, ValueError):
        return False
    return pid == os.getpid() or pid_alive(pid)


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this host (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def fsync_file(path: Path) -> None:
    """Make a file's content durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(folder: Path) -> None:
    """Make a folder's entries (a new, renamed or removed file) durable."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_produce(
    path: Path, produce: Callable[[Path], object], *, replace: bool = True, durable: bool = True
) -> bool:
    """Create ``path`` from ``produce(temp_path)`` so that a crash leaves the old file or the new.

    ``produce`` writes a temporary file in the same folder; it is fsynced and renamed over
    ``path``, then the folder is fsynced. On any error the temporary file is removed, ``path``
    is untouched and :class:`CheckpointWriteError` (an ``OSError`` with the original ``errno``)
    is raised.

    With ``replace=False`` an existing ``path`` is left as it is (another process made it
    first): the new file is hard-linked into place, which fails where the name exists.

    With ``durable=False`` nothing is fsynced: the update is still atomic (a crash of the
    process leaves the old file or the new), but a power loss may lose it. For copies of
    what is durable elsewhere (a state committed in the study's database).

    Returns:
        Whether ``path`` now holds what ``produce`` wrote.
    """
    tmp = partial_path(path)
    try:
        produce(tmp)
        fault_point("atomic.written")
        if durable:
            fsync_file(tmp)
        fault_point("atomic.synced")
        if replace:
            os.replace(tmp, path)
            placed = True
        else:
            placed = _place_unless_exists(tmp, path)
        fault_point("atomic.replaced")
        if durable:
            fsync_folder(path.parent)
        return placed
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(e, CheckpointWriteError):
            raise
        raise write_error(
            e,
            f"could not write {path}",
            "The previous version of the file is intact; free space or fix permissions and run "
            "again.",
        ) from e


def write_error(e: OSError, failed: str, outcome: str) -> CheckpointWriteError:
    """The :class:`CheckpointWriteError` for ``e``: what ``failed``, why, and the ``outcome``."""
    hint = " (the disk is full)" if e.errno == errno.ENOSPC else ""
    return CheckpointWriteError(
        e.errno or errno.EIO, f"{failed}{hint}: {e.strerror or e}. {outcome}"
    )


def _place_unless_exists(tmp: Path, path: Path) -> bool:
    try:
        os.link(tmp, path)  # atomic, and never over an existing name
    except FileExistsError:
        placed = False
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        if not path.exists():  # a file system without hard links: a rename, checked first
            os.rename(tmp, path)
            return True
        placed = False
    else:
        placed = True
    tmp.unlink()
    return placed


def atomic_write(
    path: Path, content: bytes | Callable[[BinaryIO], None], *, durable: bool = True
) -> None:
    """Replace ``path`` with ``content`` atomically and durably (see :func:`atomic_produce`).

    Args:
        path: The file to write.
        content: The bytes to write, or a function that writes them to a binary file.
        durable: Fsync the file and its folder (``False``: a copy of what is durable
            elsewhere).
    """

    def produce(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            if isinstance(content, bytes):
                f.write(content)
            else:
                content(f)

    atomic_produce(path, produce, durable=durable)


def durable_append(path: Path, line: str) -> None:
    """Append one line to a journal file and fsync it.

    A crash can leave only the last line torn; readers of such journals skip a line that
    does not parse. (Files that are replaced as a whole use :func:`atomic_write`.)
    """
    if "\n" in line:
        raise ValueError("a journal line cannot contain a newline")
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        fsync_folder(path.parent)


def remove_partial_files(folder: Path) -> list[Path]:
    """Remove what a killed :func:`atomic_produce` (or a killed folder copy) left behind."""
    removed = []
    try:
        names = [n for n in os.listdir(folder) if n.startswith(".") and n.endswith(_TEMP_SUFFIX)]
    except (FileNotFoundError, NotADirectoryError):
        names = []
    if names:
        for leftover in (folder / name for name in names):
            if _writer_is_alive(leftover):
                continue  # another live process is writing it
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
            removed.append(leftover)
    return removed


__all__ = [
    "atomic_produce",
    "atomic_write",
    "durable_append",
    "fsync_folder",
    "partial_path",
    "pid_alive",
    "remove_partial_files",
    "write_error",
]
