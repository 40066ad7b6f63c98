"""The checkpoint format: one sampler state and its study's system attributes.

A checkpoint is a ``torch.save`` document holding a metadata dict and a payload (a
zlib-compressed pickle of the sampler, the pruner and, if captured, the global random
generators), each with its SHA-256. Large parts of a sampler that never change are kept
apart, once, as blobs named by their SHA-256. This module knows nothing of where states
live: that is a checkpoint store's job (:mod:`._store`).
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import pickle
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from ._error import (
    CheckpointMismatchError,
    CorruptCheckpointError,
)
from ._rng import RngState
from ._serialization import (
    Detached,
    dump_state,
    join_large_parts,
    load_object,
    split_sampler,
)
from ._version import __version__

FORMAT = "optuna-resume-checkpoint"
# 5: NumPy RandomStates pickled as their key bytes (random_state); 4: the payload may be a
# plain pickle; 3: metadata checksummed too; 2: zlib-compressed payload (all read)
FORMAT_VERSION = 5
_MAX_PAYLOAD = 1 << 31
BEFORE = "before"
AFTER = "after"


@dataclass(frozen=True)
class CheckpointInfo:
    """Where a checkpoint is and what it is of.

    Attributes:
        path: The file.
        trial: The trial number: the trial about to be asked for (``before``) or the trial
            whose objective just ended (``after``).
        phase: ``"before"`` or ``"after"``.
    """

    path: Path
    trial: int
    phase: str

    @property
    def position(self) -> int:
        """The number of the next trial this state would ask for."""
        return state_position(self.trial, self.phase)


def state_position(trial: int, phase: str) -> int:
    """The number of the next trial a state would ask for: the state before trial N and the
    state after trial N - 1 are both of position N (the one rule for "the state before
    trial N")."""
    return trial if phase == BEFORE else trial + 1


def position_keys(position: int) -> list[tuple[int, str]]:
    """The keys ``(trial, phase)`` of the states of a position, the one to load first first:
    the state before trial ``position``, then the state after trial ``position - 1``."""
    keys = [(position, BEFORE)]
    if position > 0:
        keys.append((position - 1, AFTER))
    return keys


@dataclass
class Checkpoint:
    """A loaded checkpoint.

    Attributes:
        info: Where it came from.
        meta: Its metadata (versions, study, trial, phase, time, checksum, ...).
        sampler: The restored sampler. Its functions and objects of classes defined inside
            functions were not saved: they are put back from the sampler passed on resume
            (see ``join_code_parts``); until then they are placeholders.
        rng: The global random generators' states, if they were captured.
        pruner: The study's pruner (its state: Hyperband's brackets, ...), if it was saved.
    """

    info: CheckpointInfo
    meta: dict[str, Any]
    sampler: Any
    rng: RngState | None = None
    pruner: Any = None


_VERSION_NAMES = {"optuna_version": "Optuna", "torch_version": "torch", "numpy_version": "NumPy"}


def running_versions() -> dict[str, str]:
    """The versions a checkpoint written now records (and that loading one depends on)."""
    return dict(_running_versions())


@functools.cache
def _running_versions() -> tuple[tuple[str, str], ...]:
    import torch  # here, not at import: the command line answers without it

    return (
        ("optuna_version", str(optuna.__version__)),
        ("torch_version", str(torch.__version__)),
        ("numpy_version", str(np.__version__)),
    )


def other_versions(meta: dict[str, Any]) -> tuple[str, str] | None:
    """``(theirs, ours)`` in words where a checkpoint was written by other versions."""
    ours = running_versions()
    differ = [k for k in ours if meta.get(k) is not None and meta.get(k) != ours[k]]
    if not differ:
        return None
    theirs_said = ", ".join(f"{_VERSION_NAMES[k]} {meta[k]}" for k in differ)
    ours_said = ", ".join(f"{_VERSION_NAMES[k]} {ours[k]}" for k in differ)
    return theirs_said, ours_said


@dataclass
class PayloadCache:
    """The last payload encoded: a state saved again unchanged is not compressed again.

    (The state before trial ``N + 1`` is often the state after trial ``N``, byte for byte.)
    """

    raw: bytes = b""
    payload: bytes = b""
    digest: str = ""


def encode_checkpoint(
    trial: int,
    phase: str,
    sampler: optuna.samplers.BaseSampler,
    meta: dict[str, Any],
    rng: RngState | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
    cache: PayloadCache | None = None,
) -> tuple[bytes, dict[str, bytes]]:
    """A checkpoint's ``torch.save`` document, and the large parts it refers to by SHA-256."""
    import torch  # here, not at import: the command line answers without it

    lean_sampler, blobs = split_sampler(sampler)
    lean_pruner, pruner_blobs = split_sampler(pruner) if pruner is not None else (None, {})
    blobs.update(pruner_blobs)
    content: dict[str, Any] = {"sampler": lean_sampler}
    if rng is not None:
        content["rng"] = rng
    if lean_pruner is not None:
        content["pruner"] = lean_pruner
    raw = dump_state(content)
    if cache is not None and cache.raw == raw:
        payload, digest = cache.payload, cache.digest
    else:
        # Compressed: a TPE sampler after 1,000 trials pickles to ~18 KB, ~8 KB compressed.
        payload = zlib.compress(raw, 1)
        digest = hashlib.sha256(payload).hexdigest()
        if cache is not None:
            cache.raw, cache.payload, cache.digest = raw, payload, digest
    full_meta = {
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        **running_versions(),
        "trial": trial,
        "phase": phase,
        "sampler_class": f"{type(sampler).__module__}.{type(sampler).__qualname__}",
        "created": time.time(),
        "compression": "zlib",
        **meta,
    }
    document = {
        "format": FORMAT,
        "meta": full_meta,
        # A uint8 tensor is stored raw; bytes would be pickled (protocol 2) as latin-1 text.
        "payload": torch.frombuffer(bytearray(payload), dtype=torch.uint8),
        "sha256": digest,
        "meta_sha256": meta_digest(full_meta),
    }
    return save_document(document), blobs


def meta_digest(meta: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode()).hexdigest()


def renumber_document(data: bytes, trial: int) -> bytes:
    """An encoded state made the state of ``trial`` (same phase; the payload as it is).

    Used when Optuna hands out an enqueued trial instead of a new one: the state before the
    ask is the state before that trial.
    """
    import torch  # here, not at import: the command line answers without it

    document = torch.load(io.BytesIO(data), weights_only=True)
    meta = {**document["meta"], "trial": trial, "moved_from": document["meta"]["trial"]}
    document["meta"], document["meta_sha256"] = meta, meta_digest(meta)
    return save_document(document)


def save_document(document: dict[str, Any]) -> bytes:
    """A checkpoint's document as ``torch.save`` writes it in its non-zip format.

    ``torch.load`` reads both of ``torch.save``'s formats (the safe loader too). The
    document is a small dict around one byte tensor, written twice per trial: the zip
    format's archive (a record per entry, CRC-32s, its directory) costs more than
    the document itself.
    """
    import torch  # here, not at import: the command line answers without it

    buffer = io.BytesIO()
    try:
        torch.save(document, buffer, _use_new_zipfile_serialization=False)
    except TypeError:  # a torch without the non-zip writer: its default format
        buffer = io.BytesIO()
        torch.save(document, buffer)
    return buffer.getvalue()


def _read_document(path: Path) -> dict[str, Any]:
    return decode_document(path.read_bytes(), path)


def verify_document(data: bytes, what: str) -> dict[str, Any]:
    """The verified metadata of an encoded checkpoint (checksums; nothing is unpickled)."""
    meta: dict[str, Any] = decode_document(data, what)["meta"]
    return meta


def check_loadable(
    data: bytes, what: str, *, trusted: bool = False, allowed_globals: Iterable[object] = ()
) -> None:
    """Raise what loading an encoded checkpoint would raise (the safe loader runs nothing).

    Raises:
        CorruptCheckpointError: It is damaged.
        UnsafeCheckpointError: Loading it would call code outside the allowlist.
    """
    document = decode_document(data, what)
    load_object(
        document["payload"], trusted=trusted, allowed_globals=tuple(allowed_globals), what=what
    )


def decode_document(data: bytes, path: Path | str, *, decompress: bool = True) -> dict[str, Any]:
    """An encoded checkpoint's document, verified (checksums; the payload is not unpickled).

    Its payload (decompressed, unless ``decompress=False``) and the blobs an exported
    checkpoint carries (``"blobs"``: SHA-256 to bytes, each checked) are bytes.
    """
    import torch  # here, not at import: the command line answers without it

    try:
        document = torch.load(io.BytesIO(data), weights_only=True)
    except pickle.UnpicklingError as e:
        if "Weights only load failed" not in str(e):
            raise CorruptCheckpointError(f"{path} is not a readable checkpoint ({e})") from e
        raise CorruptCheckpointError(
            f"{path} is not a readable checkpoint: loading it would call code outside the safe "
            "loader's allowlist (nothing was run), so it is not a file of this library or it "
            "was tampered with. Remove it, or restore the checkpoint folder from a backup."
        ) from None
    except Exception as e:
        raise CorruptCheckpointError(
            f"{path} is not a readable checkpoint (truncated, corrupt or another format; "
            f"{type(e).__name__}). Restore the checkpoint folder from a backup "
            "(checkpoints_backup-<n>) or rewind to an earlier trial (rewind_to=N)."
        ) from e
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CorruptCheckpointError(f"{path} is not an optuna-resume checkpoint")
    payload = document.get("payload")
    meta = document.get("meta")
    if not isinstance(payload, torch.Tensor) or not isinstance(meta, dict):
        raise CorruptCheckpointError(f"{path} is an incomplete checkpoint")
    payload = payload.numpy().tobytes()
    document["payload"] = payload
    if hashlib.sha256(payload).hexdigest() != document.get("sha256"):
        raise CorruptCheckpointError(
            f"{path} fails its checksum: it was modified or damaged after it was written"
        )
    version = meta.get("format_version", 0)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CorruptCheckpointError(
            f"{path} was written by a newer optuna-resume (format {version!r}); upgrade "
            "optuna-resume to read it"
        )
    # Checked wherever a checksum is present, not only where the version asks for one: a
    # damaged key "format_version" must not turn the check off.
    checksummed = version >= 3 or "meta_sha256" in document
    if checksummed and document.get("meta_sha256") != meta_digest(meta):
        raise CorruptCheckpointError(
            f"{path} fails its metadata checksum: it was modified or damaged after it was written"
        )
    blobs = document.get("blobs", {})
    if not isinstance(blobs, dict) or not all(
        isinstance(b, torch.Tensor) and b.dtype == torch.uint8 for b in blobs.values()
    ):
        raise CorruptCheckpointError(f"{path} holds malformed blobs")
    document["blobs"] = {str(sha): b.numpy().tobytes() for sha, b in blobs.items()}
    for sha, blob in document["blobs"].items():
        if hashlib.sha256(blob).hexdigest() != sha:
            raise CorruptCheckpointError(f"{path} holds a blob that fails its checksum ({sha})")
    if decompress and meta.get("compression") == "zlib":
        document["payload"] = _decompress(payload, path)
    return document


def _decompress(data: bytes, path: Path | str) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, _MAX_PAYLOAD)
    except zlib.error as e:
        raise CorruptCheckpointError(f"{path} holds a damaged payload ({e})") from e
    if inflater.unconsumed_tail or not inflater.eof:
        raise CorruptCheckpointError(f"{path} holds a payload that is cut off or too large")
    return out


