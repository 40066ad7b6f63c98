"""One change of the library, side by side: ``python benchmarks/ab.py CHANGE [N_TRIALS]``.

Runs bare Optuna and two ``ResumableStudy`` sessions, one as shipped ("on") and one with
CHANGE undone ("off"), in lock-step, one trial each in turn, on the trivial TPE objective of
``run.py`` on SQLite, in one process; prints the library's own time per trial and the extra
time over bare Optuna (medians, min-max). CHANGE is one of:

- ``payload-cache``: a state saved again unchanged is not compressed and hashed again.
- ``plain-pickle``: a state without tensors is pickled directly instead of by ``torch.save``.
- ``protocol-4``: such a state is pickled with protocol 4 instead of 2.
- ``random-state``: NumPy ``RandomState`` generators are pickled as their key bytes
  (``random_state``) instead of by NumPy's own ``__reduce__``.
- ``worker-state``: a worker (``worker="w"``) on the journal file storage records the
  state after each trial in the study (bare Optuna on a journal file too).
- ``row-upsert``: a state's row in the study's database is put in one statement (an
  upsert; the rows leaving the window go every ``TRIM_EVERY`` trials) instead of a delete
  and an insert at each write. ``row-upsert-postgresql`` runs the same on the PostgreSQL
  server of ``OPTUNA_RESUME_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1/test``).
- ``document-format``: a checkpoint's document is written in ``torch.save``'s non-zip
  format, against its zip format; ``document-format-journal`` runs it on a journal file
  (bare Optuna on a journal file too).
- ``backup-copy``: the copy of a study of N trials (default 10,000) on a database server
  into a backup's SQLite file, each table's rows fetched from the driver at once and only
  the date columns converted, against a Row object per row and every value looked at
  (the URL: ``OPTUNA_RESUME_POSTGRES_URL``, or the second argument: a MySQL one); the
  copies are compared row for row.
- ``resume-entry``: a session's entry on a study of N trials (default 10,000) from a URL,
  with the folder scans and schema check of this version, against those before it (a
  regular expression per file name, every checkpoint listed to find the newest, Optuna's
  schema version read again); here each entry is timed beside ``optuna.load_study``.
"""

from __future__ import annotations

import contextlib
import copyreg
import io
import os
import re
import statistics
import sys
import tempfile
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import optuna
import torch
from run import _EngineTimer, tpe, trivial

import optuna_resume._checkpoint as checkpoint_module
import optuna_resume._optuna._state_table as state_table_module
import optuna_resume._optuna._storage as storage_module
import optuna_resume._serialization as serialization_module
from optuna_resume import ResumableStudy, checkpointed_objective, list_checkpoints
from optuna_resume._engine import ResumeEngine, engine_of
from optuna_resume._fault import fault_point
from optuna_resume._serialization import dump_object
from optuna_resume._store import FolderStore

_NAME = re.compile(r"^trial-(\d{6,})\.(before|after)\.pt$")


def _list_with_a_regex(store: FolderStore) -> list[tuple[int, str, str]]:
    """The checkpoint folder scan as before: one regular expression per file name."""
    found = []
    for name in os.listdir(store.folder):
        match = _NAME.match(name)
        if match:
            found.append((int(match.group(1)), match.group(2), name))
    return sorted(found, key=lambda state: (state[0], state[1] == "after"))


def _refuse_by_listing(engine: ResumeEngine, study: optuna.Study) -> None:
    """The check of the newest checkpoint's study as before: every checkpoint listed."""
    for info in reversed(list_checkpoints(engine.root)):
        with contextlib.suppress(Exception):
            if checkpoint_module.read_meta(info.path).get("study_uid") not in (None, engine._uid):
                raise SystemExit("another study's checkpoints")
            return


class _NeverChecked(weakref.WeakSet):  # type: ignore[type-arg]
    def __contains__(self, item: object) -> bool:
        return False


