"""SIGTERM, as schedulers (SLURM, Kubernetes, systemd) send it before they kill a job.

While a :class:`~optuna_resume.ResumableStudy` block runs in the main thread, SIGTERM becomes
a :class:`TerminatedBySignal` (a ``KeyboardInterrupt``) raised where the program is: the
trial running is recorded as interrupted exactly as for Ctrl-C, the block writes its final
checkpoint, and the process then exits with status 143 (128 + SIGTERM), as a program killed
by SIGTERM would report. A signal that arrives while a checkpoint is being written is held
until the write is done. Handlers the program installed itself are left alone.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

EXIT_STATUS = 128 + signal.SIGTERM


class TerminatedBySignal(KeyboardInterrupt):
    """SIGTERM arrived inside a ``ResumableStudy`` block (it exits with status 143)."""


class _State:
    installed = False
    previous: Any = signal.SIG_DFL
    received = False  # since install()
    pending = False  # received and not raised yet
    holding = 0  # > 0 inside a checkpoint write
    raise_now = False  # raise at once (inside the block) or only remember it (entry, exit)


_state = _State()


def _raise_pending() -> None:
    if not (_state.pending and _state.raise_now and not _state.holding):
        return
    if threading.current_thread() is threading.main_thread():
        _state.pending = False
        raise TerminatedBySignal("SIGTERM")


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _state.received = _state.pending = True
    _raise_pending()


def install() -> bool:
    """Catch SIGTERM (main thread, default handler only); it is remembered, not yet raised."""
    if _state.installed or threading.current_thread() is not threading.main_thread():
        return False
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return False
    _state.previous = signal.signal(signal.SIGTERM, _on_sigterm)
    _state.installed, _state.raise_now, _state.holding = True, False, 0
    _state.received = _state.pending = False
    return True


def raise_on_sigterm(enabled: bool) -> None:
    """From now on, raise :class:`TerminatedBySignal` where SIGTERM arrives (or stop doing so).

    Enabling it when SIGTERM already arrived raises at once.
    """
    _state.raise_now = enabled and _state.installed
    _raise_pending()


def received() -> bool:
    """Whether SIGTERM arrived since our handler was installed (and it is still installed)."""
    return _state.installed and _state.received


def uninstall() -> bool:
    """Put the previous handler back; return whether SIGTERM arrived while ours was in place."""
    if not _state.installed:
        return False
    signal.signal(signal.SIGTERM, _state.previous)
    _state.installed, _state.raise_now = False, False
    return _state.received


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Hold a SIGTERM that arrives inside the block until the block is done."""
    _state.holding += 1
    try:
        yield
    finally:
        _state.holding -= 1
    _raise_pending()


__all__ = [
    "EXIT_STATUS",
    "TerminatedBySignal",
    "held",
    "install",
    "raise_on_sigterm",
    "received",
    "uninstall",
]
