"""The command line, against real study folders: every command, its output and exit code."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from conftest import another_process, root_held_by_another_process

from optuna_resume import ResumableStudy, checkpointed_objective, optimize_until
from optuna_resume._cli import main

N = 6


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "optuna_resume", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``optuna-resume ARGS`` in this process: exit code, stdout, stderr."""
    try:
        code = main(list(args))
    except SystemExit as e:  # argparse: --help and usage errors
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@checkpointed_objective()
def objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5, 5)
    return (x - 1) ** 2


def sampler() -> optuna.samplers.TPESampler:
    return optuna.samplers.TPESampler(seed=0, n_startup_trials=3)


def make_study(root: Path, n: int = N) -> list[tuple[int, dict[str, object], object]]:
    with ResumableStudy(root, sampler=sampler()) as study:
        optimize_until(study, objective, n)
    return trials_of(root)


def trials_of(root: Path) -> list[tuple[int, dict[str, object], object]]:
    study = optuna.load_study(study_name=root.name, storage=f"sqlite:///{root}/study.db")
    return [(t.number, t.params, t.values) for t in study.get_trials()]


def test_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "study"
    make_study(root)
    code, out, err = run(capsys, "status", str(root))
    assert (code, err) == (0, "")
    assert out.splitlines()[:4] == [
        "study              study",
        f"root               {root}",
        f"storage            sqlite:///{root}/study.db",
        f"trials             {N} of {N} ({N} COMPLETE)",
    ]
    assert f"last checkpoint    trial-{N:06d}.before.pt (" in out
    assert "interrupted trial  none" in out
    assert "backups            1 (newest: 0)" in out
    assert "study session      none" in out
    assert out.endswith("lock               free\n")
    with ResumableStudy(root, sampler=sampler()):
        code, out, _ = run(capsys, "status", str(root))
    holder = f"PID {os.getpid()} on {socket.gethostname()}"
    assert f"lock               held by a running session ({holder})" in out
    assert f"study session      {holder}, root {root}" in out


def test_history(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "study"
    make_study(root)
    with ResumableStudy(root, sampler=sampler(), rewind_to=2):
        pass
    code, out, err = run(capsys, "history", str(root))
    assert (code, err) == (0, "")
    described = [line.split(f"pid {os.getpid():>7}  ")[1] for line in out.splitlines()[:-1]]
    assert described == [
        "backup 0",
        "found 0 trial(s), next trial 0; sampler as passed",
        f"optimize_until {N} (had 0)",
        f"final checkpoint after {N} trial(s)",
        "backup 1",
        f"rewind from {N} trial(s) to trial 2",
        f"found {N} trial(s), next trial 2; rewound to 2; sampler restored",
        "final checkpoint after 2 trial(s)",
    ]
    assert out.splitlines()[-1].startswith("checkpoints: 3 file(s), states before trials 0..2")


def test_rewind_dry_run_then_rewind_then_rerun_is_exact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "study"
    original = make_study(root)
    code, out, err = run(capsys, "rewind", str(root), "--to", "3", "--dry-run")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"study 'study': {N} trial(s); rewinding to trial 3"
    # (The state before trial 3, as committed with it in the study's database.)
    assert (
        lines[1]
        == f"  the sampler comes back from the study's database (sqlite:///{root}/study.db)"
    )
    assert [line.split()[2] for line in lines[2:-1]] == ["3", "4", "5"]
    assert lines[-1] == "dry run: nothing changed (3 trial(s) would leave the live study)"
    assert trials_of(root) == original

    code, out, err = run(capsys, "rewind", str(root), "--to", "3")
    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == "rewound: 3 trial(s) left the live study (kept in backup 1)"
    assert trials_of(root) == original[:3]
    assert make_study(root) == original


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--to", "99"], "cannot rewind study 'study' to trial 99: its trials are 0..5"),
        (["--to", "-1"], "cannot rewind study 'study' to trial -1"),
        (["--to", "2", "--study-name", "other"], "no study 'other'"),
    ],
)
def test_rewind_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    root = tmp_path / "study"
    original = make_study(root)
    code, _, err = run(capsys, "rewind", str(root), *args)
    assert code == 3
    assert err.startswith("optuna-resume: error: ") and message in err
    assert trials_of(root) == original


