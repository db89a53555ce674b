"""`dsstack catalog` against moto: models, versions, the object behind a version, runs of a flow."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from dsstack_catalog import Catalog, ObjectVersion, RunRecord
from typer.testing import CliRunner

from dsstack.cli import app
from tests.unit.test_catalog_support import create_catalog_table, mocked_aws

CONFIG = str(Path(__file__).resolve().parents[2] / "config" / "example.yaml")
TABLE = "demo-vision-catalog"
runner = CliRunner()


@pytest.fixture
def catalog(monkeypatch: pytest.MonkeyPatch):
    with mocked_aws(monkeypatch):
        create_catalog_table(TABLE)
        boto3.client("ssm").put_parameter(Name="/dsstack/demo/vision/tables/catalog", Value=TABLE, Type="String")
        catalog = Catalog(TABLE)
        for n in (1, 2):
            catalog.register_model_version("churn", ObjectVersion(
                bucket="b", key=f"models/churn/run-{n}/model.tar.gz", s3_version_id=f"v{n}", sequencer=f"{n:016X}",
                size=100 * n, etag=f"e{n}", created_at=datetime(2026, 11, n, tzinfo=UTC)))
        catalog.record_run(RunRecord(
            flow="TrainFlow", run_id="sfn-abc", execution_arn="arn:aws:states:us-east-1:1:execution:m:abc",
            execution_name="abc", state_machine="dsstack-demo-vision_TrainFlow", status="FAILED",
            started_at=datetime(2026, 11, 3, tzinfo=UTC), stopped_at=datetime(2026, 11, 3, 1, tzinfo=UTC),
            error="States.TaskFailed"))
        yield catalog


def test_models_show_the_latest_version(catalog):
    result = runner.invoke(app, ["catalog", "models", "--team", "vision", "-c", CONFIG, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"model": "churn", "latest_version": 2,
                                         "key": "models/churn/run-2/model.tar.gz"}


def test_versions_newest_first_and_the_object_behind_one(catalog):
    result = runner.invoke(app, ["catalog", "versions", "--team", "vision", "-m", "churn", "-c", CONFIG, "--json"])
    assert [json.loads(line)["version"] for line in result.output.splitlines()] == [2, 1]
    result = runner.invoke(app, ["catalog", "object", "--team", "vision", "-m", "churn", "-v", "1", "-c", CONFIG])
    found = json.loads(result.output)
    assert (found["key"], found["s3_version_id"], found["size"]) == ("models/churn/run-1/model.tar.gz", "v1", 100)
    missing = runner.invoke(app, ["catalog", "object", "--team", "vision", "-m", "churn", "-v", "9", "-c", CONFIG])
    assert missing.exit_code == 1 and "has no version 9" in missing.output


def test_runs_of_a_flow_with_status(catalog):
    result = runner.invoke(app, ["catalog", "runs", "--team", "vision", "--flow", "TrainFlow", "-c", CONFIG])
    assert result.exit_code == 0
    header, row = result.output.splitlines()
    assert header.split() == ["run", "status", "started_at", "stopped_at", "error"]
    assert row.split()[:2] == ["sfn-abc", "FAILED"] and "States.TaskFailed" in row


def test_unknown_team_and_undeployed_team_are_clean_errors(monkeypatch: pytest.MonkeyPatch):
    result = runner.invoke(app, ["catalog", "models", "--team", "nobody", "-c", CONFIG])
    assert result.exit_code == 2 and "no team 'nobody'" in result.output
    with mocked_aws(monkeypatch):
        result = runner.invoke(app, ["catalog", "models", "--team", "vision", "-c", CONFIG])
    assert result.exit_code == 1 and "/dsstack/demo/vision/tables/catalog" in result.output
    assert "Traceback" not in result.output
