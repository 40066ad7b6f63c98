"""A worker's newest state recorded in the study (journal storages, gRPC proxy): a rewind
removes what is past it, and a record that is damaged or not the worker's is never used."""

from __future__ import annotations

import base64
import warnings
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.storages.journal import JournalFileBackend
from test_storages import grpc_port  # noqa: F401 (a fixture)

from optuna_resume import ResumableStudy
from optuna_resume._mirror import recorded_state, state_key


def _storage(tmp_path: Path) -> optuna.storages.JournalStorage:
    return optuna.storages.JournalStorage(JournalFileBackend(str(tmp_path / "journal.log")))


def _objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5.0, 5.0)
    y = trial.suggest_int("y", 0, 100)
    return (x - 1.0) ** 2 + y


def _run(
    tmp_path: Path, root: str, n_trials: int, worker: str = "a", **options: Any
) -> optuna.Study:
    with ResumableStudy(
        tmp_path / root / "study",
        storage=_storage(tmp_path),
        sampler=optuna.samplers.TPESampler(seed=3, n_startup_trials=4),
        worker=worker,
        **options,
    ) as study:
        study.optimize(_objective, n_trials=n_trials)
    return study


def _record(tmp_path: Path, worker: str = "a") -> Any:
    storage = _storage(tmp_path)
    study_id = storage.get_study_id_from_name("study")
    return recorded_state(storage.get_study_system_attrs(study_id), worker)


def test_a_rewind_removes_the_state_recorded_past_it(tmp_path: Path) -> None:
    original = [t.params for t in _run(tmp_path, "root", 8).trials]
    record = _record(tmp_path)
    assert (record.trial, record.phase) == (7, "after")
    _run(tmp_path, "root", 0, rewind_to=5)
    assert _record(tmp_path) is None  # its trial left the study
    again = _run(tmp_path, "root", 3)
    assert [t.params for t in again.trials] == original
    record = _record(tmp_path)
    assert (record.trial, record.phase) == (7, "after")


def test_a_rewind_keeps_the_states_recorded_before_it(tmp_path: Path) -> None:
    _run(tmp_path, "root-b", 2, worker="b")
    _run(tmp_path, "root-a", 4)  # trials 2-5
    _run(tmp_path, "root-a", 0, rewind_to=3)
    assert _record(tmp_path) is None  # a's, after trial 5
    record = _record(tmp_path, "b")
    assert (record.trial, record.phase) == (1, "after")  # b's, before the target: kept


def test_a_damaged_record_is_not_used_and_nothing_is_replayed(tmp_path: Path) -> None:
    first = [t.params for t in _run(tmp_path, "root", 4).trials]
    storage = _storage(tmp_path)
    study_id = storage.get_study_id_from_name("study")
    storage.set_study_system_attr(
        study_id,
        state_key("a"),
        {
            "trial": 3,
            "phase": "after",
            "document": base64.b64encode(b"junk").decode(),
            "blobs": [],
        },
    )
    later = [t.params for t in _run(tmp_path, "empty-root", 4).trials[4:]]
    assert len(later) == 4
    assert not [p for p in later if p in first]  # a stream of its own, not its first again


def test_a_record_of_a_trial_the_worker_did_not_run_is_not_used(tmp_path: Path) -> None:
    first = [t.params for t in _run(tmp_path, "root", 4).trials]
    storage = _storage(tmp_path)
    study_id = storage.get_study_id_from_name("study")
    recorded = storage.get_study_system_attrs(study_id)[state_key("a")]
    storage.set_study_system_attr(study_id, state_key("a"), {**recorded, "trial": 40})
    later = [t.params for t in _run(tmp_path, "empty-root", 4).trials[4:]]
    assert not [p for p in later if p in first]


def _grpc(port: int) -> optuna.storages.BaseStorage:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.GrpcStorageProxy(host="127.0.0.1", port=port)


@pytest.mark.parametrize("kind", ["journal", "grpc"])
def test_a_worker_goes_on_exactly_from_an_empty_root(
    tmp_path: Path, request: pytest.FixtureRequest, kind: str
) -> None:
    """Nothing but the storage: 4 trials from one root, 4 more from an empty one, equal 8
    trials of one run (a study of its own in the same storage)."""
    if kind == "grpc":
        port = request.getfixturevalue("grpc_port")

        def storage() -> optuna.storages.BaseStorage:
            return _grpc(port)
    else:

        def storage() -> optuna.storages.BaseStorage:
            return _storage(tmp_path)

    def run(root: str, name: str, n_trials: int) -> list[tuple[Any, ...]]:
        with ResumableStudy(
            tmp_path / root / name,
            storage=storage(),
            sampler=optuna.samplers.TPESampler(seed=3, n_startup_trials=4),
            worker="a",
        ) as study:
            study.optimize(_objective, n_trials=n_trials)
        return [(t.number, t.state, t.params, t.values) for t in study.trials]

    run("root", "resumed", 4)
    resumed = run("empty-root", "resumed", 4)
    once = run("root", "once", 8)
    assert len(once) == 8
    assert resumed == once
