"""Several workers on one study: own streams, dead workers' trials re-run once, no replays."""

from __future__ import annotations

import datetime
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from multiprocessing.context import ForkServerContext
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState
from resume_driver import close, open_storage
from services import require
from small_study import objective as small_objective
from worker_driver import STARTUP_TRIALS, objective, sampler, work

from optuna_resume import InvalidRewindError, ResumableStudy, RootLockedError
from optuna_resume._checkpoint import read_meta
from optuna_resume._lease import worker_lease_key
from optuna_resume._optuna._storage import UID_KEY
from optuna_resume._workers import RERUN_OF_KEY, WORKER_KEY

N_WORKERS = 4
COMPLETE = 60


def _load(root: Path, storage: str) -> list[FrozenTrial]:
    study = optuna.load_study(study_name=root.name, storage=open_storage(root, storage))
    try:
        return study.get_trials()
    finally:
        close(study)


@pytest.mark.slow
@pytest.mark.parametrize("server", ["postgres", "redis"])
def test_four_workers_two_killed_lose_nothing_and_replay_nothing(
    process_context: ForkServerContext, tmp_path: Path, server: str
) -> None:
    require(server)
    root = tmp_path / f"workers_{uuid.uuid4().hex[:10]}"
    rng = random.Random(server)

    def start(worker: str) -> Any:
        process = process_context.Process(
            target=work,
            kwargs={"root": str(root), "storage": server, "worker": worker, "complete": COMPLETE},
        )
        process.start()
        return process

    if server == "postgres":  # the study is created once (Optuna's schema, not ours)
        with ResumableStudy(root, storage=open_storage(root, server), worker="setup"):
            pass
    processes = {f"w{i}": start(f"w{i}") for i in range(N_WORKERS)}
    killed_at: dict[str, datetime.datetime] = {}
    restarted_at: dict[str, datetime.datetime] = {}
    for victim, restart_after in (("w1", 0.0), ("w2", 2.0)):
        time.sleep(rng.uniform(0.5, 1.5))
        os.kill(processes[victim].pid, signal.SIGKILL)
        processes[victim].join(30)
        killed_at[victim] = datetime.datetime.now()
        time.sleep(restart_after)  # meanwhile the other workers find its trial
        restarted_at[victim] = datetime.datetime.now()
        processes[victim] = start(victim)
    for worker, process in processes.items():
        process.join(300)
        error = root / f"{worker}.error"
        assert process.exitcode == 0, error.read_text() if error.exists() else process.exitcode

    trials = _load(root, server)
    states = [t.state for t in trials]
    left = [(t.number, t.state, t.system_attrs) for t in trials if not t.state.is_finished()]
    assert not left
    assert states.count(TrialState.COMPLETE) >= COMPLETE
    reruns = [t for t in trials if RERUN_OF_KEY in t.system_attrs]
    cut = [t for t in trials if t.state == TrialState.FAIL]
    assert len(cut) <= 2  # at most one trial per kill
    for trial in cut:
        if not trial.params:
            continue  # killed before its first suggest: it drew nothing, nothing to re-run
        again = [t for t in reruns if t.system_attrs[RERUN_OF_KEY] == trial.number]
        assert len(again) == 1, f"trial {trial.number} re-run {len(again)} times"
        # the parameters it had drawn (one killed between two suggests draws the rest anew)
        assert trial.params.items() <= again[0].params.items()
        assert again[0].state == TrialState.COMPLETE
        worker = trial.system_attrs[WORKER_KEY]
        assert worker in killed_at
        if worker == "w2":  # found by the others before w2 came back
            assert again[0].datetime_start is not None
            assert again[0].datetime_start < restarted_at["w2"]
    drawn = [  # (a trial killed before its first suggest drew nothing)
        tuple(sorted(t.params.items()))
        for t in trials
        if RERUN_OF_KEY not in t.system_attrs and t.params
    ]
    assert len(drawn) == len(set(drawn)), "a parameter set was drawn twice"
    assert len(trials) > STARTUP_TRIALS
    for folder in (root / "workers").iterdir():  # each stream written by its worker only
        for path in (folder / "checkpoints").glob("trial-*.pt"):
            assert read_meta(path)["worker"] == folder.name
    assert {t.system_attrs[WORKER_KEY] for t in trials} <= {f"w{i}" for i in range(N_WORKERS)}


