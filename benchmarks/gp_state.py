"""A GPSampler's saved state as trials accumulate: ``python benchmarks/gp_state.py``.

Runs a seeded GPSampler on a 3-parameter objective for 150 trials and, at 50, 100 and 150,
encodes its state as a checkpoint twice: as the library saves it (the cached regressors
reduced to what the next fit reads) and whole. Prints bytes and the median encoding time.
"""

from __future__ import annotations

import statistics
import time

import optuna

import optuna_resume._serialization as serialization
from optuna_resume._checkpoint import encode_checkpoint

MARKS = (50, 100, 150)


def objective(trial: optuna.Trial) -> float:
    return sum((trial.suggest_float(f"x{i}", -5, 5) - i) ** 2 for i in range(3))


def measure(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    n = trial.number + 1
    if n not in MARKS:
        return
    slim = serialization.slim_gp_regressors
    for label in ("saved", "whole"):
        if label == "whole":
            serialization.slim_gp_regressors = lambda value: value  # type: ignore[assignment]
        times, size = [], 0
        for _ in range(5):
            start = time.perf_counter()
            document, blobs = encode_checkpoint(n, "before", study.sampler, {})
            times.append(time.perf_counter() - start)
            size = len(document) + sum(map(len, blobs.values()))
        serialization.slim_gp_regressors = slim
        print(f"{n} trials, {label}: {size / 1e3:.1f} KB, {statistics.median(times) * 1e3:.1f} ms")


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.GPSampler(seed=0))
    study.optimize(objective, n_trials=max(MARKS), callbacks=[measure])
