"""One process of a study whose database connections are cut (run by test_connection_drop.py).

Usage: ``python drop_driver.py ROOT URL STUDY TOTAL DROP_AT``: opens the study with
``ResumableStudy`` (seeded TPE) and runs until ``TOTAL`` trials are complete. Inside trial
``DROP_AT``'s objective it creates ``ROOT/../dropping`` and waits until the test, having cut
this process's database connections, removes it. Prints the complete trials as JSON on its
last line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import optuna
from state_rows_driver import run_until


def main() -> None:
    root, url, name, total, drop_at = sys.argv[1:6]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    marker = Path(root).parent / "dropping"

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -10, 10)
        y = trial.suggest_int("y", 0, 5)
        if trial.number == int(drop_at) and not (Path(root).parent / "dropped").exists():
            marker.touch()
            while marker.exists():
                time.sleep(0.05)
            time.sleep(1.5)  # the trial runs on after the cut: the pool's connections idle
        return (x - 2) ** 2 + y

    print(json.dumps(run_until(root, url, name, int(total), objective)))


if __name__ == "__main__":
    main()
