"""Atomic, durable writes: the old file or the new one, never a torn one."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import BinaryIO

import optuna
import pytest

from optuna_resume import CheckpointWriteError, ResumableStudy, checkpointed_objective
from optuna_resume._atomic import atomic_produce, atomic_write, remove_partial_files


def test_atomic_write_replaces_the_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    atomic_write(path, b"old")
    atomic_write(path, b"new")
    assert path.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_produce_without_replace_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "f"
    assert atomic_produce(path, lambda tmp: tmp.write_bytes(b"first"), replace=False)
    assert not atomic_produce(path, lambda tmp: tmp.write_bytes(b"second"), replace=False)
    assert path.read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO])
def test_failed_write_keeps_the_old_file_and_says_why(tmp_path: Path, code: int) -> None:
    path = tmp_path / "f"
    atomic_write(path, b"old")

    def failing(f: BinaryIO) -> None:
        f.write(b"half")
        raise OSError(code, "simulated")

    with pytest.raises(CheckpointWriteError, match="previous version of the file is intact") as e:
        atomic_write(path, failing)
    assert e.value.errno == code
    assert isinstance(e.value, OSError)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]
    if code == errno.ENOSPC:
        assert "the disk is full" in str(e.value)


def test_leftovers_of_killed_writes_are_cleaned(tmp_path: Path) -> None:
    (tmp_path / ".trial-000001.before.pt.999999999.abcd.partial").write_bytes(b"torn")
    (tmp_path / "keep.pt").write_bytes(b"ok")
    in_flight = tmp_path / f".trial-000002.before.pt.{os.getpid()}.abcd.partial"
    in_flight.write_bytes(b"a live process is writing this")
    removed = remove_partial_files(tmp_path)
    assert [p.name for p in removed] == [".trial-000001.before.pt.999999999.abcd.partial"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [in_flight.name, "keep.pt"]


def test_disk_full_during_a_checkpoint_keeps_the_study_going_once_space_is_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    @checkpointed_objective()
    def objective(trial: optuna.Trial) -> float:
        return trial.suggest_float("x", 0, 1)

    sampler = optuna.samplers.TPESampler(seed=0)
    with ResumableStudy(tmp_path / "s", sampler=sampler) as study:
        study.optimize(objective, n_trials=2)
    real_fsync = os.fsync

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(CheckpointWriteError, match="disk is full"):  # noqa: SIM117
        with ResumableStudy(
            tmp_path / "s", sampler=optuna.samplers.TPESampler(seed=0), backup=False
        ) as study:
            study.optimize(objective, n_trials=1)
    monkeypatch.setattr(os, "fsync", real_fsync)
    with ResumableStudy(tmp_path / "s", sampler=optuna.samplers.TPESampler(seed=0)) as study:
        study.optimize(objective, n_trials=1)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 3
