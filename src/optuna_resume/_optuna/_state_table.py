"""States committed with their trials, in the study's own database (SQLite, PostgreSQL, MySQL).

On an RDB storage every state is also a row of the library's table ``optuna_resume_states``
(the same ``torch.save`` document as the checkpoint file, byte for byte), written inside
Optuna's own transactions:

- the state before trial ``N`` in the transaction that creates trial ``N`` (``ask``) or hands
  out the waiting trial ``N`` (an enqueued trial popped by ``ask``);
- the state after trial ``N`` in the transaction that finishes it (``tell``, including the one
  ``optimize`` makes), together with the removal of the previous "after" row;
- the states written at other moments (the final state at exit, a trial the decorator sees
  first, an ask/tell loop's state after a tell) in a transaction of their own.

A trial and its state are therefore committed together: a kill can never leave a trial
created or finished without its state, and the database alone (a backup of it, or another
host with an empty root) holds what a resume needs. Large parts of a sampler kept once
(``blobs/``) are rows of ``optuna_resume_blobs``, keyed by their SHA-256. A truncation
(rewind, re-run) removes the rows of the discarded states in its own transaction.

The database keeps the states before the newest ``ROW_WINDOW`` trials (and the newest state
after one): what a resume needs, and rewinds to a recent trial, from any host. A state's row
is put in one statement (an insert, or an upsert where a row of the same key is replaced);
the rows that leave the window go with one write in ``TRIM_EVERY``, and the older "after" row
with each new one. The checkpoint folder keeps every state: it is written first, without
an fsync while a row holds the same state, and made durable before that row goes. An entry
fills in whatever the database holds that the folder lacks (another host, an empty root) and
replaces a damaged file from its row. Backups and truncations thus handle a bounded number of
rows, whatever the study's size.

Every use of Optuna's RDB internals for this (the hooked methods, the ORM session) is here.
"""

from __future__ import annotations

import functools
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from .._fault import fault_point
from .._store import check_key

if TYPE_CHECKING:
    from optuna.storages import RDBStorage
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection
    from sqlalchemy.orm import Session

STATES_TABLE = "optuna_resume_states"
BLOBS_TABLE = "optuna_resume_blobs"
_BEFORE, _AFTER = "before", "after"
ROW_WINDOW = 100  # the database keeps the states before the newest 100 trials (files: all)

_tls = threading.local()  # .create: _Pending | None; .finish: dict[trial_id, _Pending]; .commit
_install_lock = threading.Lock()
_READY = "_optuna_resume_tables_ready"  # set on a storage whose database has the tables
_tables: tuple[Table, Table] | None = None


@dataclass
class _Pending:
    """A state waiting for the transaction that commits its trial."""

    rdb: RDBStorage
    study_id: int
    study_uid: str
    worker: str
    trial: int
    phase: str
    document: bytes
    blobs: dict[str, bytes]
    drop_before: int | None = None  # a "before" row the retention policy lets go
    drop_older_afters: bool = True
    trim: bool = True  # rows of its phase older than the window go (see _write, StateRows._trims)
    written: bool = False
    trial_id: int | None = field(default=None)


def _table_defs() -> tuple[Table, Table]:
    global _tables
    if _tables is None:
        from sqlalchemy import Column, Integer, LargeBinary, MetaData, String, Table
        from sqlalchemy.dialects import mysql

        binary = LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")
        metadata = MetaData()
        states = Table(
            STATES_TABLE,
            metadata,
            Column("study_id", Integer, primary_key=True, autoincrement=False),
            Column("worker", String(255), primary_key=True),
            Column("trial", Integer, primary_key=True, autoincrement=False),
            Column("phase", String(8), primary_key=True),
            Column("study_uid", String(64), nullable=False),
            Column("document", binary, nullable=False),
        )
        blobs = Table(
            BLOBS_TABLE,
            metadata,
            Column("sha256", String(64), primary_key=True),
            Column("data", binary, nullable=False),
        )
        _tables = (states, blobs)
    return _tables


def has_tables(rdb: RDBStorage) -> bool:
    """Whether ``rdb``'s database has the library's tables (nothing is created)."""
    if getattr(rdb, _READY, False):
        return True
    from sqlalchemy import inspect

    return bool(inspect(rdb.engine).has_table(STATES_TABLE))


