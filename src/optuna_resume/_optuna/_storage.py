"""What the library does to a study's storage: identity, truncation and cache upkeep.

On RDB storages a truncation is one SQL transaction on this study's rows only; on other
storages the study is rebuilt through Optuna's storage API (other studies stay untouched
either way).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, InMemoryStorage, RDBStorage
from optuna.storages._cached_storage import _CachedStorage
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from .._atomic import atomic_produce
from .._error import UnsupportedStorageError
from .._fault import fault_point
from .._log import logger
from ._attr_writes import SYSTEM, USER, WRITES_KEY, TakeBack, applied, plan_take_back
from ._state_table import BLOBS_TABLE, STATES_TABLE, delete_discarded

_logger = logger
_indexes_checked: weakref.WeakSet[RDBStorage] = weakref.WeakSet()

UID_KEY = "optuna_resume:study_uid"
REWINDS_KEY = "optuna_resume:rewound_to"  # the targets of the rewinds applied, in order
DEFAULT_DB_NAME = "study.db"

_TRIAL_CHILD_TABLES = (
    "trial_params",
    "trial_values",
    "trial_intermediate_values",
    "trial_user_attributes",
    "trial_system_attributes",
    "trial_heartbeats",
)


def sqlite_url(path: Path) -> str:
    """The SQLAlchemy URL of a SQLite file, escaped: any folder name (``#``, ``?``, ``%``)."""
    from sqlalchemy.engine import URL

    return URL.create("sqlite", database=str(path)).render_as_string(hide_password=False)


def sqlite_uri(path: Path, **query: str) -> str:
    """The ``sqlite3`` URI (``file:...``) of a SQLite file, escaped, with ``query``."""
    from urllib.parse import quote, urlencode

    uri = "file:" + quote(str(Path(path).absolute()), safe="/")
    return f"{uri}?{urlencode(query)}" if query else uri


def default_storage_url(root: Path) -> str:
    return sqlite_url(root / DEFAULT_DB_NAME)


# The RDB storages whose schema is known to be the installed Optuna's.
_SCHEMA_CHECKED: weakref.WeakSet[RDBStorage] = weakref.WeakSet()


def open_storage(storage: str | BaseStorage | None, root: Path | None) -> BaseStorage:
    """Turn a URL (or ``None``: the root's SQLite file) into a storage object.

    A new SQLite file is created whole (see :func:`create_sqlite_file`); Optuna's indexes
    missing from an existing database are created (see :func:`repair_missing_indexes`).
    """
    if storage is None:
        if root is None:
            raise UnsupportedStorageError("a storage or a root folder is needed")
        storage = default_storage_url(root)
    if isinstance(storage, str):
        create_sqlite_file(storage)
    opened = optuna.storages.get_storage(storage)
    rdb = rdb_of(opened)
    if rdb is not None:
        if isinstance(storage, str):
            _SCHEMA_CHECKED.add(rdb)  # Optuna checked it as it opened the URL
        repair_missing_indexes(rdb)
    return opened


def create_sqlite_file(url: str) -> None:
    """Create the SQLite file a URL names, with Optuna's whole schema, if it does not exist.

    Optuna creates its tables and indexes one statement at a time, each committed on its
    own: a process killed in between leaves a database without the unique index on study
    names, where the next ``create_study(load_if_exists=True)`` adds a second study of the
    same name and every later one fails. Here the schema is built in a temporary file and
    linked into place, so a new database is either absent or complete, and processes that
    start together on a new file all find the same one.
    """
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    database = parsed.database
    if (
        parsed.get_backend_name() != "sqlite"
        or not database
        or database == ":memory:"
        or database.startswith("file:")
        or parsed.query.get("uri") == "true"
    ):
        return
    path = Path(database).absolute()
    if path.exists() or not path.parent.is_dir():
        return  # an existing database, or a folder SQLite will report as missing

    def produce(tmp: Path) -> None:
        schema = RDBStorage(parsed.set(database=str(tmp)).render_as_string(False))
        schema.engine.dispose()

    if atomic_produce(path, produce, replace=False):
        _logger.debug("created the SQLite database %s", path)


def repair_missing_indexes(rdb: RDBStorage) -> None:
    """Create Optuna's indexes that a database lacks (a process killed while creating it).

    Without the unique index on study names, ``create_study(load_if_exists=True)`` adds a
    second study of the same name instead of loading the first. Two existence checks on a
    sound database, once per storage object (opening a study and binding its engine both
    ask).
    """
    if rdb in _indexes_checked:
        return
    from optuna.storages._rdb import models
    from sqlalchemy import inspect
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    for table in models.BaseModel.metadata.sorted_tables:
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            try:
                index.create(rdb.engine, checkfirst=True)
            except IntegrityError as e:
                raise UnsupportedStorageError(
                    f"the database {describe(rdb)} lacks Optuna's unique index "
                    f"{index.name} (a process was killed while creating the database) and "
                    "already holds rows that it would forbid, such as two studies of the same "
                    "name: keep one of each (optuna.delete_study removes a study by name; "
                    "back the database up first), then run again"
                ) from e
            except (OperationalError, ProgrammingError):
                with rdb.engine.connect() as connection:
                    created = inspect(connection).has_index(table.name, str(index.name))
                if not created:
                    raise  # not another process creating the same index at the same time
    _indexes_checked.add(rdb)


IDLE_PING_S = 1.0  # a pooled connection idle this long is checked before it is used again
_IDLE_SINCE = "optuna_resume_idle_since"
_pinging: weakref.WeakSet[Any] = weakref.WeakSet()


def ping_idle_connections(rdb: RDBStorage) -> None:
    """Check a pooled server connection that sat idle before the storage uses it again.

    A server may end a session while a trial runs (a restart, a failover, an idle timeout,
    an administrator): without a check, the trial's tell fails on the dead connection. A
    connection idle for ``IDLE_PING_S`` or more (the storage is not used while the objective
    runs) answers ``SELECT 1`` first; a dead one is replaced by a new one. Connections in
    use between a trial's steps are not checked (``pool_pre_ping`` would cost a round trip
    on each of a trial's dozen storage calls: ~1.2 ms per trial on PostgreSQL here).
    """
    engine = rdb.engine
    if engine.url.get_backend_name() == "sqlite" or engine in _pinging:
        return
    from sqlalchemy import event
    from sqlalchemy.exc import DisconnectionError

    def checkin(dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    def checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since < IDLE_PING_S:
            return
        try:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.close()
        except Exception as e:  # the pool drops this connection and hands out another
            raise DisconnectionError(f"a pooled connection was closed by the server: {e}") from e

    event.listen(engine, "checkin", checkin)
    event.listen(engine, "checkout", checkout)
    _pinging.add(engine)


def is_in_memory(storage: BaseStorage) -> bool:
    """Whether nothing of ``storage`` outlives the process (in-memory, or SQLite in memory)."""
    if isinstance(storage, InMemoryStorage):
        return True
    rdb = rdb_of(storage)
    if rdb is None or rdb.engine.url.get_backend_name() != "sqlite":
        return False
    database = rdb.engine.url.database or ""
    return database in ("", ":memory:") or "mode=memory" in database


def refuse_in_memory(storage: BaseStorage) -> None:
    if is_in_memory(storage):
        raise UnsupportedStorageError(
            "in-memory storage keeps nothing once the process ends, so a study in it cannot be "
            "resumed. Leave storage=None to use the root's SQLite file (sqlite:///<root>/"
            "study.db), or pass a database URL."
        )


def rdb_of(storage: BaseStorage) -> RDBStorage | None:
    """The RDB storage behind ``storage``, if there is one."""
    if isinstance(storage, _CachedStorage):
        return storage._backend
    return storage if isinstance(storage, RDBStorage) else None


def sqlite_file(storage: BaseStorage) -> Path | None:
    """The SQLite database file behind ``storage``, if it is one."""
    rdb = rdb_of(storage)
    if rdb is None or rdb.engine.url.get_backend_name() != "sqlite":
        return None
    database = rdb.engine.url.database
    if not database or database == ":memory:":
        return None
    return Path(database).resolve()


def describe(storage: BaseStorage) -> str:
    """A printable name of the storage, without passwords."""
    rdb = rdb_of(storage)
    if rdb is not None:
        return str(rdb.engine.url.render_as_string(hide_password=True))
    return type(storage).__name__


def study_uid(storage: BaseStorage, study_id: int) -> str:
    """The study's identity in this storage (created on first use, kept in system attrs)."""
    attrs = storage.get_study_system_attrs(study_id)
    uid = attrs.get(UID_KEY)
    if not isinstance(uid, str):
        uid = uuid.uuid4().hex
        storage.set_study_system_attr(study_id, UID_KEY, uid)
    return uid


def trial_count(storage: BaseStorage, study_id: int) -> int:
    """How many trials the study has (one SQL count on RDB storages, not a load of them all)."""
    rdb = rdb_of(storage)
    if rdb is None:
        return storage.get_n_trials(study_id)
    from sqlalchemy import text

    with rdb.engine.connect() as connection:
        count = connection.execute(
            text("SELECT COUNT(*) FROM trials WHERE study_id = :study_id"),
            {"study_id": study_id},
        ).scalar_one()
    return int(count)


def state_position(storage: BaseStorage, study_id: int) -> int:
    """The number of the trial the study's state is just before: one past its last trial that
    was asked for (WAITING trials, enqueued and not asked for yet, do not count)."""
    rdb = rdb_of(storage)
    if rdb is None:
        asked = (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        trials = storage.get_all_trials(study_id, deepcopy=False, states=asked)
        return max((t.number for t in trials), default=-1) + 1
    from sqlalchemy import text

    with rdb.engine.connect() as connection:
        last = connection.execute(
            text(
                "SELECT MAX(number) FROM trials WHERE study_id = :study_id AND state != 'WAITING'"
            ),
            {"study_id": study_id},
        ).scalar_one()
    return 0 if last is None else int(last) + 1


def count_trials(storage: BaseStorage, study_id: int) -> int:
    """How many trials the study has, in any state (one COUNT on RDB storages: Optuna's
    ``get_n_trials`` loads every trial there, seconds at 10,000)."""
    rdb = rdb_of(storage)
    if rdb is None:
        return storage.get_n_trials(study_id)
    from sqlalchemy import text

    with rdb.engine.connect() as connection:
        return int(
            connection.execute(
                text("SELECT COUNT(*) FROM trials WHERE study_id = :study_id"),
                {"study_id": study_id},
            ).scalar_one()
        )


def enqueued_from(storage: BaseStorage, study_id: int, number: int) -> list[FrozenTrial]:
    """The study's trials numbered ``number`` and above that were enqueued, in order.

    They are those that carry ``fixed_params`` (``Study.enqueue_trial``), WAITING or not. On
    RDB storages the database finds them: a rewind does not load every trial of the study.
    """
    backend = rdb_of(storage) or storage
    found = _trials_with_system_attr(storage, study_id, number, "fixed_params")
    return [backend.get_trial(trial_id) for _, trial_id, _ in found]


def attr_write_logs(storage: BaseStorage, study_id: int, number: int) -> list[tuple[int, Any]]:
    """The study-attribute write records of trials numbered ``number`` and above.

    ``(trial number, record)`` pairs; on RDB storages the database finds them.
    """
    found = _trials_with_system_attr(storage, study_id, number, WRITES_KEY)
    return [(trial_number, record) for trial_number, _, record in found]


def _trials_with_system_attr(
    storage: BaseStorage, study_id: int, number: int, key: str
) -> list[tuple[int, int, Any]]:
    """``(number, trial id, value)`` of the trials from ``number`` on with system attr ``key``.

    In trial order. On RDB storages one query: a rewind does not load every trial.
    """
    rdb = rdb_of(storage)
    if rdb is None:
        trials = storage.get_all_trials(study_id, deepcopy=False)
        return [
            (t.number, t._trial_id, t.system_attrs[key])
            for t in sorted(trials, key=lambda t: t.number)
            if t.number >= number and key in t.system_attrs
        ]
    from sqlalchemy import text

    with rdb.engine.connect() as connection:
        key_column = connection.dialect.identifier_preparer.quote("key")  # MySQL reserves it
        rows = connection.execute(
            text(
                "SELECT t.number, t.trial_id, a.value_json FROM trials t "
                "JOIN trial_system_attributes a ON a.trial_id = t.trial_id "
                f"WHERE t.study_id = :study_id AND t.number >= :number AND a.{key_column} = :key "
                "ORDER BY t.number"
            ),
            {"study_id": study_id, "number": number, "key": key},
        ).all()
    return [(int(n), int(trial_id), json.loads(value)) for n, trial_id, value in rows]


def study_fingerprint(storage: BaseStorage, study_id: int) -> str:
    """A digest that changes whenever the study's trials or attributes change.

    Per trial state: the count, the newest trial id and the newest start and end times
    (a finished trial cannot change any more); and the study's attributes. On RDB storages
    one aggregate query: no trial is loaded.
    """
    rdb = rdb_of(storage)
    if rdb is not None:
        from sqlalchemy import text

        with rdb.engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT state, COUNT(*), MAX(trial_id), MAX(datetime_start), "
                    "MAX(datetime_complete) FROM trials WHERE study_id = :study_id "
                    "GROUP BY state ORDER BY state"
                ),
                {"study_id": study_id},
            ).all()
        trials = [[str(v) for v in row] for row in rows]
    else:
        groups: dict[str, list[FrozenTrial]] = {}
        for t in storage.get_all_trials(study_id, deepcopy=False):
            groups.setdefault(t.state.name, []).append(t)

        def newest(values: Iterable[Any]) -> str:
            return str(max((v for v in values if v is not None), default=None))

        trials = [
            [
                state,
                str(len(group)),
                newest(t._trial_id for t in group),
                newest(t.datetime_start for t in group),
                newest(t.datetime_complete for t in group),
            ]
            for state, group in sorted(groups.items())
        ]
    system = storage.get_study_system_attrs(study_id)
    attrs = [
        storage.get_study_user_attrs(study_id),
        {k: system[k] for k in system if not is_lease_key(k)},
    ]
    document = json.dumps([trials, attrs], sort_keys=True, default=str)
    return hashlib.sha256(document.encode()).hexdigest()


def rewinds_applied(storage: BaseStorage, study_id: int) -> list[int]:
    """The targets of the rewinds applied to the study so far, in order."""
    done = storage.get_study_system_attrs(study_id).get(REWINDS_KEY, [])
    return [n for n in done if isinstance(n, int)] if isinstance(done, list) else []


def take_back_plan(storage: BaseStorage, study_id: int, keep_below: int) -> list[TakeBack]:
    """The study attributes that trials ``keep_below`` and later wrote, to put back."""
    return plan_take_back(
        attr_write_logs(storage, study_id, keep_below),
        storage.get_study_user_attrs(study_id),
        storage.get_study_system_attrs(study_id),
    )


def running_trials(storage: BaseStorage, study_id: int) -> list[FrozenTrial]:
    """The study's RUNNING trials (filtered by the database on RDB storages)."""
    backend = rdb_of(storage) or storage
    return backend.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))