def _write_by_delete_and_insert(connection: Any, pending: Any) -> None:
    """A state's row written as before ``row-upsert``: a delete of the rows of the same key,
    of the one retention lets go and of those out of the window, then an insert."""
    from sqlalchemy import bindparam, delete, insert

    states, _ = state_table_module._table_defs()
    key = {"study_id": pending.study_id, "worker": pending.worker, "phase": pending.phase}
    same = (
        (states.c.study_id == bindparam("study_id"))
        & (states.c.worker == bindparam("worker"))
        & (states.c.phase == bindparam("phase"))
    )
    if pending.phase == "after" and pending.drop_older_afters:
        query = delete(states).where(same & (states.c.trial <= bindparam("trial")))
        connection.execute(query, {**key, "trial": pending.trial})
    else:
        other = pending.trial if pending.drop_before is None else pending.drop_before
        oldest = pending.trial - state_table_module.ROW_WINDOW if pending.trim else -1
        query = delete(states).where(
            same
            & (
                (states.c.trial == bindparam("trial"))
                | (states.c.trial == bindparam("other"))
                | (states.c.trial <= bindparam("oldest"))
            )
        )
        where = {**key, "trial": pending.trial, "other": other, "oldest": oldest}
        connection.execute(query, where)
    row = {**key, "trial": pending.trial, "study_uid": pending.study_uid}
    connection.execute(insert(states), {**row, "document": pending.document})
    fault_point("state_row.written")
    state_table_module._insert_missing_blobs(connection, pending.blobs)


@contextmanager
def swapped(owner: Any, name: str, value: Any) -> Iterator[None]:
    """Inside: ``owner``'s ``name`` (a module's global, a class's attribute) is ``value``."""
    shipped = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, shipped)


def protocol_2() -> Any:
    """Plain-pickle states written with protocol 2, as before protocol 4."""
    return swapped(serialization_module, "_PROTOCOL", 2)


def numpy_random_state_pickling() -> Any:
    """RandomStates pickled by NumPy's ``__reduce__``, as before ``random_state``."""
    return swapped(serialization_module, "_DISPATCH", copyreg.dispatch_table)


def torch_save_payload() -> Any:
    """States pickled by ``torch.save``, as before the plain-pickle change (the name
    ``_checkpoint`` calls, imported there)."""
    return swapped(checkpoint_module, "dump_state", dump_object)


def rows_as_before() -> Any:
    """State rows written as before ``row-upsert``."""
    return swapped(state_table_module, "_write", _write_by_delete_and_insert)


def _document_as_a_zip(document: dict[str, Any]) -> bytes:
    """A checkpoint's document as written before ``document-format``: ``torch.save``'s zip."""
    buffer = io.BytesIO()
    torch.save(document, buffer)
    return buffer.getvalue()


def zip_documents() -> Any:
    """Checkpoint documents written in ``torch.save``'s zip format, as before
    ``document-format``."""
    return swapped(checkpoint_module, "save_document", _document_as_a_zip)


def rows_fetched_one_by_one() -> Any:
    """A backup's copy of a study's rows taken as before ``backup-copy``."""
    return swapped(storage_module, "_rows_for_sqlite", _rows_one_by_one)