def ensure_tables(rdb: RDBStorage) -> None:
    """Create the library's tables in ``rdb``'s database if they are missing (once)."""
    if getattr(rdb, _READY, False):
        return
    from sqlalchemy import inspect
    from sqlalchemy.exc import SQLAlchemyError

    from .._error import UnsupportedStorageError

    states, _ = _table_defs()
    try:
        try:
            states.metadata.create_all(rdb.engine, checkfirst=True)
        except SQLAlchemyError:
            # Another process created them between the check and the creation.
            states.metadata.create_all(rdb.engine, checkfirst=True)
    except SQLAlchemyError as e:
        raise UnsupportedStorageError(
            f"the tables {STATES_TABLE} and {BLOBS_TABLE}, where the library commits the "
            f"study's states with its trials, cannot be created in {rdb.engine.url!r}: "
            f"{type(e).__name__}: {str(e).splitlines()[0]} Grant the database user the right "
            "to create tables (as Optuna needs for its own), or create them once with a user "
            "who has it. Nothing was changed."
        ) from e
    found = {c["name"] for c in inspect(rdb.engine).get_columns(STATES_TABLE)}
    if found != {c.name for c in states.columns}:
        raise UnsupportedStorageError(
            f"the table {STATES_TABLE} in {rdb.engine.url!r} has the columns "
            f"{sorted(found)}, not the ones this version of optuna-resume writes "
            f"({sorted(c.name for c in states.columns)}): it was made by another version. "
            "Use that version, or back the database up and drop the table (the checkpoint "
            "folders keep the states). Nothing was changed."
        )
    _drop_deleted_studies_rows(rdb)
    setattr(rdb, _READY, True)
    install_hooks()


def _drop_deleted_studies_rows(rdb: RDBStorage) -> None:
    """Remove the state rows of studies that are gone (``optuna.delete_study`` does not know
    the library's table)."""
    from optuna.storages._rdb import models  # Optuna's ORM: this package is where it is used
    from sqlalchemy import delete, select

    states, _ = _table_defs()
    alive = select(models.StudyModel.study_id)
    query = delete(states).where(states.c.study_id.not_in(alive))
    _in_own_transaction(rdb, lambda connection: connection.execute(query))


def install_hooks() -> None:
    """Hook Optuna's RDB storage so that pending states join their trials' transactions."""
    from optuna.storages import RDBStorage
    from optuna.trial import TrialState
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    with _install_lock:
        if getattr(RDBStorage._get_prepared_new_trial, "_optuna_resume_hook", False):
            return
        prepare = RDBStorage._get_prepared_new_trial
        set_state = RDBStorage.set_trial_state_values
        running = TrialState.RUNNING

        @functools.wraps(prepare)
        def prepared_new_trial(
            storage: RDBStorage, study_id: int, template_trial: Any, session: Session
        ) -> Any:
            trial = prepare(storage, study_id, template_trial, session)
            if getattr(_tls, "first_heartbeat", None) == (id(storage), study_id):
                # A worker's trial is born with its first heartbeat, committed with it: a
                # worker killed before its heartbeat thread records one leaves a trial that
                # goes stale, not one that nobody can ever prove dead.
                from optuna.storages._rdb import models

                session.add(models.TrialHeartbeatModel(trial_id=trial.trial_id))
            pending = getattr(_tls, "create", None)
            if (
                pending is not None
                and template_trial is None
                and pending.rdb is storage
                and pending.study_id == study_id
                and pending.trial == trial.number
            ):
                _write(session.connection(), pending)
                pending.written = True  # (a retried transaction writes it again)
            return trial

        @functools.wraps(set_state)
        def set_trial_state_values(
            storage: RDBStorage, trial_id: int, state: Any, values: Any = None
        ) -> bool:
            taking = getattr(_tls, "taking", None)
            if taking is not None and taking.rdb is storage and state == running:
                # (A WAITING trial popped by this thread's ask: tagged in that transaction.)
                taking.trial_id = trial_id
                try:
                    return _set_state_values(set_state, storage, trial_id, state, values)
                finally:
                    taking.trial_id = None
            return _set_state_values(set_state, storage, trial_id, state, values)

        prepared_new_trial._optuna_resume_hook = True  # type: ignore[attr-defined]
        RDBStorage._get_prepared_new_trial = prepared_new_trial  # type: ignore[method-assign,assignment]
        RDBStorage.set_trial_state_values = set_trial_state_values  # type: ignore[method-assign,assignment]
        event.listen(Session, "before_commit", _before_commit)


