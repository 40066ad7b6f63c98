"""The global random number generators: capture their states and put them back.

Captured: Python's ``random``, NumPy's global generator (``np.random.*``), torch's CPU
generator and, when CUDA is initialised, every CUDA device's generator. Samplers draw from
their own generators, so these are the states the user's objective sees.
"""

from __future__ import annotations

import random
import warnings
from typing import Any

import numpy as np

from ._error import InexactResumeWarning

RngState = dict[str, Any]


def capture_rng_state() -> RngState:
    """The states of the global generators now (CUDA's only if CUDA is initialised)."""
    import torch  # here, not at import: the command line answers without it

    state: RngState = {
        "python": random.getstate(),
        "numpy": np.random.get_state(legacy=False),
        "torch": torch.get_rng_state(),
    }
    # Asking an uninitialised CUDA for its generators would initialise it (seconds, and
    # memory on every device); until then its generators are where the user's seed put them.
    if torch.cuda.is_available() and torch.cuda.is_initialized():  # type: ignore[no-untyped-call]
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: RngState) -> None:
    """Put the global generators back to a captured state."""
    import torch  # here, not at import: the command line answers without it

    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is None:
        return
    if not torch.cuda.is_available() or torch.cuda.device_count() < len(cuda):
        have = torch.cuda.device_count() if torch.cuda.is_available() else 0
        warnings.warn(
            f"the checkpoint holds the generators of {len(cuda)} CUDA device(s) but this "
            f"process sees {have}; CUDA random draws will not match the interrupted run",
            InexactResumeWarning,
            stacklevel=3,
        )
        return
    # Before CUDA is initialised, setting a state is queued, and a seed queued earlier (the
    # script's torch.manual_seed) would run after it on initialisation and undo it.
    torch.cuda.init()  # type: ignore[no-untyped-call]
    torch.cuda.set_rng_state_all(cuda)


__all__ = ["RngState", "capture_rng_state", "restore_rng_state"]
