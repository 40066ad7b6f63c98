"""``verify_root``: each kind of damage is found, named and told how to repair."""

from __future__ import annotations

import shutil
from pathlib import Path

import optuna
import pytest
import torch

from optuna_resume import ResumableStudy, checkpointed_objective, optimize_until, verify_root

N = 5


@checkpointed_objective()
def objective(trial: optuna.Trial) -> float:
    return trial.suggest_float("x", 0, 1)


def make_study(root: Path, n: int = N, name: str | None = None) -> None:
    sampler = optuna.samplers.RandomSampler(seed=0)
    with ResumableStudy(root, sampler=sampler, study_name=name) as study:
        optimize_until(study, objective, n)


def checkpoint(root: Path, trial: int, phase: str = "before") -> Path:
    return root / "checkpoints" / f"trial-{trial:06d}.{phase}.pt"


def flip_a_payload_bit(path: Path) -> None:
    """Flip one bit in the middle of the stored payload (not in the file's structure)."""
    data = bytearray(path.read_bytes())
    payload = torch.load(path, weights_only=True)["payload"].numpy().tobytes()
    at = data.find(payload) + len(payload) // 2
    data[at] ^= 0x04
    path.write_bytes(bytes(data))


def messages(root: Path) -> list[str]:
    result = verify_root(root)
    assert result.ok == (not result.findings)
    return [str(f) for f in result.findings]


def test_a_healthy_root(tmp_path: Path) -> None:
    make_study(tmp_path / "s")
    result = verify_root(tmp_path / "s")
    assert result.ok
    assert (result.checked, result.n_trials) == (N + 2, N)  # before 0..N and after N-1


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[:200]), "is not a readable checkpoint"),
        (lambda p: p.write_bytes(b""), "is not a readable checkpoint"),
        (
            flip_a_payload_bit,
            "fails its checksum",
        ),
        (lambda p: p.write_text("not a checkpoint"), "is not a readable checkpoint"),
    ],
    ids=["truncated", "zero-length", "bit-flip-in-payload", "wrong-format"],
)
def test_a_damaged_checkpoint_is_named(tmp_path: Path, damage: object, expected: str) -> None:
    root = tmp_path / "s"
    make_study(root)
    target = checkpoint(root, 2)
    original = target.read_bytes()
    damage(target)  # type: ignore[operator]
    assert target.read_bytes() != original
    found = messages(root)
    assert len(found) == 1
    assert found[0].startswith(f"{target}: ") and expected in found[0]


def test_a_renamed_checkpoint_is_found(tmp_path: Path) -> None:
    root = tmp_path / "s"
    make_study(root)
    shutil.copy(checkpoint(root, 1), checkpoint(root, 3))
    assert messages(root) == [
        f"{checkpoint(root, 3)}: {checkpoint(root, 3)} holds the state of trial 1 (before), not "
        "the one its name says: it was renamed or copied over. Give it back its name "
        "(trial-000001.before.pt) or remove it."
    ]


def test_a_checkpoint_of_another_study_is_found(tmp_path: Path) -> None:
    make_study(tmp_path / "s")
    make_study(tmp_path / "t")
    shutil.copy(checkpoint(tmp_path / "t", 2), checkpoint(tmp_path / "s", 2))
    (found,) = messages(tmp_path / "s")
    assert "belongs to study 't'" in found and "not to this one" in found


def test_checkpoints_newer_than_the_storage(tmp_path: Path) -> None:
    root = tmp_path / "s"
    make_study(root, 2)
    make_study(root)  # backup 1 holds the study with 2 trials
    shutil.copy(root / "study_backup-1.db", root / "study.db")
    found = messages(root)
    assert [f.split(":")[0] for f in found] == [
        str(checkpoint(root, 3)),
        str(checkpoint(root, 4)),
        str(checkpoint(root, N - 1, "after")),
        str(checkpoint(root, 5)),
    ]
    assert "the storage holds only 2 trial(s): the storage lost trials" in found[0]


def _delete_rows(root: Path, where: str) -> int:
    import sqlalchemy

    engine = sqlalchemy.create_engine(f"sqlite:///{root}/study.db")
    try:
        with engine.begin() as connection:
            deleted = connection.execute(
                sqlalchemy.text(f"DELETE FROM optuna_resume_states WHERE {where}")
            )
            return int(deleted.rowcount)
    finally:
        engine.dispose()


def test_a_storage_newer_than_the_checkpoints(tmp_path: Path) -> None:
    root = tmp_path / "s"
    make_study(root)
    for path in (root / "checkpoints").glob("*.pt"):
        if "00000" + str(N) in path.name or "after" in path.name:
            path.unlink()
    # The study's database still holds that state (committed with the trial): it resumes.
    assert messages(root) == []
    assert _delete_rows(root, f"trial = {N} OR phase = 'after'") >= 2
    assert messages(root) == [
        f"study: no valid checkpoint holds the state before trial {N} "
        f"(trial-{N:06d}.before.pt, nor the study's database): the next entry cannot resume "
        "exactly. Rewind to a trial that has one (rewind ROOT --to N), or resume with "
        "allow_inexact=True."
    ]


def test_the_states_in_the_database_are_verified_from_another_host(tmp_path: Path) -> None:
    import sqlalchemy

    root = tmp_path / "host-a" / "s"
    make_study(root)
    url = f"sqlite:///{root}/study.db"
    elsewhere = tmp_path / "host-b" / "s"  # never created: only the URL is known there
    result = verify_root(elsewhere, url)
    assert result.ok and result.checked == 0 and result.checked_in_database >= N + 1
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                sqlalchemy.text(
                    "UPDATE optuna_resume_states SET document = :junk WHERE trial = 2 AND "
                    "phase = 'before'"
                ),
                {"junk": b"not a checkpoint"},
            )
    finally:
        engine.dispose()
    (found,) = verify_root(elsewhere, url).findings
    assert "the study's database" in found.subject and "state of trial 2" in found.subject
    assert "not a readable checkpoint" in found.message
    assert not elsewhere.parent.exists()  # read only: nothing was created there
