"""Carrying a sampler's random state and settings across an upgrade of Optuna or NumPy.

A state written by other versions may not load (Optuna changed a class's fields, say). With
``allow_inexact=True`` the study goes on with the sampler passed in; this module reads the
saved one leniently (every object whose class is not NumPy's random or array machinery is
kept as inert data, never rebuilt: nothing of the file's choosing runs) and carries over
what still fits the new sampler: its random generators' states, found at the same place.
The stream then goes on instead of starting over from the seed: no draw of the earlier
trials comes back. Constructor settings are compared, not carried: a new version may give
a setting another meaning or derive other state from it in ``__init__``, so the sampler
passed (built by the new version) keeps its own, and each that differs is named.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._optuna._samplers import differing_settings, pin_lazy_generators
from ._serialization import global_name, is_allowed_data_global, is_plain_pickle

__all__ = ["Carried", "carry_over", "load_leniently"]

_MAX_DEPTH = 6


class Unrebuilt:
    """The pickled data of an object whose class the lenient loader does not rebuild."""

    class_name = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> Unrebuilt:
        obj = object.__new__(cls)
        obj.__dict__["__unrebuilt_args__"] = args
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:
            plain, slots = state
            if isinstance(plain, (dict, type(None))) and isinstance(slots, (dict, type(None))):
                state = {**(plain or {}), **(slots or {})}
        if isinstance(state, dict):
            self.__dict__.update({k: v for k, v in state.items() if isinstance(k, str)})
        else:
            self.__dict__["__unrebuilt_state__"] = state


_stubs: dict[str, type[Unrebuilt]] = {}


def _stub(name: str) -> type[Unrebuilt]:
    if name not in _stubs:
        _stubs[name] = type(name.rsplit(".", 1)[-1], (Unrebuilt,), {"class_name": name})
    return _stubs[name]


def _newobj(cls: Any, *args: Any) -> Any:
    return (
        cls.__new__(cls, *args) if isinstance(cls, type) and issubclass(cls, Unrebuilt) else None
    )


def _reconstructor(cls: Any, base: Any, state: Any) -> Any:
    return _newobj(cls)


class _LenientUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        full = f"{module}.{name}"
        if full in ("copyreg.__newobj__", "copyreg.__newobj_ex__"):
            return _newobj
        if full == "copyreg._reconstructor":
            return _reconstructor
        target = is_allowed_data_global(full)
        return _stub(full) if target is None else target


class _LenientPickleModule:
    """What ``torch.load`` needs of a pickle module, with the lenient unpickler."""

    __name__ = "optuna_resume_lenient_pickle"
    Unpickler = _LenientUnpickler
    UnpicklingError = pickle.UnpicklingError

    @staticmethod
    def load(file: Any, **kwargs: Any) -> Any:
        return _LenientUnpickler(file, **kwargs).load()


def load_leniently(data: bytes) -> Any:
    """Load a state (``torch.save`` or a plain pickle), every object outside NumPy as inert
    data."""
    import torch

    if is_plain_pickle(data):
        return _LenientUnpickler(io.BytesIO(data)).load()
    return torch.load(
        io.BytesIO(data),
        weights_only=False,
        pickle_module=_LenientPickleModule,
        map_location="cpu",
    )


def _generators(value: Any, path: tuple[Any, ...], depth: int) -> Iterator[tuple[Any, Any]]:
    if isinstance(value, (np.random.RandomState, np.random.Generator)):
        yield path, value
        return
    if depth > _MAX_DEPTH:
        return
    if isinstance(value, Unrebuilt):
        items: Any = value.__dict__.items()
    elif isinstance(value, dict):
        items = value.items()
    else:
        return
    for key, item in list(items):
        yield from _generators(item, (*path, key), depth + 1)


def _follow(obj: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        obj = obj.get(key) if isinstance(obj, dict) else getattr(obj, "__dict__", {}).get(key)
        if obj is None:
            return None
    return obj


@dataclass
class Carried:
    """What was carried over from a saved sampler into the one passed in.

    Attributes:
        generators: Where the random generators whose states were carried over lie.
        settings: ``(name, saved value, value passed)`` of each setting that differs (the
            value passed is used).
    """

    generators: list[str] = field(default_factory=list)
    settings: list[tuple[str, object, object]] = field(default_factory=list)

    def __str__(self) -> str:
        carried = (
            f"its random state ({', '.join(self.generators)})" if self.generators else "nothing"
        )
        if not self.settings:
            return carried
        listed = ", ".join(
            f"{name}={new!r} (the saved sampler had {old!r})" for name, old, new in self.settings
        )
        return (
            f"{carried}; settings that differ, kept as passed (pass the saved values to keep "
            f"the old behaviour): {listed}"
        )


def carry_over(payload: bytes, sampler: Any) -> Carried:
    """Carry the random state of the sampler saved in ``payload`` into ``sampler``.

    Args:
        payload: A checkpoint's payload (a pickle of a dict with the ``"sampler"``).
        sampler: The sampler to go on with; changed in place.
    """
    carried = Carried()
    try:
        content = load_leniently(payload)
    except Exception:  # not even readable as data: nothing to carry
        return carried
    saved = content.get("sampler") if isinstance(content, dict) else None
    if saved is None:
        return carried
    pin_lazy_generators(sampler)
    for where, old in _generators(saved, (), 0):
        new = _follow(sampler, where)
        if type(new) is not type(old):
            continue
        if isinstance(old, np.random.RandomState):
            new.set_state(old.get_state())
        else:
            new.bit_generator.state = old.bit_generator.state
        carried.generators.append(".".join(str(k) for k in where))
    if isinstance(saved, Unrebuilt) and saved.class_name == global_name(type(sampler)):
        carried.settings = differing_settings(saved, sampler)
    return carried