@contextmanager
def entry_as_before() -> Iterator[None]:
    """Inside: an entry scans its folder and checks the schema as before this version."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(swapped(FolderStore, "_list", _list_with_a_regex))
        stack.enter_context(
            swapped(ResumeEngine, "_refuse_another_studys_checkpoints", _refuse_by_listing)
        )
        stack.enter_context(swapped(storage_module, "_SCHEMA_CHECKED", _NeverChecked()))
        yield


def _rows_one_by_one(result: Any, columns: list[str]) -> list[Any]:
    """A query's rows for a backup's SQLite file as before ``backup-copy``: a Row object per
    row, and every value looked at for dates (``strftime``)."""
    import datetime

    rows: list[Any] = [tuple(row) for row in result]
    if not rows:
        return rows
    dates = {i for i, c in enumerate(columns) if c.startswith("datetime") or c == "heartbeat"} | {
        i for i, v in enumerate(rows[0]) if isinstance(v, datetime.datetime)
    }

    def as_text(value: datetime.datetime | None) -> str | None:
        return None if value is None else value.strftime("%Y-%m-%d %H:%M:%S.%f")

    if dates:
        rows = [tuple(as_text(v) if i in dates else v for i, v in enumerate(row)) for row in rows]
    return rows


def backup_copy(n_trials: int, url: str, rounds: int = 6) -> None:
    """Copies of one study of ``n_trials`` into SQLite files, as now and as before, in turn."""
    import sqlite3

    from run import build_study

    from optuna_resume._optuna._state_table import ensure_tables

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    folder = Path(tempfile.mkdtemp(prefix="optuna-resume-ab-"))
    name = f"ab-copy-{os.getpid()}-{time.time_ns()}"
    study = build_study(url, name, n_trials, folder / name)
    rdb = storage_module.rdb_of(study._storage)
    assert rdb is not None
    times: dict[str, list[float]] = {"on": [], "off": []}
    copies: dict[str, list[Any]] = {}
    try:
        for i in range(rounds):
            for label in ("on", "off") if i % 2 else ("off", "on"):
                target = folder / f"{label}-{i}.db"
                backup = optuna.storages.RDBStorage(f"sqlite:///{target}")
                ensure_tables(backup)
                backup.engine.dispose()
                undone = rows_fetched_one_by_one if label == "off" else nullcontext
                with undone():
                    start = time.perf_counter()
                    storage_module.copy_study_rows(rdb, study._study_id, target)
                    times[label].append(time.perf_counter() - start)
                connection = sqlite3.connect(target)
                tables = ("trials", "trial_params", "trial_values", "optuna_resume_states")
                copies[label] = [
                    connection.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
                    for table in tables
                ]
                connection.close()
        assert copies["on"] == copies["off"], "the two copies differ"
    finally:
        optuna.delete_study(study_name=name, storage=url)
    for label in ("on", "off"):
        values = times[label]
        print(
            f"backup-copy {label}: {statistics.median(values):.3f} s "
            f"({min(values):.3f}-{max(values):.3f}), {n_trials} trials, {rounds} copies"
        )


def resume_entry(n_trials: int, rounds: int = 15) -> None:
    """Entries on one study of ``n_trials``, this version's and as before, in lock-step."""
    from run import build_study

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    root = Path(tempfile.mkdtemp(prefix="optuna-resume-ab-")) / "study"
    url = f"sqlite:///{root / 'study.db'}"
    build_study(url, root.name, n_trials, root)
    with ResumableStudy(root, sampler=tpe()):
        pass  # the first entry fills the folder from the database's rows: not timed

    def entry() -> None:
        with ResumableStudy(root, sampler=tpe(), backup=False):
            pass

    def entry_before() -> None:
        with entry_as_before():
            entry()

    runs: dict[str, Callable[[], Any]] = {
        "load_study": lambda: optuna.load_study(study_name=root.name, storage=url),
        "on": entry,
        "off": entry_before,
    }
    times: dict[str, list[float]] = {label: [] for label in runs}
    order = list(runs)
    for i in range(rounds):
        for label in order[i % 3 :] + order[: i % 3]:
            start = time.perf_counter()
            runs[label]()
            times[label].append(time.perf_counter() - start)

    def stat(values: list[float]) -> str:
        return f"{statistics.median(values):.3f} s ({min(values):.3f}-{max(values):.3f})"

    load = statistics.median(times["load_study"])
    for label in ("on", "off"):
        beyond = statistics.median(times[label]) - load
        print(
            f"resume-entry {label}: entry {stat(times[label])}, beyond load_study {beyond:.3f} s"
        )
    print(f"optuna.load_study: {stat(times['load_study'])} ({n_trials} trials, {rounds} rounds)")