LEASE_KEY = "optuna_resume:session"  # the study's lease (see _lease): renewed, not a change
WORKER_LEASE_PREFIX = "optuna_resume:worker_lease:"  # + a worker id: that worker's lease


def is_lease_key(key: str) -> bool:
    """Whether a study system attribute is a lease (a session's or a worker's)."""
    return key == LEASE_KEY or key.startswith(WORKER_LEASE_PREFIX)


HEARTBEAT_INTERVAL = 10  # seconds, where the storage sets none (Optuna's heartbeat_interval)
GRACE_PERIOD = 60  # seconds without a heartbeat before a trial is stale (Optuna's grace_period)


def heartbeat_settings(storage: BaseStorage) -> tuple[int, int] | None:
    """(interval, grace period) of the heartbeats recorded in ``storage``, if it keeps them.

    The storage's own settings where its heartbeat is enabled (``RDBStorage(heartbeat_interval=,
    grace_period=)``, grace ``2 * interval`` by default as in Optuna), else the library's.
    ``None``: the storage keeps no heartbeats (not an RDB storage, or in memory).
    """
    rdb = rdb_of(storage)
    if rdb is None or is_in_memory(rdb):
        return None
    interval = rdb.heartbeat_interval
    if interval is None:
        return HEARTBEAT_INTERVAL, GRACE_PERIOD
    return interval, rdb.grace_period or 2 * interval


