"""The state after a trial, written before the trial's finish is committed, on storages
without a table of ours (the journal storages, the gRPC proxy, a storage of one's own).

On an RDB storage the state after a trial joins the transaction that finishes it
(``_state_table``). Elsewhere there is no transaction to join, so the state is written (a
durable file, and a worker's record in the study) just before the storage is asked to
finish the trial, after the sampler's ``after_trial``: a kill at any instant inside a tell
leaves either a RUNNING trial (re-run) or a finished one with its state after it, never a
finished trial whose state is missing. ``study.tell`` registers what to write; the hooked
``set_trial_state_values`` of the storage's class writes it.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from optuna.storages import BaseStorage
from optuna.trial import TrialState

_tls = threading.local()  # .finish: {(id(storage), trial_id): produce}
_HOOKED = "_optuna_resume_finish_hook"
_install_lock = threading.Lock()


def expect_finish(
    storage: BaseStorage, trial_id: int, produce: Callable[[TrialState], None]
) -> None:
    """When this thread next finishes ``trial_id`` in ``storage``, call ``produce(state)``
    first (the storage's class must be hooked: :func:`hook_finishes`)."""
    waiting = getattr(_tls, "finish", None)
    if waiting is None:
        waiting = _tls.finish = {}
    waiting[(id(storage), trial_id)] = produce


def finishes_over() -> None:
    """Forget what was waiting for a finish in this thread (the tell is over)."""
    _tls.finish = {}


def hook_finishes(cls: type[BaseStorage]) -> None:
    """Call the registered ``produce`` before a storage of class ``cls`` finishes a trial."""
    with _install_lock:
        original = cls.set_trial_state_values
        if getattr(original, _HOOKED, None) is cls:
            return

        @functools.wraps(original)
        def set_trial_state_values(
            storage: BaseStorage, trial_id: int, state: TrialState, values: Any = None
        ) -> bool:
            if state.is_finished():
                waiting = getattr(_tls, "finish", None)
                produce = waiting.pop((id(storage), trial_id), None) if waiting else None
                if produce is not None:
                    produce(state)
            return original(storage, trial_id, state, values)

        setattr(set_trial_state_values, _HOOKED, cls)
        cls.set_trial_state_values = set_trial_state_values  # type: ignore[method-assign,assignment]


__all__ = ["expect_finish", "finishes_over", "hook_finishes"]
