"""Trial workspaces and the training-state helper, in one process."""

from __future__ import annotations

import os
import pickle
import random
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from optuna_resume import (
    CheckpointMismatchError,
    CorruptCheckpointError,
    OptunaResumeError,
    ResumableStudy,
    UnsafeCheckpointError,
    checkpointed_objective,
    load_training_state,
    optimize_until,
    save_training_state,
    trial_dir,
)
from optuna_resume._training import TRAINING_STATE


def _alone_study(folder: Path) -> optuna.Study:
    """A study for the decorator used alone: persistent (an in-memory one is refused)."""
    return optuna.create_study(sampler=sampler(), storage=f"sqlite:///{folder / 'alone.db'}")


def parts(seed: int) -> tuple[torch.nn.Linear, torch.optim.Adam, torch.optim.lr_scheduler.StepLR]:
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    return model, optimizer, scheduler


def step(model: torch.nn.Linear, optimizer: torch.optim.Adam) -> None:
    loss = model(torch.ones(4, 3)).pow(2).sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def sampler() -> optuna.samplers.RandomSampler:
    return optuna.samplers.RandomSampler(seed=0)


def test_save_then_load_restores_everything_and_returns_the_next_epoch(tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    @checkpointed_objective()
    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0, 1)
        model, optimizer, scheduler = parts(0)
        step(model, optimizer)
        scheduler.step()
        trial.report(1.5, 0)
        trial.set_user_attr("note", "epoch 0 done")
        path = save_training_state(trial, 0, model, optimizer, scheduler, extra={"best": 1.5})
        seen["path"] = path
        seen["next_draw"] = random.random()
        seen["model"] = {k: v.clone() for k, v in model.state_dict().items()}
        seen["optimizer"] = optimizer.state_dict()
        seen["lr"] = scheduler.get_last_lr()
        raise KeyboardInterrupt  # killed before epoch 1 ends

    @checkpointed_objective()
    def rerun(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0, 1)
        model, optimizer, scheduler = parts(1)  # other initial weights
        extra: dict[str, object] = {}
        start = load_training_state(trial, model, optimizer, scheduler, extra=extra)
        assert start == 1
        assert extra == {"best": 1.5}
        assert random.random() == seen["next_draw"]
        for key, value in model.state_dict().items():
            assert torch.equal(value, seen["model"][key])  # type: ignore[index]
        assert optimizer.state_dict()["state"][0]["step"] == 1
        assert scheduler.get_last_lr() == seen["lr"]
        assert trial._cached_frozen_trial.intermediate_values == {0: 1.5}
        assert trial._cached_frozen_trial.user_attrs == {"note": "epoch 0 done"}
        return 0.0

    root = tmp_path / "train"
    with pytest.raises(KeyboardInterrupt), ResumableStudy(root, sampler=sampler()) as study:
        study.optimize(objective, n_trials=1)
    assert seen["path"] == root / "workspaces" / "trial-000000" / TRAINING_STATE
    with ResumableStudy(root, sampler=sampler()) as study:
        optimize_until(study, rerun, 1)
    (trial,) = study.trials
    assert trial.state == TrialState.COMPLETE
    assert trial.intermediate_values == {0: 1.5}
    assert trial.user_attrs == {"note": "epoch 0 done"}


def test_nothing_saved_means_epoch_zero_and_nothing_changed(tmp_path: Path) -> None:
    @checkpointed_objective(root=tmp_path / "fresh")
    def objective(trial: optuna.Trial) -> float:
        model, optimizer, _ = parts(0)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        assert load_training_state(trial, model, optimizer) == 0
        assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
        assert trial_dir(trial) == tmp_path / "fresh" / "workspaces" / "trial-000000"
        assert trial_dir(trial).is_dir()
        return 0.0

    _alone_study(tmp_path).optimize(objective, n_trials=1)


