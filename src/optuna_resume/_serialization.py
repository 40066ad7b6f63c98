"""Saving samplers with ``torch.save`` and loading them without running untrusted code.

A sampler's state is a pickle: written by ``torch.save`` (protocol 2) when it holds tensors,
else by :mod:`pickle` directly (twice as fast; protocol 4, with Python 3's names). Loading goes
through PyTorch's ``weights_only`` unpickler, or for a plain pickle through Python's
unpickler restricted the same way: neither calls anything that is not on an allowlist. The
allowlist is made per file from the globals the file names: classes and functions defined
in Optuna's sampler, distribution and search-space modules, NumPy's array and random-state
constructors, and what the user allows explicitly. Anything else (``os.system``,
``subprocess``, a user's own class) is refused before a byte is unpickled.
"""

from __future__ import annotations

import codecs
import collections
import contextlib
import copy
import copyreg
import functools
import hashlib
import importlib
import io
import pickle
import pickletools
import sys
import threading
import types
from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast

import numpy as np
import optuna

from ._error import CorruptCheckpointError, SamplerPickleError, UnsafeCheckpointError
from ._optuna._samplers import slim_gp_regressors

_ALLOWED_MODULE_PREFIXES = (
    "optuna.samplers.",
    "optuna.pruners.",
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
        "optuna_resume._serialization.FunctionRef",
        "optuna_resume._serialization.Detached",
        "optuna_resume._serialization.fresh_lock",
        "optuna_resume._serialization.random_state",
    }
)
_LARGE = 1024
# What torch.save writes (protocol 2), and what its weights_only loader allows without being
# told, for data that holds no tensor, beyond _ALLOWED_NAMES (set, complex, OrderedDict).
_PROTOCOL = 4  # bytes and NumPy arrays' data written as bytes (protocol 2: latin-1 text)
_PICKLE_START = b"\x80"  # (a sampler state or blob by torch.save is a zip file)
_TORCH_NAME = b"torch"
_PLAIN_DEFAULTS: dict[str, object] = {
    "_codecs.encode": codecs.encode,  # bytes, in protocol 2
    "builtins.bytearray": bytearray,
    "collections.Counter": collections.Counter,
}
_MAX_DEPTH = 6
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


def is_allowed_data_global(name: str) -> object | None:
    """The global ``name`` if it is NumPy's, PyTorch's or pickle's data machinery, else None.

    Never a class or function of Optuna: for reading a state as inert data.
    """
    if name.startswith("torch._utils._rebuild_") or name == "_codecs.encode":
        return _resolve(name)  # (bytes in protocol 2 are ``_codecs.encode(text, "latin1")``)
    if name in _ALLOWED_NAMES or name.startswith("numpy.dtypes."):
        return _is_allowed(name, frozenset())
    return None


def dump_object(obj: object) -> bytes:
    """Serialize ``obj`` with ``torch.save``."""
    import torch  # here, not at import: the command line answers without it

    buffer = io.BytesIO()
    with _pickling_errors():
        torch.save(obj, buffer)
    return buffer.getvalue()


def is_plain_pickle(data: bytes) -> bool:
    """Whether ``data`` is a plain pickle (:func:`dump_state`), not a ``torch.save`` file."""
    return data.startswith(_PICKLE_START)


def dump_state(obj: object) -> bytes:
    """Serialize a sampler's state: a plain pickle when it holds nothing of PyTorch's.

    ``torch.save`` calls a Python function for every object it pickles (to find tensor
    storages), which doubles the cost of saving a sampler that holds none. Such a state is
    pickled directly, with protocol 4 (bytes and arrays' data as bytes, not protocol 2's
    latin-1 text: smaller, and faster to compress); one that names
    anything of PyTorch's (a tensor of GPSampler) is written by ``torch.save``. Both load
    with :func:`load_object`.
    """
    buffer = io.BytesIO()
    with _pickling_errors():
        # Python 3's names (builtins.set, not protocol 2's default __builtin__.set): the
        # names the allowlist knows.
        pickler = pickle.Pickler(buffer, protocol=_PROTOCOL, fix_imports=False)
        pickler.dispatch_table = _DISPATCH
        pickler.dump(obj)
    data = buffer.getvalue()
    if _TORCH_NAME in data:
        return dump_object(obj)  # (also when "torch" is only in a string: the slower path)
    return data