def _set_state_values(
    set_state: Callable[..., bool], storage: RDBStorage, trial_id: int, state: Any, values: Any
) -> bool:
    """Optuna's ``set_trial_state_values``, with the state waiting for that transaction."""
    pending = None
    if state.is_finished():
        waiting = getattr(_tls, "finish", {})
        pending = waiting.get(trial_id)
        if callable(pending):  # the state is taken now, after the sampler's after_trial
            pending = waiting[trial_id] = pending(state)
    elif getattr(_tls, "create", None) is not None:
        pending = _tls.create
        pending.trial_id = trial_id
    if pending is None or pending.rdb is not storage:
        return set_state(storage, trial_id, state, values)
    _tls.commit = (pending, trial_id, state)
    try:
        # (Optuna runs the creation of a trial again after a deadlock, not its finish.)
        return _again_if_deadlocked(lambda: set_state(storage, trial_id, state, values))
    finally:
        _tls.commit = None
        if state.is_finished():
            _tls.finish.pop(trial_id, None)


@dataclass
class _Taking:
    """An ask of a worker: the WAITING trial it may pop is tagged in the popping transaction."""

    rdb: RDBStorage
    study_id: int
    tags: dict[str, Any]
    heartbeat: bool
    trial_id: int | None = None


@contextmanager
def trials_taken_with(
    rdb: RDBStorage, study_id: int, tags: dict[str, Any], *, heartbeat: bool
) -> Iterator[None]:
    """Inside: a WAITING (enqueued) trial of ``rdb``'s study ``study_id`` that this thread's
    ask pops gets the system attributes ``tags``, and with ``heartbeat`` its first heartbeat,
    in the transaction that makes it RUNNING (the hooks must be installed).

    A worker killed right after it took an enqueued trial then leaves a trial that is its
    own and goes stale, as it does for the trials it creates (:func:`created_with_heartbeat`):
    not an untagged RUNNING trial that nobody can prove dead.
    """
    previous = getattr(_tls, "taking", None)
    _tls.taking = _Taking(rdb, study_id, tags, heartbeat)
    try:
        yield
    finally:
        _tls.taking = previous


def _tag_taken(session: Session) -> None:
    """In the transaction that pops a WAITING trial for a worker: its tags and heartbeat."""
    taking = getattr(_tls, "taking", None)
    if taking is None or taking.trial_id is None or session.bind is not taking.rdb.engine:
        return
    import json

    from optuna.storages._rdb import models  # Optuna's ORM: this module is where it is used
    from optuna.trial import TrialState
    from sqlalchemy import inspect

    key = inspect(models.TrialModel).identity_key_from_primary_key((taking.trial_id,))
    trial = session.identity_map.get(key)
    if (
        trial is None
        or trial.study_id != taking.study_id
        or trial.state != TrialState.RUNNING
        or not inspect(trial).attrs.state.history.has_changes()
    ):
        return  # not popped in this transaction (another process took it first)
    for name, value in taking.tags.items():
        attr = models.TrialSystemAttributeModel.find_by_trial_and_key(trial, name, session)
        if attr is None:
            session.add(
                models.TrialSystemAttributeModel(
                    trial_id=trial.trial_id, key=name, value_json=json.dumps(value)
                )
            )
        else:  # (a trial re-enqueued from a dead worker's carries its tags: replaced)
            attr.value_json = json.dumps(value)
    if (
        taking.heartbeat
        and models.TrialHeartbeatModel.where_trial_id(trial.trial_id, session) is None
    ):
        session.add(models.TrialHeartbeatModel(trial_id=trial.trial_id))


@contextmanager
def created_with_heartbeat(rdb: RDBStorage, study_id: int) -> Iterator[None]:
    """Inside: the trials this thread creates in ``rdb``'s study ``study_id`` get their first
    heartbeat in the transaction that creates them (the hooks must be installed)."""
    previous = getattr(_tls, "first_heartbeat", None)
    _tls.first_heartbeat = (id(rdb), study_id)
    try:
        yield
    finally:
        _tls.first_heartbeat = previous


