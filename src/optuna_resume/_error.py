"""Exceptions and warnings raised by optuna-resume.

Every error derives from :class:`OptunaResumeError` and also from the builtin exception that
matches its meaning, so ``except FileNotFoundError`` catches a missing checkpoint.
"""

from __future__ import annotations

import pickle


class OptunaResumeError(Exception):
    """Base class of every error raised by optuna-resume."""


class RootError(OptunaResumeError, OSError):
    """The root folder cannot be used (it is a file, or it is not writable)."""


class InvalidArgumentError(OptunaResumeError, ValueError, TypeError):
    """An argument has a value (or type) the library cannot use; nothing was changed."""


class UnsupportedStorageError(OptunaResumeError, ValueError):
    """The storage cannot keep a study across processes (e.g. in-memory storage)."""


class RootLockedError(OptunaResumeError, BlockingIOError):
    """Another live session holds the root's lock."""


class CheckpointNotFoundError(OptunaResumeError, FileNotFoundError):
    """No checkpoint exists for the requested trial."""


class StudyNotFoundError(OptunaResumeError, FileNotFoundError):
    """No study at the given root, storage or name."""


class CheckpointMismatchError(OptunaResumeError, ValueError):
    """A checkpoint belongs to another study or another storage."""


class CorruptCheckpointError(OptunaResumeError, ValueError):
    """A checkpoint is truncated, tampered with or not a checkpoint at all."""


class CheckpointVersionError(CorruptCheckpointError):
    """A state written by other versions of Optuna, torch or NumPy that these cannot load.

    The checkpoint is not damaged; the message names both sets of versions and the choices.
    """


class UnsafeCheckpointError(OptunaResumeError, pickle.UnpicklingError):
    """Loading a checkpoint would run code that was not allowed."""


class InvalidRewindError(OptunaResumeError, ValueError):
    """A rewind target is not a trial of the study."""


class CheckpointWriteError(OptunaResumeError, OSError):
    """A checkpoint or backup could not be written; the previous one is intact."""


class SamplerPickleError(OptunaResumeError, TypeError):
    """The sampler cannot be saved (it holds something that does not pickle)."""


class ResumeRequiredError(OptunaResumeError, RuntimeError):
    """The study must be resumed before it goes on (e.g. a trial an earlier run cut off)."""


class SamplerMismatchWarning(UserWarning):
    """The sampler passed in is of another class than the checkpointed one."""


class InexactResumeWarning(UserWarning):
    """The resume cannot reproduce an uninterrupted run exactly."""


__all__ = [
    "CheckpointMismatchError",
    "CheckpointNotFoundError",
    "CheckpointVersionError",
    "CheckpointWriteError",
    "CorruptCheckpointError",
    "InexactResumeWarning",
    "InvalidArgumentError",
    "InvalidRewindError",
    "OptunaResumeError",
    "ResumeRequiredError",
    "RootError",
    "RootLockedError",
    "SamplerMismatchWarning",
    "SamplerPickleError",
    "StudyNotFoundError",
    "UnsafeCheckpointError",
    "UnsupportedStorageError",
]