def random_state(key: bytes, pos: int, has_gauss: int, gauss: float) -> np.random.RandomState:
    """A NumPy ``RandomState`` (MT19937) saved by :func:`dump_state`, at the same point.

    NumPy's own pickling of a ``RandomState`` goes through a dict of its state and an array
    pickled as an object: three times the cost of its 2.5 KB of key, for each generator a
    sampler holds, twice per trial. This is the same state (the key, position and cached
    Gaussian of ``get_state()``), the key as bytes.
    """
    key_words = np.frombuffer(key, dtype="<u4") if isinstance(key, bytes) else None
    if key_words is None or key_words.size != _MT19937_WORDS:
        raise CorruptCheckpointError("a saved NumPy RandomState has a malformed key")
    generator = np.random.RandomState(0)
    generator.set_state(("MT19937", key_words.astype(np.uint32), pos, has_gauss, gauss))
    return generator


_MT19937_WORDS = 624


def _reduce_random_state(generator: np.random.RandomState) -> Any:
    state = generator.get_state(legacy=False)
    if state.get("bit_generator") != "MT19937":
        return generator.__reduce__()  # another bit generator: NumPy's own pickling
    words = np.asarray(state["state"]["key"], dtype="<u4")
    return (
        random_state,
        (words.tobytes(), int(state["state"]["pos"]), int(state["has_gauss"]), state["gauss"]),
    )


_DISPATCH = {**copyreg.dispatch_table, np.random.RandomState: _reduce_random_state}


@contextlib.contextmanager
def _pickling_errors() -> Iterator[None]:
    try:
        yield
    except (pickle.PicklingError, TypeError, AttributeError, ValueError, RecursionError) as e:
        if not isinstance(e, (pickle.PicklingError, RecursionError)) and (
            "pickle" not in str(e).lower()
        ):
            raise
        raise SamplerPickleError(
            f"the sampler cannot be saved: {e}. Samplers are saved with torch.save (pickle): "
            "functions and classes defined inside functions are left out and taken from the "
            "sampler passed on resume, but other objects (open files, connections, generators) "
            "cannot be saved; keep them outside the sampler."
        ) from e


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
    import torch  # here, not at import: the command line answers without it

    extra = frozenset(global_name(g) for g in allowed_globals)
    if is_plain_pickle(data):
        return _load_plain(data, trusted=trusted, extra=extra, what=what)
    if trusted:
        return torch.load(io.BytesIO(data), weights_only=False, map_location=map_location)
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


class _AllowlistUnpickler(pickle.Unpickler):
    """Python's unpickler restricted to the allowlist (the pickle documentation's recipe).

    Every class or function a pickle names goes through :meth:`find_class`, the only way a
    pickle reaches code; persistent ids are refused by the base class.
    """

    def __init__(self, data: bytes, extra: frozenset[str]) -> None:
        super().__init__(io.BytesIO(data))
        self._extra = extra

    def find_class(self, module: str, name: str) -> Any:
        target = _plain_allowed(f"{module}.{name}", self._extra)
        if target is None:
            raise _Refused([f"{module}.{name}"])
        return target


class _Refused(Exception):
    def __init__(self, names: list[str]) -> None:
        super().__init__(names)
        self.names = names


def _plain_allowed(name: str, extra: frozenset[str]) -> object | None:
    return _PLAIN_DEFAULTS.get(name) or _is_allowed(name, extra)


def _load_plain(data: bytes, *, trusted: bool, extra: frozenset[str], what: str) -> Any:
    """Load a plain pickle written by :func:`dump_state`.

    The globals it names are checked before anything is unpickled (as PyTorch's loader
    does), and the unpickler itself resolves nothing else.
    """
    try:
        if trusted:
            return pickle.loads(data)
        refused = sorted(n for n in _named_globals(data) if _plain_allowed(n, extra) is None)
        if refused:
            raise _Refused(refused)
        return _AllowlistUnpickler(data, extra).load()
    except _Refused as e:
        raise UnsafeCheckpointError(
            f"{what} refers to {', '.join(e.names)}, which the safe loader does not "
            "run. Nothing was loaded. If you wrote this file yourself (e.g. with a custom "
            "sampler), pass allowed_globals=[...] with those classes or functions, or "
            "trusted=True to load it with the full unpickler."
        ) from None
    except Exception as e:
        raise CorruptCheckpointError(f"{what} could not be loaded: {e}") from e