def _with_saved_state(tmp_path: Path, check: object) -> None:
    """Save a state in trial 0's workspace, then call ``check(trial)`` in trial 1's body."""
    root = tmp_path / "saved"

    @checkpointed_objective(root=root)
    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0, 1)
        if trial.number == 0:
            model, _, _ = parts(0)
            save_training_state(trial, 3, model)
        else:
            # Put trial 0's state where trial 1 would look, as a stale folder would.
            target = trial_dir(trial) / TRAINING_STATE
            target.write_bytes((root / "workspaces/trial-000000" / TRAINING_STATE).read_bytes())
            check(trial)  # type: ignore[operator]
        return 0.0

    _alone_study(tmp_path).optimize(objective, n_trials=2)


def test_a_state_saved_with_other_parameters_is_refused(tmp_path: Path) -> None:
    def check(trial: optuna.Trial) -> None:
        model, _, _ = parts(0)
        with pytest.raises(CheckpointMismatchError, match=r"other parameters \(x="):
            load_training_state(trial, model)

    _with_saved_state(tmp_path, check)


def test_an_optimizer_that_was_not_saved_is_an_error(tmp_path: Path) -> None:
    def check(trial: optuna.Trial) -> None:
        trial._cached_frozen_trial.params.clear()  # same trial as far as params go
        model, optimizer, _ = parts(0)
        with pytest.raises(CorruptCheckpointError, match="holds no optimizer state"):
            load_training_state(trial, model, optimizer)

    _with_saved_state(tmp_path, check)


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_a_hostile_training_state_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    @checkpointed_objective(root=tmp_path / "hostile")
    def objective(trial: optuna.Trial) -> float:
        target = trial_dir(trial) / TRAINING_STATE
        with open(target, "wb") as f:
            torch.save({"format": "optuna-resume-training-state", "x": _Exploit(marker)}, f)
        model, _, _ = parts(0)
        with pytest.raises(UnsafeCheckpointError, match=r"posix\.system|os\.system"):
            load_training_state(trial, model)
        return 0.0

    _alone_study(tmp_path).optimize(objective, n_trials=1)
    assert not marker.exists()
    assert pickle.loads(pickle.dumps(1)) == 1  # the ordinary unpickler is untouched


def test_trial_dir_needs_a_checkpointed_study() -> None:
    study = optuna.create_study(sampler=sampler())
    trial = study.ask()
    with pytest.raises(OptunaResumeError, match="not checkpointed"):
        trial_dir(trial)
    with pytest.raises(TypeError, match="FixedTrial"):
        trial_dir(optuna.trial.FixedTrial({"x": 1.0}))  # type: ignore[arg-type]


def test_epoch_must_be_a_non_negative_int(tmp_path: Path) -> None:
    @checkpointed_objective(root=tmp_path / "epoch")
    def objective(trial: optuna.Trial) -> float:
        model, _, _ = parts(0)
        for bad in (-1, 1.0, True):
            with pytest.raises(ValueError, match="epoch must be"):
                save_training_state(trial, bad, model)  # type: ignore[arg-type]
        return 0.0

    _alone_study(tmp_path).optimize(objective, n_trials=1)


@pytest.mark.parametrize("policy", ["keep", "delete"])
def test_workspace_policy_on_finished_trials(tmp_path: Path, policy: str) -> None:
    @checkpointed_objective()
    def objective(trial: optuna.Trial) -> float:
        (trial_dir(trial) / "weights.bin").write_bytes(b"w")
        if trial.number == 1:
            raise optuna.TrialPruned
        if trial.number == 2:
            raise ValueError("a failed trial keeps its workspace")
        return 0.0

    root = tmp_path / "policy"
    with ResumableStudy(root, sampler=sampler(), workspace_policy=policy) as study:  # type: ignore[arg-type]
        study.optimize(objective, n_trials=4, catch=(ValueError,))
    left = sorted(p.name for p in (root / "workspaces").iterdir())
    if policy == "keep":
        assert left == [f"trial-{n:06d}" for n in range(4)]
    else:
        assert left == ["trial-000002"]


def test_a_bad_workspace_policy_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="workspace_policy must be 'keep' or 'delete'"):
        ResumableStudy(tmp_path, workspace_policy="archive")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="workspace_policy must be 'keep' or 'delete'"):
        checkpointed_objective(workspace_policy="never")  # type: ignore[arg-type]
