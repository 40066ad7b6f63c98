"""The library's logger: its lines on stderr by default, as Optuna's own logging does.

Records go to the ``optuna_resume`` logger (level INFO unless set otherwise) and propagate
as usual. Until the application configures logging (a handler on the root logger or on
``optuna_resume``), a default handler writes them to stderr in Optuna's format. The
library's level is its own: ``logging.getLogger("optuna_resume").setLevel(logging.WARNING)``
turns its lines down, and a notebook that silences Optuna's per-trial lines
(``optuna.logging.set_verbosity``) still sees what an entry restored. Records marked as
detail (the full resume report) are left to the log the application configures: by
default an entry shows one or two lines.
"""

from __future__ import annotations

import logging
import sys

NAME = "optuna_resume"
DETAIL = {"optuna_resume_detail": True}  # ``extra=`` of a record kept out of stderr


class _StderrUntilConfigured(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "optuna_resume_detail", False) or _configured(self):
            return
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def _configured(default: logging.Handler) -> bool:
    """Whether the application has set up logging that the library's records reach."""
    if logging.getLogger().handlers:
        return True
    return any(handler is not default for handler in logger.handlers)


logger = logging.getLogger(NAME)
if logger.level == logging.NOTSET:
    logger.setLevel(logging.INFO)
if not any(isinstance(h, _StderrUntilConfigured) for h in logger.handlers):
    _default = _StderrUntilConfigured()
    _default.setFormatter(logging.Formatter("[%(levelname)1.1s %(asctime)s] %(message)s"))
    logger.addHandler(_default)

__all__ = ["DETAIL", "NAME", "logger"]