_STRING_OPS = frozenset({"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"})
_GET_OPS = frozenset({"BINGET", "LONG_BINGET", "GET"})


def _named_globals(data: bytes) -> set[str]:
    """The globals a pickle names, read without unpickling it.

    Protocol 2 names them in ``GLOBAL``; protocols 4 and 5 push the module and the name as
    strings (or fetch them from the memo) just before ``STACK_GLOBAL``. A name this scan
    cannot read is still refused by the unpickler's ``find_class``.
    """
    names: set[str] = set()
    memo: dict[int, str | None] = {}
    previous: str | None = None
    top: str | None = None
    for opcode, arg, _ in pickletools.genops(data):
        op = opcode.name
        if op == "GLOBAL":
            names.add(str(arg).replace(" ", "."))
        elif op in _STRING_OPS or op in _GET_OPS:
            value = str(arg) if op in _STRING_OPS else memo.get(int(cast(int, arg)))
            previous, top = top, value
            continue
        elif op == "MEMOIZE":
            memo[len(memo)] = top
            continue
        elif op == "FRAME":
            continue
        elif op in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[int(cast(int, arg))] = top
            continue
        elif op == "STACK_GLOBAL" and previous is not None and top is not None:
            names.add(f"{previous}.{top}")
        previous = top = None
    return names


def _is_large(value: object) -> bool:
    if isinstance(value, np.ndarray):
        return value.size >= _LARGE
    return isinstance(value, (list, tuple, dict, set, frozenset)) and len(value) >= _LARGE


Path = tuple[str, ...]  # attribute names, dict keys and tuple fields from the sampler down


class FunctionRef:
    """Stands in a saved sampler for a function it holds (a lambda, closure, user function).

    Code is not saved: on resume the function is taken from the sampler passed again, at
    the same place. Called without one, it says so.
    """

    __slots__ = ("path",)

    def __init__(self, path: Path) -> None:
        self.path = tuple(path)

    def __reduce__(self) -> tuple[type[FunctionRef], tuple[Path]]:
        return (FunctionRef, (self.path,))

    def __call__(self, *args: object, **kwargs: object) -> Any:
        raise SamplerPickleError(
            f"the function {_dotted(self.path)} of this sampler was not saved with it (code "
            "never is): pass the sampler, with its functions, again when you resume "
            "(ResumableStudy(..., sampler=...) or resume_study with study.sampler set)"
        )


class Detached:
    """Stands in a saved sampler for an object of a class that cannot be imported by name.

    A class defined inside a function (``<locals>``) cannot be named in a file; its
    instance's data is saved here and put back into the object of the same class that the
    sampler passed on resume holds at the same place.
    """

    __slots__ = ("class_name", "path", "state")

    def __init__(self, path: Path, class_name: str) -> None:
        self.path = tuple(path)
        self.class_name = class_name
        self.state: dict[str, Any] = {}

    def __reduce__(self) -> tuple[type[Detached], tuple[Path, str], dict[str, Any]]:
        return (Detached, (self.path, self.class_name), self.state)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.state = state


# A lock guards a sampler's caches between threads (Optuna 5.1's GA samplers hold one): it
# holds no state, cannot be pickled, and comes back as a new one, unlocked.
_LOCK_KINDS = {type(threading.Lock()): "Lock", type(threading.RLock()): "RLock"}


def fresh_lock(kind: str) -> Any:
    """A new, unlocked lock of ``kind`` (``"Lock"`` or ``"RLock"``): a saved lock loaded."""
    if kind == "Lock":
        return threading.Lock()
    if kind == "RLock":
        return threading.RLock()
    raise CorruptCheckpointError(f"a saved lock of unknown kind {kind!r}")


