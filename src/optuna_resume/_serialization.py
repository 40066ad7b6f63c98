"""Saving samplers with ``torch.save`` and loading them without running untrusted code.

Loading goes through PyTorch's ``weights_only`` unpickler, which calls nothing that is not
on an allowlist. The allowlist is made per file from the globals the file names: classes
and functions defined in Optuna's sampler, distribution and search-space modules, NumPy's
array and random-state constructors, and what the user allows explicitly. Anything else
(``os.system``, ``subprocess``, a user's own class) is refused before a byte is unpickled.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import io
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import optuna
import torch

from ._error import CorruptCheckpointError, SamplerPickleError, UnsafeCheckpointError

_ALLOWED_MODULE_PREFIXES = (
    "optuna.samplers.",
    "optuna.distributions",
    "optuna.search_space.",
    "optuna._gp.",
    "optuna._transform",
    "optuna.trial._state",
    "optuna.study._study_direction",
)
_ALLOWED_NAMES = frozenset(
    {
        "numpy._core.multiarray._reconstruct",
        "numpy.core.multiarray._reconstruct",
        "numpy._core.multiarray.scalar",
        "numpy.core.multiarray.scalar",
        "numpy.dtype",
        "numpy.ndarray",
        "numpy.random._pickle.__randomstate_ctor",
        "numpy.random._pickle.__bit_generator_ctor",
        "numpy.random._pickle.__generator_ctor",
        "numpy.random.mtrand.RandomState",
        "numpy.random._mt19937.MT19937",
        "numpy.random._pcg64.PCG64",
        "numpy.random._pcg64.PCG64DXSM",
        "numpy.random._philox.Philox",
        "numpy.random._sfc64.SFC64",
        "numpy.random._generator.Generator",
        # An unseeded generator (what most users run) pickles the SeedSequence it was made
        # from. Cython's unpickler builds only a SeedSequence (``__new__`` refuses any other
        # type) and sets its typed fields: it runs no code of the file's choosing.
        "numpy.random.bit_generator.SeedSequence",
        "numpy.random.bit_generator.__pyx_unpickle_SeedSequence",
        "numpy.random.bit_generator.SeedlessSeedSequence",
        "numpy.random.bit_generator.__pyx_unpickle_SeedlessSeedSequence",
        "builtins.set",
        "builtins.frozenset",
        "builtins.slice",
        "builtins.complex",
        "builtins.range",
        "collections.OrderedDict",
        "optuna_resume._serialization.BlobRef",
    }
)
_LARGE = 1024
# NumPy's constructors return instances of these classes without the file naming them.
_NUMPY_IMPLICIT_CLASSES = (
    *(getattr(np.dtypes, name) for name in dir(np.dtypes) if name.endswith("DType")),
    np.random.RandomState,
    np.random.Generator,
    np.random.MT19937,
    np.random.PCG64,
    np.random.PCG64DXSM,
    np.random.Philox,
    np.random.SFC64,
    np.random.SeedSequence,
)


class BlobRef:
    """Stands in a checkpoint for a large part of a sampler that is stored once, by hash."""

    __slots__ = ("sha256",)

    def __init__(self, sha256: str) -> None:
        self.sha256 = sha256

    def __reduce__(self) -> tuple[type[BlobRef], tuple[str]]:
        return (BlobRef, (self.sha256,))


def global_name(obj: object) -> str:
    """``module.qualname`` of a class or function, as pickle names it."""
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', '?')}"


def _resolve(name: str) -> object | None:
    parts = name.split(".")
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        try:
            target: object = importlib.import_module(module_name)
        except ImportError:
            continue
        try:
            for attr in parts[split:]:
                target = getattr(target, attr)
        except AttributeError:
            return None
        return target
    return None


def _is_allowed(name: str, extra: frozenset[str]) -> object | None:
    if name in extra or name in _ALLOWED_NAMES:
        return _resolve(name)
    if name.startswith("numpy.dtypes."):
        target = _resolve(name)
        return target if isinstance(target, type) else None
    if name.startswith(_ALLOWED_MODULE_PREFIXES):
        target = _resolve(name)
        is_code = isinstance(target, type) or callable(target)
        if is_code and global_name(target) == name:
            return target
    return None


def dump_object(obj: object) -> bytes:
    """Serialize ``obj`` with ``torch.save``."""
    buffer = io.BytesIO()
    try:
        torch.save(obj, buffer)
    except (TypeError, AttributeError, ValueError, RecursionError) as e:
        if "pickle" not in str(e).lower() and not isinstance(e, RecursionError):
            raise
        raise SamplerPickleError(
            f"the sampler cannot be saved: {e}. Samplers are saved with torch.save (pickle); "
            "pass module-level functions instead of lambdas or local functions."
        ) from e
    return buffer.getvalue()


def load_object(
    data: bytes,
    *,
    trusted: bool = False,
    allowed_globals: Iterable[object] = (),
    what: str = "checkpoint",
    map_location: Any = None,
) -> Any:
    """Load what :func:`dump_object` wrote, refusing any global that is not allowed.

    Args:
        data: The bytes.
        trusted: Load with the full unpickler (runs whatever the file asks for).
        allowed_globals: Classes and functions to allow besides the built-in allowlist.
        what: How to name the file in error messages.
        map_location: Where tensors go (see :func:`torch.load`).
    """
    if trusted:
        return torch.load(io.BytesIO(data), weights_only=False, map_location=map_location)
    extra = frozenset(global_name(g) for g in allowed_globals)
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(io.BytesIO(data))
    except Exception as e:
        raise CorruptCheckpointError(f"{what} is not a readable torch.save file: {e}") from e
    safe: list[Any] = list(_NUMPY_IMPLICIT_CLASSES)
    refused = []
    for name in names:
        target = _is_allowed(name, extra)
        if target is None:
            refused.append(name)
        else:
            safe.append(target)
    if refused:
        raise UnsafeCheckpointError(
            f"{what} refers to {', '.join(sorted(refused))}, which the safe loader does not "
            "run. Nothing was loaded. If you wrote this file yourself (e.g. with a custom "
            "sampler), pass allowed_globals=[...] with those classes or functions, or "
            "trusted=True to load it with the full unpickler."
        )
    try:
        with torch.serialization.safe_globals(safe):
            return torch.load(io.BytesIO(data), weights_only=True, map_location=map_location)
    except Exception as e:
        if isinstance(e, (UnsafeCheckpointError, KeyboardInterrupt)):
            raise
        raise CorruptCheckpointError(f"{what} could not be loaded: {e}") from e


def _is_large(value: object) -> bool:
    if isinstance(value, np.ndarray):
        return value.size >= _LARGE
    return isinstance(value, (list, tuple, dict, set, frozenset)) and len(value) >= _LARGE


def split_large_parts(
    sampler: optuna.samplers.BaseSampler,
) -> tuple[optuna.samplers.BaseSampler, dict[str, bytes]]:
    """Swap a sampler's large attributes for :class:`BlobRef` so they are stored once.

    Returns a shallow copy of ``sampler`` (the original is not changed) and the blobs by hash.
    Nested samplers (e.g. a PartialFixedSampler's base sampler) are handled too.
    """
    blobs: dict[str, bytes] = {}

    def visit(obj: Any) -> Any:
        state = getattr(obj, "__dict__", None)
        if not isinstance(state, dict):
            return obj
        changes: dict[str, Any] = {}
        for key, value in state.items():
            if _is_large(value):
                data = dump_object(value)
                sha = hashlib.sha256(data).hexdigest()
                blobs[sha] = data
                changes[key] = BlobRef(sha)
            elif isinstance(value, optuna.samplers.BaseSampler):
                nested = visit(value)
                if nested is not value:
                    changes[key] = nested
        if not changes:
            return obj
        clone = copy.copy(obj)
        clone.__dict__.update(changes)
        return clone

    return visit(sampler), blobs


def join_large_parts(sampler: Any, load_blob: Callable[[str], Any]) -> None:
    """Put back, in place, what :func:`split_large_parts` swapped out."""
    state = getattr(sampler, "__dict__", None)
    if not isinstance(state, dict):
        return
    for key, value in list(state.items()):
        if isinstance(value, BlobRef):
            state[key] = load_blob(value.sha256)
        elif isinstance(value, optuna.samplers.BaseSampler):
            join_large_parts(value, load_blob)


__all__ = [
    "BlobRef",
    "dump_object",
    "global_name",
    "join_large_parts",
    "load_object",
    "split_large_parts",
]