def heartbeat_ages(storage: BaseStorage, study_id: int) -> dict[int, float]:
    """Seconds since the last heartbeat of each RUNNING trial of the study that has one.

    Measured by the database's clock (the hosts' clocks may disagree), as Optuna's own
    stale-trial check does.
    """
    rdb = rdb_of(storage)
    if rdb is None:
        return {}
    import sqlalchemy
    from optuna.storages._rdb import models

    with rdb.engine.connect() as connection:
        now = connection.execute(sqlalchemy.select(sqlalchemy.func.now())).scalar()
        rows = connection.execute(
            sqlalchemy.select(
                models.TrialHeartbeatModel.trial_id, models.TrialHeartbeatModel.heartbeat
            )
            .join(
                models.TrialModel,
                models.TrialModel.trial_id == models.TrialHeartbeatModel.trial_id,
            )
            .where(models.TrialModel.study_id == study_id)
            .where(models.TrialModel.state == TrialState.RUNNING)
        ).all()
    if now is None:
        return {}
    now = now.replace(tzinfo=None)  # PostgreSQL answers with a time zone, the columns have none
    return {int(trial_id): (now - beat).total_seconds() for trial_id, beat in rows}


def last_trial(storage: BaseStorage, study_id: int, n_trials: int) -> FrozenTrial:
    """The trial numbered ``n_trials - 1`` (numbers run 0, 1, ... within a study)."""
    backend = rdb_of(storage) or storage
    return backend.get_trial(
        backend.get_trial_id_from_study_id_trial_number(study_id, n_trials - 1)
    )


