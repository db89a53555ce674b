"""End-to-end tier: the example config deployed ONCE per session into a private embedded emulator.

The session fixture starts its own emulator (state in a temporary dir, so a developer's `make deploy`
emulator is left alone), runs the real CDK CLI (bootstrap + deploy --all) and the post-deploy
verification, and hands the tests a `Deployment` with the outputs and a boto3 session.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dsstack.local import emulator
from dsstack.local.deploy import DeployResult, client_session, deploy

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Deployment:
    config_path: Path
    state_dir: Path
    result: DeployResult
    session: Any

    @property
    def emulator(self) -> emulator.Emulator:
        running = emulator.status(self.state_dir)
        assert running is not None, "the e2e emulator is not running"
        return running

    def outputs(self) -> dict[str, dict[str, str]]:
        import json

        return json.loads(self.result.outputs_file.read_text())

    def bucket(self, team: str) -> str:
        return self.outputs()[f"demo-{team}-data"]["BucketName"]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The `dsstack` CLI as a data scientist runs it, pointed at the emulator (its stdout/stderr captured)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(self.emulator.client_env())
        return subprocess.run([sys.executable, "-m", "dsstack.cli", *args, "--config", str(self.config_path)],
                              env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)

    def redeploy(self, config_path: Path | None = None) -> DeployResult:
        self.result = deploy(config_path or self.config_path, "local", state_dir=self.state_dir, echo=lambda _: None)
        self.session = client_session(self.emulator)
        return self.result


@pytest.fixture(scope="session")
def e2e_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def deployment(e2e_dir: Path) -> Iterator[Deployment]:
    # A copy of the example under its own name: its cloud assembly and outputs file do not collide with
    # a developer's `make deploy` of config/example.yaml.
    config_path = e2e_dir / "e2e-example.yaml"
    shutil.copy(ROOT / "config" / "example.yaml", config_path)
    state_dir = e2e_dir / "emulator"
    try:  # the emulator is stopped even when the deploy itself fails
        result = deploy(config_path, "local", state_dir=state_dir, echo=lambda _: None)
        yield Deployment(config_path, state_dir, result, client_session(emulator.status(state_dir)))
    finally:
        emulator.down(state_dir)
