"""Exact resume on Optuna's distributed storages, on the real servers, in real processes.

PostgreSQL and MariaDB (RDB), the journal on Redis and the gRPC storage proxy: the scenario
matrix of the foundation (crash, SIGKILL inside a trial, rewind, crash then kill) against
one uninterrupted run of plain Optuna, exactly. (The journal file storage is in
``test_resume_matrix.py``.)
"""

from __future__ import annotations

import datetime
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from multiprocessing.context import ForkServerContext
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from conftest import run_in_process
from resume_driver import close, open_storage, reference, stored_trials
from services import require
from small_study import Snapshot, objective, snapshot, tpe
from small_study import run as run_study
from test_resume_matrix import SCENARIOS

from optuna_resume import (
    ResumableStudy,
    UnsupportedStorageError,
    _fault,
    optimize_until,
    restore_backup,
)
from optuna_resume._optuna._storage import check_schema_version

SERVER_SAMPLERS = ["tpe", "cmaes", "qmc_sobol_scrambled", "nsga2"]
SERVER_SCENARIOS = ["crash", "kill", "rewind", "crash_then_kill"]


@pytest.mark.slow
@pytest.mark.parametrize("scenario", SERVER_SCENARIOS)
@pytest.mark.parametrize("sampler", SERVER_SAMPLERS)
@pytest.mark.parametrize("server", ["postgres", "mysql", "redis"])
def test_one_worker_resumes_exactly_on_each_server(
    process_context: ForkServerContext, tmp_path: Path, server: str, sampler: str, scenario: str
) -> None:
    require(server)
    root = tmp_path / f"{sampler}_{uuid.uuid4().hex[:10]}"  # the study's name: unique
    for phase, expected_exit in SCENARIOS[scenario]:
        code = run_in_process(
            process_context, root=str(root), name=sampler, storage=server, **phase
        )
        assert code == expected_exit, (phase, code)
    assert stored_trials(root, server) == reference(sampler)


@pytest.fixture
def grpc_port() -> Iterator[int]:
    """A gRPC storage proxy in front of a SQLite file, served from this process."""
    from optuna.storages import run_grpc_proxy_server

    folder = Path(tempfile.mkdtemp())
    backing = optuna.storages.RDBStorage(f"sqlite:///{folder / 'behind-the-proxy.db'}")
    port = 20000 + uuid.uuid4().int % 20000
    server = threading.Thread(
        target=run_grpc_proxy_server,
        args=(backing,),
        kwargs={"host": "127.0.0.1", "port": port},
        daemon=True,
    )
    server.start()
    time.sleep(0.5)
    yield port


@pytest.mark.slow
@pytest.mark.parametrize("scenario", SERVER_SCENARIOS)
def test_the_grpc_proxy_resumes_exactly(
    process_context: ForkServerContext, tmp_path: Path, grpc_port: int, scenario: str
) -> None:
    root = tmp_path / f"tpe_{uuid.uuid4().hex[:10]}"
    for phase, expected_exit in SCENARIOS[scenario]:
        code = run_in_process(
            process_context, root=str(root), name="tpe", storage=f"grpc:{grpc_port}", **phase
        )
        assert code == expected_exit, (phase, code)
    assert stored_trials(root, f"grpc:{grpc_port}") == reference("tpe")


def test_a_database_behind_optunas_schema_is_refused_before_any_sql(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    rdb = optuna.storages.RDBStorage(url)
    with rdb.engine.begin() as connection:
        connection.execute(sqlalchemy.text("UPDATE alembic_version SET version_num = 'v2.6.0.a'"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stale = optuna.storages.RDBStorage(url, skip_compatibility_check=True)
    with pytest.raises(UnsupportedStorageError, match="optuna storage upgrade"):
        check_schema_version(stale)


def _bulk_trials(url: str, study_id: int, start: int, stop: int) -> None:
    """Completed trials ``start..stop-1`` written straight into Optuna's tables."""
    now = datetime.datetime.now()
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            sqlalchemy.text(
                "INSERT INTO trials (number, study_id, state, datetime_start, datetime_complete) "
                "VALUES (:number, :study_id, 'COMPLETE', :now, :now)"
            ),
            [{"number": n, "study_id": study_id, "now": now} for n in range(start, stop)],
        )
        rows = connection.execute(
            sqlalchemy.text(
                "SELECT trial_id, number FROM trials WHERE study_id = :s AND number >= :start"
            ),
            {"s": study_id, "start": start},
        ).all()
        distribution = optuna.distributions.distribution_to_json(
            optuna.distributions.FloatDistribution(-10, 10)
        )
        connection.execute(
            sqlalchemy.text(
                "INSERT INTO trial_params (trial_id, param_name, param_value, distribution_json) "
                "VALUES (:t, 'x', :v, :d)"
            ),
            [{"t": t, "v": n / stop, "d": distribution} for t, n in rows],
        )
        connection.execute(
            sqlalchemy.text(
                "INSERT INTO trial_values (trial_id, objective, value, value_type) "
                "VALUES (:t, 0, :v, 'FINITE')"
            ),
            [{"t": t, "v": float(n)} for t, n in rows],
        )
    engine.dispose()


@pytest.mark.slow
def test_rewind_of_10000_trials_on_postgres_is_one_transaction(tmp_path: Path) -> None:
    url = require("postgres")
    name = f"big_{uuid.uuid4().hex[:10]}"
    neighbour = f"neighbour_{uuid.uuid4().hex[:10]}"
    neighbour_trials = closed_snapshot(run_study(tmp_path / neighbour, 4, storage=url))
    first = closed_snapshot(run_study(tmp_path / name, 3, storage=url))
    study = optuna.load_study(study_name=name, storage=url)
    close(study)
    _bulk_trials(url, study._study_id, 3, 10_000)
    # A failure inside the transaction leaves every trial in place.
    _fault.load_plan("truncate.in_transaction=eio")
    try:
        with pytest.raises(OSError), ResumableStudy(tmp_path / name, storage=url, rewind_to=2):
            pass
    finally:
        _fault.load_plan("")
    assert len(closed_snapshot(optuna.load_study(study_name=name, storage=url))) == 10_000
    started = time.monotonic()
    with ResumableStudy(tmp_path / name, storage=url, rewind_to=2) as study:
        rewound_in = time.monotonic() - started
        assert snapshot(study) == first[:2]
        optimize_until(study, objective, 3)
    assert closed_snapshot(study) == first  # trial 2 re-run exactly
    assert rewound_in < 30
    neighbour_now = closed_snapshot(optuna.load_study(study_name=neighbour, storage=url))
    assert neighbour_now == neighbour_trials


def closed_snapshot(study: optuna.Study) -> Snapshot:
    try:
        return snapshot(study)
    finally:
        close(study)


@pytest.mark.parametrize("server", ["postgres", "mysql", "redis"])
def test_a_backup_on_a_server_is_restored_through_the_api(tmp_path: Path, server: str) -> None:
    require(server)
    root = tmp_path / f"restore_{uuid.uuid4().hex[:10]}"
    storage = open_storage(root, server)
    after_three = closed_snapshot(run_study(root, 3, storage=storage))
    later = run_study(root, 6, storage=storage)  # its entry backed up the 3 trials: backup 1
    after_six = snapshot(later)
    restored = restore_backup(later, root, 1)
    close(later)
    assert closed_snapshot(restored) == after_three
    with ResumableStudy(root, storage=storage, sampler=tpe()) as study:  # and goes on exactly
        optimize_until(study, objective, 6)
    assert closed_snapshot(study) == after_six