def _before_commit(session: Session) -> None:
    _tag_taken(session)
    current = getattr(_tls, "commit", None)
    if current is None:
        return
    pending, trial_id, state = current
    if session.bind is not pending.rdb.engine:
        return
    from optuna.storages._rdb import models  # Optuna's ORM: this module is where it is used
    from sqlalchemy import inspect

    key = inspect(models.TrialModel).identity_key_from_primary_key((trial_id,))
    trial = session.identity_map.get(key)
    if trial is None or trial.state != state:
        return  # the update did not happen (another process popped the trial first)
    popped = trial.number == pending.trial and inspect(trial).attrs.state.history.has_changes()
    if state.is_finished() or popped:
        _write(session.connection(), pending)
        pending.written = True


_statements: dict[str, dict[str, Any]] = {}
# The rows of states before trials that leave the window are removed by one write in
# TRIM_EVERY trials, not at each write: one statement for such a state instead of two.
TRIM_EVERY = 20


def _prepared(dialect: str) -> dict[str, Any]:
    """The statements of the per-trial writes on ``dialect``, built once (building one costs
    more than running it)."""
    if dialect not in _statements:
        from sqlalchemy import bindparam, delete, insert, select

        states, blobs = _table_defs()
        key = (
            (states.c.study_id == bindparam("study_id"))
            & (states.c.worker == bindparam("worker"))
            & (states.c.phase == bindparam("phase"))
        )
        _statements[dialect] = {
            "put": _upsert(dialect, states),
            "drop": delete(states).where(key & (states.c.trial == bindparam("trial"))),
            "drop_up_to": delete(states).where(key & (states.c.trial <= bindparam("trial"))),
            "insert": insert(states),
            "have_blobs": select(blobs.c.sha256).where(
                blobs.c.sha256.in_(bindparam("shas", expanding=True))
            ),
            "insert_blob": insert(blobs),
        }
    return _statements[dialect]


def _upsert(dialect: str, states: Table) -> Any:
    """A state's row inserted, or put in place of the row of the same key, in one statement
    (``None`` on a database without one: a delete, then an insert)."""
    columns = ("study_uid", "document")
    if dialect == "sqlite":
        import sqlite3

        from sqlalchemy.dialects import sqlite

        if sqlite3.sqlite_version_info < (3, 24, 0):  # (its upsert is of SQLite 3.24)
            return None

        lite = sqlite.insert(states)
        return lite.on_conflict_do_update(
            index_elements=list(states.primary_key.columns),
            set_={name: lite.excluded[name] for name in columns},
        )
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        pg = postgresql.insert(states)
        return pg.on_conflict_do_update(
            index_elements=list(states.primary_key.columns),
            set_={name: pg.excluded[name] for name in columns},
        )
    if dialect in ("mysql", "mariadb"):
        from sqlalchemy.dialects import mysql

        my = mysql.insert(states)
        return my.on_duplicate_key_update({name: my.inserted[name] for name in columns})
    return None


_T = TypeVar("_T")
_DEADLOCK_RETRIES = 5
_MYSQL_DEADLOCK = 1213  # ER_LOCK_DEADLOCK: the server rolled the transaction back
_POSTGRESQL_RETRYABLE = frozenset({"40P01", "40001"})  # deadlock; serialization failure


def _deadlocked(error: BaseException) -> bool:
    """Whether the server chose this transaction as a deadlock's victim (run it again)."""
    original = getattr(error, "orig", None)
    # (psycopg names the SQLSTATE sqlstate, psycopg2 pgcode; PyMySQL gives the error number)
    code = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    if code in _POSTGRESQL_RETRYABLE:
        return True
    arguments: tuple[object, ...] = getattr(original, "args", ())
    return len(arguments) > 0 and arguments[0] == _MYSQL_DEADLOCK


def _in_own_transaction(rdb: RDBStorage, work: Callable[[Connection], object]) -> None:
    """Run ``work`` in a transaction of its own, again if the server rolled it back as a
    deadlock's victim (rows of neighbouring studies or workers take neighbouring locks)."""

    def transaction() -> None:
        with rdb.engine.begin() as connection:
            work(connection)

    _again_if_deadlocked(transaction)