@pytest.mark.slow
def test_workers_starting_together_on_a_new_study_agree_on_its_identity(
    process_context: ForkServerContext, tmp_path: Path
) -> None:
    root = tmp_path / "together"
    workers = ["w0", "w1", "w2"]
    barrier = process_context.Barrier(len(workers))

    def run_all(**kwargs: Any) -> None:
        processes = {
            worker: process_context.Process(
                target=work,
                kwargs={"root": str(root), "storage": "journal", "worker": worker, **kwargs},
            )
            for worker in workers
        }
        for process in processes.values():
            process.start()
        for worker, process in processes.items():
            process.join(120)
            error = root / f"{worker}.error"
            assert process.exitcode == 0, error.read_text() if error.exists() else worker

    # Each reads the study's (not yet written) identity at the same time as the others.
    run_all(complete=3, start_together=barrier, slow_study_attrs=True)
    study = optuna.load_study(study_name=root.name, storage=open_storage(root, "journal"))
    uid = study._storage.get_study_system_attrs(study._study_id)[UID_KEY]
    for worker in workers:  # every stream carries the identity the study keeps
        paths = list((root / "workers" / worker / "checkpoints").glob("trial-*.pt"))
        assert paths
        assert {read_meta(path)["study_uid"] for path in paths} == {uid}
    run_all(complete=6)  # each restarted worker goes on from its own newest state


def _params(study: optuna.Study) -> list[dict[str, Any]]:
    return [t.params for t in study.get_trials()]


def test_a_restarted_worker_goes_on_with_its_own_stream(tmp_path: Path) -> None:
    def open_(root: Path, worker: str = "a") -> ResumableStudy:
        return ResumableStudy(root, sampler=sampler(), worker=worker)

    with open_(tmp_path / "once") as study:
        study.optimize(objective, n_trials=6)
    uninterrupted = _params(study)
    with open_(tmp_path / "twice") as study:
        study.optimize(objective, n_trials=3)
    with open_(tmp_path / "twice") as study:
        study.optimize(objective, n_trials=3)
    assert _params(study) == uninterrupted  # not the first three draws again
    with open_(tmp_path / "other", worker="b") as study:
        study.optimize(objective, n_trials=6)
    assert not {json.dumps(p) for p in _params(study)} & {json.dumps(p) for p in uninterrupted}


def test_two_live_workers_never_share_a_stream(tmp_path: Path) -> None:
    with ResumableStudy(tmp_path / "s", worker="a"):
        with pytest.raises(RootLockedError, match=f"PID {os.getpid()}"):
            ResumableStudy(tmp_path / "s", worker="a").__enter__()
        with ResumableStudy(tmp_path / "s", worker="auto") as second:
            assert second.study_name == "s"
    assert sorted(p.name for p in (tmp_path / "s" / "workers").iterdir()) == ["0", "a"]


def test_rewind_refuses_while_other_workers_are_active(tmp_path: Path) -> None:
    root = tmp_path / "s"
    with ResumableStudy(root, sampler=sampler(), worker="a") as study:
        study.optimize(small_objective, n_trials=4)
        with pytest.raises(InvalidRewindError, match=r"other workers are active: a \(PID"):
            ResumableStudy(root, worker="b", rewind_to=1).__enter__()
        assert len(study.trials) == 4  # nothing changed
    with ResumableStudy(root, sampler=sampler(), worker="b", rewind_to=1) as study:
        assert [t.number for t in study.trials] == [0]


@pytest.mark.parametrize("bad", ["", "a/b", "..", "x" * 65, 3])
def test_a_bad_worker_id_is_refused(tmp_path: Path, bad: object) -> None:
    with pytest.raises(ValueError, match="worker must be"):
        ResumableStudy(tmp_path / "s", worker=bad)  # type: ignore[arg-type]