def test_rewind_without_a_checkpoint_for_the_trial_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "study"
    original = make_study(root)
    for phase in ("before", "after"):
        for path in (root / "checkpoints").glob(f"trial-00000[12].{phase}.pt"):
            path.unlink()
    # The study's database holds the states committed with the trials: a rewind goes on
    # from it while it does; without those rows either, no state is held for trial 2.
    code, out, _ = run(capsys, "rewind", str(root), "--to", "2", "--dry-run")
    assert code == 0 and "the sampler comes back from the study's database" in out
    engine = sqlalchemy.create_engine(f"sqlite:///{root}/study.db")
    with engine.begin() as connection:
        connection.execute(
            sqlalchemy.text("DELETE FROM optuna_resume_states WHERE trial IN (1, 2)")
        )
    engine.dispose()
    code, _, err = run(capsys, "rewind", str(root), "--to", "2")
    assert code == 3
    assert "no checkpoint holds the state before trial 2; nothing was changed" in err
    assert trials_of(root) == original


def test_rewind_and_restore_refuse_a_root_in_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "study"
    original = make_study(root)
    with root_held_by_another_process(root) as pid:
        for args in (["rewind", str(root), "--to", "1"], ["restore", str(root), "0"]):
            code, _, err = run(capsys, *args)
            assert code == 3
            assert f"in use by another live session (PID {pid} on" in err
    assert trials_of(root) == original


def test_backups_and_restore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "study"
    make_study(root, 3)
    early = trials_of(root)
    make_study(root)  # backup 1 holds the first 3 trials
    code, out, err = run(capsys, "backups", str(root))
    assert (code, err) == (0, "")
    rows = [row for row in out.splitlines() if not row.startswith("      ")]
    assert [row.split()[0] for row in rows] == ["0", "1"]
    assert "3 trial(s)" in rows[1] and "taken on entry" in rows[1]
    paths = [row.strip() for row in out.splitlines() if row.startswith("      ")]
    assert paths[-2:] == [f"{root}/study_backup-1.db", f"{root}/checkpoints_backup-1"]

    code, out, err = run(capsys, "restore", str(root), "1")
    assert (code, err) == (0, "")
    assert out == (
        "restored backup 1: study 'study' has 3 trial(s); the live state before it was "
        "backed up first\n"
    )
    assert trials_of(root) == early
    assert (root / "study_backup-2.db").exists()  # the live state, kept
    code, _, err = run(capsys, "restore", str(root), "9")
    assert code == 3
    assert "no backup 9 (backups: [0, 1, 2])" in err


def test_verify_ok_and_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "study"
    make_study(root)
    code, out, err = run(capsys, "verify", str(root))
    assert (code, err) == (0, "")
    assert out == (
        f"verified {N + 2} checkpoint(s) and {N + 2} state(s) in the study's database against "
        f"{N} trial(s): ok\n"
    )

    damaged = root / "checkpoints" / "trial-000002.before.pt"
    damaged.write_bytes(damaged.read_bytes()[:100])
    code, out, err = run(capsys, "verify", str(root))
    assert code == 1
    assert err.startswith(f"problem: {damaged}: {damaged} is not a readable checkpoint")
    assert out.endswith("1 problem(s)\n")


