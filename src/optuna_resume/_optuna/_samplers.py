"""The objects a sampler's state is made of, for the few places that adjust them in place."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

_MAX_DEPTH = 4
_MAX_DICT = 100  # larger dicts hold data (trial caches), not parts of the sampler


def sampler_parts(
    sampler: object, *, modules: tuple[str, ...], into_dicts: bool = False
) -> Iterator[object]:
    """Yield ``sampler`` and the objects reachable from it, each once, parents first.

    Only the sampler and objects of classes from ``modules`` (module name prefixes such as
    ``"optuna."``) are looked into, through their ``__dict__``, at most four levels deep; with
    ``into_dicts``, dicts of fewer than 100 entries are looked into as well. A yielded object
    may be changed in place before its own parts are visited.
    """
    seen: set[int] = set()

    def visit(obj: object, depth: int) -> Iterator[object]:
        if depth > _MAX_DEPTH or id(obj) in seen:
            return
        seen.add(id(obj))
        yield obj
        if into_dicts and isinstance(obj, dict) and len(obj) < _MAX_DICT:
            for value in obj.values():
                yield from visit(value, depth + 1)
            return
        state = getattr(obj, "__dict__", None)
        if isinstance(state, dict) and (depth == 0 or type(obj).__module__.startswith(modules)):
            for value in state.values():
                yield from visit(value, depth + 1)

    yield from visit(sampler, 0)


def pin_lazy_generators(sampler: object) -> None:
    """Create now the random generators an unseeded sampler would create at first use.

    Optuna's unseeded samplers make each ``LazyRandomState``'s generator from fresh OS
    entropy the first time it is used (TPE's model generator, for one, only after its startup
    trials). A state saved before then holds no stream for it, so a resumed study would draw
    from other entropy than the saved process would have. Made now, every stream is in every
    state saved from here on and a resume goes on with it.
    """
    from optuna.samplers._lazy_random_state import LazyRandomState

    for part in sampler_parts(sampler, modules=("optuna.",)):
        if isinstance(part, LazyRandomState) and part._rng is None:
            part._set_rng()


_PLAIN = (type(None), bool, int, float, str)
_MAX_PLAIN = 1000


def _plain(value: object, budget: list[int]) -> bool:
    """Whether ``value`` is plain data (numbers, strings and containers of them)."""
    budget[0] -= 1
    if budget[0] < 0:
        return False
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(item, budget) for item in value)
    if isinstance(value, dict):
        return all(_plain(k, budget) and _plain(v, budget) for k, v in value.items())
    return False


def differing_settings(saved: object, passed: object) -> list[tuple[str, object, object]]:
    """The constructor settings in which two samplers of one class differ.

    A setting is a parameter of the class's ``__init__`` kept as an attribute of the same
    name (``_name`` or ``name``) holding plain data. The seed is not compared: an unseeded
    sampler draws its own, and a resumed stream goes on whatever seed is passed again; nor is
    a setting passed as ``"auto"``, which the object resolves into state of its own.

    Returns:
        ``(name, saved value, passed value)`` for each differing setting.
    """
    import inspect

    try:
        parameters = inspect.signature(type(passed).__init__).parameters
    except (TypeError, ValueError):
        return []
    saved_state = getattr(saved, "__dict__", {})
    passed_state = getattr(passed, "__dict__", {})
    differing = []
    for name, parameter in parameters.items():
        if name in ("self", "seed") or parameter.kind in (
            parameter.VAR_POSITIONAL,
            parameter.VAR_KEYWORD,
        ):
            continue
        for attribute in (f"_{name}", name):
            if attribute in saved_state and attribute in passed_state:
                old, new = saved_state[attribute], passed_state[attribute]
                # "auto" is resolved by the object itself (Hyperband's max_resource): state.
                resolved = new == "auto"
                plain = _plain(old, [_MAX_PLAIN]) and _plain(new, [_MAX_PLAIN])
                if plain and not resolved and old != new:
                    differing.append((name, old, new))
                break
    return differing


# GPSampler keeps its fitted regressors only as the starting point of the next fit, which
# reads these three kernel parameters of each (optuna._gp.gp.fit_kernel_params): the rest,
# the training data and an n x n x d matrix of distances, grows with the square of the trial
# count (333 KB at 100 trials, 1.29 MB at 200) and is rebuilt at every fit anyway.
_GP_REGRESSOR = ("optuna._gp.gp", "GPRegressor")
_GP_FIT_START = ("inverse_squared_lengthscales", "kernel_scale", "noise_var")


def slim_gp_regressors(value: Any) -> Any:
    """A list of GP regressors with only what the next fit reads, or ``value`` itself."""
    if not isinstance(value, list) or not value:
        return value
    slim = []
    for regressor in value:
        kind = (type(regressor).__module__, type(regressor).__qualname__)
        state = getattr(regressor, "__dict__", None)
        if kind != _GP_REGRESSOR or not isinstance(state, dict):
            return value
        if not all(name in state for name in _GP_FIT_START):
            return value  # another Optuna: saved whole
        copy_ = object.__new__(type(regressor))
        copy_.__dict__.update({name: state[name] for name in _GP_FIT_START})
        slim.append(copy_)
    return slim


__all__ = ["differing_settings", "pin_lazy_generators", "sampler_parts", "slim_gp_regressors"]