def copy_study_rows(source: RDBStorage, study_id: int, target: Path) -> None:
    """Copy one study's rows, ids kept, into a SQLite file that has Optuna's schema (a backup).

    One consistent read (REPEATABLE READ on PostgreSQL and MySQL) and one bulk insert per
    table: about a second for 10,000 trials, where the storage API takes minutes. The file is
    written without syncing; the caller makes it durable (``atomic_produce``).
    """
    import sqlite3

    check_schema_version(source)

    from sqlalchemy import text

    trials_of_study = "trial_id IN (SELECT trial_id FROM trials WHERE study_id = :study_id)"
    tables = [
        ("studies", "study_id = :study_id"),
        ("study_directions", "study_id = :study_id"),
        ("study_user_attributes", "study_id = :study_id"),
        ("study_system_attributes", "study_id = :study_id"),
        ("trials", "study_id = :study_id"),
        *((table, trials_of_study) for table in _TRIAL_CHILD_TABLES),
    ]
    from sqlalchemy import inspect

    if inspect(source.engine).has_table(STATES_TABLE):  # the states committed with the trials
        tables += [(STATES_TABLE, "study_id = :study_id"), (BLOBS_TABLE, "1 = 1")]
    options = {}
    if source.engine.dialect.name in ("postgresql", "mysql", "mariadb"):
        options["isolation_level"] = "REPEATABLE READ"

    writer = sqlite3.connect(target)
    try:
        writer.execute("PRAGMA synchronous = OFF")
        reading = source.engine.connect().execution_options(**options)
        with reading as reader, reader.begin(), writer:
            for table, where in tables:
                result = reader.execute(
                    text(f"SELECT * FROM {table} WHERE {where}"), {"study_id": study_id}
                )
                columns = list(result.keys())
                rows = _rows_for_sqlite(result, columns)
                if not rows:
                    continue
                names = ", ".join(f'"{c}"' for c in columns)
                marks = ", ".join("?" for _ in columns)
                writer.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
    finally:
        writer.close()


