"""A rebuilt study survives a kill: an intent record before the rebuild, a repair after.

The journal storages (and the gRPC proxy) cannot delete a trial: a rewind or a re-run deletes
the study and writes it again (``_storage._rebuild_study``). A kill in the middle would leave
some trials and no identity. So before it starts, the rebuild records in the root where an
intact copy of the study lies (the backup just taken, or a copy of its own) and removes the
record once done; the next entry that finds the record puts that copy back first, and the
resume then goes on from the study as it was before the cut-off rebuild (which it redoes).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import optuna
from optuna.storages import BaseStorage

from ._atomic import atomic_produce, atomic_write, fsync_folder
from ._backup import BackupInfo, copy_study_to_sqlite, restore_study_from_backup
from ._fault import fault_point
from ._optuna._access import set_study_id, storage_of
from ._optuna._storage import must_rebuild

INTENT = "rebuild.json"
SCRATCH = "rebuild-source.db"


@contextlib.contextmanager
def rebuild_guard(
    root: Path, storage: BaseStorage, study_id: int, study_name: str, copy: Path | None
) -> Iterator[None]:
    """Around a truncation: where it rebuilds the study, the next entry can repair it.

    Args:
        root: The study's root (the record lives there).
        storage: The live storage.
        study_id: The study.
        study_name: Its name.
        copy: A SQLite copy of the study as it is now (a backup), if there is one.
    """
    if not must_rebuild(storage):
        yield
        return
    scratch = None
    if copy is None or not copy.exists():
        scratch = root / SCRATCH
        atomic_produce(scratch, lambda target: copy_study_to_sqlite(storage, study_id, target))
        copy = scratch
    intent = {"study_name": study_name, "copy": str(copy), "scratch": scratch is not None}
    atomic_write(root / INTENT, json.dumps(intent).encode())
    yield
    (root / INTENT).unlink()
    fsync_folder(root)
    if scratch is not None:
        scratch.unlink(missing_ok=True)


def repair_cut_off_rebuild(root: Path, study: optuna.Study) -> str | None:
    """Put back the study whose rebuild a kill cut off; say so (``None``: nothing to do)."""
    path = root / INTENT
    try:
        intent = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    if intent.get("study_name") != study.study_name:
        return None
    copy = Path(intent["copy"])
    fault_point("rebuild.repairing")
    restored = restore_study_from_backup(
        BackupInfo(-1, copy, None), storage_of(study), study.study_name
    )
    set_study_id(study, restored)
    path.unlink()
    fsync_folder(root)
    if intent.get("scratch"):
        copy.unlink(missing_ok=True)
    return (
        f"the last rewind or re-run of study {study.study_name!r} was cut off while it rebuilt "
        f"the study; the study was put back as it was before, from {copy}, and the resume "
        "goes on from there"
    )


__all__ = ["INTENT", "rebuild_guard", "repair_cut_off_rebuild"]
