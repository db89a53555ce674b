"""Start, find and stop the embedded emulator (one per checkout, state in `.dsstack/emulator/`)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from dsstack.local.server import ACCOUNT_ID, STATE_FILE
from dsstack.toolchain import PROJECT_ROOT

DEFAULT_STATE_DIR = PROJECT_ROOT / ".dsstack" / "emulator"
LOG_FILE = "emulator.log"
START_TIMEOUT_S = 60.0
REGION = "us-east-1"


class EmulatorError(RuntimeError):
    """A problem with the emulator process; the message says what to do."""


@dataclass(frozen=True)
class Emulator:
    pid: int
    port: int
    endpoint: str
    state_dir: Path

    @property
    def log_file(self) -> Path:
        return self.state_dir / LOG_FILE

    def client_env(self, region: str = REGION) -> dict[str, str]:
        """Environment variables that point boto3, the AWS/CDK CLIs and Metaflow at the emulator."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            "METAFLOW_S3_ENDPOINT_URL": self.endpoint,
        }

    def healthy(self, timeout: float = 2.0) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_dsstack/health", timeout=timeout) as reply:
                return json.loads(reply.read()).get("pid") == self.pid
        except (OSError, ValueError):
            return False


def _is_our_process(pid: int, state_dir: Path) -> bool:
    """True when `pid` is an emulator server started for this state dir (never a recycled PID)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True  # no /proc (macOS): the health check (pid echo) guards against recycled PIDs
    args = [a.decode(errors="replace") for a in cmdline]
    return "dsstack.local.server" in args and str(state_dir) in args


def _read_state(state_dir: Path) -> Emulator | None:
    try:
        state = json.loads((state_dir / STATE_FILE).read_text())
        return Emulator(pid=int(state["pid"]), port=int(state["port"]), endpoint=state["endpoint"],
                        state_dir=state_dir)
    except (OSError, ValueError, KeyError):
        return None


def status(state_dir: Path = DEFAULT_STATE_DIR) -> Emulator | None:
    """The running emulator of this checkout, or None."""
    state_dir = Path(state_dir).resolve()
    emulator = _read_state(state_dir)
    if emulator and _is_our_process(emulator.pid, state_dir) and emulator.healthy():
        return emulator
    return None


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def up(state_dir: Path = DEFAULT_STATE_DIR) -> Emulator:
    """Start the emulator unless it already runs (idempotent); returns it."""
    state_dir = Path(state_dir).resolve()
    running = status(state_dir)
    if running:
        return running
    stale = _read_state(state_dir)
    if stale and _is_our_process(stale.pid, state_dir):
        _terminate(stale.pid)  # alive but not answering: replace it
    (state_dir / STATE_FILE).unlink(missing_ok=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / LOG_FILE
    with open(log_path, "ab") as log:
        log.write(f"\n--- starting emulator {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
        log.flush()
        process = subprocess.Popen(
            [sys.executable, "-m", "dsstack.local.server", "--state-dir", str(state_dir)],
            cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # survives the make/pytest process that started it, until `down`
            env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")})
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EmulatorError(f"the emulator exited with code {process.returncode} while starting; log "
                                f"{log_path}:\n{_log_tail(log_path)}")
        emulator = _read_state(state_dir)
        if emulator and emulator.pid == process.pid and emulator.healthy():
            return emulator
        time.sleep(0.1)
    _terminate(process.pid)
    raise EmulatorError(f"the emulator did not answer within {START_TIMEOUT_S:.0f}s; log {log_path}:\n"
                        f"{_log_tail(log_path)}")


def _terminate(pid: int, timeout: float = 10.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            finished, _ = os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
            if finished == pid:
                return
        except ChildProcessError:
            pass
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def down(state_dir: Path = DEFAULT_STATE_DIR) -> int | None:
    """Stop exactly the emulator recorded in `state_dir`; returns its PID, or None if none was running."""
    state_dir = Path(state_dir).resolve()
    emulator = _read_state(state_dir)
    if emulator is None:
        return None
    stopped = None
    if _is_our_process(emulator.pid, state_dir):
        _terminate(emulator.pid)
        stopped = emulator.pid
    (state_dir / STATE_FILE).unlink(missing_ok=True)
    return stopped


__all__ = ["ACCOUNT_ID", "REGION", "Emulator", "EmulatorError", "down", "status", "up"]