class LockRef:
    """Stands in a saved sampler for a lock it holds: it loads as a new one (fresh_lock)."""

    __slots__ = ("kind",)

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __reduce__(self) -> tuple[Callable[[str], Any], tuple[str]]:
        return (fresh_lock, (self.kind,))


def _dotted(path: Path) -> str:
    return ".".join(path) or "(the sampler itself)"


_DATA_MODULES = ("optuna.distributions", "optuna.samplers._lazy_random_state", "numpy")
_ATOMIC = frozenset({type(None), bool, int, float, str, bytes, np.ndarray})
_FUNCTION_TYPES = (
    types.FunctionType,
    types.MethodType,
    types.BuiltinFunctionType,
    functools.partial,
)
_CODE_TYPES = (*_FUNCTION_TYPES, types.ModuleType, type)


def _is_namedtuple(value: object) -> bool:
    return isinstance(value, tuple) and hasattr(value, "_fields") and hasattr(value, "_replace")


def _map_fields(value: Any, each: Callable[[str, Any], Any]) -> Any:
    """A named tuple with ``each(name, field)`` for every field; itself if none changed."""
    fields = {f: each(f, getattr(value, f)) for f in value._fields}
    changed = any(fields[f] is not getattr(value, f) for f in value._fields)
    return value._replace(**fields) if changed else value


def _is_function(value: object) -> bool:
    """Code the safe loader would not load by name: it is left out of a saved sampler.

    A ``unittest.mock`` object put in a sampler stands in for code (a method or function
    under test): it is left out too.
    """
    mock = sys.modules.get("unittest.mock")
    if mock is not None and isinstance(value, mock.NonCallableMock):
        return True
    if isinstance(value, type):
        return not _is_importable(value) or not _loads_by_name(global_name(value))
    return isinstance(value, _FUNCTION_TYPES) and not _loads_by_name(global_name(value))


@functools.lru_cache(maxsize=256)
def _loads_by_name(name: str) -> bool:
    """Whether the safe loader loads this function by its name (Optuna's own ones)."""
    return _is_allowed(name, frozenset()) is not None


def _is_importable(cls: type) -> bool:
    module = sys.modules.get(cls.__module__)
    target: object = module
    for part in cls.__qualname__.split("."):
        target = getattr(target, part, None)
    return target is cls


def split_sampler(sampler: object) -> tuple[Any, dict[str, bytes]]:
    """The sampler's (or pruner's) data, ready to save: large parts, functions, local classes out.

    Large attributes that never change become :class:`BlobRef` (stored once, by hash);
    functions the safe loader would not load become :class:`FunctionRef`; objects of classes
    defined inside a function become :class:`Detached`. Returns a copy (the sampler is not
    changed; unchanged parts are shared) and the blobs by hash.
    """
    blobs: dict[str, bytes] = {}

    def visit(value: Any, path: Path, depth: int) -> Any:
        if type(value) in _ATOMIC:
            return value  # most of a sampler's attributes: nothing to look into
        lock = _LOCK_KINDS.get(type(value))
        if lock is not None:
            return LockRef(lock)
        if _is_function(value):
            return FunctionRef(path)
        if depth > _MAX_DEPTH or isinstance(value, _CODE_TYPES):
            return value
        if type(value).__module__.startswith(_DATA_MODULES):
            return value  # distributions, random states: data that holds no code
        if isinstance(value, dict):
            if len(value) >= _LARGE or not all(isinstance(k, str) for k in value):
                return value
            items = {k: visit(v, (*path, k), depth + 1) for k, v in value.items()}
            changed = any(items[k] is not v for k, v in value.items())
            return items if changed else value
        if _is_namedtuple(value):
            return _map_fields(value, lambda f, item: visit(item, (*path, f), depth + 1))
        state = getattr(value, "__dict__", None)
        if not isinstance(state, dict):
            return value
        ours = depth == 0 or isinstance(value, optuna.samplers.BaseSampler)
        foreign = not ours and not type(value).__module__.startswith("optuna.")
        if foreign and _is_importable(type(value)):
            return value  # a user's object inside a sampler: saved whole, as it is
        changes: dict[str, Any] = {}
        for key, item in state.items():
            slim = slim_gp_regressors(item)
            if slim is not item:
                changes[key] = slim
                continue
            if _is_large(item):
                data = dump_object(item)
                sha = hashlib.sha256(data).hexdigest()
                blobs[sha] = data
                changes[key] = BlobRef(sha)
                continue
            portable = visit(item, (*path, key), depth + 1)
            if portable is not item:
                changes[key] = portable
        if not _is_importable(type(value)):
            detached = Detached(path, global_name(type(value)))
            detached.state = {**state, **changes}
            return detached
        if not changes:
            return value
        clone = copy.copy(value)
        clone.__dict__.update(changes)
        return clone

    return visit(sampler, (), 0), blobs