def _again_if_deadlocked(run: Callable[[], _T]) -> _T:
    """``run()``, run again (five runs at most) while the server rolls its transaction back
    as a deadlock's victim: directly, or through Optuna's ``StorageInternalError``."""
    for attempt in range(_DEADLOCK_RETRIES):
        try:
            return run()
        except Exception as e:
            victim = _deadlocked(e) or (e.__cause__ is not None and _deadlocked(e.__cause__))
            if not victim or attempt == _DEADLOCK_RETRIES - 1:
                raise
            time.sleep(0.01 * (attempt + 1) * (1 + random.random()))
    raise AssertionError("not reached")


def _write(connection: Connection, pending: _Pending) -> None:
    """Write ``pending``'s row (and its missing blobs) on ``connection``, in its transaction."""
    fault_point("state_row.writing")
    statements = _prepared(connection.dialect.name)
    key = {"study_id": pending.study_id, "worker": pending.worker, "phase": pending.phase}
    row = {**key, "trial": pending.trial, "study_uid": pending.study_uid}
    if statements["put"] is not None:
        connection.execute(statements["put"], {**row, "document": pending.document})
    else:
        connection.execute(statements["drop"], {**key, "trial": pending.trial})
        connection.execute(statements["insert"], {**row, "document": pending.document})
    if pending.phase == _AFTER and pending.drop_older_afters:
        # (Only the newest is ever read, see position_keys: the older ones go with it.)
        connection.execute(statements["drop_up_to"], {**key, "trial": pending.trial - 1})
    elif pending.trim:  # (a worker's "after" rows, each kept, leave the window too)
        up_to = pending.trial - ROW_WINDOW
        connection.execute(statements["drop_up_to"], {**key, "trial": up_to})
    if pending.phase == _BEFORE and pending.drop_before is not None:
        connection.execute(statements["drop"], {**key, "trial": pending.drop_before})
    fault_point("state_row.written")
    _insert_missing_blobs(connection, pending.blobs)


def _insert_missing_blobs(connection: Connection, blobs: dict[str, bytes]) -> None:
    """Insert the blobs the database lacks (each is kept once, by its SHA-256)."""
    if not blobs:
        return
    statements = _prepared(connection.dialect.name)
    have = set(connection.execute(statements["have_blobs"], {"shas": list(blobs)}).scalars())
    for sha, data in blobs.items():
        if sha not in have:
            connection.execute(statements["insert_blob"], {"sha256": sha, "data": data})


