"""Benchmark: `make deploy` into the embedded emulator for 1, 2 and 5 teams (real measurements).

    .venv/bin/python bench/deploy.py [--teams 1 2 5]

For each size: a fresh emulator (its own state dir), then the timeline cold start -> emulator up ->
bootstrapped -> all stacks deployed -> verified, and the emulator's peak resident memory (VmHWM).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dsstack.local import emulator  # noqa: E402
from dsstack.local.deploy import deploy  # noqa: E402

NAMES = ["vision", "forecasting", "nlp", "ranking", "fraud", "search", "pricing", "ads"]


def config_for(teams: int, directory: Path) -> Path:
    base = (ROOT / "config" / "example.yaml").read_text().split("teams:")[0]
    body = "teams:\n" + "".join(f"  - name: {name}\n" for name in NAMES[:teams])
    path = directory / f"bench-{teams}-teams.yaml"
    path.write_text(base + body)
    return path


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(teams: int, directory: Path) -> dict[str, float]:
    state_dir = directory / f"emulator-{teams}"
    config = config_for(teams, directory)
    started = time.monotonic()
    result = deploy(config, "local", state_dir=state_dir, echo=lambda _: None)
    emu = emulator.status(state_dir)
    assert emu is not None
    row = {"teams": teams, **result.timings, "stacks": len(result.report.stacks) if result.report else 0,
           "resources": sum(result.report.checked.values()) if result.report else 0,
           "peak_mb": peak_rss_mb(emu.pid), "total": time.monotonic() - started}
    emulator.down(state_dir)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--teams", type=int, nargs="+", default=[1, 2, 5])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="dsstack-bench-") as tmp:
        for teams in args.teams:
            rows.append(run(teams, Path(tmp)))
            r = rows[-1]
            print(f"{r['teams']} team(s): emulator up {r['emulator']:.1f}s -> bootstrapped {r['bootstrapped']:.1f}s "
                  f"-> {r['stacks']} stacks deployed {r['deployed']:.1f}s -> {r['resources']} resources verified "
                  f"{r['verified']:.1f}s; emulator peak RSS {r['peak_mb']:.0f} MB", flush=True)
    print("\n| teams | stacks | resources | emulator up | bootstrapped | deployed | verified | peak RSS |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['teams']} | {r['stacks']} | {r['resources']} | {r['emulator']:.1f} s | {r['bootstrapped']:.1f} s "
              f"| {r['deployed']:.1f} s | {r['verified']:.1f} s | {r['peak_mb']:.0f} MB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