def test_commands_on_a_folder_that_is_not_a_study(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    for command in ("status", "history", "backups", "verify"):
        code, out, err = run(capsys, command, str(tmp_path / "missing"))
        assert (code, out) == (3, "")
        missing = tmp_path / "missing"
        assert err == f"optuna-resume: error: {missing} is not a study root (no such folder)\n"
        code, _, err = run(capsys, command, str(tmp_path / "empty"))
        assert code == 3 and "holds no study.db" in err and "--storage" in err
    assert not (tmp_path / "missing").exists()
    assert list((tmp_path / "empty").iterdir()) == []


def test_storage_and_study_name_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    with ResumableStudy(
        tmp_path / "root", storage=url, study_name="s1", sampler=sampler()
    ) as study:
        optimize_until(study, objective, 2)
    code, out, _ = run(
        capsys, "status", str(tmp_path / "root"), "--storage", url, "--study-name", "s1"
    )
    assert code == 0 and "trials             2 of 2 (2 COMPLETE)" in out


def test_status_history_and_backups_on_another_host_with_only_the_storage_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    with ResumableStudy(
        tmp_path / "host-a" / "s", storage=url, study_name="s", sampler=sampler()
    ) as study:
        optimize_until(study, objective, 4)
    elsewhere = tmp_path / "host-b" / "s"  # never created: only the URL is known there
    code, out, err = run(capsys, "status", str(elsewhere), "--storage", url, "--study-name", "s")
    assert (code, err) == (0, "")
    assert "trials             4 (4 COMPLETE)" in out
    assert "the state before trial 4, in the study's database" in out
    code, out, _ = run(capsys, "status", str(elsewhere), "--storage", url, "-f", "json")
    assert code == 0 and json.loads(out)["newest_state"]["before_trial"] == 4
    code, out, err = run(capsys, "history", str(elsewhere), "--storage", url)
    assert (code, err) == (0, "") and "checkpoints: none" in out
    code, out, err = run(capsys, "backups", str(elsewhere), "--storage", url)
    assert (code, err) == (0, "") and "taken on entry" in out  # beside the shared database
    assert not elsewhere.parent.exists()  # read only: nothing was created there


def test_reading_a_plain_optuna_study_creates_nothing_in_its_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    plain = optuna.create_study(storage=url, study_name="p")
    plain.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    before = set(sqlalchemy.inspect(sqlalchemy.create_engine(url)).get_table_names())
    code, out, _ = run(capsys, "status", str(tmp_path / "p"), "--storage", url)
    assert code == 0 and "last checkpoint    none" in out
    code, _, err = run(
        capsys, "export", str(tmp_path / "p"), str(tmp_path / "x.pt"), "--storage", url
    )
    assert code == 3 and "no intact checkpoint" in err
    assert set(sqlalchemy.inspect(sqlalchemy.create_engine(url)).get_table_names()) == before
    assert not (tmp_path / "x.pt").exists() and not (tmp_path / "p").exists()


COMMANDS = ["status", "history", "rewind", "backups", "restore", "verify", "export", "demo"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(capsys: pytest.CaptureFixture[str], command: str) -> None:
    code, out, err = run(capsys, command, "--help")
    assert (code, err) == (0, "")
    assert out.startswith(f"usage: optuna-resume {command} ")
    assert "exit codes: 0 done" in out


def test_help_lists_the_commands_and_bad_usage_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    listed = [
        line.split()[0] for line in out.splitlines() if line[:5] == "    " + line[4:5].strip()
    ]
    assert listed == COMMANDS
    code, out, err = run(capsys, "rewind", "somewhere")
    assert (code, out) == (2, "")
    assert "the following arguments are required: --to" in err
    code, _, err = run(capsys, "no-such-command")
    assert code == 2 and "invalid choice" in err


def test_console_script_runs_in_its_own_process(tmp_path: Path) -> None:
    root = tmp_path / "study"
    make_study(root)
    script = shutil.which("optuna-resume", path=str(Path(sys.executable).parent))
    assert script is not None, "the optuna-resume console script is not installed"
    result = subprocess.run(
        [script, "verify", str(root)], capture_output=True, text=True, timeout=120, check=False
    )
    assert (result.returncode, result.stderr) == (0, "")
    bad = subprocess.run(
        [script, "status", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 3 and bad.stdout == ""
    assert bad.stderr.startswith("optuna-resume: error: ")


def test_demo_kills_resumes_and_matches(tmp_path: Path) -> None:
    result = cli("demo", str(tmp_path / "demo"))
    assert result.returncode == 0, result.stderr
    assert "process ended with -9 (killed by signal 9)" in result.stdout
    assert "equals the uninterrupted run, trial for trial" in result.stdout
    assert "<- repeats trial 0" in result.stdout  # what a plain restart does
    rows = [line for line in result.stdout.splitlines() if line.strip()[:2].strip().isdigit()]
    assert len(rows) == 16
    assert all(" yes " in row for row in rows)
    # It ends with the commands to look at what it made; each of them works.
    shown = [line.split() for line in result.stdout.splitlines() if line.startswith("  optuna-")]
    assert [words[1] for words in shown] == ["status", "history", "backups", "verify"]
    for words in shown:
        assert cli(*words[1:]).returncode == 0


def test_demo_refuses_a_used_folder(tmp_path: Path) -> None:
    (tmp_path / "resumed").mkdir()
    result = cli("demo", str(tmp_path))
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr.startswith("optuna-resume: error: ")
    assert "give the demo an empty folder" in result.stderr


@pytest.mark.parametrize("command", [["--help"], ["status"], ["history"], ["backups"]])
def test_the_command_line_answers_without_importing_torch(
    tmp_path: Path, command: list[str]
) -> None:
    # torch takes a second or more to import; only saving or loading a state needs it.
    make_study(tmp_path / "s")
    args = command if command == ["--help"] else [*command, str(tmp_path / "s")]
    probe = (
        "import sys\n"
        "from optuna_resume._cli import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('torch imported:', 'torch' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("torch imported: False"), done.stdout[-500:]


def test_version(tmp_path: Path) -> None:
    import optuna_resume

    done = cli("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == (
        f"optuna-resume {optuna_resume.__version__} (Optuna {optuna.__version__})"
    )


@pytest.mark.parametrize("command", ["status", "history", "backups", "verify"])
def test_json_and_yaml_formats(tmp_path: Path, command: str) -> None:
    import json

    import yaml  # type: ignore[import-untyped]

    root = tmp_path / "study"
    make_study(root, 3)
    make_study(root, 4)
    as_json = cli(command, str(root), "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    as_yaml = cli(command, str(root), "-f", "yaml")
    assert as_yaml.returncode == 0, as_yaml.stderr
    assert yaml.safe_load(as_yaml.stdout) == data
    if command == "status":
        assert data["trials"] == 4 and data["trials_by_state"] == {"COMPLETE": 4}
        assert data["session"] is None and data["interrupted_trial"] is None
    elif command == "history":
        assert [e["event"] for e in data["events"]].count("resume") == 2
    elif command == "backups":
        assert [(b["reason"], b["trials"]) for b in data] == [("entry", 0), ("entry", 3)]
    else:
        assert data["ok"] is True and data["trials"] == 4 and data["problems"] == []


def test_the_storage_comes_from_optuna_storage_as_for_optunas_command_line(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    root = tmp_path / "study"
    with ResumableStudy(root, storage=url, sampler=sampler()) as study:
        study.optimize(objective, n_trials=2)
    assert cli("status", str(root)).returncode == 3  # not in the root's study.db
    done = subprocess.run(
        [sys.executable, "-m", "optuna_resume", "status", str(root), "-f", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OPTUNA_STORAGE": url},
    )
    assert done.returncode == 0, done.stderr
    assert '"trials": 2' in done.stdout


def test_status_and_rewind_while_a_session_runs_a_trial(tmp_path: Path) -> None:
    root = tmp_path / "study"
    make_study(root, 3)
    code = (
        "import sys, optuna\n"
        "from optuna_resume import ResumableStudy\n"
        "with ResumableStudy(sys.argv[1], sampler=optuna.samplers.TPESampler(seed=0)) as s:\n"
        "    trial = s.ask()\n"
        "    trial.suggest_float('x', 0, 1)\n"
        "    print('running', trial.number, flush=True)\n"
        "    sys.stdin.readline()\n"
        "    s.tell(trial, 1.0)\n"
    )
    with another_process(code, root) as (process, first_line):
        assert first_line.split() == ["running", "3"]
        status = cli("status", str(root))
        assert status.returncode == 0, status.stderr
        assert "trial 3 is running in the live session (PID" in status.stdout
        assert "re-runs" not in status.stdout
        assert f"held by a running session (PID {process.pid} on" in status.stdout
        rewind = cli("rewind", str(root), "--to", "1")
        assert rewind.returncode == 3
        assert rewind.stdout == ""  # refused before any plan is shown
        assert f"in use by another live session (PID {process.pid} on" in rewind.stderr
        assert "is running it" in rewind.stderr
    assert len(trials_of(root)) == 4
