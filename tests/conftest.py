from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from multiprocessing.context import ForkServerContext
from pathlib import Path
from typing import Any

import optuna
import pytest

optuna.logging.set_verbosity(optuna.logging.WARNING)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fuzz-kills",
        type=int,
        default=70,
        help="SIGKILLs per sampler in the kill fuzzing (default 70; more for a soak)",
    )


@pytest.fixture
def fuzz_kills(request: pytest.FixtureRequest) -> int:
    return int(request.config.getoption("--fuzz-kills"))


@pytest.fixture(autouse=True)
def _quiet_optuna() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


@pytest.fixture(scope="session")
def process_context() -> ForkServerContext:
    """Real new processes, started from a server that has optuna and torch imported."""
    # The server imports the preloaded module with the environment's path, not pytest's.
    tests = str(Path(__file__).parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [tests, os.environ.get("PYTHONPATH")]))
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(
        ["resume_driver", "training_driver", "kill_fuzz", "worker_driver"]
    )
    return context


def run_in_process(
    context: ForkServerContext,
    timeout: float = 240,
    target: Callable[..., None] | None = None,
    **kwargs: Any,
) -> int | None:
    """Run ``target(**kwargs)`` (default ``resume_driver.run_phase``) in a new process.

    Returns the process's exit code (``-9`` when it was SIGKILLed).
    """
    import resume_driver

    process = context.Process(target=target or resume_driver.run_phase, kwargs=kwargs)
    process.start()
    process.join(timeout)
    if process.is_alive():
        process.kill()
        process.join()
        raise AssertionError(f"run_phase({kwargs}) did not finish in {timeout} s")
    return process.exitcode


@contextlib.contextmanager
def root_held_by_another_process(root: Path) -> Iterator[int]:
    """A real second process that holds ``root`` open in a ``ResumableStudy``; yields its PID."""
    code = (
        "import sys\n"
        "from optuna_resume import ResumableStudy\n"
        "with ResumableStudy(sys.argv[1]):\n"
        "    print('ready', flush=True)\n"
        "    sys.stdin.readline()\n"
    )
    with another_process(code, root) as (process, first_line):
        assert first_line == "ready"
        yield process.pid


@contextlib.contextmanager
def another_process(code: str, *args: object) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Run ``code`` in a real process until it reads a line; yield it and its first line."""
    process = subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        yield process, process.stdout.readline().strip()
    finally:
        process.stdin.close()
        process.stdout.close()
        process.wait(60)


@pytest.fixture
def resume_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="optuna_resume")
    return caplog