def _rows_for_sqlite(result: Any, columns: list[str]) -> list[Any]:
    """A query's rows as SQLite takes them: the driver's rows, fetched at once (a Row object
    each costs more), with the dates as SQLAlchemy's SQLite ``DateTime`` text."""
    import datetime

    rows: list[Any] = list(result.cursor.fetchall()) if result.cursor else []
    if not rows:
        return rows
    dates = {i for i, c in enumerate(columns) if c.startswith("datetime") or c == "heartbeat"} | {
        i for i, v in enumerate(rows[0]) if isinstance(v, datetime.datetime)
    }
    if not dates:
        return rows
    rows = [list(row) for row in rows]
    for row in rows:
        for i in dates:
            value = row[i]
            if value is None:
                continue
            if value.tzinfo is None:  # (Optuna's columns: the same text, several times faster)
                row[i] = value.isoformat(sep=" ", timespec="microseconds")
            else:
                row[i] = value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return rows


def clear_leases(sqlite_file: Path) -> None:
    """Clear the leases (sessions', workers') in a SQLite copy of studies: a backup holds no
    session."""
    import sqlite3

    connection = sqlite3.connect(sqlite_file)
    try:
        with connection:
            connection.execute(
                "UPDATE study_system_attributes SET value_json = 'null' "
                "WHERE key = ? OR substr(key, 1, ?) = ?",
                (LEASE_KEY, len(WORKER_LEASE_PREFIX), WORKER_LEASE_PREFIX),
            )
    finally:
        connection.close()


