"""Print the kill-fuzzing figures a test run wrote to ``OPTUNA_RESUME_RELIABILITY_DIR``.

Usage: ``python tests/reliability_summary.py DIR`` (``.ci/run`` does this after the tests).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def summary(folder: Path) -> str:
    fuzz = [json.loads(p.read_text()) for p in sorted(folder.glob("fuzz-*.json"))]
    steps = [json.loads(p.read_text()) for p in sorted(folder.glob("step-*.json"))]
    if not fuzz and not steps:
        return f"no kill-fuzzing figures in {folder}"
    lines = [
        "| sampler | storage | studies | processes | SIGKILLs survived | at a named step "
        "| at a random instant | rewinds |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    by_step: dict[str, int] = {}
    for log in fuzz:
        named = sum(log["points"].values())
        lines.append(
            f"| {log['sampler']} | {log.get('storage', 'sqlite')} | {log['studies']} "
            f"| {log['lives']} | {log['kills']} | {named} | {log['timed']} | {log['rewinds']} |"
        )
        for point, n in log["points"].items():
            by_step[point] = by_step.get(point, 0) + n
    for step in steps:
        for point, n in step["points"].items():
            by_step[point] = by_step.get(point, 0) + n
    total = sum(log["kills"] for log in fuzz) + sum(sum(s["points"].values()) for s in steps)
    lines += ["", f"SIGKILLs survived in all: {total}", "", "| step | SIGKILLs |", "| --- | --- |"]
    lines += [f"| `{point}` | {n} |" for point, n in sorted(by_step.items())]
    return "\n".join(lines)


if __name__ == "__main__":
    print(summary(Path(sys.argv[1])))
