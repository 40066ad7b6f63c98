"""End to end: a PyTorch training study killed mid-epoch equals an uninterrupted run.

Each phase is a real process that seeds the global generators once at its start, as a
training script does, and may SIGKILL itself in the middle of an epoch. The reference is one
uninterrupted run with plain Optuna and no optuna-resume at all.
"""

from __future__ import annotations

import json
from multiprocessing.context import ForkServerContext
from pathlib import Path
from typing import Any

import pytest
import training_driver
from conftest import run_in_process
from training_driver import N_STARTUP_TRIALS, reference, stored

pytestmark = pytest.mark.slow


def kills(records: list[training_driver.TrialRecord]) -> list[tuple[int, int]]:
    """(trial, epoch) cuts.

    In the random startup phase (so that resuming crosses ``n_startup_trials``), in the first
    epoch of a trial (nothing saved for it yet), and in a later epoch of a trial of the TPE
    phase; chosen from the trials' own epochs (pruning depends on the device's arithmetic).
    """
    epochs = {number: len(values) for number, _, _, _, values in records}
    startup = next(n for n in range(N_STARTUP_TRIALS - 1, -1, -1) if epochs[n] >= 2)
    late = next(n for n in range(N_STARTUP_TRIALS + 1, len(records)) if epochs[n] >= 2)
    return [(startup, 1), (N_STARTUP_TRIALS, 0), (late, min(2, epochs[late] - 1))]


@pytest.fixture(scope="module")
def uninterrupted() -> list[training_driver.TrialRecord]:
    records = reference()
    states = {state for _, state, *_ in records}
    assert states == {"COMPLETE", "PRUNED"}, "the reference should hold pruned trials too"
    return records


def _phase(context: ForkServerContext, root: Path, **kwargs: Any) -> int | None:
    return run_in_process(
        context,
        target=training_driver.run_phase,
        root=str(root),
        starts=str(root.with_suffix(".starts")),
        **kwargs,
    )


def _starts(root: Path) -> list[tuple[int, int]]:
    lines = root.with_suffix(".starts").read_text().splitlines()
    return [(entry["trial"], entry["start"]) for entry in map(json.loads, lines)]


@pytest.mark.parametrize("capture_in", ["decorator", "study"])
def test_kills_mid_epoch_resume_from_the_last_epoch_and_equal_an_uninterrupted_run(
    tmp_path: Path,
    process_context: ForkServerContext,
    uninterrupted: list[training_driver.TrialRecord],
    capture_in: str,
) -> None:
    root = tmp_path / "mlp"
    cuts = kills(uninterrupted)
    for kill in cuts:
        assert _phase(process_context, root, kill_at=kill, capture_in=capture_in) == -9
    assert _phase(process_context, root, capture_in=capture_in) == 0

    assert stored(root) == uninterrupted
    starts = _starts(root)
    for trial, epoch in cuts:
        runs = [start for number, start in starts if number == trial]
        # Run once from scratch, killed; run again from the epoch the kill interrupted.
        assert runs == [0, epoch], (trial, runs)
    assert sorted(n for n, _ in starts) == sorted(
        [*range(len(uninterrupted)), *(t for t, _ in cuts)]
    )


def test_without_capturing_the_generators_a_kill_in_the_first_epoch_diverges(
    tmp_path: Path,
    process_context: ForkServerContext,
    uninterrupted: list[training_driver.TrialRecord],
) -> None:
    # The control for the test above: the re-run trial starts from the seed of a new process.
    root = tmp_path / "mlp"
    trial = N_STARTUP_TRIALS
    assert _phase(process_context, root, kill_at=(trial, 0), capture_in="none") == -9
    assert _phase(process_context, root, capture_in="none") == 0
    got = stored(root)
    assert got[:trial] == uninterrupted[:trial]
    assert got[trial][2] == uninterrupted[trial][2]  # the sampler still gives the same params
    assert got[trial][4] != uninterrupted[trial][4]  # but the training differs


def test_rewind_into_the_middle_reruns_the_original_trials_from_scratch(
    tmp_path: Path,
    process_context: ForkServerContext,
    uninterrupted: list[training_driver.TrialRecord],
) -> None:
    root = tmp_path / "mlp"
    assert _phase(process_context, root) == 0
    assert stored(root) == uninterrupted
    to = 4
    assert _phase(process_context, root, rewind_to=to) == 0

    assert stored(root) == uninterrupted
    rerun = _starts(root)[len(uninterrupted) :]
    assert rerun == [(n, 0) for n in range(to, len(uninterrupted))]
    # The discarded trials' workspaces went into the backup taken before the rewind.
    backups = sorted(root.glob("checkpoints_backup-*/workspaces"))
    assert len(backups) == 1
    assert sorted(p.name for p in backups[0].iterdir()) == [
        f"trial-{n:06d}" for n in range(to, len(uninterrupted))
    ]
    assert (backups[0] / f"trial-{to:06d}" / "training_state.pt").is_file()


def test_delete_policy_leaves_no_workspace_of_a_finished_trial(
    tmp_path: Path,
    process_context: ForkServerContext,
    uninterrupted: list[training_driver.TrialRecord],
) -> None:
    root = tmp_path / "mlp"
    kill = kills(uninterrupted)[-1]
    assert _phase(process_context, root, kill_at=kill, workspace_policy="delete") == -9
    # The killed trial's workspace survives (it is re-run from it); finished ones are gone.
    assert sorted(p.name for p in (root / "workspaces").iterdir()) == [f"trial-{kill[0]:06d}"]
    assert _phase(process_context, root, workspace_policy="delete") == 0
    assert stored(root) == uninterrupted
    assert list((root / "workspaces").iterdir()) == []
