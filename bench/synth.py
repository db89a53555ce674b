"""Synthesis time of the platform (with all four cdk-nag packs) for 1, 2 and 5 teams.

    .venv/bin/python bench/synth.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

started = time.perf_counter()
from dsstack.synth import synthesize  # noqa: E402  (starts jsii + Node)

import_seconds = time.perf_counter() - started

from dsstack.config import parse_config  # noqa: E402


def config(teams: int):
    return parse_config({"environment": "bench", "teams": [{"name": f"team{i}"} for i in range(teams)]})


def main() -> None:
    print(f"import dsstack.synth (aws_cdk + jsii start): {import_seconds:.2f} s")
    print(f"{'teams':>5} {'stacks':>6} {'resources':>9} {'synth+nag s (median of 3)':>26} {'nag findings':>12}")
    for teams in (1, 2, 5):
        times = []
        for _ in range(3):
            with tempfile.TemporaryDirectory() as out:
                result = synthesize(config(teams), Path(out))
                times.append(result.seconds)
        resources = sum(len(t["Resources"]) for t in result.templates.values())
        print(f"{teams:>5} {len(result.templates):>6} {resources:>9} {statistics.median(times):>26.2f} "
              f"{len(result.violations):>12}")


if __name__ == "__main__":
    main()
