"""The database connections of a running study cut by the server (PostgreSQL, MySQL).

The server ends the process's sessions (``pg_terminate_backend``, MySQL's ``KILL``) while a
trial runs, or while the transaction that commits a trial with its state is open (the process
is stopped there with the fault point ``state_row.written``): the process goes on (the pool
reconnects) or ends with the database's error, and the next entry resumes exactly: the
complete trials equal an uninterrupted run's, and nothing is left RUNNING.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from services import require

DRIVER = Path(__file__).parent / "drop_driver.py"
TOTAL, DROP_AT = 10, 5
DROP_USER = "optuna_resume_drop"


# Where the connections are cut: inside trial 5's objective, or with the transaction open
# that creates trial 5 (the 11th state row: before and after each of trials 0-4 came first)
# or that finishes it (the 12th).
INSIDE_TRIAL, CREATING, FINISHING = "trial", "state_row.written@11", "state_row.written@12"


def _run(root: Path, url: str, name: str, drop_at: int, fault: str = "") -> subprocess.Popen[str]:
    env = {**os.environ, "OPTUNA_RESUME_FAULT": f"{fault}=stop" if fault else ""}
    return subprocess.Popen(
        [sys.executable, str(DRIVER), str(root), url, name, str(TOTAL), str(drop_at)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _stopped(process: subprocess.Popen[str]) -> bool:
    stat = Path(f"/proc/{process.pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "T"


def _server(kind: str) -> tuple[str, str]:
    """(URL the study process uses, an admin URL) for a server."""
    admin = require(kind)
    tag = f"drop{uuid.uuid4().hex[:8]}"
    if kind == "postgres":
        # The process's sessions are told apart from the others' by their application name.
        return f"{admin}?application_name={tag}", admin
    engine = sqlalchemy.create_engine(admin)
    with engine.begin() as connection:  # its sessions are told apart by their user
        for host in ("%", "localhost"):
            connection.execute(
                sqlalchemy.text(f"CREATE USER IF NOT EXISTS '{DROP_USER}'@'{host}'")
            )
            connection.execute(sqlalchemy.text(f"GRANT ALL ON test.* TO '{DROP_USER}'@'{host}'"))
    engine.dispose()
    return admin.replace("//root@", f"//{DROP_USER}@"), admin


def _cut_connections(admin: str, url: str, kind: str) -> int:
    """End every session of the study's process on the server; how many were ended."""
    engine = sqlalchemy.create_engine(admin)
    try:
        with engine.begin() as connection:
            if kind == "postgres":
                app = url.rsplit("application_name=", 1)[1]
                return len(
                    connection.execute(
                        sqlalchemy.text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE application_name = :app"
                        ),
                        {"app": app},
                    ).all()
                )
            ids = connection.execute(
                sqlalchemy.text("SELECT id FROM information_schema.processlist WHERE user = :u"),
                {"u": DROP_USER},
            ).all()
            for (session_id,) in ids:
                connection.exec_driver_sql(f"KILL {int(session_id)}")
            return len(ids)
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("kind", "where"),
    [
        ("postgres", INSIDE_TRIAL),
        ("postgres", CREATING),
        ("postgres", FINISHING),
        ("mysql", FINISHING),
    ],
)
def test_connections_cut_by_the_server_lose_nothing(tmp_path: Path, kind: str, where: str) -> None:
    url, admin = _server(kind)
    names = {label: f"{label}-{uuid.uuid4().hex[:8]}" for label in ("once", "cut")}
    storage = optuna.storages.RDBStorage(admin)
    try:
        once = _run(tmp_path / "once" / names["once"], url, names["once"], -1)
        out, err = once.communicate(timeout=300)
        assert once.returncode == 0, err[-3000:]
        uninterrupted = json.loads(out.splitlines()[-1])

        root = tmp_path / "cut" / names["cut"]
        inside = where == INSIDE_TRIAL
        process = _run(root, url, names["cut"], DROP_AT if inside else -1, "" if inside else where)
        marker = root.parent / "dropping"
        deadline = time.monotonic() + 120
        while not (marker.exists() if inside else _stopped(process)):
            assert process.poll() is None, process.communicate()[1][-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert _cut_connections(admin, url, kind) >= 1
        if inside:
            (root.parent / "dropped").touch()
            marker.unlink()
        else:
            os.kill(process.pid, signal.SIGCONT)
        out, err = process.communicate(timeout=300)
        runs = 1
        while process.returncode != 0:  # it ended with the database's error: run it again
            assert "The study's database failed" in err, err[-3000:]
            assert runs < 3, err[-3000:]
            process = _run(root, url, names["cut"], -1)
            out, err = process.communicate(timeout=300)
            runs += 1
        if inside:  # the idle connections were checked and replaced: it went on
            assert runs == 1
        assert json.loads(out.splitlines()[-1]) == uninterrupted
        study = optuna.load_study(study_name=names["cut"], storage=storage)
        assert not [t.number for t in study.trials if not t.state.is_finished()]
    finally:
        for name in names.values():
            with contextlib.suppress(KeyError):
                optuna.delete_study(study_name=name, storage=storage)
        storage.engine.dispose()
