"""The ``optuna-resume`` command line."""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ._error import OptunaResumeError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="optuna-resume", description="Exactly resumable Optuna studies."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="kill a seeded study, resume it and compare with an uninterrupted run",
        description="Runs a small seeded TPE study on the embedded SQLite default, SIGKILLs it "
        "inside a trial, resumes it in a new process and prints it beside an uninterrupted "
        "run. Exits 0 when they are identical.",
    )
    demo.add_argument("root", nargs="?", type=Path, help="an empty folder (default: a temp one)")
    worker = commands.add_parser("_worker", help=argparse.SUPPRESS)
    worker.add_argument("root")
    worker.add_argument("--kill-at", type=int, default=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            from ._demo import run_demo

            if args.root is None:
                with tempfile.TemporaryDirectory(prefix="optuna-resume-demo-") as folder:
                    return 0 if run_demo(Path(folder)) else 1
            return 0 if run_demo(args.root) else 1
        from ._demo import run_worker

        run_worker(args.root, args.kill_at)
        return 0
    except (OptunaResumeError, FileExistsError) as e:
        print(f"optuna-resume: error: {e}", file=sys.stderr)
        return 2


__all__ = ["main"]
