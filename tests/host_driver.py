"""A worker on a host of its own:
``host_driver.py ROOT WORKER HOST WORK_S COMPLETE MODE DEAD [JOURNAL_FILE]``.

The host name is faked (``socket.gethostname``), so that workers started by one test look
as if they ran on several hosts: only the shared study can tell whether another one is
alive. It is a PostgreSQL study (with Optuna's heartbeat, interval 1 s, grace period 3 s),
or with JOURNAL_FILE a journal file storage (workers' leases renewed every 1 s, stale after
3 s). MODE is ``optimize`` or ``ask_tell``. The worker runs trials until the study has
COMPLETE finished ones and no trial is waiting, or running on one of the hosts DEAD (a
comma-separated list) names. With ``KILL_BEFORE_FIRST_HEARTBEAT=N`` in its environment, it
SIGKILLs itself as it starts trial N, before recording that trial's first heartbeat.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
import warnings

import optuna
from optuna.trial import TrialState
from services import URLS

from optuna_resume import ResumableStudy

INTERVAL, GRACE = 1, 3


def heartbeat_storage() -> optuna.storages.RDBStorage:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            URLS["postgres"], heartbeat_interval=INTERVAL, grace_period=GRACE
        )


def sampler() -> optuna.samplers.TPESampler:
    return optuna.samplers.TPESampler(seed=11, n_startup_trials=30)


def journal_storage(path: str) -> optuna.storages.JournalStorage:
    from optuna.storages.journal import JournalFileBackend

    import optuna_resume._optuna._storage

    # Leases renewed every INTERVAL seconds, stale after GRACE (instead of 10 s and 60 s).
    optuna_resume._optuna._storage.HEARTBEAT_INTERVAL = INTERVAL
    optuna_resume._optuna._storage.GRACE_PERIOD = GRACE
    return optuna.storages.JournalStorage(JournalFileBackend(path))


def kill_before_first_heartbeat(number: int) -> None:
    from optuna_resume._workers import Heartbeats

    started = Heartbeats.started

    def start(self: Heartbeats, trial_number: int, trial_id: int) -> None:
        if trial_number == number:
            os.kill(os.getpid(), signal.SIGKILL)
        started(self, trial_number, trial_id)

    Heartbeats.started = start  # type: ignore[method-assign,assignment]


def main(
    root: str,
    worker: str,
    host: str,
    work_s: float,
    complete: int,
    mode: str,
    dead: str,
    journal: str | None = None,
) -> None:
    socket.gethostname = lambda: host
    if "KILL_BEFORE_FIRST_HEARTBEAT" in os.environ:
        kill_before_first_heartbeat(int(os.environ["KILL_BEFORE_FIRST_HEARTBEAT"]))
    name = root.rstrip("/").rsplit("/", 1)[-1].split("@", 1)[0]

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -5.0, 5.0)
        y = trial.suggest_float("y", -5.0, 5.0)
        print(f"running {trial.number}", flush=True)
        time.sleep(work_s)
        return (x - 1.0) ** 2 + (y + 0.5) ** 2

    with ResumableStudy(
        root,
        storage=heartbeat_storage() if journal is None else journal_storage(journal),
        study_name=name,
        sampler=sampler(),
        worker=worker,
    ) as study:
        while True:
            trials = study.get_trials(deepcopy=False)
            done = sum(t.state.is_finished() for t in trials)
            others = any(
                t.state == TrialState.WAITING
                or (
                    t.state == TrialState.RUNNING
                    and t.system_attrs.get("optuna_resume:holder", [""])[0] in dead.split(",")
                )
                for t in trials
            )
            if done >= complete and not others:
                break
            if mode == "optimize":
                study.optimize(objective, n_trials=1)
            else:
                trial = study.ask()
                study.tell(trial, objective(trial))
            time.sleep(0.05)


if __name__ == "__main__":
    root, worker, host, work_s, complete, mode, dead = sys.argv[1:8]
    journal = sys.argv[8] if len(sys.argv) > 8 else None
    main(root, worker, host, float(work_s), int(complete), mode, dead, journal)