def _walk_refs(value: Any, depth: int, fix: Callable[[Any], Any]) -> Any:
    """Replace, in place where possible, each placeholder below ``value`` by ``fix(it)``."""
    if isinstance(value, (BlobRef, FunctionRef, Detached)):
        value = fix(value)
        if not isinstance(value, Detached):
            return value
    if depth > _MAX_DEPTH:
        return value
    if isinstance(value, dict):
        for key, item in list(value.items()):
            value[key] = _walk_refs(item, depth + 1, fix)
        return value
    if _is_namedtuple(value):
        return _map_fields(value, lambda _, item: _walk_refs(item, depth + 1, fix))
    state = value.state if isinstance(value, Detached) else getattr(value, "__dict__", None)
    if isinstance(state, dict):
        for key, item in list(state.items()):
            state[key] = _walk_refs(item, depth + 1, fix)
    return value


def join_large_parts(sampler: Any, load_blob: Callable[[str], Any]) -> Any:
    """Put back what :func:`split_sampler` stored as blobs; returns the sampler."""
    return _walk_refs(
        sampler, 0, lambda ref: load_blob(ref.sha256) if isinstance(ref, BlobRef) else ref
    )


def _at(obj: Any, path: Path) -> Any:
    """What ``obj`` holds at ``path`` (``None`` where nothing is)."""
    for key in path:
        if isinstance(obj, dict):
            obj = obj.get(key)
        elif _is_namedtuple(obj) and key in obj._fields:
            obj = getattr(obj, key)
        else:
            obj = getattr(obj, "__dict__", {}).get(key)
        if obj is None:
            return None
    return obj


def join_code_parts(sampler: Any, passed: Any) -> tuple[Any, list[str]]:
    """Put the functions and objects of local classes of ``passed`` into a loaded sampler.

    Returns the sampler (a new object where the sampler itself was :class:`Detached`) and the
    places ``passed`` had nothing for (their :class:`FunctionRef` stays and says so if
    called; a :class:`Detached` without a match is an error).

    Raises:
        SamplerPickleError: An object of a local class has no counterpart in ``passed``.
    """
    missing: list[str] = []

    def fix(ref: Any) -> Any:
        if isinstance(ref, BlobRef):
            return ref
        source = _at(passed, ref.path) if passed is not None else None
        if isinstance(ref, FunctionRef):
            if source is None or not callable(source):
                missing.append(_dotted(ref.path))
                return ref
            return source
        if source is None or global_name(type(source)) != ref.class_name:
            raise SamplerPickleError(
                f"the saved sampler holds an object of class {ref.class_name} at "
                f"{_dotted(ref.path)}, a class defined inside a function, which cannot be "
                "loaded by name: pass the sampler again (of the same class, built the same "
                "way) when you resume, and its data is put back into it"
            )
        restored = copy.copy(source)
        state = {key: _walk_refs(item, 1, fix) for key, item in ref.state.items()}
        restored.__dict__.clear()
        restored.__dict__.update(state)
        return restored

    return _walk_refs(sampler, 0, fix), missing


__all__ = [
    "BlobRef",
    "Detached",
    "FunctionRef",
    "LockRef",
    "dump_object",
    "dump_state",
    "fresh_lock",
    "global_name",
    "is_allowed_data_global",
    "is_plain_pickle",
    "join_code_parts",
    "join_large_parts",
    "load_object",
    "random_state",
    "split_sampler",
]
