"""Workers on several hosts, one journal file storage: liveness from each worker id's lease.

The journal storages keep no heartbeats, so each worker id records a lease in the study
(host and PID, renewed). As in ``test_hosts``, each worker runs in a process of its own,
with a root and a host name of its own (``host_driver``): only the study is shared.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from host_driver import GRACE
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState
from test_hosts import _check_one_rerun_each, _finish

from optuna_resume import InvalidRewindError, ResumableStudy, RootLockedError
from optuna_resume._lease import worker_lease_key
from optuna_resume._workers import HOLDER_KEY, RERUN_OF_KEY, WORKER_KEY

TESTS = Path(__file__).parent


class Journal:
    """A study in a journal file that the workers and this process share."""

    def __init__(self, tmp_path: Path) -> None:
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.path = tmp_path / "shared.log"
        self.name = f"hosts-{uuid.uuid4().hex[:8]}"
        self.started: list[subprocess.Popen[str]] = []
        optuna.create_study(storage=self.storage(), study_name=self.name)

    def storage(self) -> optuna.storages.JournalStorage:
        return optuna.storages.JournalStorage(JournalFileBackend(str(self.path)))

    def start(
        self,
        root: Path,
        worker: str,
        host: str,
        work_s: float,
        dead: str,
        complete: int = 12,
        mode: str = "optimize",
    ) -> subprocess.Popen[str]:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        }
        arguments = [str(root / self.name), worker, host, str(work_s), str(complete)]
        process = subprocess.Popen(
            [
                sys.executable,
                str(TESTS / "host_driver.py"),
                *arguments,
                mode,
                dead,
                str(self.path),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.started.append(process)
        return process

    def trials(self) -> list[FrozenTrial]:
        return optuna.load_study(study_name=self.name, storage=self.storage()).get_trials()

    def running_of(self, worker: str) -> list[FrozenTrial]:
        return [
            t
            for t in self.trials()
            if t.state == TrialState.RUNNING
            and t.system_attrs.get(WORKER_KEY) == worker
            and t.params
        ]

    def lease_of(self, worker: str) -> object:
        storage = self.storage()
        study_id = storage.get_study_id_from_name(self.name)
        return storage.get_study_system_attrs(study_id).get(worker_lease_key(worker))


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    shared = Journal(tmp_path)
    yield shared
    for process in shared.started:
        if process.poll() is None:
            process.kill()
        process.communicate()


def _wait_for(condition: object, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_dead_worker_on_another_host_is_found_by_its_lease(
    tmp_path: Path, journal: Journal
) -> None:
    """Worker a (host-a) runs trials longer than the grace period; worker b (host-b) never
    fails them while a lives (its lease is renewed meanwhile). a is SIGKILLed inside a
    trial and never comes back: b finds its lease lapsed and runs the trial again, once,
    with its params."""
    a = journal.start(tmp_path / "root-a", "a", "host-a", GRACE + 1, "host-a", complete=60)
    _wait_for(lambda: journal.lease_of("a") is not None, "worker a's start")
    b = journal.start(tmp_path / "root-b", "b", "host-b", 0.1, "host-a", complete=60)
    _wait_for(
        lambda: any(
            t.state == TrialState.COMPLETE and t.system_attrs.get(WORKER_KEY) == "a"
            for t in journal.trials()
        ),
        "worker a's first trial",
    )
    _wait_for(lambda: journal.running_of("a"), "worker a's second trial")
    time.sleep(0.5)
    a.send_signal(signal.SIGKILL)
    a.communicate()
    (cut,) = journal.running_of("a")
    assert cut.system_attrs[HOLDER_KEY][0] == "host-a"
    _finish([b])
    trials = journal.trials()
    _check_one_rerun_each(trials, [cut])
    rerun = next(t for t in trials if t.system_attrs.get(RERUN_OF_KEY) == cut.number)
    assert rerun.system_attrs[WORKER_KEY] == "b"
    assert journal.lease_of("b") is None  # ended at its exit


def test_a_worker_id_still_running_on_another_host_is_refused(
    tmp_path: Path, journal: Journal
) -> None:
    a = journal.start(tmp_path / "root-a", "a", "host-a", 60, "")
    _wait_for(lambda: journal.running_of("a"), "worker a inside a trial")
    (running,) = journal.running_of("a")
    started = time.monotonic()
    with pytest.raises(RootLockedError, match=r"worker a of study .*\(PID \d+ on host-a") as e:
        ResumableStudy(
            tmp_path / "root-b" / journal.name, storage=journal.storage(), worker="a"
        ).__enter__()
    assert f"PID {a.pid} on host-a" in str(e.value)
    assert time.monotonic() - started < 30  # refused once a renewal was seen, not at 60 s
    (still,) = journal.running_of("a")
    assert still.number == running.number  # nothing was changed
    assert re.search(r"host-a", str(journal.lease_of("a")))


def test_a_rewind_is_refused_while_a_worker_on_another_host_lives(
    tmp_path: Path, journal: Journal
) -> None:
    journal.start(tmp_path / "root-a", "a", "host-a", 60, "")
    _wait_for(lambda: journal.running_of("a"), "worker a inside a trial")
    n_trials = len(journal.trials())
    active = r"other workers are active: a \(PID \d+ on host-a"
    with pytest.raises(InvalidRewindError, match=active):
        ResumableStudy(
            tmp_path / "root-b" / journal.name,
            storage=journal.storage(),
            worker="b",
            rewind_to=0,
        ).__enter__()
    assert len(journal.trials()) == n_trials
    assert journal.running_of("a")


@pytest.mark.parametrize("mode", ["optimize", "ask_tell"])
def test_a_worker_restarted_on_another_host_with_an_empty_root_goes_on_exactly(
    tmp_path: Path, journal: Journal, mode: str
) -> None:
    """Worker a stops after 6 trials on host-a; the same worker id goes on on host-b from an
    empty root, with nothing but the journal file: its 12 trials are those of one run."""
    first = journal.start(tmp_path / "root-a", "a", "host-a", 0, "", complete=6, mode=mode)
    _finish([first])
    assert len(journal.trials()) == 6
    empty = tmp_path / "root-b"
    assert not empty.exists()
    _finish([journal.start(empty, "a", "host-b", 0, "", complete=12, mode=mode)])
    reference = Journal(tmp_path / "reference")
    _finish([reference.start(tmp_path / "root-c", "a", "host-a", 0, "", complete=12, mode=mode)])
    expected = [(t.number, t.state, t.params, t.values) for t in reference.trials()]
    assert len(expected) == 12
    assert all(state == TrialState.COMPLETE for _, state, _, _ in expected)
    assert [(t.number, t.state, t.params, t.values) for t in journal.trials()] == expected


def test_a_worker_killed_on_one_host_and_restarted_on_another_never_replays_its_draws(
    tmp_path: Path, journal: Journal
) -> None:
    """Worker a is SIGKILLed inside a trial on host-a; the same worker id restarted on
    host-b from an empty root re-runs that trial once, with its params, and draws nothing it
    drew before (without its states it would start its first stream again)."""
    a = journal.start(tmp_path / "root-a", "a", "host-a", 0.3, "", complete=100)

    def inside_a_later_trial() -> bool:
        trials = journal.trials()
        return sum(t.state == TrialState.COMPLETE for t in trials) >= 4 and bool(
            journal.running_of("a")
        )

    _wait_for(inside_a_later_trial, "worker a inside its fifth trial or later")
    a.send_signal(signal.SIGKILL)
    a.communicate()
    (cut,) = journal.running_of("a")
    done = sum(t.state.is_finished() for t in journal.trials())
    again = journal.start(tmp_path / "root-b", "a", "host-b", 0, "host-a", complete=done + 8)
    _finish([again])
    trials = journal.trials()
    assert len(trials) >= done + 8
    _check_one_rerun_each(trials, [cut])
