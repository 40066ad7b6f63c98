"""Every Python example of the README and the docs runs as a real script, in a process of its own.

An example that leaves the reader's own code to them (``build``, ``train_one_epoch``) gets a
small stand-in defined before it; one that names a database server is pointed at the local
one. The examples' text is used as it is.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
from pathlib import Path

import optuna
from services import require

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", path.read_text(encoding="utf-8"), re.M | re.S)


# The README's problem and quick start, then the docs' training-loop and worker examples.
BLOCKS = (
    python_blocks(README)
    + python_blocks(DOCS / "how-to" / "training-loops.md")
    + python_blocks(DOCS / "how-to" / "workers.md")
)
PG_PLACEHOLDER = "postgresql+psycopg://optuna@db-host:5432/optuna"
# The states page's example: a plain Optuna study goes on from an exported state.
(EXPORT_BLOCK,) = python_blocks(DOCS / "concepts" / "states.md")

# A study of 5 trials run by the library, its newest state exported to state.pt; after the
# example, the plain study runs 3 more trials and prints every trial's params.
EXPORT_PRELUDE = """
import json
import optuna
import optuna_resume

def objective(trial):
    return (trial.suggest_float("x", -5, 5) - 1) ** 2 + trial.suggest_int("y", 0, 4)

url = "sqlite:///demo.db"
tpe = optuna.samplers.TPESampler(seed=3, n_startup_trials=2)
with optuna_resume.ResumableStudy("runs/demo", storage=url, study_name="demo", sampler=tpe) as s:
    s.optimize(objective, n_trials=5)
optuna_resume.export_checkpoint("runs/demo", "state.pt", storage=url, study_name="demo")
"""
EXPORT_POSTLUDE = """
study.optimize(objective, n_trials=3)
print(json.dumps([t.params for t in study.trials]))
"""

# Stand-ins for the reader's own code in the training example, and a shorter study.
TRAINING_PRELUDE = """
import torch
import optuna_resume

def build(trial):
    width = trial.suggest_int("width", 2, 8)
    model = torch.nn.Sequential(torch.nn.Linear(4, width), torch.nn.Linear(width, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=trial.suggest_float("lr", 1e-3, 1e-1))
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10)
    return model, optimizer, scheduler

def train_one_epoch(model, optimizer, scheduler):
    x = torch.randn(16, 4)
    loss = ((model(x) - x.sum(dim=1, keepdim=True)) ** 2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()
    return float(loss)

_optimize_until = optuna_resume.optimize_until
optuna_resume.optimize_until = lambda study, objective, n: _optimize_until(study, objective, 3)
"""


def run_script(folder: Path, code: str, *args: str) -> str:
    script = folder / "example.py"
    script.write_text(code, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_readme_is_a_front_page() -> None:
    assert len(README.read_bytes()) <= 10 * 1024, "the manual lives in docs/"
    for link in re.findall(r"\]\((docs/[^)#]+)", README.read_text(encoding="utf-8")):
        assert (ROOT / link).is_file(), link


def test_the_readme_and_the_docs_have_the_examples_this_file_runs() -> None:
    assert len(BLOCKS) == 4, "an example was added or removed: run it here too"
    examples = [python_blocks(page) for page in sorted(DOCS.rglob("*.md"))]
    assert sum(len(found) for found in examples) == 4, "a docs example is not run here"
    # The docs' quick start is the README's (run below).
    assert python_blocks(DOCS / "how-to" / "preempted-jobs.md") == [BLOCKS[1]]


def test_the_problem_example_shows_the_repeated_draws(tmp_path: Path) -> None:
    printed = run_script(tmp_path, BLOCKS[0])
    xs = json.loads(printed.strip().splitlines()[-1])
    assert len(xs) == 10 and xs[6:] == xs[:4]  # what the README says plain Optuna does


def test_the_quick_start_runs_and_a_rerun_continues(tmp_path: Path) -> None:
    for _ in range(2):
        run_script(tmp_path, BLOCKS[1])
    study = optuna.load_study(
        study_name="demo",
        storage="sqlite:///runs/demo/study.db".replace("runs", str(tmp_path / "runs")),
    )
    assert len(study.trials) == 50


def test_the_training_example_runs_with_stand_ins(tmp_path: Path) -> None:
    run_script(tmp_path, TRAINING_PRELUDE + BLOCKS[2])
    study = optuna.load_study(
        study_name="mlp", storage=f"sqlite:///{tmp_path / 'runs' / 'mlp' / 'study.db'}"
    )
    assert len(study.trials) == 3


def test_the_worker_example_runs_on_the_local_postgresql(tmp_path: Path) -> None:
    url = require("postgres")
    assert PG_PLACEHOLDER in BLOCKS[3]
    storage = optuna.storages.RDBStorage(url)
    try:
        with contextlib.suppress(KeyError):  # left by an earlier run
            optuna.delete_study(study_name="pg-demo", storage=storage)
        run_script(tmp_path, BLOCKS[3].replace(PG_PLACEHOLDER, url), "0")
        assert len(optuna.load_study(study_name="pg-demo", storage=storage).trials) == 25
        optuna.delete_study(study_name="pg-demo", storage=storage)
    finally:
        storage.engine.dispose()  # no connection is left to the collector


def test_the_export_example_lets_a_plain_study_go_on_exactly(tmp_path: Path) -> None:
    printed = run_script(tmp_path, EXPORT_PRELUDE + EXPORT_BLOCK + EXPORT_POSTLUDE)
    params = json.loads(printed.strip().splitlines()[-1])
    reference = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=3, n_startup_trials=2))
    reference.optimize(
        lambda t: (t.suggest_float("x", -5, 5) - 1) ** 2 + t.suggest_int("y", 0, 4), n_trials=8
    )
    assert params == [t.params for t in reference.trials]  # as if it had never stopped
