"""The checkpoint format: metadata, checksum, safe loading, and what is stored once."""

from __future__ import annotations

import collections
import hashlib
import io
import os
import pickle
import subprocess
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import torch

from optuna_resume import (
    CorruptCheckpointError,
    ResumableStudy,
    UnsafeCheckpointError,
    checkpointed_objective,
    list_checkpoints,
    load_sampler,
    optimize_until,
)
from optuna_resume._checkpoint import read_checkpoint, read_meta
from optuna_resume._serialization import dump_object, dump_state, load_object, random_state

# How a state's payload is written: by torch.save (tensors inside) or as a plain pickle.
DUMPS = {"torch.save": dump_object, "pickle": dump_state}


@checkpointed_objective()
def objective(trial: optuna.Trial) -> float:
    return float(trial.suggest_int("x", 0, 99) + trial.suggest_int("y", 0, 99))


def grid() -> optuna.samplers.GridSampler:
    return optuna.samplers.GridSampler({"x": list(range(100)), "y": list(range(100))}, seed=0)


def test_metadata_says_what_the_checkpoint_is(tmp_path: Path) -> None:
    with ResumableStudy(tmp_path / "s", sampler=optuna.samplers.TPESampler(seed=0)) as study:
        optimize_until(study, objective, 2)
    info = next(c for c in list_checkpoints(tmp_path / "s") if c.trial == 1 and c.phase == "after")
    meta = read_meta(info.path)
    assert meta["trial"] == 1
    assert meta["phase"] == "after"
    assert meta["outcome"] == "returned"
    assert meta["study_name"] == "s"
    assert meta["study_id"] == study._study_id
    assert meta["sampler_class"] == "optuna.samplers._tpe.sampler.TPESampler"
    assert meta["optuna_version"] == optuna.__version__
    assert meta["torch_version"] == str(torch.__version__)
    assert meta["storage"].startswith("sqlite:///")
    assert len(meta["study_uid"]) == 32
    assert meta["format_version"] == 5
    assert meta["compression"] == "zlib"
    assert isinstance(meta["created"], float)


def test_a_large_unchanging_grid_is_stored_once(tmp_path: Path) -> None:
    with ResumableStudy(tmp_path / "s", sampler=grid()) as study:
        optimize_until(study, objective, 20)
    folder = tmp_path / "s" / "checkpoints"
    blobs = list((folder / "blobs").iterdir())
    assert len(blobs) == 1
    per_checkpoint = [c.path.stat().st_size for c in list_checkpoints(tmp_path / "s")]
    assert max(per_checkpoint) < 20_000 < blobs[0].stat().st_size
    restored = load_sampler(tmp_path / "s", 7)
    assert isinstance(restored, optuna.samplers.GridSampler)
    assert restored._all_grids == grid()._all_grids


def _checkpoint_with_payload(
    tmp_path: Path, payload_object: object, protocol: int | None = None
) -> Path:
    """A checkpoint whose payload is ``payload_object`` pickled by ``torch.save`` (or by
    :mod:`pickle` with ``protocol``)."""
    with ResumableStudy(tmp_path / "s", sampler=optuna.samplers.RandomSampler(seed=0)) as study:
        optimize_until(study, objective, 1)
    info = next(c for c in list_checkpoints(tmp_path / "s") if (c.trial, c.phase) == (1, "before"))
    document = torch.load(info.path, weights_only=True)
    if protocol is None:
        buffer = io.BytesIO()
        torch.save(payload_object, buffer)
        raw = buffer.getvalue()
    else:
        raw = pickle.dumps(payload_object, protocol=protocol)
    data = zlib.compress(raw)  # well formed, as a crafted file would be
    document["payload"] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    document["sha256"] = hashlib.sha256(data).hexdigest()
    torch.save(document, info.path)
    return info.path


