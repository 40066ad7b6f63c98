"""A kill inside a journal study's rebuild (a re-run or a rewind) is repaired by the next entry.

The journal storage cannot delete a trial: the study is deleted and written again. Each case
SIGKILLs a real process at a step of that rebuild, then kills the repair once too; the next
entry puts the study back from the copy taken first and goes on exactly.
"""

from __future__ import annotations

import functools
import signal
from multiprocessing.context import ForkServerContext
from pathlib import Path
from typing import Any

import pytest
from conftest import run_in_process
from resume_driver import MODEL_PHASE_TRIAL, reference, stored_trials

KILLED = -signal.SIGKILL
K = MODEL_PHASE_TRIAL


@functools.cache
def uninterrupted() -> list[tuple[int, dict[str, Any], list[float]]]:
    return reference("tpe")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("cut", "fault"),
    [
        ("rerun", "rebuild.deleted"),
        ("rerun", "rebuild.trial@1"),
        ("rerun", f"rebuild.trial@{K}"),  # every kept trial written, no identity yet
        ("rewind", "rebuild.deleted"),
        ("rewind", "rebuild.trial@2"),
    ],
)
def test_a_kill_inside_the_rebuild_is_repaired_and_the_study_goes_on_exactly(
    process_context: ForkServerContext, tmp_path: Path, cut: str, fault: str
) -> None:
    root = tmp_path / "tpe"
    phase = functools.partial(
        run_in_process, process_context, root=str(root), name="tpe", storage="journal"
    )
    rewind_to = K - 2 if cut == "rewind" else None
    if cut == "rerun":
        assert phase(kill_at=K) == KILLED  # trial K is cut off: the next entry re-runs it
    else:
        assert phase() == 0
    assert phase(rewind_to=rewind_to, fault=f"{fault}=kill") == KILLED
    assert phase(rewind_to=rewind_to, fault="rebuild.repairing=kill") == KILLED
    assert phase(rewind_to=rewind_to) == 0
    assert not (root / "rebuild.json").exists()
    assert stored_trials(root, "journal") == uninterrupted()
