"""The root's lock across processes: a clear error naming the holder, freed by its death."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import root_held_by_another_process

from optuna_resume import ResumableStudy, RootLockedError

HOLDER = """
import sys, time
from optuna_resume import ResumableStudy
with ResumableStudy(sys.argv[1]):
    print("holding", flush=True)
    time.sleep(600)
"""


def test_second_process_is_refused_then_admitted_once_the_holder_is_killed(
    tmp_path: Path,
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "s")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        started = time.monotonic()
        with pytest.raises(RootLockedError, match=f"PID {holder.pid} on"):
            ResumableStudy(tmp_path / "s").__enter__()
        assert time.monotonic() - started < 5
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(30)
        with ResumableStudy(tmp_path / "s") as study:
            assert study.study_name == "s"
    finally:
        holder.kill()
        holder.wait(30)
        if holder.stdout is not None:
            holder.stdout.close()


def test_lock_timeout_waits_for_the_holder(tmp_path: Path) -> None:
    with root_held_by_another_process(tmp_path / "s"):
        started = time.monotonic()
        with pytest.raises(RootLockedError):
            ResumableStudy(tmp_path / "s", lock_timeout=0.3).__enter__()
        assert time.monotonic() - started >= 0.3
