"""Every use of Optuna's internals, in one place: an Optuna upgrade touches this package.

- :mod:`._access`: a study's storage and id, a trial's id (Optuna's private attributes).
- :mod:`._hooks`: ``Study.ask``, Optuna's one tell function and ``Trial.__init__``, routed
  through the engine a study is bound to.
- :mod:`._storage`: SQL on Optuna's tables (identity, truncation, bulk copies, heartbeats),
  the storages' private parts (the cache, the journal) and the schema check.
- :mod:`._state_table`: the library's table of states, written inside Optuna's own
  transactions (the session hooks of the trial's creation and finish).
- :mod:`._finish_hook`: the state written before a trial's finish on the other storages.
- :mod:`._attr_writes`: the system-attribute writes of a trial in progress.
- :mod:`._samplers`: the built-in samplers' private parts (lazy generators, settings).

The rest of the library imports from these modules and touches no private name of Optuna.
"""