def read_meta(path: Path) -> dict[str, Any]:
    """The verified metadata of a checkpoint (the payload is checksummed, not unpickled)."""
    meta: dict[str, Any] = _read_document(path)["meta"]
    return meta


def read_payload(path: Path) -> bytes:
    """The verified, decompressed payload of a checkpoint (not unpickled)."""
    payload: bytes = _read_document(path)["payload"]
    return payload


def read_checkpoint(
    info: CheckpointInfo,
    *,
    study_uid: str | None,
    trusted: bool = False,
    allowed_globals: Iterable[object] = (),
) -> Checkpoint:
    """Load and verify a checkpoint.

    Args:
        info: The checkpoint to load.
        study_uid: The study's identity in its storage; a checkpoint of another study (or of
            a study of the same name in another storage) is refused. ``None`` skips the check.
        trusted: Unpickle with the full unpickler.
        allowed_globals: Classes and functions to allow besides the built-in allowlist.
    """
    document = _read_document(info.path)
    meta = document["meta"]
    if (meta.get("trial"), meta.get("phase")) != (info.trial, info.phase):
        raise CorruptCheckpointError(
            f"{info.path} holds the state of trial {meta.get('trial')} ({meta.get('phase')}), "
            "not the one its name says: it was renamed or copied over. Give it back its name "
            f"(trial-{meta.get('trial')!s:0>6}.{meta.get('phase')}.pt) or remove it."
        )
    if study_uid is not None and meta.get("study_uid") != study_uid:
        raise CheckpointMismatchError(
            f"{info.path} belongs to study {meta.get('study_name')!r} in storage "
            f"{meta.get('storage')!r}, not to this one. Use a separate root (or checkpoint "
            "folder) for each study, or remove the folder if that study is gone."
        )
    allowed = tuple(allowed_globals)
    content = load_object(
        document["payload"], trusted=trusted, allowed_globals=allowed, what=str(info.path)
    )
    if not isinstance(content, dict) or "sampler" not in content:
        raise CorruptCheckpointError(f"{info.path} holds no sampler")
    sampler = content["sampler"]
    blob_folder = info.path.parent / "blobs"
    carried: dict[str, bytes] = document["blobs"]  # (an exported checkpoint's: checked)

    def load_blob(sha: str) -> Any:
        if sha in carried:
            what = f"{info.path} (blob {sha})"
            return load_object(carried[sha], trusted=trusted, allowed_globals=allowed, what=what)
        blob_path = blob_folder / f"{sha}.pt"
        try:
            data = blob_path.read_bytes()
        except FileNotFoundError:
            raise CorruptCheckpointError(
                f"{info.path} needs {blob_path}, which is missing"
            ) from None
        if hashlib.sha256(data).hexdigest() != sha:
            raise CorruptCheckpointError(f"{blob_path} fails its checksum")
        return load_object(data, trusted=trusted, allowed_globals=allowed, what=str(blob_path))

    sampler = join_large_parts(sampler, load_blob)
    if not isinstance(sampler, (optuna.samplers.BaseSampler, Detached)):
        raise CorruptCheckpointError(f"{info.path} holds a {type(sampler)!r}, not a sampler")
    rng = content.get("rng")
    if rng is not None and not isinstance(rng, dict):
        raise CorruptCheckpointError(f"{info.path} holds a malformed random-generator state")
    pruner = content.get("pruner")
    if pruner is not None:
        pruner = join_large_parts(pruner, load_blob)
        if not isinstance(pruner, (optuna.pruners.BasePruner, Detached)):
            raise CorruptCheckpointError(f"{info.path} holds a {type(pruner)!r}, not a pruner")
    return Checkpoint(info, meta, sampler, rng, pruner)


__all__ = [
    "AFTER",
    "BEFORE",
    "Checkpoint",
    "CheckpointInfo",
    "PayloadCache",
    "check_loadable",
    "decode_document",
    "encode_checkpoint",
    "meta_digest",
    "position_keys",
    "read_checkpoint",
    "read_meta",
    "read_payload",
    "renumber_document",
    "save_document",
    "state_position",
    "verify_document",
]
