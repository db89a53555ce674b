"""The offline CLI commands: validate, stacks, schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from dsstack.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_validate_example():
    result = runner.invoke(app, ["validate", str(ROOT / "config/example.yaml")])
    assert result.exit_code == 0, result.output
    assert "valid: environment 'demo'" in result.output and "vision, forecasting" in result.output


def test_validate_bad_file_prints_problems_and_exits_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("environment: dev\nteams:\n  - name: Alpha\n  - {name: beta, colour: red}\n")
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2
    assert "teams[0].name: must be lower-case letters" in result.output
    assert "teams[1].colour: unknown key 'colour'" in result.output
    assert "Traceback" not in result.output


def test_stacks_lists_network_then_team_stacks():
    result = runner.invoke(app, ["stacks", str(ROOT / "config/example.yaml")])
    assert result.exit_code == 0
    lines = result.output.split()
    assert lines[0] == "demo-network"
    assert "demo-vision-data" in lines and "demo-forecasting-data" in lines


def test_stacks_match_what_cdk_synthesizes(platform):
    """`dsstack stacks` plans names without synthesizing; they must equal the synthesized stacks."""
    result = runner.invoke(app, ["stacks", str(ROOT / "config/example.yaml")])
    assert set(result.output.split()) == {s.stack_name for s in platform.platform.stacks()}


def test_schema_is_json(tmp_path):
    out = tmp_path / "schema.json"
    result = runner.invoke(app, ["schema", "-o", str(out)])
    assert result.exit_code == 0
    assert json.loads(out.read_text())["title"] == "dsstack config"


def test_installed_entry_point_runs_without_starting_node(tmp_path):
    """`dsstack validate/stacks` must work without jsii (no Node process, fast)."""
    code = ("import sys, dsstack.cli as c; sys.argv=['dsstack','stacks','config/example.yaml']; "
            "c.main()")
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 or "SystemExit" not in proc.stderr
    assert "demo-network" in proc.stdout
    assert "aws_cdk" not in proc.stderr and "jsii" not in proc.stderr