class StateRows:
    """The rows of one study's (one worker's) states in an RDB storage: a checkpoint store
    (:class:`~optuna_resume._store.CheckpointStore`) whose puts, outside the library's
    per-trial writes, are each committed in a transaction of their own.

    The library's own writes join Optuna's transactions instead: :meth:`expect_create`
    (the state before a trial, committed with the trial's creation) and
    :meth:`expect_finish_with` (the state after it, committed with its finish); those also
    let go of the rows the database no longer needs to keep (a window of the newest
    ``ROW_WINDOW`` states before trials, the newest state after one).

    Args:
        rdb: The storage.
        study_id: The study.
        study_uid: The study's identity (rows left by a deleted study whose id the database
            gave again are not this study's).
        worker: The worker id (``""`` for a single process).
    """

    def __init__(self, rdb: RDBStorage, study_id: int, study_uid: str, worker: str | None) -> None:
        self.rdb = rdb
        self.study_id = study_id
        self.study_uid = study_uid
        self.worker = worker or ""
        self._known_blobs: set[str] = set()
        self._trimmed_at: dict[str, int] = {}  # by phase: the trial whose write last trimmed
        ensure_tables(rdb)

    def _pending(
        self,
        trial: int,
        phase: str,
        document: bytes,
        blobs: Mapping[str, bytes],
        *,
        every_blob: bool = False,
        **kw: Any,
    ) -> _Pending:
        """A state to write; with ``every_blob`` its blobs are all given to the transaction
        (which checks which the database lacks), else only those this object has not
        written before."""
        known = set() if every_blob else self._known_blobs
        new_blobs = {s: d for s, d in blobs.items() if s not in known}
        self._known_blobs.update(blobs)
        if kw.get("trim", True):  # (see _write: which rows a trim removes)
            kw["trim"] = self._trims(phase, trial)
        return _Pending(
            self.rdb,
            self.study_id,
            self.study_uid,
            self.worker,
            trial,
            phase,
            document,
            new_blobs,
            **kw,
        )

    def _trims(self, phase: str, trial: int) -> bool:
        """Whether the write of a state of ``phase`` of ``trial`` removes the rows of that
        phase that left the window: the first of this object, then one every
        ``TRIM_EVERY`` trials or more (by this stream's trials, not by trial number: a
        worker may see only odd numbers)."""
        last = self._trimmed_at.get(phase)
        if last is None or not last < trial < last + TRIM_EVERY:
            self._trimmed_at[phase] = trial
            return True
        return False

    def expect_create(
        self,
        trial: int,
        document: bytes,
        blobs: dict[str, bytes],
        drop_before: int | None = None,
    ) -> None:
        """The state before trial ``trial``: written by the transaction that creates it."""
        _tls.create = self._pending(trial, _BEFORE, document, blobs, drop_before=drop_before)

    def end_create(self) -> bool:
        """The ask is over: whether its transaction wrote the expected state."""
        pending, _tls.create = getattr(_tls, "create", None), None
        return pending is not None and pending.written

    def expect_finish(
        self,
        trial: int,
        trial_id: int,
        document: bytes,
        blobs: dict[str, bytes],
        *,
        keep_all: bool,
    ) -> None:
        """The state after trial ``trial``: written by the transaction that finishes it."""
        if not hasattr(_tls, "finish"):
            _tls.finish = {}
        _tls.finish[trial_id] = self._pending(
            trial, _AFTER, document, blobs, drop_older_afters=not keep_all
        )

    def expect_finish_with(
        self,
        trial_id: int,
        produce: Callable[[Any], tuple[int, bytes, dict[str, bytes]] | None],
        *,
        keep_all: bool,
    ) -> None:
        """The state after a trial, taken by ``produce(state)`` inside its finishing call."""

        def pending(state: Any) -> _Pending | None:
            made = produce(state)
            if made is None:
                return None
            trial, document, blobs = made
            return self._pending(trial, _AFTER, document, blobs, drop_older_afters=not keep_all)

        if not hasattr(_tls, "finish"):
            _tls.finish = {}
        _tls.finish.setdefault(trial_id, pending)

    @staticmethod
    def finishes_over() -> None:
        """Forget the states waiting for finishing transactions in this thread."""
        _tls.finish = {}

    def write_now(
        self,
        trial: int,
        phase: str,
        document: bytes,
        blobs: dict[str, bytes],
        *,
        keep_all_afters: bool = False,
        drop_before: int | None = None,
    ) -> None:
        """Write a state in a transaction of its own (moments no trial is committed at)."""
        pending = self._pending(
            trial,
            phase,
            document,
            blobs,
            drop_older_afters=not keep_all_afters,
            drop_before=drop_before,
        )
        _in_own_transaction(self.rdb, functools.partial(_write, pending=pending))

    # -- the checkpoint-store protocol

    def put(self, trial: int, phase: str, document: bytes, blobs: Mapping[str, bytes]) -> None:
        """Keep a state (and its blobs) in a transaction of its own; no other row goes."""
        check_key(trial, phase)
        pending = self._pending(
            trial, phase, document, blobs, every_blob=True, drop_older_afters=False, trim=False
        )
        _in_own_transaction(self.rdb, functools.partial(_write, pending=pending))

    def get(self, trial: int, phase: str) -> bytes | None:
        """The document of one state, if a row holds it."""
        return self.document(trial, phase)

    def blob(self, sha256: str) -> bytes | None:
        """A blob, if the database holds it."""
        return self.blobs([sha256]).get(sha256)

    def blob_keys(self) -> set[str]:
        """The SHA-256s of the blobs the database holds."""
        return self.blob_names()

    def delete(self, trial: int, phase: str) -> None:
        """Remove one state's row (in a transaction of its own)."""
        from sqlalchemy import delete

        states, _ = _table_defs()
        query = delete(states).where(
            self._where() & (states.c.trial == trial) & (states.c.phase == phase)
        )
        _in_own_transaction(self.rdb, lambda connection: connection.execute(query))

    def keys(self) -> list[tuple[int, str]]:
        """``(trial, phase)`` of the rows held, oldest first."""
        from sqlalchemy import select

        states, _ = _table_defs()
        query = select(states.c.trial, states.c.phase).where(self._where())
        with self.rdb.engine.connect() as connection:
            found = [(int(t), str(p)) for t, p in connection.execute(query)]
        return sorted(found, key=lambda k: (k[0], k[1] != _BEFORE))

    def document(self, trial: int, phase: str) -> bytes | None:
        """The document of one state, if a row holds it."""
        from sqlalchemy import select

        states, _ = _table_defs()
        query = select(states.c.document).where(
            self._where() & (states.c.trial == trial) & (states.c.phase == phase)
        )
        with self.rdb.engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else bytes(row[0])

    def blob_names(self) -> set[str]:
        """The SHA-256s of the blobs the database holds."""
        from sqlalchemy import select

        _, blobs = _table_defs()
        with self.rdb.engine.connect() as connection:
            return {str(s) for s in connection.execute(select(blobs.c.sha256)).scalars()}

    def blobs(self, shas: Iterable[str]) -> dict[str, bytes]:
        """The blobs with these SHA-256s that the database holds."""
        from sqlalchemy import select

        _, blobs = _table_defs()
        wanted = list(shas)
        if not wanted:
            return {}
        query = select(blobs.c.sha256, blobs.c.data).where(blobs.c.sha256.in_(wanted))
        with self.rdb.engine.connect() as connection:
            return {str(s): bytes(d) for s, d in connection.execute(query)}

    def _where(self) -> Any:
        states, _ = _table_defs()
        return (
            (states.c.study_id == self.study_id)
            & (states.c.worker == self.worker)
            & (states.c.study_uid == self.study_uid)
        )