def test_a_format_1_checkpoint_without_compression_is_still_read(tmp_path: Path) -> None:
    with ResumableStudy(tmp_path / "s", sampler=optuna.samplers.RandomSampler(seed=0)) as study:
        optimize_until(study, objective, 2)
    info = next(c for c in list_checkpoints(tmp_path / "s") if (c.trial, c.phase) == (1, "before"))
    expected = load_sampler(tmp_path / "s", 1)
    document = torch.load(info.path, weights_only=True)
    raw = zlib.decompress(document["payload"].numpy().tobytes())
    document["payload"] = torch.frombuffer(bytearray(raw), dtype=torch.uint8)
    document["sha256"] = hashlib.sha256(raw).hexdigest()
    document["meta"]["format_version"] = 1
    del document["meta"]["compression"]
    torch.save(document, info.path)
    restored: Any = load_sampler(tmp_path / "s", 1)
    original: Any = expected
    assert pickle.dumps(restored._rng.rng.get_state()) == pickle.dumps(
        original._rng.rng.get_state()
    )


class _RunsCommand:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (self.command,))


# torch.save's zip file; plain pickles of protocol 2 (as this library wrote at first),
# and of protocols 4 (as it writes now) and 5, whose globals are named on the stack.
@pytest.mark.parametrize("protocol", [None, 2, 4, 5])
def test_hostile_checkpoint_is_refused_without_running_anything(
    tmp_path: Path, protocol: int | None
) -> None:
    witness = tmp_path / "pwned"
    path = _checkpoint_with_payload(
        tmp_path, {"sampler": _RunsCommand(f"touch {witness}")}, protocol
    )
    info = next(c for c in list_checkpoints(tmp_path / "s") if c.path == path)
    with pytest.raises(UnsafeCheckpointError, match="system") as error:
        read_checkpoint(info, study_uid=None)
    assert isinstance(error.value, pickle.UnpicklingError)
    assert not witness.exists()
    with pytest.raises(UnsafeCheckpointError), ResumableStudy(tmp_path / "s"):
        pass
    assert not witness.exists()


class _CallsSubprocess:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (subprocess.call, ("true",))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_every_refused_global_is_named_before_anything_is_unpickled(
    tmp_path: Path, protocol: int
) -> None:
    """The error lists all that the file would call, so one allowed_globals= fixes it."""
    witness = tmp_path / "pwned"
    payload = {"sampler": _RunsCommand(f"touch {witness}"), "more": [_CallsSubprocess()]}
    path = _checkpoint_with_payload(tmp_path, payload, protocol)
    info = next(c for c in list_checkpoints(tmp_path / "s") if c.path == path)
    with pytest.raises(UnsafeCheckpointError) as error:
        read_checkpoint(info, study_uid=None)
    named = str(error.value).split(" refers to ")[1].split(", which")[0]
    # (protocol 2 names them as Python 2 did: posix.system, and subprocess.call as commands.)
    assert {n.rsplit(".", 1)[1] for n in named.split(", ")} == {"system", "call"}
    assert not witness.exists()


@pytest.mark.parametrize("protocol", [None, 2, 4])
def test_trusted_loading_is_the_explicit_opt_in(tmp_path: Path, protocol: int | None) -> None:
    witness = tmp_path / "ran"
    path = _checkpoint_with_payload(
        tmp_path, {"sampler": _RunsCommand(f"touch {witness}")}, protocol
    )
    info = next(c for c in list_checkpoints(tmp_path / "s") if c.path == path)
    with pytest.raises(CorruptCheckpointError, match=r"holds no sampler|not a sampler"):
        read_checkpoint(info, study_uid=None, trusted=True)
    assert witness.exists()  # trusted=True unpickles with the full unpickler


