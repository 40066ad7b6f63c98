"""A study started under Optuna 4.5 / NumPy 1.26 and continued under the installed versions.

Two real virtualenvs: the old one is built here (pip, from the package index; without it the
test skips, or fails under ``OPTUNA_RESUME_REQUIRE_SERVICES=1`` as in CI) and runs this
checkout's library from its source folder. Five trials run there; the same script then runs
here. The state is refused as written by other versions (named), and with
``allow_inexact=True`` the study goes on with the trials kept and the saved random stream
carried over: in TPE's start-up phase
the draws are then exactly those of an uninterrupted run under the old versions, where a
plain restart repeats the first draws.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

import pytest

DRIVER = Path(__file__).with_name("upgrade_driver.py")
CHECKOUT = Path(__file__).parents[1]
OLD = ["optuna==4.5.0", "numpy==1.26.4"]


@pytest.fixture(scope="module")
def old_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("old-venv")
    venv.create(folder, with_pip=True)
    python = folder / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    steps = [
        [*pip, "torch==2.13.0"],  # the CPU wheel (as .ci/run): before anything pulls one
        [*pip, *OLD, "wrapt", "filelock"],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            reason = f"cannot build the old virtualenv: {done.stderr.strip()[-400:]}"
            if os.environ.get("OPTUNA_RESUME_REQUIRE_SERVICES") == "1":
                pytest.fail(reason)
            pytest.skip(reason)
    return python


def _run(python: Path, root: Path, *args: str) -> tuple[int, Any, str]:
    done = subprocess.run(
        [str(python), str(DRIVER), str(root), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(CHECKOUT / "src")},
    )
    out = done.stdout.strip()
    return done.returncode, json.loads(out) if done.returncode == 0 else out, done.stderr


@pytest.mark.slow
def test_a_study_goes_on_across_an_upgrade_of_optuna_and_numpy(
    old_python: Path, tmp_path: Path
) -> None:
    root = tmp_path / "study"
    code, old, _ = _run(old_python, root, "5")
    assert code == 0
    assert old["versions"] == ["4.5.0", "1.26.4"]
    code, reference, _ = _run(old_python, tmp_path / "reference", "8")  # uninterrupted, old
    assert code == 0

    now = Path(sys.executable)
    code, refused, _ = _run(now, root, "8")
    assert code == 3
    assert refused.startswith("ERROR CheckpointVersionError")
    assert "written by Optuna 4.5.0, NumPy 1.26.4" in refused
    assert "allow_inexact=True" in refused and "Nothing was changed" in refused

    code, resumed, _ = _run(now, root, "8", "inexact")
    assert code == 0
    trials = resumed["trials"]
    assert trials[:5] == old["trials"]  # kept
    # The saved random stream goes on: the start-up draws are the uninterrupted run's, and
    # none repeats an earlier trial's (a plain restart would draw trial 0's again).
    assert trials == reference["trials"]
    params = [json.dumps(t[1], sort_keys=True) for t in trials]
    assert len(set(params)) == len(params)
    (warning,) = resumed["warnings"]
    assert "written by Optuna 4.5.0, NumPy 1.26.4" in warning
    assert "its random state (_rng._rng, _random_sampler._rng._rng)" in warning
    assert "constant_liar=True (the saved sampler had False)" in warning
