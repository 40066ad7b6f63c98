"""``ResumableStudy``: defaults, the interrupted trial, rewind, and every bad input."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import optuna
import pytest
from conftest import root_held_by_another_process
from optuna.trial import TrialState
from small_study import files_only, loss, objective, run, snapshot, tpe

from optuna_resume import (
    CheckpointMismatchError,
    CheckpointNotFoundError,
    CorruptCheckpointError,
    InexactResumeWarning,
    InvalidRewindError,
    OptunaResumeError,
    ResumableStudy,
    RootError,
    RootLockedError,
    SamplerMismatchWarning,
    UnsupportedStorageError,
    checkpointed_objective,
    list_checkpoints,
    optimize_until,
)


def test_defaults_are_the_root_sqlite_file_and_the_folder_name(tmp_path: Path) -> None:
    study = run(tmp_path / "my-study", 2)
    assert study.study_name == "my-study"
    assert (tmp_path / "my-study" / "study.db").is_file()
    loaded = optuna.load_study(
        study_name="my-study", storage=f"sqlite:///{tmp_path / 'my-study' / 'study.db'}"
    )
    assert len(loaded.trials) == 2


def test_root_is_created_with_its_parents_and_accepts_keyword(tmp_path: Path) -> None:
    with ResumableStudy(root=tmp_path / "a" / "b", sampler=tpe()) as study:
        assert isinstance(study, optuna.Study)
    assert (tmp_path / "a" / "b" / "study.db").exists()


def test_storage_url_and_storage_object_are_accepted(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    run(tmp_path / "by-url", 2, storage=url)
    storage = optuna.storages.RDBStorage(url)
    study = run(tmp_path / "by-object", 2, storage=storage, study_name="other")
    assert {s.study_name for s in optuna.get_all_study_summaries(url)} == {"by-url", "other"}
    assert len(study.trials) == 2


def test_rerunning_the_block_continues_to_the_total(tmp_path: Path) -> None:
    run(tmp_path / "s", 4)
    study = run(tmp_path / "s", 4)
    assert len(study.trials) == 4
    study = run(tmp_path / "s", 6)
    assert [t.number for t in study.trials] == list(range(6))


def test_in_memory_storage_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedStorageError, match="Leave storage=None") as info:
        ResumableStudy(tmp_path / "s", storage=optuna.storages.InMemoryStorage()).__enter__()
    assert isinstance(info.value, ValueError)
    # the lock was released: the root is usable at once
    run(tmp_path / "s", 1)


def test_root_that_is_a_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("precious")
    with pytest.raises(RootError, match="is a file"):
        ResumableStudy(path).__enter__()
    assert path.read_text() == "precious"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_root_that_is_not_writable_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ro"
    path.mkdir()
    path.chmod(0o500)
    try:
        with pytest.raises(RootError, match="not writable"):
            ResumableStudy(path).__enter__()
    finally:
        path.chmod(0o700)


def test_root_that_is_not_writable_is_refused_for_any_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ro").mkdir()
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(RootError, match="not writable"):
        ResumableStudy(tmp_path / "ro").__enter__()
    assert list((tmp_path / "ro").iterdir()) == []


def test_second_live_session_names_the_holder(tmp_path: Path) -> None:
    with root_held_by_another_process(tmp_path / "s") as pid:
        with pytest.raises(RootLockedError, match=f"another live session \\(PID {pid} on") as info:
            ResumableStudy(tmp_path / "s").__enter__()
        assert isinstance(info.value, BlockingIOError)
    run(tmp_path / "s", 1)  # free again after the block


def test_exit_writes_a_final_checkpoint_and_never_swallows(tmp_path: Path) -> None:
    with (
        pytest.raises(RuntimeError, match="user error"),
        ResumableStudy(tmp_path / "s", sampler=tpe()) as study,
    ):
        study.optimize(objective, n_trials=2)
        raise RuntimeError("user error")
    assert any(c.trial == 2 and c.phase == "before" for c in list_checkpoints(tmp_path / "s"))


def test_crash_reruns_the_trial_under_its_number(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    crash = {"at": 4}

    @checkpointed_objective()
    def flaky(trial: optuna.Trial) -> float:
        value = loss(trial)
        if trial.number == crash["at"]:
            raise RuntimeError("out of memory")
        return value

    with pytest.raises(RuntimeError), ResumableStudy(tmp_path / "s", sampler=tpe()) as study:
        optimize_until(study, flaky, 8)
    failed = study.trials[4]
    assert failed.state == TrialState.FAIL
    crash["at"] = -1
    caplog.set_level(logging.INFO, logger="optuna_resume")
    study = run(tmp_path / "s", 8)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 8
    assert study.trials[4].params == failed.params
    assert (
        f"trial 4 was interrupted; it runs again under the same number with params {failed.params}"
    ) in caplog.text
    backup = optuna.load_study(
        study_name="s", storage=f"sqlite:///{tmp_path / 's' / 'study_backup-1.db'}"
    )
    assert backup.trials[4].state == TrialState.FAIL  # the record is kept in the backup


def test_interrupted_trial_fail_keeps_optunas_behaviour(tmp_path: Path) -> None:
    @checkpointed_objective()
    def interrupted(trial: optuna.Trial) -> float:
        loss(trial)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), ResumableStudy(tmp_path / "s", sampler=tpe()) as study:
        optimize_until(study, objective, 3)
        study.optimize(interrupted, n_trials=1)
    study = run(tmp_path / "s", 5, interrupted_trial="fail")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3 + [TrialState.FAIL] + [
        TrialState.COMPLETE
    ]


@pytest.mark.parametrize("bad", [-1, 5, 99, "2", 2.0, True])
def test_bad_rewind_target_changes_nothing(tmp_path: Path, bad: object) -> None:
    before = snapshot(run(tmp_path / "s", 5))
    with pytest.raises(InvalidRewindError) as info:
        ResumableStudy(tmp_path / "s", sampler=tpe(), rewind_to=bad).__enter__()  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    assert snapshot(run(tmp_path / "s", 5)) == before


def test_rewind_without_its_checkpoint_changes_nothing(tmp_path: Path) -> None:
    before = snapshot(run(tmp_path / "s", 5))
    files_only(tmp_path / "s")  # a root whose states are its files (an older root)
    for checkpoint in list_checkpoints(tmp_path / "s"):
        if checkpoint.position == 2:
            checkpoint.path.unlink()
    with pytest.raises(CheckpointNotFoundError, match="before trial 2") as info:
        ResumableStudy(tmp_path / "s", sampler=tpe(), rewind_to=2).__enter__()
    assert isinstance(info.value, FileNotFoundError)
    assert snapshot(run(tmp_path / "s", 5)) == before


def test_rewind_removes_later_trials_and_replays_them(tmp_path: Path) -> None:
    original = snapshot(run(tmp_path / "s", 8))
    with ResumableStudy(tmp_path / "s", sampler=tpe(), rewind_to=3) as study:
        assert [t.number for t in study.trials] == [0, 1, 2]
        optimize_until(study, objective, 8)
    assert snapshot(study) == original


def test_checkpoint_of_another_study_is_refused(tmp_path: Path) -> None:
    run(tmp_path / "a", 3)
    run(tmp_path / "b", 3)
    shutil.rmtree(tmp_path / "b" / "checkpoints")
    shutil.copytree(tmp_path / "a" / "checkpoints", tmp_path / "b" / "checkpoints")
    with pytest.raises(CheckpointMismatchError, match="holds the checkpoints of study 'a'"):
        ResumableStudy(tmp_path / "b", sampler=tpe()).__enter__()


def test_other_sampler_class_wins_with_a_warning(tmp_path: Path) -> None:
    run(tmp_path / "s", 3)
    random = optuna.samplers.RandomSampler(seed=0)
    with (
        pytest.warns(SamplerMismatchWarning, match="using the one passed"),
        ResumableStudy(tmp_path / "s", sampler=random) as study,
    ):
        assert study.sampler is random


def test_sampler_omitted_on_resume_comes_from_the_checkpoint(tmp_path: Path) -> None:
    original = snapshot(run(tmp_path / "s", 6))
    with ResumableStudy(tmp_path / "s", sampler=tpe(), rewind_to=2):
        pass
    with ResumableStudy(tmp_path / "s") as study:
        assert isinstance(study.sampler, optuna.samplers.TPESampler)
        optimize_until(study, objective, 6)
    assert snapshot(study) == original


def test_corrupt_newest_checkpoint_falls_back_to_its_equivalent(tmp_path: Path) -> None:
    run(tmp_path / "s", 4)
    newest = next(c for c in list_checkpoints(tmp_path / "s") if c.trial == 4)
    newest.path.write_bytes(newest.path.read_bytes()[:100])
    study = run(tmp_path / "s", 6)  # the "after trial 3" checkpoint holds the same state
    reference = run(tmp_path / "ref", 6)
    assert snapshot(study) == snapshot(reference)


def test_corrupt_checkpoints_with_no_equivalent_stop_with_an_error(tmp_path: Path) -> None:
    before = snapshot(run(tmp_path / "s", 4))
    files_only(tmp_path / "s")  # a root whose states are its files (an older root)
    for info in list_checkpoints(tmp_path / "s"):
        if info.position == 4:
            info.path.write_bytes(b"garbage")
    with pytest.raises(CorruptCheckpointError, match="not a readable checkpoint"):
        ResumableStudy(tmp_path / "s", sampler=tpe()).__enter__()
    stored = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 's' / 'study.db'}")
    assert snapshot(stored) == before
    # the repair path the message names: rewind to an earlier, intact state
    assert snapshot(run(tmp_path / "s", 4, rewind_to=2)) == before


def test_lost_checkpoint_files_are_taken_from_the_database(tmp_path: Path) -> None:
    reference = snapshot(run(tmp_path / "reference", 6))
    run(tmp_path / "s", 3)
    shutil.rmtree(tmp_path / "s" / "checkpoints")  # the states stay in study.db
    assert snapshot(run(tmp_path / "s", 6)) == reference


def test_missing_checkpoints_need_an_explicit_choice(tmp_path: Path) -> None:
    run(tmp_path / "s", 3)
    files_only(tmp_path / "s")  # a root whose states were its files only (an older root)
    shutil.rmtree(tmp_path / "s" / "checkpoints")
    with pytest.raises(CheckpointNotFoundError, match="allow_inexact=True"):
        ResumableStudy(tmp_path / "s", sampler=tpe()).__enter__()
    with pytest.warns(InexactResumeWarning):
        study = run(tmp_path / "s", 4, allow_inexact=True)
    assert len(study.trials) == 4


def test_errors_share_one_base(tmp_path: Path) -> None:
    with pytest.raises(OptunaResumeError):
        ResumableStudy(tmp_path / "s", storage=optuna.storages.InMemoryStorage()).__enter__()


def test_parallel_jobs_lose_no_trial_and_checkpoint_each(tmp_path: Path) -> None:
    with ResumableStudy(tmp_path / "s", sampler=tpe()) as study:
        study.optimize(objective, n_trials=12, n_jobs=3)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 12
    befores = {c.trial for c in list_checkpoints(tmp_path / "s") if c.phase == "before"}
    assert befores == set(range(13))