def forget_cached_trials(storage: BaseStorage) -> None:
    """Drop what a caching storage wrapper remembers, after its backend was changed under it."""
    if isinstance(storage, _CachedStorage):
        with storage._lock:
            storage._studies.clear()
            storage._trial_id_to_study_id_and_number.clear()
            storage._study_id_and_number_to_trial_id.clear()


def truncate_study(
    storage: BaseStorage, study_id: int, keep_below: int, take_back: list[TakeBack]
) -> int:
    """Remove the study's trials numbered ``keep_below`` and above; put attributes back.

    ``take_back`` lists the study attributes that the removed trials wrote (they go back to
    their earlier values, in the same transaction on RDB storages).

    Returns the study's id afterwards (it changes only where the study had to be rebuilt).
    """
    rdb = rdb_of(storage)
    if rdb is not None:
        _truncate_rdb(rdb, study_id, keep_below, take_back)
        forget_cached_trials(storage)
        return study_id
    if isinstance(storage, InMemoryStorage):
        _truncate_in_memory(storage, study_id, keep_below, take_back)
        return study_id
    return _rebuild_study(storage, study_id, keep_below, take_back)


def must_rebuild(storage: BaseStorage) -> bool:
    """Whether removing trials means rebuilding the study (a storage that cannot delete)."""
    return rdb_of(storage) is None and not isinstance(storage, InMemoryStorage)


def _truncate_in_memory(
    storage: InMemoryStorage, study_id: int, keep_below: int, take_back: list[TakeBack]
) -> None:
    # In place, so that the study keeps its id (samplers cache it).
    with storage._lock:
        info = storage._studies[study_id]
        for trial in info.trials[keep_below:]:
            storage._trial_id_to_study_id_and_number.pop(trial._trial_id, None)
        info.trials = info.trials[:keep_below]
        info.user_attrs = applied(info.user_attrs, take_back, USER)
        info.system_attrs = applied(info.system_attrs, take_back, SYSTEM)
        waiting_cursor = getattr(storage, "_prev_waiting_trial_number", None)
        if isinstance(waiting_cursor, dict):  # Optuna >= 4.1 scans waiting trials from here
            waiting_cursor[study_id] = 0
        info.best_trial_id = None
        if len(info.directions) == 1:
            sign = 1.0 if info.directions[0] == StudyDirection.MINIMIZE else -1.0
            complete = [t for t in info.trials if t.state == TrialState.COMPLETE and t.values]
            if complete:
                info.best_trial_id = min(complete, key=lambda t: sign * t.values[0])._trial_id


