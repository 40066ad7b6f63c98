"""Damaged, swapped, stale and hostile checkpoints: each has one defined outcome.

Either a fallback that is provably the same state (with a warning), or a clear error that
says how to repair, and the repair path works. Never a silent divergence, never a lost trial.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
from pathlib import Path

import optuna
import pytest
import torch
from small_study import Snapshot, files_only, snapshot, stored
from small_study import run as run_study

from optuna_resume import (
    CheckpointMismatchError,
    CheckpointNotFoundError,
    CorruptCheckpointError,
    OptunaResumeError,
    ResumableStudy,
    UnsafeCheckpointError,
    list_checkpoints,
    verify_root,
)
from optuna_resume._checkpoint import CheckpointInfo, read_checkpoint
from optuna_resume._serialization import dump_object
from optuna_resume._store import FolderStore


def run(root: Path, n: int, **kwargs: object) -> Snapshot:
    """Run the study in ``root``, whose states are then its checkpoint files only.

    These tests damage files: with the states also committed in the study's database, the
    database would put each file back (``test_state_rows.py``), as in a root written before
    states were committed there, which is what they test.
    """
    result = snapshot(run_study(root, n, **kwargs))
    files_only(root)
    return result


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    return run(tmp_path_factory.mktemp("reference") / "s", 8)


def _checkpoints_folder(root: Path) -> Path:
    return root / "checkpoints"


def test_every_single_bit_flip_is_detected_or_harmless(tmp_path: Path) -> None:
    run(tmp_path / "s", 5)
    path = FolderStore(_checkpoints_folder(tmp_path / "s")).path(5, "before")
    info = CheckpointInfo(path, 5, "before")
    good = read_checkpoint(info, study_uid=None)
    original = path.read_bytes()
    rng = random.Random(0)
    outcomes = {"detected": 0, "harmless": 0}
    for position in sorted(rng.sample(range(len(original)), 400)):
        damaged = bytearray(original)
        damaged[position] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(damaged))
        try:
            loaded = read_checkpoint(info, study_uid=None)
        except OptunaResumeError:
            outcomes["detected"] += 1
            continue
        # Undetected flips may only touch bytes that carry nothing (zip padding, names).
        assert loaded.meta == good.meta, position
        assert dump_object(loaded.sampler) == dump_object(good.sampler), position
        assert dump_object(loaded.pruner) == dump_object(good.pruner), position
        outcomes["harmless"] += 1
    assert outcomes["detected"] > 200, outcomes


@pytest.mark.parametrize("key", ["format_version", "trial", "study_uid"])
def test_metadata_changed_without_its_checksum_is_refused(tmp_path: Path, key: str) -> None:
    """Every key of the metadata is under its checksum: renaming one, ``format_version``
    included (whose value says which checks apply), is found."""
    run(tmp_path / "s", 3)
    path = FolderStore(_checkpoints_folder(tmp_path / "s")).path(3, "before")
    document = torch.load(path, weights_only=True)
    document["meta"][key + "_"] = document["meta"].pop(key)
    torch.save(document, path)
    with pytest.raises(CorruptCheckpointError, match="fails its metadata checksum"):
        read_checkpoint(CheckpointInfo(path, 3, "before"), study_uid=None)


@pytest.mark.parametrize("damage", ["zero_length", "truncated", "bit_flip", "other_format"])
def test_a_damaged_newest_state_falls_back_to_its_equivalent(
    tmp_path: Path,
    damage: str,
    uninterrupted: Snapshot,
    caplog: pytest.LogCaptureFixture,
) -> None:
    root = tmp_path / "s"
    run(root, 5)
    path = FolderStore(_checkpoints_folder(root)).path(5, "before")
    _damage(path, damage)
    caplog.set_level(logging.WARNING, logger="optuna_resume")
    assert run(root, 8) == uninterrupted  # "after trial 4" holds the same state
    assert any("trying an equivalent checkpoint" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("damage", ["zero_length", "truncated", "bit_flip", "other_format"])
def test_no_valid_state_stops_and_says_how_to_repair(
    tmp_path: Path, damage: str, uninterrupted: Snapshot
) -> None:
    root = tmp_path / "s"
    before = run(root, 5)
    for info in list_checkpoints(root):
        if info.position == 5:
            _damage(info.path, damage)
    with pytest.raises(CorruptCheckpointError, match="no intact checkpoint") as error:
        run(root, 8)
    assert "rewind to an earlier state (rewind_to=N; states before trials [0, 1, 2, 3, 4]" in str(
        error.value
    )
    assert stored(root) == before  # nothing changed
    findings = verify_root(root).findings
    assert {Path(f.subject).name for f in findings} >= {"trial-000005.before.pt"}
    # The repair the message names: rewind to an intact state; trials 3, 4 re-run exactly.
    assert run(root, 8, rewind_to=3) == uninterrupted


def test_a_damaged_old_state_only_matters_to_a_rewind_to_it(
    tmp_path: Path, uninterrupted: Snapshot
) -> None:
    root = tmp_path / "s"
    before = run(root, 5)
    _damage(FolderStore(_checkpoints_folder(root)).path(2, "before"), "bit_flip")
    with pytest.raises(CorruptCheckpointError, match="checksum"):
        run(root, 5, rewind_to=2)
    assert stored(root) == before
    assert run(root, 8) == uninterrupted  # resuming needs only the newest state


def test_a_checkpoint_renamed_to_another_trial_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "s"
    before = run(root, 5)
    folder = _checkpoints_folder(root)
    for phase_path in folder.glob("trial-000004.after.pt"):
        phase_path.unlink()  # only the renamed state could be used
    shutil.copy(FolderStore(folder).path(2, "before"), FolderStore(folder).path(5, "before"))
    with pytest.raises(CorruptCheckpointError, match="renamed or copied over"):
        run(root, 8)
    assert stored(root) == before


def test_checkpoints_swapped_between_studies_are_refused(tmp_path: Path) -> None:
    run(tmp_path / "a", 3)
    run(tmp_path / "b", 3)
    for name in ("trial-000003.before.pt", "trial-000002.after.pt"):
        os.replace(
            _checkpoints_folder(tmp_path / "b") / name, _checkpoints_folder(tmp_path / "a") / name
        )
    with pytest.raises(CheckpointMismatchError, match="holds the checkpoints of study 'b'"):
        run(tmp_path / "a", 5)


def test_checkpoints_newer_than_the_storage_are_set_aside(
    tmp_path: Path, uninterrupted: Snapshot, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "s"
    run(root, 4)
    old_copy = tmp_path / "study-after-4.db"
    shutil.copy(root / "study.db", old_copy)  # (the study is closed: a plain copy is safe)
    run(root, 7)
    shutil.copy(old_copy, root / "study.db")  # the storage goes back to an older copy
    caplog.set_level(logging.WARNING, logger="optuna_resume")
    assert run(root, 8) == uninterrupted
    message = next(r.getMessage() for r in caplog.records if "set aside" in r.getMessage())
    assert "holds 4 trial(s)" in message
    assert "kept in backup 2" in message  # the entry's backup (0, 1: the earlier entries)
    assert (root / "checkpoints_backup-2" / "trial-000007.before.pt").exists()


def test_storage_newer_than_the_checkpoints_needs_an_explicit_choice(
    tmp_path: Path, uninterrupted: Snapshot
) -> None:
    root = tmp_path / "s"
    before = run(root, 5)
    for info in list_checkpoints(root):
        if info.position >= 4:
            info.path.unlink()  # the newest checkpoints are deleted
    with pytest.raises(CheckpointNotFoundError, match=r"rewind to one of those \(rewind_to=N\)"):
        run(root, 8)
    assert stored(root) == before
    assert run(root, 8, rewind_to=3) == uninterrupted


class _WritesAFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.path), "w"))


@pytest.mark.parametrize("where", ["document", "blob"])
def test_hostile_files_are_refused_without_running_anything(tmp_path: Path, where: str) -> None:
    root = tmp_path / "s"
    run(root, 3)
    witness = tmp_path / "written"
    folder = _checkpoints_folder(root)
    if where == "document":  # the whole file crafted, not only its payload
        torch.save({"format": _WritesAFile(witness)}, FolderStore(folder).path(3, "before"))
        (folder / "trial-000002.after.pt").unlink()
        expected = "would call code outside the safe loader's allowlist"
    else:  # a blob file that a checkpoint refers to, replaced
        grid = {"x": [float(i) for i in range(2000)]}
        with ResumableStudy(tmp_path / "g", sampler=optuna.samplers.GridSampler(grid)) as study:
            study.optimize(lambda t: t.suggest_float("x", 0, 2000), n_trials=2)
        [blob] = (_checkpoints_folder(tmp_path / "g") / "blobs").iterdir()
        torch.save(_WritesAFile(witness), blob)
        root = tmp_path / "g"
        expected = "checksum"
    with (
        pytest.raises((UnsafeCheckpointError, CorruptCheckpointError), match=expected),
        ResumableStudy(root),
    ):
        pass
    assert not witness.exists()


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "zero_length":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(data[: len(data) * 2 // 3])
    elif how == "bit_flip":
        document = torch.load(path, weights_only=True)
        document["payload"][len(document["payload"]) // 3] ^= 0x10
        torch.save(document, path)
    else:
        torch.save({"model": torch.zeros(2)}, path)
