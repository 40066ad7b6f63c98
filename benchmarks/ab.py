"""One change of the library, side by side: ``python benchmarks/ab.py CHANGE [N_TRIALS]``.

Runs bare Optuna and two ``ResumableStudy`` sessions, one as shipped ("on") and one with
CHANGE undone ("off"), in lock-step, one trial each in turn, on the trivial TPE objective of
``run.py`` on SQLite, in one process; prints the library's own time per trial and the extra
time over bare Optuna (medians, min-max). CHANGE is one of:

- ``payload-cache``: a state saved again unchanged is not compressed and hashed again.
- ``plain-pickle``: a state without tensors is pickled directly instead of by ``torch.save``.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import optuna
from run import _EngineTimer, tpe, trivial

import optuna_resume._checkpoint as checkpoint_module
from optuna_resume import ResumableStudy, checkpointed_objective
from optuna_resume._engine import engine_of
from optuna_resume._serialization import dump_object


@contextmanager
def torch_save_payload() -> Iterator[None]:
    """Inside: states are pickled by ``torch.save``, as before the plain-pickle change."""
    shipped = checkpoint_module.dump_state
    checkpoint_module.dump_state = dump_object
    try:
        yield
    finally:
        checkpoint_module.dump_state = shipped


def main(change: str, n_trials: int) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folder = Path(tempfile.mkdtemp(prefix="optuna-resume-ab-"))
    bare = optuna.create_study(storage=f"sqlite:///{folder / 'bare.db'}", sampler=tpe())
    sessions = {label: ResumableStudy(folder / label, sampler=tpe()) for label in ("on", "off")}
    studies = {label: session.__enter__() for label, session in sessions.items()}
    undone: Callable[[], Any] = nullcontext
    if change == "payload-cache":
        engine = engine_of(studies["off"])
        assert engine is not None
        engine._payload_cache = None  # type: ignore[assignment]
    elif change == "plain-pickle":
        undone = torch_save_payload
    else:
        raise SystemExit(f"unknown change {change!r}: payload-cache or plain-pickle")
    objective = checkpointed_objective()(trivial)

    def run_off() -> None:
        with undone():
            studies["off"].optimize(objective, n_trials=1)

    runs: dict[str, Callable[[], None]] = {
        "bare": lambda: bare.optimize(trivial, n_trials=1),
        "on": lambda: studies["on"].optimize(objective, n_trials=1),
        "off": run_off,
    }
    times: dict[str, list[float]] = {label: [] for label in runs}
    inside: dict[str, list[float]] = {"on": [], "off": []}
    order = list(runs)
    timer = _EngineTimer()
    with timer.installed():
        for i in range(n_trials):
            for label in order[i % 3 :] + order[: i % 3]:
                spent, start = timer.spent, time.perf_counter()
                runs[label]()
                times[label].append(time.perf_counter() - start)
                if label in inside:
                    inside[label].append(timer.spent - spent)
    for session in sessions.values():
        session.__exit__(None, None, None)
    params = [[t.params for t in study.trials] for study in (bare, *studies.values())]
    assert params[0] == params[1] == params[2]

    def stat(values: list[float]) -> str:
        low, high = min(values) * 1e3, max(values) * 1e3
        return f"{statistics.median(values) * 1e3:.2f} ms ({low:.2f}-{high:.2f})"

    for label in ("on", "off"):
        extra = [a - b for a, b in zip(times[label], times["bare"], strict=True)]
        print(f"{change} {label}: own time {stat(inside[label])}, extra over bare {stat(extra)}")
    print(f"bare Optuna: {stat(times['bare'])} per trial")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "", int(sys.argv[2]) if len(sys.argv) > 2 else 300)
