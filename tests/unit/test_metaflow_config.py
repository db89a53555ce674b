"""The generated Metaflow config: every METAFLOW_* key is one the installed metaflow reads, layers merge
safely, and `dsstack metaflow-config` writes what `metaflow configure import` and Metaflow accept."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from dsstack import metaflow_config
from dsstack.cli import app

ROOT = Path(__file__).resolve().parents[2]
METAFLOW_CONFIG_SOURCE = Path(sys.executable).parents[1].glob("lib/python3*/site-packages/metaflow/metaflow_config.py")

SAMPLE = metaflow_config.compute_keys(
    region="us-east-1", bucket_name="bucket-1", job_queues={"cpu": "dsstack-dev-alpha-cpu", "gpu": "dsstack-dev-alpha-gpu"},
    job_role_arn="arn:aws:iam::111122223333:role/job", execution_role_arn="arn:aws:iam::111122223333:role/exec",
    step_functions_role_arn="arn:aws:iam::111122223333:role/sfn", state_table_name="state",
    state_machine_prefix="dsstack-dev-alpha-", events_role_arn="arn:aws:iam::111122223333:role/events",
    execution_log_group_arn="arn:aws:logs:us-east-1:111122223333:log-group:/aws/vendedlogs/states/x:*",
)
REQUIRED = {
    "METAFLOW_DEFAULT_DATASTORE", "METAFLOW_DATASTORE_SYSROOT_S3", "METAFLOW_DATATOOLS_S3ROOT",
    "METAFLOW_BATCH_JOB_QUEUE", "METAFLOW_ECS_S3_ACCESS_IAM_ROLE", "METAFLOW_ECS_FARGATE_EXECUTION_ROLE",
    "METAFLOW_SFN_IAM_ROLE", "METAFLOW_SFN_DYNAMO_DB_TABLE", "METAFLOW_SFN_STATE_MACHINE_PREFIX",
    "METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE", "METAFLOW_SFN_EXECUTION_LOG_GROUP_ARN",
}


def test_every_required_key_is_generated():
    assert set(SAMPLE) >= REQUIRED
    assert SAMPLE["METAFLOW_DEFAULT_DATASTORE"] == "s3"
    assert SAMPLE["METAFLOW_DATASTORE_SYSROOT_S3"] == "s3://bucket-1/metaflow"
    assert SAMPLE["METAFLOW_DATATOOLS_S3ROOT"] == "s3://bucket-1/data"
    assert SAMPLE["METAFLOW_BATCH_JOB_QUEUE"] == "dsstack-dev-alpha-cpu"
    assert SAMPLE["DSSTACK_BATCH_JOB_QUEUE_GPU"] == "dsstack-dev-alpha-gpu"
    assert SAMPLE["DSSTACK_AWS_REGION"] == "us-east-1"


def test_every_metaflow_key_is_read_by_the_installed_metaflow():
    """Checked against the source of the installed package: from_conf("X") reads METAFLOW_X."""
    source = next(iter(METAFLOW_CONFIG_SOURCE)).read_text()
    read = {f"METAFLOW_{name}" for name in re.findall(r'from_conf\(\s*"([A-Z0-9_]+)"', source)}
    ours = {key for key in SAMPLE if key.startswith("METAFLOW_")}
    assert ours - read == set(), f"keys metaflow does not read: {sorted(ours - read)}"
    # Anything else is clearly ours, never a look-alike of a Metaflow setting.
    assert all(key.startswith("DSSTACK_") for key in set(SAMPLE) - ours)


def test_a_cpu_queue_is_required():
    with pytest.raises(ValueError, match="default 'cpu' queue"):
        metaflow_config.compute_keys(**{**_sample_args(), "job_queues": {"gpu": "q"}})


def _sample_args():
    return dict(region="us-east-1", bucket_name="b", job_queues={"cpu": "q"}, job_role_arn="j", execution_role_arn="e",
                step_functions_role_arn="s", state_table_name="t", state_machine_prefix="p-", events_role_arn="v",
                execution_log_group_arn="l")


def test_layers_merge_and_conflicts_are_refused():
    metadata = {"METAFLOW_DEFAULT_METADATA": "service", "METAFLOW_SERVICE_URL": "https://x"}
    merged = metaflow_config.merge_layers({"compute": SAMPLE, "metadata": metadata})
    assert merged["METAFLOW_SERVICE_URL"] == "https://x" and merged["METAFLOW_SFN_IAM_ROLE"].endswith("role/sfn")
    assert list(merged) == sorted(merged)
    with pytest.raises(ValueError, match="METAFLOW_DEFAULT_DATASTORE is set by layers 'compute' and 'other'"):
        metaflow_config.merge_layers({"compute": SAMPLE, "other": {"METAFLOW_DEFAULT_DATASTORE": "local"}})


def test_parse_document_rejects_non_flat_json():
    with pytest.raises(ValueError, match="string keys and values"):
        metaflow_config.parse_document('{"A": {"B": 1}}', source="x")
    with pytest.raises(ValueError, match="not valid JSON"):
        metaflow_config.parse_document("{", source="x")


@pytest.fixture
def aws(monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("ssm", region_name="us-east-1")


def test_cli_prints_the_deployed_config(aws):
    aws.put_parameter(Name="/dsstack/demo/vision/metaflow/config", Type="String", Value=json.dumps(SAMPLE))
    result = CliRunner().invoke(app, ["metaflow-config", "--team", "vision", "--config",
                                      str(ROOT / "config/example.yaml")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == SAMPLE


def test_cli_explains_a_missing_deployment_and_an_unknown_team(aws):
    result = CliRunner().invoke(app, ["metaflow-config", "--team", "vision", "-c", str(ROOT / "config/example.yaml")])
    assert result.exit_code == 1 and "/dsstack/demo/vision/metaflow/config not found" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(app, ["metaflow-config", "--team", "nobody", "-c", str(ROOT / "config/example.yaml")])
    assert result.exit_code == 2 and "no team 'nobody'" in result.output


def test_written_profile_is_what_metaflow_imports_and_reads(aws, tmp_path, monkeypatch):
    aws.put_parameter(Name="/dsstack/demo/vision/metaflow/config", Type="String", Value=json.dumps(SAMPLE))
    exported = tmp_path / "vision.json"
    result = CliRunner().invoke(app, ["metaflow-config", "-t", "vision", "-c", str(ROOT / "config/example.yaml"),
                                      "--output", str(exported)])
    assert result.exit_code == 0, result.output
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "METAFLOW_HOME": str(home), "USERNAME": "tester"}
    env.pop("METAFLOW_PROFILE", None)
    # (`configure import --profile P` only overwrites an existing profile; the default one is new here.)
    subprocess.run([sys.executable, "-m", "metaflow.cmd.main_cli", "configure", "import", str(exported)],
                   env=env, check=True, capture_output=True, timeout=120)
    assert json.loads((home / "config.json").read_text()) == SAMPLE
    probe = ("from metaflow import metaflow_config as c; import json; print(json.dumps([c.DEFAULT_DATASTORE, "
             "c.BATCH_JOB_QUEUE, c.SFN_IAM_ROLE, c.SFN_DYNAMO_DB_TABLE, c.SFN_STATE_MACHINE_PREFIX, c.BATCH_EMIT_TAGS]))")
    out = subprocess.run([sys.executable, "-c", probe], env=env, check=True,
                         capture_output=True, text=True, timeout=120).stdout
    assert json.loads(out.strip().splitlines()[-1]) == [
        "s3", "dsstack-dev-alpha-cpu", SAMPLE["METAFLOW_SFN_IAM_ROLE"], "state", "dsstack-dev-alpha-", True]


def test_profile_option_writes_a_profile_metaflow_reads(aws, tmp_path, monkeypatch):
    aws.put_parameter(Name="/dsstack/demo/vision/metaflow/config", Type="String", Value=json.dumps(SAMPLE))
    monkeypatch.setenv("METAFLOW_HOME", str(tmp_path))
    result = CliRunner().invoke(app, ["metaflow-config", "-t", "vision", "-c", str(ROOT / "config/example.yaml"),
                                      "--profile", "vision"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "config_vision.json").read_text()) == SAMPLE
    env = {**os.environ, "METAFLOW_HOME": str(tmp_path), "METAFLOW_PROFILE": "vision", "USERNAME": "tester"}
    out = subprocess.run([sys.executable, "-c", "from metaflow import metaflow_config as c; print(c.SFN_IAM_ROLE)"],
                         env=env, check=True, capture_output=True, text=True, timeout=120).stdout
    assert out.strip().splitlines()[-1] == SAMPLE["METAFLOW_SFN_IAM_ROLE"]
