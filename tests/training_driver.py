"""A small PyTorch training study run in real processes by the trial-reproducibility tests.

The objective trains a tiny MLP on synthetic data for a few epochs: weights initialised from
torch's global generator, dropout, mini-batches shuffled by a ``DataLoader``, input noise from
NumPy's and Python's global generators. It reports every epoch, may be pruned, and keeps its
state in the trial's workspace with ``save_training_state`` / ``load_training_state``. The
global generators are seeded once, at the start of the process, and never again.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from optuna_resume import (
    ResumableStudy,
    checkpointed_objective,
    load_training_state,
    optimize_until,
    save_training_state,
)

torch.set_num_threads(1)
if os.environ.get("OPTUNA_RESUME_TEST_DETERMINISTIC") == "1":
    torch.use_deterministic_algorithms(True)  # needs CUBLAS_WORKSPACE_CONFIG on CUDA
optuna.logging.set_verbosity(optuna.logging.WARNING)

N_TRIALS = 8
N_STARTUP_TRIALS = 3
EPOCHS = 4
BATCHES_BEFORE_KILL = 3
DEVICE = os.environ.get("OPTUNA_RESUME_TEST_DEVICE", "cpu")

TrialRecord = tuple[int, str, dict[str, Any], float | None, dict[int, float]]


def seed_everything(seed: int = 0) -> None:
    """What a training script does once, at the start."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def dataset() -> TensorDataset:
    generator = torch.Generator().manual_seed(1234)  # the data itself never changes
    x = torch.randn(256, 8, generator=generator)
    y = (x[:, :1] * 2 - x[:, 1:2] + 0.5 * x[:, 2:3] ** 2).tanh()
    return TensorDataset(x, y)


class MLP(nn.Module):
    def __init__(self, hidden: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(8, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out


def train(
    trial: optuna.Trial,
    kill_at: tuple[int, int] | None = None,
    starts: Path | None = None,
    resumable: bool = True,
) -> float:
    hidden = trial.suggest_int("hidden", 4, 32)
    lr = trial.suggest_float("lr", 1e-3, 3e-1, log=True)
    dropout = trial.suggest_float("dropout", 0.0, 0.5)
    model = MLP(hidden, dropout).to(DEVICE)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    start = load_training_state(trial, model, optimizer, scheduler) if resumable else 0
    if starts is not None:
        with open(starts, "a") as f:
            f.write(json.dumps({"trial": trial.number, "start": start}) + "\n")
    data = dataset()
    loader = DataLoader(data, batch_size=32, shuffle=True)
    x_all, y_all = (t.to(DEVICE) for t in data.tensors)
    value = float("nan")
    for epoch in range(start, EPOCHS):
        model.train()
        for batch, (xb, yb) in enumerate(loader):
            if kill_at == (trial.number, epoch) and batch == BATCHES_BEFORE_KILL:
                os.kill(os.getpid(), signal.SIGKILL)  # mid-epoch, state of last epoch saved
            noise = torch.from_numpy(np.random.normal(0.0, 0.05, size=tuple(xb.shape)))
            scale = 1.0 + 0.1 * random.random()
            xb = (xb + noise.float()).to(DEVICE) * scale
            loss = nn.functional.mse_loss(model(xb), yb.to(DEVICE))
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
        scheduler.step()
        model.eval()
        with torch.no_grad():
            value = float(nn.functional.mse_loss(model(x_all), y_all))
        trial.report(value, epoch)
        if resumable:
            save_training_state(trial, epoch, model, optimizer, scheduler)
        if trial.should_prune():
            raise optuna.TrialPruned
    return value


def sampler() -> optuna.samplers.TPESampler:
    return optuna.samplers.TPESampler(seed=0, n_startup_trials=N_STARTUP_TRIALS)


def pruner() -> optuna.pruners.MedianPruner:
    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)


def records(study: optuna.Study) -> list[TrialRecord]:
    return [
        (t.number, t.state.name, dict(t.params), t.value, dict(t.intermediate_values))
        for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    ]


def reference(n_trials: int = N_TRIALS) -> list[TrialRecord]:
    """One uninterrupted run with plain Optuna and no optuna-resume at all."""
    seed_everything()
    study = optuna.create_study(sampler=sampler(), pruner=pruner())
    study.optimize(lambda t: train(t, resumable=False), n_trials=n_trials)
    return records(study)


def stored(root: Path) -> list[TrialRecord]:
    study = optuna.load_study(study_name=root.name, storage=f"sqlite:///{root}/study.db")
    return records(study)


def run_phase(
    root: str,
    until: int = N_TRIALS,
    kill_at: tuple[int, int] | None = None,
    rewind_to: int | None = None,
    starts: str | None = None,
    workspace_policy: str = "keep",
    capture_in: str = "decorator",
) -> None:
    """One process's life: seed once, open the study, train until ``until`` trials.

    ``capture_in`` says which front turns on the capture of the global generators.
    """
    seed_everything()
    cut = tuple(kill_at) if kill_at is not None else None

    @checkpointed_objective(capture_rng=capture_in == "decorator")
    def objective(trial: optuna.Trial) -> float:
        return train(trial, cut, Path(starts) if starts else None)  # type: ignore[arg-type]

    with ResumableStudy(
        root,
        sampler=sampler(),
        pruner=pruner(),
        rewind_to=rewind_to,
        capture_rng=capture_in == "study",
        workspace_policy=workspace_policy,  # type: ignore[arg-type]
    ) as study:
        optimize_until(study, objective, until)


if __name__ == "__main__":
    if sys.argv[1] == "reference":
        print(json.dumps(reference()))
    else:
        run_phase(**json.loads(sys.argv[1]))
