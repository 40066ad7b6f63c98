"""The ``optuna-resume`` command line: status, history, rewind, backups, restore, verify,
export, demo.

Every command only calls the library's functions. Results go to stdout, errors to stderr.
Exit codes: 0 done; 1 the command ran and found a problem (``verify``; a ``demo`` whose
resumed run differed); 2 bad usage; 3 the command could not be carried out (no such
study, root in use, no checkpoint for the trial, ...).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna

from ._error import OptunaResumeError, RootLockedError
from ._root import root_path
from ._status import local_time
from ._version import __version__

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, EXIT_ERROR = 0, 1, 2, 3
FORMATS = ("table", "json", "yaml")

_EPILOG = (
    "exit codes: 0 done; 1 a problem was found (verify) or the demo differed; 2 bad usage; "
    "3 the command could not be carried out (message on stderr)"
)


def _add_root(parser: argparse.ArgumentParser, formats: bool = False) -> None:
    parser.add_argument("root", type=Path, help="the study's root folder")
    parser.add_argument(
        "--storage",
        default=None,
        help="the study's storage URL, when it is not the root's study.db (default: the "
        "OPTUNA_STORAGE environment variable, as for Optuna's command line, if set)",
    )
    if formats:
        parser.add_argument(
            "-f",
            "--format",
            choices=FORMATS,
            default="table",
            help="output format (default: table), as Optuna's command line",
        )
    parser.add_argument(
        "--study-name", default=None, help="the study's name (default: the root folder's name)"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="optuna-resume",
        description="Exactly resumable Optuna studies: inspect, verify, rewind and restore "
        "a study's root folder.",
        epilog=_EPILOG,
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"optuna-resume {__version__} (Optuna {optuna.__version__})",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=summary, description=description, epilog=_EPILOG)

    _add_root(
        formats=True,
        parser=command(
            "status",
            "the study, its trials by state, last checkpoint, interrupted trial, lock holder",
            "Show the study in ROOT: storage, trials by state (and the target of the last "
            "optimize_until), the newest checkpoint, a trial an interruption cut off, backups "
            "and which live process holds the root. Reads only.",
        ),
    )
    _add_root(
        command(
            "history",
            "resumes, rewinds, backups, restores and final checkpoints over time",
            "List what happened to the study in ROOT, oldest first, and summarise its "
            "checkpoint files. Reads only.",
        ),
        formats=True,
    )
    rewind = command(
        "rewind",
        "put the study back to just before trial N (after a backup)",
        "Show which trials leave the live study, then back up and rewind it to just before "
        "trial N: the next run yields the original trials N, N+1, ... again. The trials that "
        "leave stay in the backup.",
    )
    _add_root(rewind)
    rewind.add_argument("--to", type=int, required=True, metavar="N", help="the trial number")
    rewind.add_argument(
        "--dry-run", action="store_true", help="only show what would leave; change nothing"
    )
    _add_root(
        command(
            "backups",
            "list the backups: what each holds and why it was taken",
            "List the backups of the study in ROOT: when and why each was taken, the trials "
            "and states it holds, its size and where its parts lie.",
        ),
        formats=True,
    )
    restore = command(
        "restore",
        "replace the live study and checkpoints by a backup",
        "Replace the study in ROOT and its checkpoints by backup BACKUP. The live state is "
        "backed up first, so nothing is lost; other studies in the storage are not touched.",
    )
    _add_root(restore)
    restore.add_argument("backup", type=int, metavar="BACKUP", help="the backup's number")
    verify = command(
        "verify",
        "check every checkpoint's integrity and its consistency with the storage",
        "Read every checkpoint in ROOT with the safe loader (checksum, format, study identity, "
        "blobs) and compare the checkpoints with the storage. Exits 1 when a problem is "
        "found. Reads only.",
    )
    _add_root(verify, formats=True)
    verify.add_argument(
        "--trusted",
        action="store_true",
        help="load checkpoints with the full unpickler (custom samplers; files you trust)",
    )
    export = command(
        "export",
        "write one state of the study as a self-contained .pt file",
        "Write the state just before trial N (default: the newest state) of the study in ROOT "
        "as one torch.save file that needs nothing beside it, taken from the study's "
        "database where the states are committed with the trials (ROOT may then be empty, "
        "as on another host), else from ROOT's checkpoints. load_sampler(DEST) loads it. "
        "Changes nothing in the study.",
    )
    _add_root(export)
    export.add_argument(
        "destination", type=Path, metavar="DEST", help="the file to write, or a folder"
    )
    export.add_argument(
        "--trial", type=int, default=None, metavar="N", help="the state before trial N"
    )
    export.add_argument(
        "--worker", default=None, help="the worker whose state to export (a study run by workers)"
    )
    demo = command(
        "demo",
        "kill a seeded study, resume it and compare with an uninterrupted run",
        "Runs a small seeded TPE study on the embedded SQLite default, SIGKILLs it inside a "
        "trial, resumes it in a new process and prints it beside an uninterrupted run. Exits "
        "0 when they are identical.",
    )
    demo.add_argument(
        "root", nargs="?", type=Path, help="an empty folder (default: a new temporary one)"
    )
    return parser


def _worker_parser() -> argparse.ArgumentParser:
    # The demo's child process: not a user command, so not in the listing.
    worker = argparse.ArgumentParser(prog="optuna-resume _worker")
    worker.add_argument("root")
    worker.add_argument("--kill-at", type=int, default=None)
    return worker


def _emit(args: argparse.Namespace, table: str, data: object) -> None:
    """Print ``table`` as it is, or ``data`` as JSON or YAML (``--format``)."""
    if args.format == "json":
        print(json.dumps(data, indent=2, default=str))
    elif args.format == "yaml":
        import yaml  # type: ignore[import-untyped]  # PyYAML, which Optuna requires

        print(yaml.safe_dump(json.loads(json.dumps(data, default=str)), sort_keys=False), end="")
    else:
        print(table)


def _status(args: argparse.Namespace) -> int:
    from ._status import study_status

    status = study_status(args.root, args.storage, args.study_name)
    _emit(args, str(status), status.as_dict())
    return EXIT_OK


def _describe_event(entry: dict[str, Any]) -> str:
    event = entry["event"]
    if event == "resume":
        parts = [f"found {entry.get('trials')} trial(s), next trial {entry.get('next_trial')}"]
        if entry.get("rewound_to") is not None:
            parts.append(f"rewound to {entry['rewound_to']}")
        if entry.get("interrupted_trial") is not None:
            action = entry.get("interrupted_action")
            parts.append(f"interrupted trial {entry['interrupted_trial']}: {action}")
        parts.append("sampler restored" if entry.get("restored_from") else "sampler as passed")
        return "; ".join(parts)
    if event == "backup":
        return f"backup {entry.get('number')}"
    if event == "rewind":
        return f"rewind from {entry.get('trials')} trial(s) to trial {entry.get('to')}"
    if event == "restore":
        return f"restore of backup {entry.get('number')}"
    if event == "final":
        cut = entry.get("interrupted_trial")
        tail = f", interrupted in trial {cut}" if cut is not None else ""
        return f"final checkpoint after {entry.get('trials')} trial(s){tail}"
    if event == "optimize_until":
        return f"optimize_until {entry.get('target')} (had {entry.get('done')})"
    return event if isinstance(event, str) else repr(event)


def _history(args: argparse.Namespace) -> int:
    from ._history import read_history
    from ._root import CHECKPOINTS
    from ._status import open_existing_study
    from ._store import FolderStore

    study = open_existing_study(args.root, args.storage, args.study_name, root_may_be_missing=True)
    root = root_path(args.root)
    name = study.study_name
    events = [e for e in read_history(root) if e.get("study", name) == name]
    lines = [
        f"{local_time(entry['time'])}  pid {entry.get('pid', '?'):>7}  {_describe_event(entry)}"
        for entry in events
    ] or ["no events recorded"]
    checkpoints = FolderStore(root / CHECKPOINTS).infos()
    summary: dict[str, object] = {"files": len(checkpoints)}
    if checkpoints:
        times = [c.path.stat().st_mtime for c in checkpoints]
        positions = sorted({c.position for c in checkpoints})
        summary.update(
            states_before_trials=[positions[0], positions[-1]],
            first_written=min(times),
            last_written=max(times),
        )
        lines.append(
            f"checkpoints: {len(checkpoints)} file(s), states before trials "
            f"{positions[0]}..{positions[-1]}, written {local_time(min(times))} .. "
            f"{local_time(max(times))}"
        )
    else:
        lines.append("checkpoints: none")
    _emit(args, "\n".join(lines), {"events": events, "checkpoints": summary})
    return EXIT_OK


def _rewind(args: argparse.Namespace) -> int:
    from ._checkpoint import BEFORE
    from ._engine import check_rewind_target
    from ._error import CheckpointNotFoundError
    from ._export import find_states
    from ._lock import live_holder
    from ._status import open_existing_study
    from ._study import ResumableStudy

    study = open_existing_study(args.root, args.storage, args.study_name)
    holder = live_holder(root_path(args.root))
    if holder is not None:
        raise RootLockedError(
            f"study {study.study_name!r} is in use by another live session ({holder}), which "
            "is running it: stop it first (Ctrl-C, or SIGTERM: it finishes its checkpoint), "
            "then rewind. Nothing was changed."
        )
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    leaving = [t for t in trials if t.number >= args.to]
    check_rewind_target(study.study_name, args.to, len(trials))
    # The study's database holds the states committed with its trials (the root may be
    # empty, as on another host); the root's files hold the others.
    held = [s for s in find_states(study, root_path(args.root)) if s.position == args.to]
    if not held:
        raise CheckpointNotFoundError(
            f"no checkpoint holds the state before trial {args.to}; nothing was changed"
        )
    source = min(held, key=lambda s: s.phase != BEFORE)  # (the database's first)
    print(f"study {study.study_name!r}: {len(trials)} trial(s); rewinding to trial {args.to}")
    print(f"  the sampler comes back from {source.where}")
    for t in leaving:
        values = t.values if t.values is not None else "-"
        print(f"  leaves: trial {t.number:>5}  {t.state.name:<8}  {values}  {t.params}")
    if args.dry_run:
        print(f"dry run: nothing changed ({len(leaving)} trial(s) would leave the live study)")
        return EXIT_OK
    session = ResumableStudy(
        args.root, storage=args.storage, study_name=study.study_name, rewind_to=args.to
    )
    session._repeat_rewind = True  # on purpose: even to a trial rewound to before
    with session:
        pass
    report = session.report
    backup = report.backup.number if report is not None and report.backup is not None else None
    print(f"rewound: {len(leaving)} trial(s) left the live study (kept in backup {backup})")
    return EXIT_OK


def _backups(args: argparse.Namespace) -> int:
    from ._status import study_status

    status = study_status(args.root, args.storage, args.study_name)
    lines = [] if status.backups else ["no backups"]
    rows = []
    for info in status.backups:
        parts = [p for p in (info.storage_path, info.checkpoints_path) if p is not None]
        when = info.taken or max((p.stat().st_mtime for p in parts), default=None)
        stamp = local_time(when) if when is not None else "?"
        size = sum(_size(p) for p in parts)
        holds = (
            f"{'?' if info.trials is None else info.trials} trial(s), "
            f"{'?' if info.states is None else info.states} state(s), {size / 1e6:.1f} MB"
        )
        why = _REASONS.get(info.reason or "", "reason not recorded")
        kept = "; kept until removed by hand" if info.keeps_discarded else ""
        lines.append(f"{info.number:>4}  {stamp}  {holds}  {why}{kept}")
        lines.extend(f"      {p}" for p in parts)
        rows.append(
            {
                "number": info.number,
                "taken": when,
                "reason": info.reason,
                "kept_until_removed_by_hand": info.keeps_discarded,
                "trials": info.trials,
                "states": info.states,
                "bytes": size,
                "storage_copy": info.storage_path,
                "checkpoints_copy": info.checkpoints_path,
            }
        )
    _emit(args, "\n".join(lines), rows)
    return EXIT_OK


_REASONS = {
    "entry": "taken on entry",
    "rewind": "taken before a rewind: holds the trials it removed",
    "rerun": "taken before a cut-off trial was re-run: holds its record",
    "restore": "taken before a restore: holds the state it replaced",
    "set-aside": "taken before stale checkpoints were set aside",
    "manual": "taken by backup()",
}


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _restore(args: argparse.Namespace) -> int:
    from ._functions import restore_backup
    from ._lock import RootLock
    from ._status import open_existing_study

    study = open_existing_study(args.root, args.storage, args.study_name)
    with RootLock(root_path(args.root)):
        restored = restore_backup(study, args.root, args.backup)
    print(
        f"restored backup {args.backup}: study {restored.study_name!r} has "
        f"{len(restored.trials)} trial(s); the live state before it was backed up first"
    )
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    from ._verify import verify_root

    result = verify_root(args.root, args.storage, args.study_name, trusted=args.trusted)
    if args.format == "table":
        for finding in result.findings:
            print(f"problem: {finding}", file=sys.stderr)
    verdict = "ok" if result.ok else f"{len(result.findings)} problem(s)"
    rows = result.checked_in_database
    in_database = f" and {rows} state(s) in the study's database" if rows else ""
    _emit(
        args,
        f"verified {result.checked} checkpoint(s){in_database} against {result.n_trials} "
        f"trial(s): {verdict}",
        {
            "ok": result.ok,
            "checked": result.checked,
            "checked_in_database": rows,
            "trials": result.n_trials,
            "problems": [str(f) for f in result.findings],
        },
    )
    return EXIT_OK if result.ok else EXIT_PROBLEM


def _export(args: argparse.Namespace) -> int:
    from ._export import export_checkpoint

    info = export_checkpoint(
        args.root,
        args.destination,
        args.trial,
        storage=args.storage,
        study_name=args.study_name,
        worker=args.worker,
    )
    print(f"exported the state before trial {info.position} to {info.path}")
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    # Without a folder, a new one under the temporary directory: kept, to be looked at.
    folder = args.root or Path(tempfile.mkdtemp(prefix="optuna-resume-demo-"))
    return EXIT_OK if run_demo(folder) else EXIT_PROBLEM


def _worker(args: argparse.Namespace) -> int:
    from ._demo import run_worker

    run_worker(args.root, args.kill_at)
    return EXIT_OK


_COMMANDS = {
    "status": _status,
    "history": _history,
    "rewind": _rewind,
    "backups": _backups,
    "restore": _restore,
    "verify": _verify,
    "export": _export,
    "demo": _demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_worker"]:
        return _worker(_worker_parser().parse_args(argv[1:]))
    args = _parser().parse_args(argv)
    if getattr(args, "storage", "") is None:  # as Optuna's command line
        args.storage = os.environ.get("OPTUNA_STORAGE") or None
    # This output is the command's own: the libraries' INFO lines stay out of it.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna_resume").setLevel(logging.WARNING)
    try:
        return _COMMANDS[args.command](args)
    except (OptunaResumeError, OSError) as e:
        print(f"optuna-resume: error: {e}", file=sys.stderr)
        return EXIT_ERROR


__all__ = ["main"]
