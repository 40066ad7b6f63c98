"""A pytest plugin for Optuna's own test suite, loaded by ``optuna_suite.py``.

With ``OPTUNA_SUITE_ATTACH=1``, each ``optuna.Study`` made (``create_study``, ``load_study``,
or directly) is bound to an engine with a root of its own, so that every ``ask`` checkpoints
the state before its trial and every ``tell`` the state after it, as inside a
``ResumableStudy``. With ``OPTUNA_SUITE_OUTCOMES=<file>``, the outcome of every test
(passed, failed, skipped) is written there as JSON.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import optuna
import pytest

_outcomes: dict[str, str] = {}
_attached = 0

if os.environ.get("OPTUNA_SUITE_ATTACH") == "1":
    from optuna_resume._binding import bind_engine

    _ROOTS = Path(tempfile.mkdtemp(prefix="optuna-resume-attached-"))
    _numbers = itertools.count()
    _original_init = optuna.study.Study.__init__

    @functools.wraps(_original_init)
    def _init(study: optuna.Study, *args: Any, **kwargs: Any) -> None:
        global _attached
        _original_init(study, *args, **kwargs)
        bind_engine(study, _ROOTS / str(next(_numbers)))
        _attached += 1

    optuna.study.Study.__init__ = _init  # type: ignore[method-assign,assignment]

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(config: pytest.Config) -> None:
        shutil.rmtree(_ROOTS, ignore_errors=True)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.failed:
        _outcomes[report.nodeid] = "failed"
    elif report.skipped:
        _outcomes.setdefault(report.nodeid, "skipped")
    elif report.when == "call":
        _outcomes.setdefault(report.nodeid, "passed")


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = os.environ.get("OPTUNA_SUITE_OUTCOMES")
    if not target:
        return
    if hasattr(session.config, "workerinput"):  # an xdist worker: it attached, it counts
        with open(f"{target}.attached", "a") as counts:
            counts.write(f"{_attached}\n")
        return
    Path(target).write_text(json.dumps(_outcomes, sort_keys=True))
    if _attached:
        with open(f"{target}.attached", "a") as counts:
            counts.write(f"{_attached}\n")
