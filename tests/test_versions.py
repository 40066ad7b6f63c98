"""A state written by other versions of Optuna (or torch, NumPy) is said to be that, not damage."""

from __future__ import annotations

import hashlib
import io
import zlib
from pathlib import Path

import optuna
import pytest
import torch
from small_study import files_only, run, tpe

from optuna_resume import (
    CheckpointVersionError,
    CorruptCheckpointError,
    InexactResumeWarning,
    ResumableStudy,
    list_checkpoints,
)
from optuna_resume._checkpoint import meta_digest


class _OtherArity:
    """Pickles as Optuna 4.5 pickled TPE's estimator parameters: one field more than now."""

    def __reduce__(self) -> tuple[object, tuple[int, ...]]:
        from optuna.samplers._tpe.parzen_estimator import _ParzenEstimatorParameters

        return (
            _ParzenEstimatorParameters,
            tuple(range(len(_ParzenEstimatorParameters._fields) + 1)),
        )


def _as_if_written_by(root: Path, optuna_version: str | None) -> None:
    """The newest states (before trial 3, after trial 2) as another Optuna would have left them."""
    for info in list_checkpoints(root)[-2:]:
        document = torch.load(info.path, weights_only=True)
        buffer = io.BytesIO()
        torch.save({"sampler": _OtherArity(), "system_attrs": "{}"}, buffer)
        data = zlib.compress(buffer.getvalue())
        document["payload"] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
        document["sha256"] = hashlib.sha256(data).hexdigest()
        if optuna_version is not None:
            document["meta"]["optuna_version"] = optuna_version
        document["meta_sha256"] = meta_digest(document["meta"])
        torch.save(document, info.path)


def test_a_state_of_another_optuna_is_named_with_both_versions(tmp_path: Path) -> None:
    root = tmp_path / "s"
    run(root, 3)
    files_only(root)  # the states are the files (in the database they are rows)
    _as_if_written_by(root, "4.5.0")
    with pytest.raises(CheckpointVersionError) as error:
        ResumableStudy(root, sampler=tpe()).__enter__()
    message = str(error.value)
    assert "written by Optuna 4.5.0" in message
    assert f"running now (Optuna {optuna.__version__})" in message
    assert "not damaged" in message and "allow_inexact=True" in message
    assert isinstance(error.value, CorruptCheckpointError)  # what older code caught
    with (
        pytest.warns(InexactResumeWarning),
        ResumableStudy(root, sampler=tpe(), allow_inexact=True) as study,
    ):
        assert len(study.trials) == 3  # the trials already run are kept
        study.optimize(lambda t: t.suggest_float("x", -10, 10), n_trials=1)


def test_the_same_damage_under_the_same_versions_is_damage(tmp_path: Path) -> None:
    root = tmp_path / "s"
    run(root, 3)
    files_only(root)  # the states are the files (in the database they are rows)
    _as_if_written_by(root, None)
    with pytest.raises(CorruptCheckpointError, match="no intact checkpoint") as error:
        ResumableStudy(root, sampler=tpe()).__enter__()
    assert not isinstance(error.value, CheckpointVersionError)
