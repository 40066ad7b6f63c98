"""The local servers some tests need: where they are, and a skip (or, in CI, a failure).

URLs can be changed with ``OPTUNA_RESUME_POSTGRES_URL``, ``OPTUNA_RESUME_MYSQL_URL`` and
``OPTUNA_RESUME_REDIS_URL``. Where a server does not answer, the test is skipped with the
reason; with ``OPTUNA_RESUME_REQUIRE_SERVICES=1`` (set by ``.ci/run``) it fails instead.
"""

from __future__ import annotations

import os
import warnings

import optuna
import pytest
from optuna.storages import BaseStorage

URLS = {
    "postgres": os.environ.get(
        "OPTUNA_RESUME_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    ),
    "mysql": os.environ.get("OPTUNA_RESUME_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
    "redis": os.environ.get("OPTUNA_RESUME_REDIS_URL", "redis://127.0.0.1:6379"),
}


def require(kind: str) -> str:
    """The URL of server ``kind`` once it answers; else skip (or fail in CI)."""
    url = URLS[kind]
    try:
        if kind == "redis":
            import redis

            redis.Redis.from_url(url, socket_connect_timeout=5).ping()
        else:
            import sqlalchemy

            engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": 5})
            with engine.connect():
                pass
            engine.dispose()
    except Exception as e:
        reason = f"no {kind} server at {url}: {type(e).__name__}: {e}".splitlines()[0]
        if os.environ.get("OPTUNA_RESUME_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return url


def server_storage(kind: str, name: str) -> str | BaseStorage:
    """Optuna's storage on server ``kind``; a Redis journal is kept under its own prefix."""
    if kind in ("postgres", "mysql"):
        return URLS[kind]
    if kind == "redis":
        from optuna.storages.journal import JournalRedisBackend

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            backend = JournalRedisBackend(URLS["redis"], prefix=name)
        return optuna.storages.JournalStorage(backend)
    raise ValueError(kind)