def main(change: str, n_trials: int) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folder = Path(tempfile.mkdtemp(prefix="optuna-resume-ab-"))
    journal = change in ("worker-state", "document-format-journal")
    server = os.environ.get("OPTUNA_RESUME_POSTGRES_URL", "postgresql://postgres@127.0.0.1/test")
    on_server = change == "row-upsert-postgresql"
    stamp = f"ab-{os.getpid()}-{time.time_ns()}"
    names = {label: f"{stamp}-{label}" for label in ("bare", "on", "off")}

    def storage(label: str) -> Any:
        if journal:
            backend = optuna.storages.journal.JournalFileBackend(str(folder / f"{label}.log"))
            return optuna.storages.JournalStorage(backend)
        if on_server:
            return server
        return f"sqlite:///{folder / label}.db"

    bare = optuna.create_study(storage=storage("bare"), sampler=tpe(), study_name=names["bare"])
    sessions = {
        label: ResumableStudy(
            folder / label,
            storage=storage(label) if journal or on_server else None,  # else the root's file
            sampler=tpe(),
            study_name=names[label],
            worker="w" if change == "worker-state" else None,
        )
        for label in ("on", "off")
    }
    studies = {label: session.__enter__() for label, session in sessions.items()}
    undone: Callable[[], Any] = nullcontext
    if change == "worker-state":
        engine = engine_of(studies["off"])
        assert engine is not None
        engine.stream.state_saved = lambda *args: None  # type: ignore[method-assign]
    elif change == "payload-cache":
        engine = engine_of(studies["off"])
        assert engine is not None
        engine._payload_cache = None  # type: ignore[assignment]
    elif change == "plain-pickle":
        undone = torch_save_payload
    elif change == "protocol-4":
        undone = protocol_2
    elif change == "random-state":
        undone = numpy_random_state_pickling
    elif change in ("row-upsert", "row-upsert-postgresql"):
        undone = rows_as_before
    elif change in ("document-format", "document-format-journal"):
        undone = zip_documents
    else:
        raise SystemExit(
            f"unknown change {change!r}: payload-cache, plain-pickle, protocol-4, random-state, "
            "row-upsert, row-upsert-postgresql, document-format, document-format-journal or "
            "worker-state"
        )
    objective = checkpointed_objective()(trivial)

    def run_off() -> None:
        with undone():
            studies["off"].optimize(objective, n_trials=1)

    runs: dict[str, Callable[[], None]] = {
        "bare": lambda: bare.optimize(trivial, n_trials=1),
        "on": lambda: studies["on"].optimize(objective, n_trials=1),
        "off": run_off,
    }
    times: dict[str, list[float]] = {label: [] for label in runs}
    inside: dict[str, list[float]] = {"on": [], "off": []}
    order = list(runs)
    timer = _EngineTimer()
    with timer.installed():
        for i in range(n_trials):
            for label in order[i % 3 :] + order[: i % 3]:
                spent, start = timer.spent, time.perf_counter()
                runs[label]()
                times[label].append(time.perf_counter() - start)
                if label in inside:
                    inside[label].append(timer.spent - spent)
    for session in sessions.values():
        session.__exit__(None, None, None)
    params = [[t.params for t in study.trials] for study in (bare, *studies.values())]
    if on_server:
        for name in names.values():
            optuna.delete_study(study_name=name, storage=server)
    # (A worker draws from a stream of its own: compared with the other session only.)
    assert params[1] == params[2] and (change == "worker-state" or params[0] == params[1])

    def stat(values: list[float]) -> str:
        low, high = min(values) * 1e3, max(values) * 1e3
        return f"{statistics.median(values) * 1e3:.2f} ms ({low:.2f}-{high:.2f})"

    for label in ("on", "off"):
        extra = [a - b for a, b in zip(times[label], times["bare"], strict=True)]
        print(f"{change} {label}: own time {stat(inside[label])}, extra over bare {stat(extra)}")
    print(f"bare Optuna: {stat(times['bare'])} per trial")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "resume-entry":
        resume_entry(int(sys.argv[2]) if len(sys.argv) > 2 else 10_000)
    elif len(sys.argv) > 1 and sys.argv[1] == "backup-copy":
        backup_copy(
            int(sys.argv[2]) if len(sys.argv) > 2 else 10_000,
            sys.argv[3]
            if len(sys.argv) > 3
            else os.environ.get(
                "OPTUNA_RESUME_POSTGRES_URL", "postgresql://postgres@127.0.0.1/test"
            ),
        )
    else:
        main(
            sys.argv[1] if len(sys.argv) > 1 else "",
            int(sys.argv[2]) if len(sys.argv) > 2 else 300,
        )
