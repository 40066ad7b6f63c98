"""A worker's newest state, kept in the study where the storage has no table of ours.

On the journal storages (file, Redis) and the gRPC proxy the states are files in the
worker's root; a worker restarted on another host, with an empty root, would have none.
So each state after one of its trials is also recorded in the study itself, as a study
system attribute of that worker (``optuna_resume:worker_state:<id>``: the trial, the phase
and the encoded checkpoint), written before the trial's finish is committed; large parts
of a sampler that never change (``blobs``) are recorded once each
(``optuna_resume:blob:<sha256>``). Only the newest state is ever read; a journal keeps
every write, so it grows by one encoded state per trial (about 11.6 KB for TPE after 300
trials, base64: ``benchmarks/ab.py worker-state``).

These writes are the library's own: they are not logged as the trial's writes of study
attributes (a re-run does not take them back), and a rewind removes the states past it
with the trials.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from optuna.storages import BaseStorage

from ._optuna._attr_writes import unlogged

STATE_PREFIX = "optuna_resume:worker_state:"  # + a worker id: its newest state
BLOB_PREFIX = "optuna_resume:blob:"  # + a SHA-256: a large part of a state, once


@dataclass(frozen=True)
class MirroredState:
    """A worker's newest state as recorded in the study.

    Attributes:
        trial: The trial it is of.
        phase: ``"before"`` or ``"after"``.
        document: The encoded checkpoint.
        blobs: The large parts it refers to, by SHA-256 (those recorded).
    """

    trial: int
    phase: str
    document: bytes
    blobs: dict[str, bytes]


def state_key(worker: str) -> str:
    """The study system attribute that holds ``worker``'s newest state."""
    return f"{STATE_PREFIX}{worker}"


def record_state(
    storage: BaseStorage,
    study_id: int,
    worker: str,
    trial: int,
    phase: str,
    document: bytes,
    blobs: dict[str, bytes],
    recorded_blobs: set[str],
) -> None:
    """Record ``worker``'s newest state in the study (its missing blobs first).

    ``recorded_blobs`` holds the blobs known to be in the study already (filled from the
    study on first use, then kept up to date).
    """
    with unlogged():
        missing = [sha for sha in blobs if sha not in recorded_blobs]
        if missing:
            present = storage.get_study_system_attrs(study_id)
            for sha in missing:
                if f"{BLOB_PREFIX}{sha}" not in present:
                    storage.set_study_system_attr(
                        study_id, f"{BLOB_PREFIX}{sha}", _text(blobs[sha])
                    )
                recorded_blobs.add(sha)
        storage.set_study_system_attr(
            study_id,
            state_key(worker),
            {"trial": trial, "phase": phase, "document": _text(document), "blobs": sorted(blobs)},
        )


def recorded_state(system_attrs: dict[str, Any], worker: str) -> MirroredState | None:
    """``worker``'s newest state recorded in a study with these system attributes, if any
    (``None`` also for a record that is not one of ours, or whose blobs are missing)."""
    record = system_attrs.get(state_key(worker))
    if not isinstance(record, dict):
        return None
    trial, phase, text, shas = (record.get(k) for k in ("trial", "phase", "document", "blobs"))
    if not isinstance(trial, int) or phase not in ("before", "after") or not isinstance(text, str):
        return None
    if not isinstance(shas, list):
        return None
    try:
        document = base64.b64decode(text, validate=True)
        blobs = {}
        for sha in shas:
            blob = system_attrs.get(f"{BLOB_PREFIX}{sha}")
            if not isinstance(sha, str) or not isinstance(blob, str):
                return None
            blobs[sha] = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        return None
    return MirroredState(trial, phase, document, blobs)


def states_past(system_attrs: dict[str, Any], position: int) -> list[str]:
    """The keys of the recorded states of trials ``position`` and later, among a study's
    system attributes (a rewind to ``position`` removes them with the trials)."""
    stale = []
    for key, record in system_attrs.items():
        if key.startswith(STATE_PREFIX) and isinstance(record, dict):
            trial, after = record.get("trial"), record.get("phase") == "after"
            if not isinstance(trial, int) or trial + after > position:
                stale.append(key)
    return stale


def _text(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


__all__ = [
    "BLOB_PREFIX",
    "STATE_PREFIX",
    "MirroredState",
    "record_state",
    "recorded_state",
    "state_key",
    "states_past",
]