def delete_discarded(connection: Connection, study_id: int, keep_below: int) -> None:
    """In a truncation's transaction: remove the states of the trials it discards.

    The state before trial ``keep_below`` stays (it is where the study goes on from).
    """
    from sqlalchemy import delete, inspect

    if not inspect(connection).has_table(STATES_TABLE):
        return
    states, _ = _table_defs()
    connection.execute(
        delete(states).where(
            (states.c.study_id == study_id)
            & (
                ((states.c.phase == _BEFORE) & (states.c.trial > keep_below))
                | ((states.c.phase == _AFTER) & (states.c.trial >= keep_below))
            )
        )
    )


def drop_study_rows(rdb: RDBStorage, study_id: int) -> None:
    """Remove every state row of a study (it is about to be replaced)."""
    from sqlalchemy import delete

    states, _ = _table_defs()
    ensure_tables(rdb)
    query = delete(states).where(states.c.study_id == study_id)
    _in_own_transaction(rdb, lambda connection: connection.execute(query))


def copy_study_states(source: RDBStorage, source_id: int, rdb: RDBStorage, study_id: int) -> None:
    """Copy the state rows (and blobs) of study ``source_id`` in ``source`` to ``study_id``."""
    from sqlalchemy import delete, inspect, select

    states, blobs = _table_defs()
    ensure_tables(rdb)
    copied: list[dict[str, Any]] = []
    needed: dict[str, bytes] = {}
    if inspect(source.engine).has_table(STATES_TABLE):
        with source.engine.connect() as connection:
            query = select(states).where(states.c.study_id == source_id)
            copied = [
                {**row, "study_id": study_id} for row in connection.execute(query).mappings()
            ]
            if inspect(source.engine).has_table(BLOBS_TABLE):
                query = select(blobs.c.sha256, blobs.c.data)
                needed = {str(sha): bytes(data) for sha, data in connection.execute(query)}

    def replace(connection: Connection) -> None:
        connection.execute(delete(states).where(states.c.study_id == study_id))
        for row in copied:
            connection.execute(states.insert().values(**row))
        _insert_missing_blobs(connection, needed)

    _in_own_transaction(rdb, replace)


__all__ = [
    "BLOBS_TABLE",
    "ROW_WINDOW",
    "STATES_TABLE",
    "TRIM_EVERY",
    "StateRows",
    "copy_study_states",
    "created_with_heartbeat",
    "delete_discarded",
    "drop_study_rows",
    "ensure_tables",
    "has_tables",
    "trials_taken_with",
]
