"""Workers on several hosts, one PostgreSQL study: liveness from the storage's heartbeats.

Each worker runs in a process of its own, with a root of its own and a host name of its own
(``host_driver``): nothing but the study is shared, so only Optuna's heartbeat of each trial
can tell a dead worker from a live one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from host_driver import GRACE, heartbeat_storage
from optuna.trial import FrozenTrial, TrialState
from services import require

from optuna_resume import ResumableStudy, RootLockedError
from optuna_resume._optuna._storage import UID_KEY
from optuna_resume._workers import HOLDER_KEY, RERUN_OF_KEY, WORKER_KEY

TESTS = Path(__file__).parent


@pytest.fixture
def study_name() -> Iterator[str]:
    require("postgres")
    name = f"hosts-{uuid.uuid4().hex[:8]}"
    storage = heartbeat_storage()
    optuna.create_study(storage=storage, study_name=name)
    try:
        yield name
    finally:
        optuna.delete_study(study_name=name, storage=storage)
        storage.engine.dispose()


_STARTED: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_worker_left() -> Iterator[None]:
    yield
    while _STARTED:
        process = _STARTED.pop()
        if process.poll() is None:
            process.kill()
        process.communicate()


def _start(
    tmp_path: Path,
    name: str,
    folder: str,
    worker: str,
    host: str,
    work_s: float,
    mode: str,
    dead: str,
    complete: int = 12,
    **env_vars: str,
) -> subprocess.Popen[str]:
    root = tmp_path / folder / name
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        **env_vars,
    }
    process = subprocess.Popen(
        [
            sys.executable,
            str(TESTS / "host_driver.py"),
            str(root),
            worker,
            host,
            str(work_s),
            str(complete),
            mode,
            dead,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    _STARTED.append(process)
    return process


def _trials(name: str) -> list[FrozenTrial]:
    storage = heartbeat_storage()
    try:
        return optuna.load_study(study_name=name, storage=storage).get_trials()
    finally:
        storage.engine.dispose()


def _wait_for(condition: object, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _running_of(name: str, worker: str, *, with_params: bool = True) -> list[FrozenTrial]:
    return [
        t
        for t in _trials(name)
        if t.state == TrialState.RUNNING
        and t.system_attrs.get(WORKER_KEY) == worker
        and (t.params or not with_params)
    ]


def _identity_written(name: str) -> bool:
    storage = heartbeat_storage()
    try:
        return UID_KEY in storage.get_study_system_attrs(storage.get_study_id_from_name(name))
    finally:
        storage.engine.dispose()


def _finish(processes: list[subprocess.Popen[str]]) -> None:
    for process in processes:
        try:
            _, err = process.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate()
            pytest.fail(f"a worker did not finish: {err[-3000:]}")
        assert process.returncode == 0, err[-3000:]


def _check_one_rerun_each(trials: list[FrozenTrial], killed: list[FrozenTrial]) -> None:
    """Only the killed trials failed; each ran again once with its params; nothing replayed."""
    failed = [t.number for t in trials if t.state == TrialState.FAIL]
    assert failed == sorted(t.number for t in killed)  # no live worker's trial was failed
    assert not [t.number for t in trials if not t.state.is_finished()]
    for cut in killed:
        again = [t for t in trials if t.system_attrs.get(RERUN_OF_KEY) == cut.number]
        assert len(again) == 1, f"trial {cut.number} ran again {len(again)} times"
        # Every parameter the cut trial had drawn, with its value (a kill between two
        # suggestions leaves the later ones to the re-run to draw).
        assert {name: again[0].params.get(name) for name in cut.params} == cut.params
        assert again[0].state == TrialState.COMPLETE
    drawn = [tuple(sorted(t.params.items())) for t in trials if RERUN_OF_KEY not in t.system_attrs]
    assert len(drawn) == len(set(drawn)), "a parameter set was drawn twice"


@pytest.mark.parametrize("mode", ["optimize", "ask_tell"])
def test_a_dead_worker_on_another_host_is_found_by_its_heartbeat(
    tmp_path: Path, study_name: str, mode: str
) -> None:
    """Worker a (host-a) runs trials longer than the grace period; worker b (host-b) never
    fails them while a lives. a is SIGKILLed inside a trial and never comes back: b finds
    its trial stale by its heartbeat and runs it again, once, with its params."""
    # 60 trials to finish: b's quick trials must not finish the study before a starts its
    # second one (a stops once enough trials are finished).
    a = _start(tmp_path, study_name, "root-a", "a", "host-a", GRACE + 1, mode, "host-a", 60)
    _wait_for(lambda: _identity_written(study_name), "worker a's start")
    b = _start(tmp_path, study_name, "root-b", "b", "host-b", 0.1, mode, "host-a", 60)
    # a's first trial outlives the grace period while b runs: its heartbeat keeps it alive.
    _wait_for(
        lambda: any(
            t.state == TrialState.COMPLETE and t.system_attrs.get(WORKER_KEY) == "a"
            for t in _trials(study_name)
        ),
        "worker a's first trial",
    )
    _wait_for(lambda: _running_of(study_name, "a"), "worker a's second trial")
    time.sleep(0.5)
    a.send_signal(signal.SIGKILL)
    a.communicate()
    (cut,) = _running_of(study_name, "a")
    assert cut.system_attrs[HOLDER_KEY][0] == "host-a"
    _finish([b])
    trials = _trials(study_name)
    _check_one_rerun_each(trials, [cut])
    rerun = next(t for t in trials if t.system_attrs.get(RERUN_OF_KEY) == cut.number)
    assert rerun.system_attrs[WORKER_KEY] == "b"


def test_three_hosts_one_killed_and_restarted_elsewhere_with_an_empty_root(
    tmp_path: Path, study_name: str
) -> None:
    """Three workers, three roots, three hosts; c is SIGKILLed inside a trial and started
    again on a fourth host with a new, empty root under the same id: nothing lost, nothing
    replayed, no live trial failed, c goes on from its own newest state."""
    first = _start(tmp_path, study_name, "root-a", "a", "host-a", 0.3, "optimize", "host-c", 80)
    _wait_for(lambda: _identity_written(study_name), "worker a's start")
    others = [
        first,
        _start(tmp_path, study_name, "root-b", "b", "host-b", 0.3, "optimize", "host-c", 80),
    ]
    # c's trials last 2 s, so that the SIGKILL lands inside one (after its suggests).
    c = _start(tmp_path, study_name, "root-c", "c", "host-c", 2.0, "optimize", "host-c", 80)
    _wait_for(
        lambda: any(
            t.system_attrs.get(WORKER_KEY) == "c" and t.state == TrialState.COMPLETE
            for t in _trials(study_name)
        ),
        "worker c's first trial",
    )
    _wait_for(lambda: _running_of(study_name, "c"), "worker c inside a trial")
    c.send_signal(signal.SIGKILL)
    c.communicate()
    (cut,) = _running_of(study_name, "c")
    before = {
        tuple(sorted(t.params.items()))
        for t in _trials(study_name)
        if t.system_attrs.get(WORKER_KEY) == "c"
    }
    # (It runs until 90: the others stop at 80, so that it has trials of its own to run.)
    restarted = _start(
        tmp_path, study_name, "root-d", "c", "host-d", 0.3, "optimize", "host-c", 90
    )
    _finish([*others, restarted])
    trials = _trials(study_name)
    _check_one_rerun_each(trials, [cut])
    after = [
        t
        for t in trials
        if t.system_attrs.get(WORKER_KEY) == "c"
        and t.system_attrs.get(HOLDER_KEY, [""])[0] == "host-d"
        and RERUN_OF_KEY not in t.system_attrs
    ]
    assert after, "the restarted worker ran no trial of its own"
    assert not {tuple(sorted(t.params.items())) for t in after} & before
    # The restarted worker's empty root got its stream's states from the database.
    assert list(
        (tmp_path / "root-d" / study_name / "workers" / "c" / "checkpoints").glob("trial-*")
    )


def test_a_worker_id_still_running_on_another_host_is_refused(
    tmp_path: Path, study_name: str
) -> None:
    a = _start(tmp_path, study_name, "root-a", "a", "host-a", 60, "optimize", "")
    try:
        _wait_for(lambda: _running_of(study_name, "a"), "worker a inside a trial")
        (running,) = _running_of(study_name, "a")
        started = time.monotonic()
        storage = heartbeat_storage()
        with pytest.raises(
            RootLockedError, match=r"worker a .* still running trial 0 \(PID \d+ on host-a"
        ):
            ResumableStudy(
                tmp_path / "root-b" / study_name, storage=storage, worker="a"
            ).__enter__()
        storage.engine.dispose()
        assert time.monotonic() - started >= GRACE  # it waited for the heartbeat to go stale
        (still,) = _running_of(study_name, "a")
        assert still.number == running.number  # nothing was changed
    finally:
        a.kill()
        a.communicate()


def _worker_a_killed_at_its_first_ask(tmp_path: Path, study_name: str, **env: str) -> None:
    """Worker a (host-a) runs until ``env`` has it SIGKILL itself."""
    a = _start(tmp_path, study_name, "root-a", "a", "host-a", 0.1, "optimize", "", 12, **env)
    a.communicate(timeout=120)
    assert a.returncode == -signal.SIGKILL


def test_a_worker_killed_before_its_first_heartbeat_is_found_dead(
    tmp_path: Path, study_name: str
) -> None:
    """Worker a (host-a) is SIGKILLed as it starts its first trial, before its heartbeat
    thread records anything. The trial was created with a first heartbeat, so it goes stale:
    worker b (host-b) settles it (it drew nothing: failed, not enqueued) and finishes,
    instead of waiting for ever on a trial that nobody could prove dead."""
    _worker_a_killed_at_its_first_ask(tmp_path, study_name, KILL_BEFORE_FIRST_HEARTBEAT="0")
    (cut,) = _running_of(study_name, "a", with_params=False)
    assert cut.number == 0 and not cut.params
    b = _start(tmp_path, study_name, "root-b", "b", "host-b", 0.1, "optimize", "host-a", 6)
    try:
        _, err = b.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        b.kill()
        b.communicate()
        pytest.fail("worker b waited on worker a's trial, which nobody could prove dead")
    assert b.returncode == 0, err[-3000:]
    trials = _trials(study_name)
    assert [t.state for t in trials if t.number == 0] == [TrialState.FAIL]
    assert all(t.state == TrialState.COMPLETE for t in trials if t.number != 0)
    assert sum(t.state == TrialState.COMPLETE for t in trials) >= 5


def test_a_worker_killed_as_it_takes_an_enqueued_trial_leaves_it_to_the_others(
    tmp_path: Path, study_name: str
) -> None:
    """Worker a (host-a) pops the enqueued trial 0 and is SIGKILLed right after Optuna's
    ask, before anything else. The trial was tagged with a's id and given its first
    heartbeat in the transaction that popped it, so it goes stale: worker b (host-b) fails
    it and runs its enqueued parameters again, instead of leaving a RUNNING trial that
    nobody can prove dead (and the enqueued parameters never run)."""
    storage = heartbeat_storage()
    try:
        optuna.load_study(study_name=study_name, storage=storage).enqueue_trial(
            {"x": 1.5, "y": -2.0}
        )
    finally:
        storage.engine.dispose()
    _worker_a_killed_at_its_first_ask(tmp_path, study_name, OPTUNA_RESUME_FAULT="ask.taken=kill")
    (cut,) = _running_of(study_name, "a", with_params=False)
    assert cut.number == 0 and cut.system_attrs["fixed_params"] == {"x": 1.5, "y": -2.0}
    b = _start(tmp_path, study_name, "root-b", "b", "host-b", 0.1, "optimize", "host-a", 6)
    _, err = b.communicate(timeout=120)
    assert b.returncode == 0, err[-3000:]
    trials = _trials(study_name)
    assert [t.state for t in trials if t.state == TrialState.RUNNING] == []
    assert [t.state for t in trials if t.number == 0] == [TrialState.FAIL]
    (again,) = [t for t in trials if t.system_attrs.get(RERUN_OF_KEY) == 0]
    assert again.state == TrialState.COMPLETE
    assert again.params == {"x": 1.5, "y": -2.0}
    assert again.system_attrs[WORKER_KEY] == "b"
