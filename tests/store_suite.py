"""The tests every checkpoint store passes (as Optuna's ``StorageTestCase`` does for storages).

A new store (a journal file, an object store) joins ``test_stores.py`` with a subclass.
Subclass :class:`CheckpointStoreTests` in a pytest module and give it a ``store`` fixture
(an empty store) and a :meth:`~CheckpointStoreTests.reopen` method (a second instance on the
same place, as another process would open it)::

    class TestMyStore(CheckpointStoreTests):
        @pytest.fixture
        def store(self, tmp_path):
            return MyStore(tmp_path / "states")

        def reopen(self, store):
            return MyStore(store.place)

The tests use plain ``assert`` and pytest's ``tmp_path`` fixture; they check what the
library relies on (see :mod:`optuna_resume._store` for the protocol and its call order).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from optuna_resume._checkpoint import AFTER, BEFORE, encode_checkpoint, verify_document
from optuna_resume._store import CheckpointStore, FolderStore, StateKey

__all__ = ["CheckpointStoreTests", "encoded_state"]


def encoded_state(trial: int, phase: str, *, seed: int = 0) -> tuple[bytes, dict[str, bytes]]:
    """A real encoded state (a seeded TPE sampler after a few trials) and its blobs."""
    import optuna

    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=2)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: t.suggest_float("x", -1, 1) ** 2, n_trials=3)
    meta = {"study_name": "store-tests", "study_uid": "uid", "storage": "memory"}
    return encode_checkpoint(trial, phase, sampler, meta)


def _document(label: str, size: int = 64) -> bytes:
    """Distinct bytes for a state (a store never looks inside a document)."""
    seed = hashlib.sha256(label.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def copy_states(
    source: CheckpointStore, target: CheckpointStore, keys: Iterable[StateKey] | None = None
) -> list[StateKey]:
    """Put ``source``'s states (``keys``, default all) into ``target``; the keys copied.

    The blobs ``source`` holds and ``target`` lacks go with the first state copied (a
    document is never put before the blobs it may refer to).
    """
    missing = source.blob_keys() - target.blob_keys()
    blobs = {sha: data for sha in sorted(missing) if (data := source.blob(sha)) is not None}
    copied = []
    for trial, phase in source.keys() if keys is None else keys:
        document = source.get(trial, phase)
        if document is None:
            continue
        target.put(trial, phase, document, blobs)
        blobs = {}
        copied.append((trial, phase))
    return copied


class CheckpointStoreTests:
    """The contract of a checkpoint store, as tests (see the module's docstring)."""

    def reopen(self, store: Any) -> CheckpointStore:
        """A second instance on ``store``'s place (override it)."""
        raise NotImplementedError("a store's test class says how to open its place again")

    def test_is_a_checkpoint_store(self, store: CheckpointStore) -> None:
        assert isinstance(store, CheckpointStore)

    def test_an_empty_store_holds_nothing(self, store: CheckpointStore) -> None:
        assert store.keys() == []
        assert store.get(0, BEFORE) is None
        assert store.get(0, AFTER) is None
        assert store.blob("0" * 64) is None
        assert "0" * 64 not in store.blob_keys()

    def test_a_state_comes_back_byte_for_byte(self, store: CheckpointStore) -> None:
        document, blobs = encoded_state(3, BEFORE)
        store.put(3, BEFORE, document, blobs)
        assert store.get(3, BEFORE) == document
        assert store.get(3, AFTER) is None
        assert store.keys() == [(3, BEFORE)]
        meta = verify_document(store.get(3, BEFORE) or b"", "the state read back")
        assert (meta["trial"], meta["phase"]) == (3, BEFORE)

    def test_a_put_replaces_the_state_of_its_key_only(self, store: CheckpointStore) -> None:
        store.put(4, AFTER, _document("first"), {})
        store.put(5, BEFORE, _document("other"), {})
        store.put(4, AFTER, _document("second"), {})
        assert store.get(4, AFTER) == _document("second")
        assert store.get(5, BEFORE) == _document("other")
        assert store.keys() == [(4, AFTER), (5, BEFORE)]

    def test_keys_are_listed_oldest_state_first(self, store: CheckpointStore) -> None:
        keys = [(3, AFTER), (0, BEFORE), (12, BEFORE), (3, BEFORE), (1, AFTER), (100000, BEFORE)]
        for trial, phase in keys:
            store.put(trial, phase, _document(f"{trial}{phase}"), {})
        expected = [(0, BEFORE), (1, AFTER), (3, BEFORE), (3, AFTER), (12, BEFORE)]
        assert store.keys() == [*expected, (100000, BEFORE)]

    def test_a_put_never_lets_go_of_other_states(self, store: CheckpointStore) -> None:
        for trial in range(130):
            store.put(trial, BEFORE, _document(str(trial)), {})
            store.put(trial, AFTER, _document(f"{trial}a"), {})
        assert len(store.keys()) == 260
        assert store.get(0, BEFORE) == _document("0")
        assert store.get(0, AFTER) == _document("0a")

    def test_delete_removes_one_state(self, store: CheckpointStore) -> None:
        store.put(7, BEFORE, _document("b"), {})
        store.put(7, AFTER, _document("a"), {})
        store.delete(7, BEFORE)
        store.delete(7, BEFORE)  # (again: nothing there, no error)
        store.delete(9, AFTER)
        assert store.keys() == [(7, AFTER)]
        assert store.get(7, BEFORE) is None
        assert store.get(7, AFTER) == _document("a")

    def test_blobs_are_kept_once_by_their_sha256(self, store: CheckpointStore) -> None:
        data = random.Random(0).randbytes(50_000)
        sha = hashlib.sha256(data).hexdigest()
        store.put(0, BEFORE, _document("0"), {sha: data})
        store.put(1, BEFORE, _document("1"), {sha: data})
        store.put(2, BEFORE, _document("2"), {})
        assert store.blob(sha) == data
        assert sha in store.blob_keys()  # (a database shares its blobs between its studies)
        store.delete(0, BEFORE)
        store.delete(1, BEFORE)
        assert store.blob(sha) == data  # (a backup may still refer to it)

    def test_another_instance_sees_the_states(self, store: CheckpointStore) -> None:
        document, blobs = encoded_state(2, AFTER)
        store.put(2, AFTER, document, blobs)
        other = self.reopen(store)
        assert other.keys() == [(2, AFTER)]
        assert other.get(2, AFTER) == document
        assert other.blob_keys() == store.blob_keys()
        other.delete(2, AFTER)
        assert store.get(2, AFTER) is None

    def test_a_large_state_comes_back_whole(self, store: CheckpointStore) -> None:
        document = random.Random(1).randbytes(3_000_000)
        store.put(0, AFTER, document, {})
        assert store.get(0, AFTER) == document

    def test_bad_keys_are_refused_and_change_nothing(self, store: CheckpointStore) -> None:
        store.put(0, BEFORE, _document("kept"), {})
        for trial, phase in [(-1, BEFORE), (0, "during"), (True, BEFORE), ("1", AFTER)]:
            try:
                store.put(trial, phase, _document("bad"), {})  # type: ignore[arg-type]
            except ValueError as e:
                assert "trial" in str(e) or "phase" in str(e)
            else:
                raise AssertionError(f"the key {(trial, phase)!r} was accepted")
        assert store.keys() == [(0, BEFORE)]
        assert store.get(0, BEFORE) == _document("kept")

    def test_states_copy_into_a_folder_and_back(
        self, store: CheckpointStore, tmp_path: Path
    ) -> None:
        data = random.Random(2).randbytes(5_000)
        sha = hashlib.sha256(data).hexdigest()
        states = {(0, BEFORE): encoded_state(0, BEFORE), (0, AFTER): encoded_state(0, AFTER)}
        for (trial, phase), (document, blobs) in states.items():
            store.put(trial, phase, document, {**blobs, sha: data})
        folder = FolderStore(tmp_path / "copy")
        assert copy_states(store, folder) == [(0, BEFORE), (0, AFTER)]
        assert folder.blob(sha) == data
        for (trial, phase), (document, _) in states.items():
            assert folder.get(trial, phase) == document
        store.delete(0, BEFORE)
        assert copy_states(folder, store, [(0, BEFORE)]) == [(0, BEFORE)]
        assert store.get(0, BEFORE) == states[(0, BEFORE)][0]
