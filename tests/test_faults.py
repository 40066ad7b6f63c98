"""A full or failing disk at each kind of write: clear error, nothing lost, go on after.

Faults are injected at the library's named steps (``OPTUNA_RESUME_FAULT``, see ``_fault``).
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from small_study import Snapshot, snapshot
from small_study import run as run_study

from optuna_resume import CheckpointWriteError, _fault
from optuna_resume._checkpoint import read_meta


def run(root: Path, n: int) -> Snapshot:
    return snapshot(run_study(root, n))


@pytest.fixture(autouse=True)
def _no_faults_after() -> Iterator[None]:
    yield
    _fault.load_plan("")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    return run(tmp_path_factory.mktemp("reference") / "s", 7)


def _intact(root: Path) -> list[str]:
    names = []
    for path in sorted((root / "checkpoints").glob("trial-*.pt")):
        read_meta(path)  # every file left is a whole, verified checkpoint
        names.append(path.name)
    return names


# Durable writes 1 to 3 are the entry's (lock owner, backup copy, the backup's record), then
# trial 4's "before" and "after" checkpoints, then trial 5's "before".
@pytest.mark.parametrize("action", ["enospc", "eio"])
@pytest.mark.parametrize(
    ("plan", "raises"),
    [
        ("atomic.written@4", True),  # a "before" checkpoint: the study stops
        ("atomic.synced@5", False),  # an "after" one: logged, the next "before" stands in
        ("atomic.replaced@6", True),
        ("backup.copying@1", True),
        ("backup.linking@3", True),
    ],
)
def test_a_failing_disk_stops_cleanly_and_the_study_goes_on_once_fixed(
    tmp_path: Path,
    plan: str,
    raises: bool,
    action: str,
    uninterrupted: Snapshot,
    caplog: pytest.LogCaptureFixture,
) -> None:
    root = tmp_path / "s"
    run(root, 4)
    files_before = _intact(root)
    _fault.load_plan(f"{plan}={action}")
    code = errno.ENOSPC if action == "enospc" else errno.EIO
    caplog.set_level(logging.ERROR, logger="optuna_resume")
    if raises:
        with pytest.raises(CheckpointWriteError) as error:
            run(root, 7)
        assert error.value.errno == code
        assert "free space or fix permissions and run again" in str(error.value)
        assert ("the disk is full" in str(error.value)) == (action == "enospc")
    else:
        run(root, 7)
        assert "could not checkpoint the end of trial 4" in caplog.text
    befores = {name for name in files_before if name.endswith(".before.pt")}
    assert befores <= set(_intact(root))  # no earlier state was lost (only the newest "after"
    # state is ever kept, by design)
    assert not list(root.rglob("*.partial"))  # no half-written file or half backup is left
    _fault.load_plan("")  # space is back
    assert run(root, 7) == uninterrupted


def test_fault_plans_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown fault point 'nowhere'"):
        _fault.parse_plan("nowhere@1=kill")
    with pytest.raises(ValueError, match="unknown action 'explode'"):
        _fault.parse_plan("final.saved=explode")
    with pytest.raises(ValueError, match="must be a number from 1"):
        _fault.parse_plan("final.saved@0")
    assert _fault.parse_plan("ask.saved@3=eio, final.saved") == {
        "ask.saved": (3, "eio"),
        "final.saved": (1, "kill"),
    }
