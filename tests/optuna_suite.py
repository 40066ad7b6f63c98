"""Optuna's own test suite, run with the library attached to every study.

``python tests/optuna_suite.py [--keep DIR] [PATH ...]`` fetches the source release of the
installed Optuna (its tests ship in it), runs its sampler, study, trial and pruner tests
with every study bound to an engine (``optuna_attach.py``), then runs each test that failed
there again without the library. A test that passes plainly but fails attached is a new
failure: the run exits 1 and names it. Exclusions are listed in ``EXCLUDED`` with the reason.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import optuna

SELECTION = [
    "tests/samplers_tests",
    "tests/study_tests",
    "tests/trial_tests",
    "tests/pruners_tests",
]
# Tests that cannot pass with the library attached, by design; each with its reason.
EXCLUDED: dict[str, str] = {}


def fetch(version: str, into: Path) -> Path:
    """The source release of Optuna ``version``, unpacked under ``into``."""
    subprocess.run(
        [
            sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
            "--dest", str(into), f"optuna=={version}",
        ],
        check=True,
    )  # fmt: skip
    (archive,) = into.glob("optuna-*.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / f"optuna-{version}"


def run(
    source: Path, tests: list[str], attached: bool, report: Path
) -> tuple[dict[str, str], int]:
    """Run ``tests`` in ``source``: each test's outcome, and how many studies were attached."""
    env = dict(os.environ)
    here = str(Path(__file__).parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, env.get("PYTHONPATH")]))
    env["OPTUNA_SUITE_OUTCOMES"] = str(report)
    env["OPTUNA_SUITE_ATTACH"] = "1" if attached else "0"
    counts = Path(f"{report}.attached")
    counts.unlink(missing_ok=True)
    command = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "optuna_attach",
        "-n", "2", "-W", "ignore", "--color=no", *tests,
    ]  # fmt: skip
    done = subprocess.run(command, cwd=source, env=env, capture_output=True, text=True)
    print(done.stdout[-2000:], file=sys.stderr)
    if done.returncode not in (0, 1) or not report.exists():
        print(done.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"pytest could not run Optuna's tests (exit {done.returncode})")
    n_attached = sum(int(line) for line in counts.read_text().split()) if counts.exists() else 0
    return json.loads(report.read_text()), n_attached


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="unpack Optuna's source here (kept)")
    parser.add_argument("tests", nargs="*", default=SELECTION, help="test paths in Optuna")
    args = parser.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="optuna-suite-"))
    work.mkdir(parents=True, exist_ok=True)
    source = work / f"optuna-{optuna.__version__}"
    if not source.is_dir():
        source = fetch(optuna.__version__, work)
    attached, n_attached = run(source, args.tests, True, work / "attached.json")
    if not n_attached:
        print("the library was attached to no study: the run proves nothing", file=sys.stderr)
        return 1
    failed = sorted(name for name, outcome in attached.items() if outcome == "failed")
    plain: dict[str, str] = {}
    if failed:
        plain, _ = run(source, failed, False, work / "plain.json")
    new = [n for n in failed if plain.get(n) == "passed" and n not in EXCLUDED]
    counts = {k: sum(v == k for v in attached.values()) for k in ("passed", "failed", "skipped")}
    print(
        f"Optuna {optuna.__version__}'s tests ({', '.join(args.tests)}) with the library "
        f"attached to {n_attached} studies: {counts['passed']} passed, {counts['failed']} "
        f"failed, {counts['skipped']} skipped; failing without it too: "
        f"{len(failed) - len(new)}; new failures: {len(new)}"
    )
    for name, reason in EXCLUDED.items():
        print(f"excluded: {name}: {reason}")
    for name in new:
        print(f"NEW FAILURE: {name}")
    return 1 if new else 0


if __name__ == "__main__":
    raise SystemExit(main())