def test_workers_with_separate_roots_never_fail_each_others_trials(tmp_path: Path) -> None:
    """Two hosts: each worker has a root of its own, only the PostgreSQL study is shared."""
    url = require("postgres")
    name = f"hosts-{uuid.uuid4().hex[:8]}"
    storage = optuna.storages.RDBStorage(url)
    optuna.create_study(storage=storage, study_name=name)
    code = (
        "import sys; sys.path.insert(0, sys.argv[4]); import worker_driver; "
        "worker_driver.work(sys.argv[1], 'postgres', sys.argv[2], int(sys.argv[3]))"
    )
    tests = str(Path(__file__).parent)
    hosts: list[subprocess.Popen[str]] = []
    for folder, worker in (("host-a", "a"), ("host-b", "b")):
        hosts.append(
            subprocess.Popen(
                [sys.executable, "-c", code, str(tmp_path / folder / name), worker, "40", tests],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
        # The first worker gives the new study its identity before the second starts (two
        # roots share no lock to agree on it).
        study_id = storage.get_study_id_from_name(name)
        deadline = time.monotonic() + 120
        while UID_KEY not in storage.get_study_system_attrs(study_id):
            assert time.monotonic() < deadline and hosts[0].poll() is None
            time.sleep(0.1)
    try:
        outcomes = [host.communicate(timeout=600) for host in hosts]
        for host, (_, err) in zip(hosts, outcomes, strict=True):
            assert host.returncode == 0, err[-3000:]
        states = [t.state for t in optuna.load_study(study_name=name, storage=storage).trials]
        # No live trial was failed by the other worker, and nothing is left RUNNING.
        assert TrialState.FAIL not in states and TrialState.RUNNING not in states
        assert states.count(TrialState.COMPLETE) >= 40
    finally:
        optuna.delete_study(study_name=name, storage=storage)
        storage.engine.dispose()


_SCHEDULER_VARIABLES = (
    "JOB_COMPLETION_INDEX",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_NTASKS",
    "SLURM_PROCID",
    "SLURM_JOB_ID",
)


@pytest.fixture
def no_scheduler(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A process outside any job scheduler (the variables of the one CI runs in are gone)."""
    for variable in _SCHEDULER_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"JOB_COMPLETION_INDEX": "3"}, "3"),
        ({"SLURM_ARRAY_TASK_ID": "5", "SLURM_JOB_ID": "991"}, "5"),
        ({"SLURM_ARRAY_TASK_ID": "5", "SLURM_NTASKS": "2", "SLURM_PROCID": "1"}, "5.1"),
        ({"SLURM_NTASKS": "4", "SLURM_PROCID": "2"}, "2"),
        ({"SLURM_JOB_ID": "991", "SLURM_NTASKS": "1", "SLURM_PROCID": "0"}, "0"),  # no index
    ],
)
def test_auto_takes_the_worker_id_from_the_jobs_index(
    tmp_path: Path, no_scheduler: pytest.MonkeyPatch, environ: dict[str, str], expected: str
) -> None:
    for variable, value in environ.items():
        no_scheduler.setenv(variable, value)
    session = ResumableStudy(tmp_path / "s", worker="auto")
    with session as study:
        study.optimize(small_objective, n_trials=1)
        assert session.worker == expected
    assert [p.name for p in (tmp_path / "s" / "workers").iterdir()] == [expected]
    assert study.trials[0].system_attrs[WORKER_KEY] == expected


def test_a_requeued_array_task_goes_on_from_its_own_state_on_another_host(
    tmp_path: Path, no_scheduler: pytest.MonkeyPatch
) -> None:
    """SLURM requeues task 2 of an array on another node: a new, empty root, the same study."""

    def run(storage: str, root: Path, n_trials: int) -> list[dict[str, Any]]:
        with ResumableStudy(
            root, storage=storage, study_name="array", sampler=sampler(), worker="auto"
        ) as study:
            study.optimize(small_objective, n_trials=n_trials)
            return _params(study)

    no_scheduler.setenv("SLURM_ARRAY_TASK_ID", "2")
    uninterrupted = run(f"sqlite:///{tmp_path / 'reference.db'}", tmp_path / "reference", 8)
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    run(storage, tmp_path / "node-a" / "array", 5)
    assert run(storage, tmp_path / "node-b" / "array", 3) == uninterrupted
    assert not (tmp_path / "node-b" / "array" / "workers" / "0").exists()


def test_a_live_worker_keeps_the_id_the_scheduler_gives(
    tmp_path: Path, no_scheduler: pytest.MonkeyPatch
) -> None:
    no_scheduler.setenv("JOB_COMPLETION_INDEX", "4")
    # The same index twice is a misconfigured job, not a reason to take another stream.
    with (
        ResumableStudy(tmp_path / "s", worker="auto"),
        pytest.raises(RootLockedError, match=f"PID {os.getpid()}"),
    ):
        ResumableStudy(tmp_path / "s", worker="auto").__enter__()


def test_a_scheduler_index_that_cannot_name_a_worker_is_refused(
    tmp_path: Path, no_scheduler: pytest.MonkeyPatch
) -> None:
    no_scheduler.setenv("JOB_COMPLETION_INDEX", "a/b")
    with pytest.raises(ValueError, match=r"JOB_COMPLETION_INDEX.*'a/b'.*pass worker="):
        ResumableStudy(tmp_path / "s", worker="auto").__enter__()
    assert not (tmp_path / "s" / "workers" / "a").exists()


_HOLD_AUTO_WORKER = """
import sys, time
from pathlib import Path
from optuna_resume import ResumableStudy
root, storage, release = sys.argv[1], sys.argv[2], Path(sys.argv[3])
session = ResumableStudy(root, storage=storage, study_name="hosts", worker="auto")
with session:
    print(session.worker, flush=True)
    while not release.exists():
        time.sleep(0.05)
"""


def test_auto_workers_on_two_hosts_never_share_an_id(
    tmp_path: Path, no_scheduler: pytest.MonkeyPatch
) -> None:
    """Two roots on one study (two hosts): the second ``auto`` worker does not take "0"."""
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    release = tmp_path / "release"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_AUTO_WORKER, str(tmp_path / "a"), storage, str(release)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "0", holder.stderr
        second = ResumableStudy(tmp_path / "b", storage=storage, study_name="hosts", worker="auto")
        with second:
            assert second.worker == "1"
    finally:
        release.touch()
        _, err = holder.communicate(timeout=60)
    assert holder.returncode == 0, err[-3000:]
    # Its holder gone, "0" is free again, from any root.
    session = ResumableStudy(tmp_path / "c", storage=storage, study_name="hosts", worker="auto")
    with session:
        assert session.worker == "0"


@pytest.mark.parametrize(("renewed_ago", "expected"), [(5.0, "1"), (3600.0, "0")])
def test_auto_skips_an_id_another_host_renewed_within_the_grace_period(
    tmp_path: Path, no_scheduler: pytest.MonkeyPatch, renewed_ago: float, expected: str
) -> None:
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    study = optuna.create_study(storage=storage, study_name="hosts")
    record: dict[str, Any] = {
        "host": "another-host.example",
        "pid": 1,
        "root": "/elsewhere/hosts",
        "token": "t",
        "renewed": time.time() - renewed_ago,
    }
    study._storage.set_study_system_attr(study._study_id, worker_lease_key("0"), record)
    session = ResumableStudy(tmp_path / "b", storage=storage, study_name="hosts", worker="auto")
    with session:
        assert session.worker == expected


_TAKE_ENQUEUED = """
import sys
import optuna
from optuna_resume import ResumableStudy

root, url = sys.argv[1:3]
with ResumableStudy(root, storage=url, study_name="s", worker="w") as study:
    study.optimize(
        lambda t: t.suggest_float("x", -5, 5) + t.suggest_float("y", -5, 5), n_trials=3
    )
"""


def test_a_worker_killed_as_it_takes_an_enqueued_trial_runs_it_again_on_restart(
    tmp_path: Path,
) -> None:
    """A worker SIGKILLed right after Optuna's ask popped an enqueued trial (SQLite, no
    heartbeats): the trial was tagged with its id in the popping transaction, so the
    worker restarted under that id settles it and its enqueued parameters run again."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.create_study(storage=url, study_name="s").enqueue_trial({"x": 1.5, "y": -2.0})

    def run(**env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", _TAKE_ENQUEUED, str(tmp_path / "root"), url],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, **env},
        )

    killed = run(OPTUNA_RESUME_FAULT="ask.taken=kill")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    (cut,) = optuna.load_study(study_name="s", storage=url).get_trials()
    assert cut.state == TrialState.RUNNING and cut.system_attrs.get(WORKER_KEY) == "w"
    again = run()
    assert again.returncode == 0, again.stderr[-3000:]
    trials = optuna.load_study(study_name="s", storage=url).get_trials()
    assert [t.state for t in trials if t.state == TrialState.RUNNING] == []
    assert trials[0].state == TrialState.FAIL
    (rerun,) = [t for t in trials if t.system_attrs.get(RERUN_OF_KEY) == 0]
    assert rerun.state == TrialState.COMPLETE and rerun.params == {"x": 1.5, "y": -2.0}
