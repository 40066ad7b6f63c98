"""Two studies in one SQLite file, run by two processes at once from two roots."""

from __future__ import annotations

import re
import signal
from multiprocessing.context import ForkServerContext
from pathlib import Path
from typing import Any

import pytest
from resume_driver import MODEL_PHASE_TRIAL, reference, run_phase, stored_trials

KILLED = -signal.SIGKILL


def _side_by_side(
    context: ForkServerContext, phases: dict[str, dict[str, Any]], timeout: float = 240
) -> dict[str, int | None]:
    """Run one phase per root at the same time; return each process's exit code."""
    processes = {
        root: context.Process(target=run_phase, kwargs={"root": root, **kwargs})
        for root, kwargs in phases.items()
    }
    for process in processes.values():
        process.start()
    for process in processes.values():
        process.join(timeout)
    for root, process in processes.items():
        if process.is_alive():
            process.kill()
            process.join()
            raise AssertionError(f"the process of {root} did not finish")
    return {root: process.exitcode for root, process in processes.items()}


def _backups(folder: Path, study: str) -> list[int]:
    pattern = re.compile(rf"^shared_{study}_backup-(\d+)\.db$")
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := pattern.match(p.name)))


@pytest.mark.slow
def test_two_studies_in_one_file_resume_exactly_side_by_side(
    process_context: ForkServerContext, tmp_path: Path
) -> None:
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    common = {"storage": "shared"}
    codes = _side_by_side(
        process_context,
        {
            a: {"name": "tpe", "kill_at": MODEL_PHASE_TRIAL, **common},
            b: {"name": "cmaes", "crash_at": 5, **common},
        },
    )
    assert codes == {a: KILLED, b: 1}
    codes = _side_by_side(
        process_context, {a: {"name": "tpe", **common}, b: {"name": "cmaes", **common}}
    )
    assert codes == {a: 0, b: 0}
    codes = _side_by_side(  # both rewind at once, in the same file
        process_context,
        {
            a: {"name": "tpe", "rewind_to": 3, **common},
            b: {"name": "cmaes", "rewind_to": 6, **common},
        },
    )
    assert codes == {a: 0, b: 0}
    assert stored_trials(Path(a), "shared") == reference("tpe")
    assert stored_trials(Path(b), "shared") == reference("cmaes")
    # Each root keeps its own backups of the shared file: three entries, one backup each.
    assert _backups(tmp_path, "a") == [0, 1, 2]
    assert _backups(tmp_path, "b") == [0, 1, 2]
    for root in (a, b):
        assert sorted(p.name for p in Path(root).glob("checkpoints_backup-*")) == [
            "checkpoints_backup-0",
            "checkpoints_backup-1",
            "checkpoints_backup-2",
        ]