def check_schema_version(rdb: RDBStorage) -> None:
    """Refuse a database whose tables are not at the schema of the installed Optuna.

    Our SQL (truncation, bulk backup) names Optuna's tables and columns: it runs only on the
    schema it was written for. Checked once per storage object: Optuna's own check when it
    opened a URL counts (reading the installed schema's version loads Alembic's scripts,
    tens of milliseconds), but a storage made with ``skip_compatibility_check=True`` is
    checked here.
    """
    if rdb in _SCHEMA_CHECKED:
        return
    current, head = rdb.get_current_version(), rdb.get_head_version()
    if current != head:
        raise UnsupportedStorageError(
            f"the database {describe(rdb)} has Optuna's schema {current}, but the installed "
            f"Optuna {optuna.__version__} uses {head}. Run `optuna storage upgrade --storage "
            "URL` (back the database up first), or use the Optuna version that wrote it."
        )
    _SCHEMA_CHECKED.add(rdb)


def _truncate_rdb(
    rdb: RDBStorage, study_id: int, keep_below: int, take_back: list[TakeBack]
) -> None:
    from sqlalchemy import text

    check_schema_version(rdb)

    # One statement per table with a sub-select: no list of ids travels to the database.
    doomed = "SELECT trial_id FROM trials WHERE study_id = :study_id AND number >= :keep_below"
    where = {"study_id": study_id, "keep_below": keep_below}
    with rdb.engine.begin() as connection:
        for table in _TRIAL_CHILD_TABLES:
            connection.execute(text(f"DELETE FROM {table} WHERE trial_id IN ({doomed})"), where)
        connection.execute(
            text("DELETE FROM trials WHERE study_id = :study_id AND number >= :keep_below"),
            where,
        )
        key_column = connection.dialect.identifier_preparer.quote("key")  # MySQL reserves it
        for item in take_back:
            table = f"study_{item.kind}_attributes"
            where_key = {"study_id": study_id, "key": item.key}
            connection.execute(
                text(f"DELETE FROM {table} WHERE study_id = :study_id AND {key_column} = :key"),
                where_key,
            )
            if item.present:
                connection.execute(
                    text(
                        f"INSERT INTO {table} (study_id, {key_column}, value_json) "
                        "VALUES (:study_id, :key, :value_json)"
                    ),
                    {**where_key, "value_json": json.dumps(item.value)},
                )
        delete_discarded(connection, study_id, keep_below)
        fault_point("truncate.in_transaction")


def _rebuild_study(
    storage: BaseStorage, study_id: int, keep_below: int, take_back: list[TakeBack]
) -> int:
    name = storage.get_study_name_from_id(study_id)
    directions = storage.get_study_directions(study_id)
    user_attrs = applied(storage.get_study_user_attrs(study_id), take_back, USER)
    system_attrs = applied(storage.get_study_system_attrs(study_id), take_back, SYSTEM)
    kept = [t for t in storage.get_all_trials(study_id) if t.number < keep_below]
    storage.delete_study(study_id)
    fault_point("rebuild.deleted")
    return _write_study(
        storage,
        name,
        directions,
        user_attrs,
        system_attrs,
        kept,
        each_trial=lambda: fault_point("rebuild.trial"),
    )


def copy_study(src: BaseStorage, study_id: int, dst: BaseStorage) -> int:
    """Copy one study (attributes and every trial) into another storage; return its new id."""
    return _write_study(
        dst,
        src.get_study_name_from_id(study_id),
        src.get_study_directions(study_id),
        src.get_study_user_attrs(study_id),
        src.get_study_system_attrs(study_id),
        src.get_all_trials(study_id),
    )


