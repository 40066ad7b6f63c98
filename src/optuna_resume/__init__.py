"""optuna-resume: exactly resumable Optuna studies."""

from ._backup import BackupInfo
from ._checkpoint import Checkpoint, CheckpointInfo
from ._decorator import checkpointed_objective
from ._error import (
    CheckpointMismatchError,
    CheckpointNotFoundError,
    CheckpointVersionError,
    CheckpointWriteError,
    CorruptCheckpointError,
    InexactResumeWarning,
    InvalidArgumentError,
    InvalidRewindError,
    OptunaResumeError,
    ResumeRequiredError,
    RootError,
    RootLockedError,
    SamplerMismatchWarning,
    SamplerPickleError,
    StudyNotFoundError,
    UnsafeCheckpointError,
    UnsupportedStorageError,
)
from ._export import export_checkpoint
from ._functions import (
    backup,
    list_backups,
    list_checkpoints,
    load_sampler,
    optimize_until,
    restore_backup,
    resume_study,
    rewind,
    save_checkpoint,
)
from ._report import ResumeReport
from ._seed import (
    StudyArgs,
    checkpoint_sampler,
    create_or_load_study,
    create_study_starting_from_trial,
    restore_sampler,
)
from ._signals import TerminatedBySignal
from ._status import StudyStatus, study_status
from ._study import ResumableStudy
from ._training import load_training_state, save_training_state, trial_dir
from ._verify import Finding, VerifyResult, verify_root
from ._version import __version__

__all__ = [
    "BackupInfo",
    "Checkpoint",
    "CheckpointInfo",
    "CheckpointMismatchError",
    "CheckpointNotFoundError",
    "CheckpointVersionError",
    "CheckpointWriteError",
    "CorruptCheckpointError",
    "Finding",
    "InexactResumeWarning",
    "InvalidArgumentError",
    "InvalidRewindError",
    "OptunaResumeError",
    "ResumableStudy",
    "ResumeReport",
    "ResumeRequiredError",
    "RootError",
    "RootLockedError",
    "SamplerMismatchWarning",
    "SamplerPickleError",
    "StudyArgs",
    "StudyNotFoundError",
    "StudyStatus",
    "TerminatedBySignal",
    "UnsafeCheckpointError",
    "UnsupportedStorageError",
    "VerifyResult",
    "__version__",
    "backup",
    "checkpoint_sampler",
    "checkpointed_objective",
    "create_or_load_study",
    "create_study_starting_from_trial",
    "export_checkpoint",
    "list_backups",
    "list_checkpoints",
    "load_sampler",
    "load_training_state",
    "optimize_until",
    "restore_backup",
    "restore_sampler",
    "resume_study",
    "rewind",
    "save_checkpoint",
    "save_training_state",
    "study_status",
    "trial_dir",
    "verify_root",
]
