"""The engine's state, and how it reads states back: a state's checkpoint, loaded and checked;
the state before trial N; the folder brought level with the states the study's database
committed.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar, cast

import optuna

from ._backup import BackupInfo, BackupPlace
from ._checkpoint import (
    AFTER,
    BEFORE,
    Checkpoint,
    CheckpointInfo,
    PayloadCache,
    check_loadable,
    other_versions,
    position_keys,
    read_checkpoint,
    read_meta,
    verify_document,
)
from ._error import (
    CheckpointMismatchError,
    CheckpointVersionError,
    CorruptCheckpointError,
    OptunaResumeError,
    UnsafeCheckpointError,
)
from ._log import logger
from ._options import EngineOptions
from ._optuna._state_table import StateRows
from ._retention import Retention
from ._store import FolderStore
from ._stream import ALONE, Stream
from ._workspace import WorkspacePolicy

if TYPE_CHECKING:
    from ._engine import ResumeEngine

_logger = logger

_KEEP_EVERY_STATE = Retention()
_P = ParamSpec("_P")
_R = TypeVar("_R")
_E = TypeVar("_E", bound="Reading")


def one_listing(
    method: Callable[Concatenate[_E, _P], _R],
) -> Callable[Concatenate[_E, _P], _R]:
    """An entry step that reads the checkpoint folder several times lists it once (while
    the folder is unchanged: see ``FolderStore.listing_reused``)."""

    @functools.wraps(method)
    def step(engine: _E, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with engine.store.listing_reused():
            return method(engine, *args, **kwargs)

    return step


class Reading:
    """The engine's state, and how it reads states back (the first of its parts: reading,
    :class:`~._recording.Recording`, :class:`~._resuming.Resuming`, and the binding in
    :class:`~._engine.ResumeEngine`).

    Args:
        folder: The checkpoint folder (created if missing).
        options: What the front was told (a worker's folder is its own:
            ``<study root>/workers/<id>/checkpoints``).
        backup_place: Where backups go; ``None`` disables backups.
        stream: How this process takes part in the study (default: alone).
    """

    def __init__(
        self,
        folder: Path,
        options: EngineOptions | None = None,
        *,
        backup_place: BackupPlace | None = None,
        stream: Stream = ALONE,
    ) -> None:
        self.options = options or EngineOptions()
        self.stream = stream
        self.folder = Path(folder)
        self.root = self.folder.parent
        self.store = FolderStore(self.folder)  # where this engine's states live as files
        self.backup_place = backup_place
        self._learned_globals: tuple[object, ...] = ()  # the classes of samplers passed in
        self.study: optuna.Study | None = None
        self._uid: str | None = None
        self._storage_name = ""
        self._next_position: int | None = None
        self._snapshotted: set[int] = set()
        self._last_started: int | None = None
        self._asked_here = threading.local()  # .number: the trial asked in this thread's run
        self._escaped: int | None = None  # the trial whose exception ended optimize, if last
        self._newest_after: Path | None = None
        self._without_rng: set[int] = set()  # "before" states written without the generators
        self._finished: list[tuple[int, int]] = []  # (number, trial id) awaiting cleanup
        self._fresh_backup: BackupInfo | None = None
        self._lock = threading.RLock()
        self._pinned: weakref.ref[optuna.samplers.BaseSampler] | None = None
        self._after_saved: int | None = None  # the trial whose "after" state was saved last
        self.taken_back: list[str] = []  # study attributes put back by the last resume
        self._entry_notes: list[str] = []  # what binding did, for the next resume report
        self._rows: StateRows | None = None  # the states committed in the study's database
        self._synced_below: int | None = None  # "before" files under this number are fsynced
        self._payload_cache = PayloadCache()
        self._state_before_finish = False  # the state after a told trial: before its finish

    @property
    def whole(self) -> ResumeEngine:
        """This engine with all its parts, as the stream strategy it calls sees it."""
        return cast("ResumeEngine", self)

    def configure(self, later: EngineOptions) -> None:
        """What a later binding may change (see :meth:`EngineOptions.joined`)."""
        self.options = self.options.joined(later)

    @property
    def keeps_every_after(self) -> bool:
        return self.stream.keeps_every_after

    @property
    def worker(self) -> str | None:
        return self.options.worker

    @property
    def trusted(self) -> bool:
        return self.options.trusted

    @property
    def allowed_globals(self) -> tuple[object, ...]:
        return self.options.allowed_globals + self._learned_globals

    @property
    def keep_backups(self) -> int | None:
        return self.options.keep_backups

    @property
    def capture_rng(self) -> bool:
        return self.options.capture_rng

    @property
    def workspace_policy(self) -> WorkspacePolicy:
        return self.options.workspace_policy or "keep"

    @property
    def retention(self) -> Retention:
        return self.options.retention or _KEEP_EVERY_STATE

    @property
    def bound_study(self) -> optuna.Study:
        if self.study is None:
            raise OptunaResumeError("the engine is not bound to a study")
        return self.study

    # -- reading -------------------------------------------------------------------------

    def load(self, info: CheckpointInfo) -> Checkpoint:
        return read_checkpoint(
            info,
            study_uid=self._uid,
            trusted=self.trusted,
            allowed_globals=self.allowed_globals,
        )

    def checkpoint(self, trial: int, phase: str) -> CheckpointInfo | None:
        return self.store.info(trial, phase)

    @staticmethod
    def _written_by_other_versions(info: CheckpointInfo) -> tuple[str, str] | None:
        try:
            return other_versions(read_meta(info.path))
        except (OptunaResumeError, OSError):
            return None

    def _state_at(self, position: int) -> Checkpoint | None:
        """The state just before trial ``position`` is asked for, if a checkpoint holds it."""
        self._take_rows_for(position)
        candidates = [self.checkpoint(*key) for key in position_keys(position)]
        errors: list[str] = []
        versions: list[tuple[str, str, str]] = []  # (theirs, ours, error) of states
        for info in candidates:
            if info is None:
                continue
            try:
                return self.load(info)
            except CheckpointMismatchError:
                raise
            except (CorruptCheckpointError, UnsafeCheckpointError) as e:
                other = self._written_by_other_versions(info)
                if other is None and isinstance(e, UnsafeCheckpointError):
                    raise
                if other is not None:
                    versions.append((*other, str(e)))
                else:
                    errors.append(str(e))
                _logger.warning("%s (trying an equivalent checkpoint)", e)
            except (OptunaResumeError, OSError) as e:
                errors.append(str(e))
                _logger.warning("%s (trying an equivalent checkpoint)", e)
        if versions and not errors:
            theirs, ours, error = versions[0]
            raise CheckpointVersionError(
                f"the state before trial {position} was written by {theirs} and cannot be "
                f"loaded by the versions running now ({ours}): {error} The checkpoints are not "
                "damaged and the trials are intact. Either keep the versions that wrote them "
                f"for this study (reinstall {theirs.split(',')[0]}), or go "
                "on with the sampler you pass, keeping the trials already run: "
                "allow_inexact=True (ResumableStudy or resume_study); the draws then differ "
                "from an uninterrupted run. Nothing was changed."
            )
        errors += [error for _, _, error in versions]
        if not errors:
            return None
        earlier = [p for p in self.store.positions() if p != position]
        raise CorruptCheckpointError(
            f"no intact checkpoint holds the state before trial {position}: "
            f"{' '.join(errors)} To repair: rewind to an earlier state (rewind_to=N; states "
            f"before trials {earlier[-5:] or 'none'} are on disk, `optuna-resume verify` says "
            "which are intact): trials N and later re-run exactly and the originals stay in a "
            "backup; or restore a backup (`optuna-resume restore`); or pass allow_inexact=True "
            "to go on with the sampler you pass. Nothing was changed."
        )

    def _fill_folder_from_rows(self) -> None:
        """Write into the folder the states the database holds and the folder lacks.

        The study's database is the record (each state was committed with its trial): a
        root that is empty (another host, a new folder) or behind gets the states it needs.
        """
        rows = self._rows
        if rows is None:
            return
        have = set(self.store.keys())
        keys = rows.keys()
        if not self.keeps_every_after:
            afters = [k for k in keys if k[1] == AFTER]
            keys = [k for k in keys if k[1] == BEFORE] + afters[-1:]
        missing = [k for k in keys if k not in have]
        for trial, phase in missing:
            self._take_row(trial, phase)
        if missing:
            note = (
                f"{len(missing)} state(s) committed with the study's trials in its database "
                f"were written into {self.folder}, which lacked them"
            )
            _logger.info("%s.", note)

    def _take_rows_for(self, position: int) -> None:
        """Make the files of the states before ``position`` match their database rows."""
        if self._rows is None:
            return
        for key in position_keys(position):
            self._take_row(*key)

    def _take_row(self, trial: int, phase: str) -> None:
        rows = self._rows
        assert rows is not None
        document = rows.document(trial, phase)
        if document is None:
            return
        path = self.store.path(trial, phase)
        try:
            on_disk = self.store.get(trial, phase)
        except OSError:
            on_disk = None
        if on_disk == document:
            return
        try:
            verify_document(document, f"the database row of {path.name}")
        except OptunaResumeError as e:
            _logger.warning("%s; the file %s is kept.", e, path)
            return
        if on_disk is not None:
            try:
                # A file that would run code is refused, not silently replaced: someone
                # put it there.
                check_loadable(
                    on_disk,
                    str(path),
                    trusted=self.trusted,
                    allowed_globals=self.allowed_globals,
                )
            except UnsafeCheckpointError as e:
                raise UnsafeCheckpointError(
                    f"{e} The study's database holds the state committed with trial {trial}: "
                    f"remove {path} (it is not this library's) and run again to go on from it."
                ) from None
            except OptunaResumeError as e:
                _logger.warning(
                    "%s The state committed with trial %d in the study's database replaces it.",
                    e,
                    trial,
                )
        blobs = rows.blobs(rows.blob_names() - self.store.blob_keys())
        self.store.put(trial, phase, document, blobs)
        if phase == AFTER and not self.keeps_every_after:
            for other in self.store.infos(AFTER):
                if other.trial != trial:
                    other.path.unlink(missing_ok=True)
            self._newest_after = path


__all__ = ["Reading", "one_listing"]