@pytest.mark.parametrize("damage", ["truncate", "empty", "flip", "not_torch"])
def test_damaged_checkpoint_is_detected(tmp_path: Path, damage: str) -> None:
    with ResumableStudy(tmp_path / "s", sampler=optuna.samplers.RandomSampler(seed=0)) as study:
        optimize_until(study, objective, 1)
    info = list_checkpoints(tmp_path / "s")[0]
    data = info.path.read_bytes()
    if damage == "truncate":
        info.path.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        info.path.write_bytes(b"")
    elif damage == "flip":
        document = torch.load(info.path, weights_only=True)
        payload = document["payload"]
        payload[len(payload) // 2] ^= 0x01
        torch.save(document, info.path)
    else:
        torch.save({"weights": torch.zeros(3)}, info.path)
    with pytest.raises(CorruptCheckpointError) as error:
        read_checkpoint(info, study_uid=None)
    assert isinstance(error.value, ValueError)
    if damage == "flip":
        assert "fails its checksum" in str(error.value)


def test_custom_sampler_needs_allowlist_or_trust(tmp_path: Path) -> None:
    from resume_driver import SeededRandomWalkSampler

    with ResumableStudy(tmp_path / "s", sampler=SeededRandomWalkSampler(seed=0)) as study:
        optimize_until(study, objective, 2)
    with pytest.raises(UnsafeCheckpointError, match="SeededRandomWalkSampler"):
        load_sampler(tmp_path / "s")
    allowed = load_sampler(tmp_path / "s", allowed_globals=[SeededRandomWalkSampler])
    trusted = load_sampler(tmp_path / "s", trusted=True)
    assert isinstance(allowed, SeededRandomWalkSampler)
    assert isinstance(trusted, SeededRandomWalkSampler)
    assert allowed.calls == trusted.calls == 4


def _numpy_random_objects() -> dict[str, Any]:
    bit_generator = np.random.bit_generator
    return {
        "RandomState unseeded": np.random.RandomState(),
        "RandomState seeded": np.random.RandomState(3),
        "default_rng unseeded": np.random.default_rng(),
        "default_rng seeded": np.random.default_rng(3),
        "spawned Generator": np.random.default_rng().spawn(1)[0],
        "MT19937": np.random.MT19937(),
        "PCG64": np.random.PCG64(),
        "PCG64DXSM": np.random.PCG64DXSM(),
        "Philox": np.random.Philox(),
        "SFC64": np.random.SFC64(),
        "SeedSequence": np.random.SeedSequence(),
        "spawned SeedSequence": np.random.SeedSequence(5).spawn(2)[1],
        "SeedlessSeedSequence": bit_generator.SeedlessSeedSequence(),
    }


def _next_draws(obj: Any) -> object:
    if isinstance(obj, np.random.BitGenerator):
        return obj.random_raw(4).tolist()
    if isinstance(obj, (np.random.RandomState, np.random.Generator)):
        return obj.random(4).tolist()
    if isinstance(obj, np.random.SeedSequence):
        return obj.generate_state(4).tolist()
    return type(obj)


@pytest.mark.parametrize("dump", sorted(DUMPS))
@pytest.mark.parametrize("name", sorted(_numpy_random_objects()))
def test_every_numpy_random_object_loads_with_the_safe_loader(name: str, dump: str) -> None:
    """Unseeded generators (what most users run) pickle their SeedSequence."""
    obj = _numpy_random_objects()[name]
    loaded = load_object(DUMPS[dump]({"rng": obj}))["rng"]
    assert type(loaded) is type(obj)
    assert _next_draws(loaded) == _next_draws(obj)


@pytest.mark.parametrize("dump", sorted(DUMPS))
def test_builtin_containers_load_with_the_safe_loader(dump: str) -> None:
    """What a sampler of one's own may hold: sets, bytes, complex numbers, counters."""
    content = {
        "set": {1, 2},
        "frozenset": frozenset([3]),
        "complex": 1 + 2j,
        "bytes": b"xy",
        "bytearray": bytearray(b"z"),
        "ordered": collections.OrderedDict(a=1),
        "counter": collections.Counter("aab"),
    }
    assert load_object(DUMPS[dump](content)) == content


class _SeedSequenceUnpicklerAbused:
    """A pickle that asks NumPy's SeedSequence unpickler to build something else."""

    def __reduce__(self) -> tuple[object, ...]:
        reduced: Any = np.random.SeedSequence().__reduce__()
        unpickle, (_, checksum, _), state = reduced
        return (unpickle, (np.random.RandomState, checksum, None), state)


@pytest.mark.parametrize("dump", sorted(DUMPS))
def test_the_seed_sequence_unpickler_builds_nothing_but_a_seed_sequence(dump: str) -> None:
    data = DUMPS[dump]({"sampler": _SeedSequenceUnpicklerAbused()})
    with pytest.raises(CorruptCheckpointError, match="SeedSequence"):
        load_object(data)


def test_unseeded_default_sampler_is_restored_with_its_stream(tmp_path: Path) -> None:
    """Optuna's default sampler, no seed: the second run resumes instead of failing."""
    with ResumableStudy(tmp_path / "s") as study:
        optimize_until(study, objective, 3)
    saved: Any = load_sampler(tmp_path / "s")
    expected = saved._rng.rng.random_sample(3).tolist()
    with ResumableStudy(tmp_path / "s") as study:
        restored: Any = study.sampler
        assert type(restored) is optuna.samplers.TPESampler
        assert restored._rng.rng.random_sample(3).tolist() == expected


def test_only_checkpoint_names_are_listed_as_checkpoints(tmp_path: Path) -> None:
    """What else a folder holds (partial files, copies, a user's notes) is not a state."""
    root = tmp_path / "s"
    with ResumableStudy(root, sampler=optuna.samplers.RandomSampler(seed=0)) as study:
        optimize_until(study, objective, 2)
    folder = root / "checkpoints"
    expected = sorted((c.trial, c.phase) for c in list_checkpoints(root))
    for name in [
        "trial-1.before.pt",  # fewer than 6 digits
        "trial-00000a.before.pt",
        "trial-000001.middle.pt",
        "trial-000001.before.pt.partial",
        "trial-000001.before.pt~",
        "Trial-000001.before.pt",
        "trial-000001.before.x.pt",
        "trial-" + "\u0660" * 5 + "\u0661.before.pt",  # Arabic-Indic digits, not ASCII
        "notes.txt",
    ]:
        (folder / name).write_bytes(b"")
    assert sorted((c.trial, c.phase) for c in list_checkpoints(root)) == expected
    assert expected[-1] == (2, "before")
    (folder / "trial-0000007.after.pt").write_bytes(b"")  # more than 6 digits: a state
    assert (7, "after") in [(c.trial, c.phase) for c in list_checkpoints(root)]


def _mid_stream_generators() -> list[np.random.RandomState]:
    seeded = np.random.RandomState(5)
    seeded.normal()  # one Gaussian of the pair drawn: the other one is cached
    unseeded = np.random.RandomState()
    unseeded.random(7)
    other_bits = np.random.RandomState(np.random.PCG64(3))  # not MT19937: NumPy's pickling
    other_bits.random(2)
    return [seeded, unseeded, other_bits]


def test_random_states_come_back_at_the_same_point_of_their_stream() -> None:
    generators = _mid_stream_generators()
    state = {"sampler": {"rng": generators[0], "again": generators[0], "more": generators[1:]}}
    loaded = load_object(dump_state(state))["sampler"]
    assert loaded["again"] is loaded["rng"]  # one generator shared stays one
    for saved, back in zip(generators, [loaded["rng"], *loaded["more"]], strict=True):
        assert type(back) is np.random.RandomState
        assert back.normal() == saved.normal()  # the cached Gaussian first
        assert back.random(50).tolist() == saved.random(50).tolist()


def test_a_random_state_with_a_malformed_key_is_refused() -> None:
    class HandMade:  # a file written by hand: a key of the wrong length
        def __reduce__(self) -> tuple[Any, ...]:
            return (random_state, (b"\x01" * 16, 624, 0, 0.0))

    with pytest.raises(CorruptCheckpointError, match="malformed key"):
        load_object(pickle.dumps({"rng": HandMade()}, protocol=4))
