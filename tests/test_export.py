"""Exporting one state as a self-contained ``.pt`` file: from the study's database (the root
may be empty, as on another host), from a worker's state recorded in the study, from the
root's files; the file alone lets a plain Optuna study go on exactly."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
from optuna.storages import RDBStorage
from optuna.storages.journal import JournalFileBackend
from services import require
from test_cli import cli

from optuna_resume import (
    CheckpointNotFoundError,
    CorruptCheckpointError,
    InvalidArgumentError,
    ResumableStudy,
    StudyNotFoundError,
    export_checkpoint,
    load_sampler,
)
from optuna_resume._checkpoint import read_meta

N_FIRST, N_ALL = 4, 9


def _objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5.0, 5.0)
    y = trial.suggest_int("y", 0, 4)
    return (x - 1.0) ** 2 + y


SAMPLERS: dict[str, Callable[[], optuna.samplers.BaseSampler]] = {
    "tpe": lambda: optuna.samplers.TPESampler(seed=7, n_startup_trials=3),
    "cmaes": lambda: optuna.samplers.CmaEsSampler(seed=7, n_startup_trials=2),
    # A grid of 3,000 points: stored once as a blob, which the export carries.
    "grid": lambda: optuna.samplers.GridSampler(
        {"x": [i / 300 - 5 for i in range(600)], "y": list(range(5))}, seed=7
    ),
}


def _params(study: optuna.Study) -> list[dict[str, Any]]:
    return [t.params for t in sorted(study.trials, key=lambda t: t.number)]


def _reference(tmp_path: Path, make: Callable[[], optuna.samplers.BaseSampler]) -> list[Any]:
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'reference.db'}", study_name="r", sampler=make()
    )
    study.optimize(_objective, n_trials=N_ALL)
    return _params(study)


def _tpe_root(root: Path) -> Path:
    """``root``, after a TPE study of ``N_FIRST`` trials was run in it (its own study.db)."""
    with ResumableStudy(root, sampler=SAMPLERS["tpe"]()) as study:
        study.optimize(_objective, n_trials=N_FIRST)
    return root


@contextmanager
def _postgres_study(tmp_path: Path, n_trials: int) -> Iterator[tuple[str, str, RDBStorage]]:
    """A TPE study of ``n_trials`` trials on PostgreSQL, run from root ``host-a``: its URL,
    name and storage (the study is deleted afterwards)."""
    url = require("postgres")
    name = f"export-{uuid.uuid4().hex[:8]}"
    storage = RDBStorage(url)
    try:
        with ResumableStudy(
            tmp_path / "host-a", storage=storage, study_name=name, sampler=SAMPLERS["tpe"]()
        ) as study:
            study.optimize(_objective, n_trials=n_trials)
        yield url, name, storage
    finally:
        optuna.delete_study(study_name=name, storage=storage)
        storage.engine.dispose()


@pytest.mark.parametrize("name", SAMPLERS)
def test_the_exported_file_alone_lets_a_plain_optuna_study_go_on_exactly(
    tmp_path: Path, name: str
) -> None:
    make = SAMPLERS[name]
    root = tmp_path / "study"
    with ResumableStudy(root, sampler=make()) as study:
        study.optimize(_objective, n_trials=N_FIRST)
    exported = export_checkpoint(root, tmp_path / "state.pt")
    assert (exported.path, exported.position) == (tmp_path / "state.pt", N_FIRST)
    document = torch.load(exported.path, weights_only=True)  # a torch.save file
    assert (document["meta"]["trial"], document["meta"]["phase"]) == (N_FIRST, "before")
    assert document["meta"]["study_name"] == "study"
    assert bool(document["blobs"]) == (name == "grid")
    # Nothing of the root is needed any more: the file carries what the state refers to.
    shutil.rmtree(root / "checkpoints")
    sampler = load_sampler(exported.path)
    assert type(sampler) is type(make())
    plain = optuna.load_study(
        study_name="study", storage=f"sqlite:///{root}/study.db", sampler=sampler
    )
    plain.optimize(_objective, n_trials=N_ALL - N_FIRST)
    assert _params(plain) == _reference(tmp_path, make)


def test_a_state_of_a_postgresql_study_is_exported_from_another_host_with_no_root(
    tmp_path: Path,
) -> None:
    with _postgres_study(tmp_path, N_FIRST) as (url, name, storage):
        elsewhere = tmp_path / "host-b" / name  # never created: only the URL is known there
        exported = export_checkpoint(elsewhere, tmp_path / "b.pt", storage=url, study_name=name)
        assert not elsewhere.parent.exists()
        meta = read_meta(exported.path)
        assert "database" in meta["exported_from"] and meta["trial"] == N_FIRST
        earlier = export_checkpoint(elsewhere, tmp_path / "b2.pt", 2, storage=url, study_name=name)
        assert earlier.position == 2
        plain = optuna.load_study(
            study_name=name, storage=storage, sampler=load_sampler(exported.path)
        )
        plain.optimize(_objective, n_trials=N_ALL - N_FIRST)
        assert _params(plain) == _reference(tmp_path, SAMPLERS["tpe"])


def test_load_sampler_on_another_host_takes_the_state_from_the_postgresql_database(
    tmp_path: Path,
) -> None:
    with _postgres_study(tmp_path, N_FIRST) as (url, name, storage):
        elsewhere = tmp_path / "host-b" / name  # never created: only the URL is known there
        with pytest.raises(CheckpointNotFoundError):  # the files alone hold nothing there
            load_sampler(elsewhere)
        assert not any(elsewhere.rglob("*.pt"))
        with pytest.raises(CheckpointNotFoundError, match="before trial 40"):
            load_sampler(elsewhere, 40, storage=url, study_name=name)
        sampler = load_sampler(elsewhere, storage=url, study_name=name)
        plain = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
        plain.optimize(_objective, n_trials=N_ALL - N_FIRST)
        assert _params(plain) == _reference(tmp_path, SAMPLERS["tpe"])


def test_load_sampler_reads_the_roots_database_where_its_files_are_gone_or_torn(
    tmp_path: Path,
) -> None:
    root = _tpe_root(tmp_path / "study")
    newest = root / "checkpoints" / f"trial-{N_FIRST:06d}.before.pt"
    newest.write_bytes(newest.read_bytes()[:100])  # torn, as by a power loss
    sampler = load_sampler(root)
    plain = optuna.load_study(
        study_name="study", storage=f"sqlite:///{root}/study.db", sampler=sampler
    )
    plain.optimize(_objective, n_trials=N_ALL - N_FIRST)
    assert _params(plain) == _reference(tmp_path, SAMPLERS["tpe"])
    shutil.rmtree(root / "checkpoints")
    assert type(load_sampler(root, 2)) is optuna.samplers.TPESampler
    # A root with no database and no files: the error names what is missing.
    with pytest.raises(CheckpointNotFoundError, match="no checkpoint"):
        load_sampler(tmp_path / "empty")


def test_a_workers_state_recorded_in_a_journal_study_is_exported_with_an_empty_root(
    tmp_path: Path,
) -> None:
    def storage() -> optuna.storages.JournalStorage:
        return optuna.storages.JournalStorage(JournalFileBackend(str(tmp_path / "journal.log")))

    with ResumableStudy(
        tmp_path / "host-a" / "s", storage=storage(), sampler=SAMPLERS["tpe"](), worker="a"
    ) as study:
        study.optimize(_objective, n_trials=N_FIRST)
    exported = export_checkpoint(
        tmp_path / "host-b" / "s", tmp_path / "a.pt", storage=storage(), worker="a"
    )
    meta = read_meta(exported.path)
    assert meta["worker"] == "a" and "recorded in the study" in meta["exported_from"]
    # The newest state the worker recorded: after its last trial.
    assert (exported.trial, exported.phase) == (N_FIRST - 1, "after")
    with_root = export_checkpoint(
        tmp_path / "host-a" / "s", tmp_path / "a-root.pt", storage=storage(), worker="a"
    )
    assert with_root.position == N_FIRST
    assert isinstance(load_sampler(exported.path), optuna.samplers.TPESampler)
    with pytest.raises(CheckpointNotFoundError, match="no intact checkpoint"):
        export_checkpoint(
            tmp_path / "host-b" / "s", tmp_path / "b.pt", storage=storage(), worker="b"
        )
    assert not (tmp_path / "b.pt").exists()


def test_export_refuses_what_it_cannot_do_and_writes_nothing(tmp_path: Path) -> None:
    root = _tpe_root(tmp_path / "study")
    kept = tmp_path / "kept.pt"
    kept.write_bytes(b"someone's file")
    with pytest.raises(InvalidArgumentError, match="exists: nothing was written"):
        export_checkpoint(root, kept)
    assert kept.read_bytes() == b"someone's file"
    with pytest.raises(CheckpointNotFoundError, match="before trial 40"):
        export_checkpoint(root, tmp_path / "x.pt", 40)
    with pytest.raises(InvalidArgumentError, match="non-negative int"):
        export_checkpoint(root, tmp_path / "x.pt", -1)
    with pytest.raises(StudyNotFoundError):
        export_checkpoint(tmp_path / "nowhere", tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()
    # Into a folder: the checkpoint's own name.
    (tmp_path / "out").mkdir()
    inside = export_checkpoint(root, tmp_path / "out", 2)
    assert inside.path == tmp_path / "out" / "trial-000002.before.pt"
    with pytest.raises(CheckpointNotFoundError, match="not before trial 3"):
        load_sampler(inside.path, 3)
    # A damaged export is refused when loaded, not silently used.
    data = bytearray(inside.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpointError):
        load_sampler(damaged)


def test_a_damaged_state_in_the_database_is_passed_over_for_an_intact_copy(
    tmp_path: Path,
) -> None:
    import sqlalchemy

    root = _tpe_root(tmp_path / "study")
    engine = sqlalchemy.create_engine(f"sqlite:///{root}/study.db")
    with engine.begin() as connection:
        changed = connection.execute(
            sqlalchemy.text(
                "UPDATE optuna_resume_states SET document = :junk WHERE trial = :t AND "
                "phase = 'before'"
            ),
            {"junk": b"not a checkpoint", "t": N_FIRST},
        ).rowcount
    engine.dispose()
    assert changed == 1
    exported = export_checkpoint(root, tmp_path / "state.pt")
    assert read_meta(exported.path)["exported_from"] == str(
        root / "checkpoints" / f"trial-{N_FIRST:06d}.before.pt"
    )


def test_the_export_command(tmp_path: Path) -> None:
    root = _tpe_root(tmp_path / "my study #1")

    done = cli("export", str(root), str(tmp_path / "s.pt"), "--trial", "3")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"exported the state before trial 3 to {tmp_path / 's.pt'}"
    assert read_meta(tmp_path / "s.pt")["trial"] == 3
    missing = cli("export", str(root), str(tmp_path / "t.pt"), "--trial", "30")
    assert missing.returncode == 3 and "no intact checkpoint" in missing.stderr
    assert not (tmp_path / "t.pt").exists()


def test_a_rewind_from_the_command_line_on_another_host_takes_the_state_from_the_database(
    tmp_path: Path,
) -> None:
    with _postgres_study(tmp_path, N_ALL) as (url, name, storage):
        original = _params(optuna.load_study(study_name=name, storage=storage))
        empty = tmp_path / "host-b"
        empty.mkdir()
        args = ["--storage", url, "--study-name", name, "--to", "3"]
        done = cli("rewind", str(empty), *args)
        assert done.returncode == 0, done.stderr
        assert "the sampler comes back from the study's database" in done.stdout
        assert len(optuna.load_study(study_name=name, storage=storage).trials) == 3
        with ResumableStudy(
            empty, storage=storage, study_name=name, sampler=SAMPLERS["tpe"]()
        ) as study:
            study.optimize(_objective, n_trials=N_ALL - 3)
        assert _params(study) == original