def _write_study(
    storage: BaseStorage,
    name: str,
    directions: list[StudyDirection],
    user_attrs: dict[str, Any],
    system_attrs: dict[str, Any],
    trials: list[FrozenTrial],
    each_trial: Callable[[], None] = lambda: None,
) -> int:
    """Create a study from its parts; the GA samplers' cached trial ids follow the trials."""
    new_id = storage.create_new_study(directions, name)
    for key, value in user_attrs.items():
        storage.set_study_user_attr(new_id, key, value)
    new_trial_ids: dict[int, int] = {}
    for trial in sorted(trials, key=lambda t: t.number):
        new_trial_ids[trial._trial_id] = storage.create_new_trial(new_id, template_trial=trial)
        each_trial()
    # The study's identity (a system attribute) comes last: a study without it is unfinished.
    for key, value in system_attrs.items():
        storage.set_study_system_attr(new_id, key, _renumber(key, value, new_trial_ids))
    return new_id


def _renumber(key: str, value: Any, new_trial_ids: dict[int, int]) -> Any:
    """Map the trial ids that the GA samplers cache (``<Sampler>:parent:<generation>``)."""
    if (
        ":parent:" in key
        and isinstance(value, list)
        and all(isinstance(v, int) and v in new_trial_ids for v in value)
    ):
        return [new_trial_ids[v] for v in value]
    return value


def claim_study_system_attr(
    storage: BaseStorage,
    study_id: int,
    key: str,
    value: Any,
    claimable: Callable[[Any], bool],
) -> bool | None:
    """Set a study system attribute to ``value`` if ``claimable(its current value)``, as one
    step no other process can come between (a lease's claim); whether it was set.

    On an RDB storage the check and the write are one transaction holding the study's row
    (its first statement takes the row's lock, SQLite's database lock): a second claimer
    waits, then sees the first one's value. ``None`` on the other storages (no transaction
    to hold: the caller writes and reads back).
    """
    rdb = rdb_of(storage)
    if rdb is None:
        return None
    from optuna.storages._rdb import models
    from sqlalchemy import select, update
    from sqlalchemy.orm import Session

    study = models.StudyModel
    attribute = models.StudySystemAttributeModel
    with Session(rdb.engine) as session, session.begin():
        locked = session.execute(
            update(study)
            .where(study.study_id == study_id)
            .values(study_name=study.study_name)  # changes nothing; takes the lock
            .execution_options(synchronize_session=False)
        )
        if locked.rowcount == 0:  # type: ignore[attr-defined]
            raise KeyError(f"no study with id {study_id}")
        row = session.scalars(
            select(attribute)
            .where(attribute.study_id == study_id, attribute.key == key)
            .with_for_update()
        ).first()
        current = None if row is None else json.loads(row.value_json)
        if not claimable(current):
            return False
        if row is None:
            session.add(attribute(study_id=study_id, key=key, value_json=json.dumps(value)))
        else:
            row.value_json = json.dumps(value)
    return True


__all__ = [
    "DEFAULT_DB_NAME",
    "GRACE_PERIOD",
    "HEARTBEAT_INTERVAL",
    "LEASE_KEY",
    "REWINDS_KEY",
    "UID_KEY",
    "WORKER_LEASE_PREFIX",
    "check_schema_version",
    "claim_study_system_attr",
    "clear_leases",
    "copy_study",
    "count_trials",
    "create_sqlite_file",
    "default_storage_url",
    "describe",
    "enqueued_from",
    "forget_cached_trials",
    "heartbeat_ages",
    "heartbeat_settings",
    "is_lease_key",
    "must_rebuild",
    "open_storage",
    "ping_idle_connections",
    "rdb_of",
    "refuse_in_memory",
    "repair_missing_indexes",
    "rewinds_applied",
    "sqlite_file",
    "sqlite_uri",
    "sqlite_url",
    "state_position",
    "study_fingerprint",
    "study_uid",
    "take_back_plan",
    "truncate_study",
]
