"""The one factory of engines: which engine a study gets, bound once.

It builds an engine from one :class:`~optuna_resume._options.EngineOptions` and gives it
its stream strategy: alone, or one worker's (:mod:`._worker_stream`). The engine never
imports it (no module imports its own caller).
"""

from __future__ import annotations

import os

import optuna

from ._backup import place_for
from ._engine import ResumeEngine, engine_of
from ._error import CheckpointMismatchError
from ._options import EngineOptions
from ._optuna._access import storage_of
from ._root import CHECKPOINTS, prepare_root
from ._stream import ALONE
from ._worker_stream import WorkerStream


def bind_engine(
    study: optuna.Study,
    root: str | os.PathLike[str],
    options: EngineOptions | None = None,
) -> ResumeEngine:
    """The engine that checkpoints ``study`` into ``<root>/checkpoints`` (bound on first use).

    With ``options.worker``, ``root`` is that worker's folder (``<study root>/workers/<id>``).

    Once bound, every ``study.ask()`` first checkpoints the state before the new trial. An
    engine already bound takes what a later binding may change (the capture of the global
    generators, a workspace policy, a retention: :meth:`EngineOptions.joined`).

    Raises:
        CheckpointMismatchError: The study is already bound to another root.
    """
    options = options or EngineOptions()
    folder = prepare_root(root)
    engine = engine_of(study)
    if engine is not None:
        if engine.folder.resolve() != (folder / CHECKPOINTS).resolve():
            raise CheckpointMismatchError(
                f"the study checkpoints into {engine.folder}, not into root {folder}; omit the "
                "root inside a ResumableStudy or pass the same one"
            )
        engine.configure(options)
        return engine
    worker = options.worker
    backup_place = place_for(
        storage_of(study),
        folder,
        study.study_name,
        folder / CHECKPOINTS,
        name_study_if_outside=True,
        label=None if worker is None else f"{study.study_name}_{worker}",
    )
    stream = ALONE if worker is None else WorkerStream(worker)
    engine = ResumeEngine(folder / CHECKPOINTS, options, backup_place=backup_place, stream=stream)
    engine.attach(study)
    return engine


__all__ = ["bind_engine"]
