"""python -m dsstack.local up|down|status|deploy|destroy [--config PATH] [--target auto|local|aws]"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dsstack.local import emulator
from dsstack.local.deploy import DeployError, deploy, destroy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dsstack.local", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "deploy", "destroy"])
    parser.add_argument("--config", default="config/example.yaml")
    parser.add_argument("--target", default="auto", help="auto (default: AWS if credentials exist), local, aws")
    parser.add_argument("--state-dir", type=Path, default=emulator.DEFAULT_STATE_DIR,
                        help="where the emulator keeps its PID file and log (default .dsstack/emulator)")
    args = parser.parse_args(argv)
    state_dir = args.state_dir
    try:
        if args.command == "up":
            emu = emulator.up(state_dir)
            print(f"emulator running: {emu.endpoint} (pid {emu.pid}, log {emu.log_file})")
        elif args.command == "down":
            pid = emulator.down(state_dir)
            print(f"emulator stopped (pid {pid})" if pid else "no emulator was running")
        elif args.command == "status":
            running = emulator.status(state_dir)
            print(f"running: {running.endpoint} (pid {running.pid}, log {running.log_file})" if running
                  else "not running")
            return 0 if running else 3
        elif args.command == "deploy":
            result = deploy(args.config, args.target, state_dir=state_dir)
            print(result.summary)
        else:
            destroy(args.config, args.target, state_dir=state_dir)
    except (DeployError, emulator.EmulatorError) as error:
        print(f"\nERROR: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
