"""The resume report: what an entry restored, re-ran, rewound and backed up."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._backup import BackupInfo


@dataclass
class ResumeReport:
    """What happened when a study was resumed.

    Attributes:
        study_name: The study.
        trials_found: Trials in the storage on entry.
        restored_from: The checkpoint the sampler came from, or ``None`` for the sampler
            passed in (a new study, or an inexact resume).
        next_trial: The number the next new trial gets.
        rewound: ``(from_trials, to_trial)`` when the study was rewound.
        interrupted_trial: The trial that an interruption cut off, if any.
        interrupted_params: Its parameters.
        interrupted_action: ``"rerun"`` (it is run again under the same number) or ``"fail"``.
        backup: The backup taken on entry, if any.
        rng_restored: Whether the global random generators were put back (``capture_rng``).
        notes: Anything else worth saying (fallbacks, warnings).
    """

    study_name: str
    trials_found: int
    restored_from: str | None = None
    next_trial: int = 0
    rewound: tuple[int, int] | None = None
    interrupted_trial: int | None = None
    interrupted_params: dict[str, Any] = field(default_factory=dict)
    interrupted_action: str | None = None
    backup: BackupInfo | None = None
    rng_restored: bool = False
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [
            f"study {self.study_name!r}: {self.trials_found} trial(s) in storage; "
            f"next trial is {self.next_trial}"
        ]
        if self.backup is not None:
            where = self.backup.storage_path or self.backup.checkpoints_path
            out.append(f"backup {self.backup.number} taken: {where}")
        if self.rewound is not None:
            total, to = self.rewound
            out.append(
                f"rewound to trial {to}: trials {to}..{total - 1} left the live study "
                "(kept in the backup)"
            )
        if self.interrupted_trial is not None:
            if self.interrupted_action == "rerun":
                out.append(
                    f"trial {self.interrupted_trial} was interrupted; it runs again under the "
                    f"same number with params {self.interrupted_params} (its record is in the "
                    "backup)"
                )
            else:
                out.append(f"trial {self.interrupted_trial} was interrupted; it stays FAIL")
        if self.restored_from is not None:
            out.append(
                f"sampler restored from {state_in_words(self.restored_from)} "
                f"({self.restored_from})"
            )
        else:
            out.append("sampler: the one passed in (nothing to restore)")
        if self.rng_restored:
            out.append("global random generators restored")
        out.extend(self.notes)
        return out

    def summary(self) -> str:
        """What an entry did, in one or two lines (what the library shows on stderr)."""
        what = f"study {self.study_name!r}: {self.trials_found} trial(s) found"
        if self.rewound is not None:
            total, to = self.rewound
            what += f"; rewound to trial {to} (trials {to}..{total - 1} kept in the backup)"
        if self.interrupted_trial is not None:
            if self.interrupted_action == "rerun":
                what += (
                    f"; trial {self.interrupted_trial} was cut off and runs again with params "
                    f"{self.interrupted_params}"
                )
            else:
                what += f"; trial {self.interrupted_trial} was cut off and stays FAIL"
        what += f"; next trial is {self.next_trial}"
        if self.restored_from is None:
            source = "the sampler passed in (nothing to restore)"
        else:
            source = f"the sampler goes on from {state_in_words(self.restored_from)}"
        if self.backup is not None:
            source += f"; backup {self.backup.number} taken"
        if self.notes:
            source += f" ({len(self.notes)} note(s) in the resume report)"
        return f"{what}.\n{source[0].upper()}{source[1:]}."

    def __str__(self) -> str:
        return "resume report: " + "; ".join(self.lines())


def state_in_words(path: str) -> str:
    """``trial-000010.before.pt`` as "the state before trial 10" (else the path itself)."""
    match = re.fullmatch(r"trial-0*(\d+)\.(before|after)\.pt", Path(path).name)
    if match is None:
        return path
    return f"the state {match.group(2)} trial {int(match.group(1))}"


__all__ = ["ResumeReport", "state_in_words"]
