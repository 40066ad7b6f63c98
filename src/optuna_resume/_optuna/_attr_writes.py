"""Study attributes written by trials: logged as they are written, taken back on a re-run.

The rule: a re-run or rewind takes back exactly what the discarded trials' sampler, pruner
and objective wrote into the study's attributes (user and system); everything else (written
before the first discarded trial, outside any trial, or by another process such as the
dashboard) stays live.

How: while a trial of a bound study is in progress in a thread (from Optuna creating it in
``ask`` to the end of its ``tell``), each write of a study attribute made by that thread is
first recorded in the trial's own system attributes (the value it replaces, the value it
writes). The record is committed before the write, by the storage, so a kill between the
two leaves a record of a write that did not happen, which taking back ignores. A rewind to
trial ``N`` reads the records of trials ``N`` and later and puts each attribute back to the
value it had before the first of those writes, unless someone else wrote it since.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage

WRITES_KEY = "optuna_resume:study_attr_writes"
USER, SYSTEM = "user", "system"

_state = threading.local()  # .trial: (study, trial_id) | None; .busy: bool
_HOOKED = "_optuna_resume_attr_hook"
_install_lock = threading.Lock()


def trial_in_progress(study: optuna.Study, trial_id: int) -> None:
    """From now on, this thread's writes of ``study``'s attributes belong to ``trial_id``."""
    _state.trial = (study, trial_id)


def trial_over(study: optuna.Study, trial_id: int | None = None) -> None:
    """This thread's trial of ``study`` is over (``None``: whichever it was)."""
    current = getattr(_state, "trial", None)
    if current is not None and current[0] is study and trial_id in (None, current[1]):
        _state.trial = None


@contextmanager
def unlogged() -> Iterator[None]:
    """Inside: this thread's writes of study attributes are the library's own, not a trial's
    (they are not recorded, and a re-run or rewind does not take them back)."""
    previous = getattr(_state, "busy", False)
    _state.busy = True
    try:
        yield
    finally:
        _state.busy = previous


def hook_storage_class(cls: type[BaseStorage]) -> None:
    """Log the study-attribute writes of trials in progress, for storages of class ``cls``."""
    with _install_lock:
        for name, kind in (("set_study_user_attr", USER), ("set_study_system_attr", SYSTEM)):
            original = getattr(cls, name)
            if getattr(original, _HOOKED, None) is cls:
                continue
            setattr(cls, name, _logged(original, kind, cls))


def _logged(original: Callable[..., None], kind: str, cls: type) -> Callable[..., None]:
    @functools.wraps(original)
    def write(storage: BaseStorage, study_id: int, key: str, value: Any) -> None:
        current = getattr(_state, "trial", None)
        if current is None or getattr(_state, "busy", False):
            return original(storage, study_id, key, value)
        study, trial_id = current
        if study._storage is not storage or study._study_id != study_id:
            return original(storage, study_id, key, value)
        _state.busy = True  # a caching wrapper calls its backend's (also hooked) method
        try:
            _record(storage, study_id, trial_id, kind, key, value)
            return original(storage, study_id, key, value)
        finally:
            _state.busy = False

    setattr(write, _HOOKED, cls)
    return write


def _record(
    storage: BaseStorage, study_id: int, trial_id: int, kind: str, key: str, value: Any
) -> None:
    live = (
        storage.get_study_user_attrs(study_id)
        if kind == USER
        else storage.get_study_system_attrs(study_id)
    )
    entry = [kind, key, key in live, live.get(key), value]
    try:
        json.dumps(entry)
    except (TypeError, ValueError):
        return  # an in-memory study's non-JSON value: no storage could record it
    try:
        log = storage.get_trial_system_attrs(trial_id).get(WRITES_KEY, [])
        storage.set_trial_system_attr(trial_id, WRITES_KEY, [*log, entry])
    except (UpdateFinishedTrialError, KeyError):
        pass  # the trial is over (told elsewhere): the write is outside any trial


@dataclass(frozen=True)
class TakeBack:
    """One study attribute put back: ``present`` and ``value`` are what it becomes."""

    kind: str
    key: str
    present: bool
    value: Any

    def __str__(self) -> str:
        what = "removed" if not self.present else f"set back to {self.value!r}"
        return f"study {self.kind} attribute {self.key!r} {what}"


def plan_take_back(
    logs: Iterable[tuple[int, list[Any]]],
    user_attrs: dict[str, Any],
    system_attrs: dict[str, Any],
) -> list[TakeBack]:
    """What to put back, given the discarded trials' write records ``(number, entries)``.

    Each attribute goes back to the value it had before the first recorded write (in trial
    order), if its live value is one those writes produced or replaced: a value nobody in the
    records wrote was written by someone else since, and stays.
    """
    chains: dict[tuple[str, str], list[list[Any]]] = {}
    for _, entries in sorted(logs, key=lambda item: item[0]):
        for entry in entries:
            if isinstance(entry, list) and len(entry) == 5 and entry[0] in (USER, SYSTEM):
                chains.setdefault((entry[0], entry[1]), []).append(entry)
    plan = []
    for (kind, key), chain in chains.items():
        live = user_attrs if kind == USER else system_attrs
        now = _canon(key in live, live.get(key))
        target = _canon(chain[0][2], chain[0][3])
        seen = {_canon(e[2], e[3]) for e in chain} | {_canon(True, e[4]) for e in chain}
        if now != target and now in seen:
            plan.append(TakeBack(kind, key, bool(chain[0][2]), chain[0][3]))
    return plan


def applied(attrs: dict[str, Any], plan: list[TakeBack], kind: str) -> dict[str, Any]:
    """``attrs`` (of ``kind``) with the plan applied."""
    out = dict(attrs)
    for item in plan:
        if item.kind != kind:
            continue
        if item.present:
            out[item.key] = item.value
        else:
            out.pop(item.key, None)
    return out


def _canon(present: Any, value: Any) -> str:
    return json.dumps([bool(present), value if present else None], sort_keys=True)


__all__ = [
    "SYSTEM",
    "USER",
    "WRITES_KEY",
    "TakeBack",
    "applied",
    "hook_storage_class",
    "plan_take_back",
    "trial_in_progress",
    "trial_over",
    "unlogged",
]
