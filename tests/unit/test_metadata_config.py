"""dsstack/metadata_config.py: the metadata layer's Metaflow keys and the API key value read at runtime."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from dsstack import metadata_config


def test_layer_keys_switch_metaflow_to_the_service():
    assert metadata_config.metaflow_keys("https://x.example/v1/") == {
        "METAFLOW_DEFAULT_METADATA": "service", "METAFLOW_SERVICE_URL": "https://x.example/v1/"}


def test_the_keys_are_ones_metaflow_reads():
    import metaflow.metaflow_config as mf

    for key in (*metadata_config.metaflow_keys("u"), metadata_config.AUTH_KEY):
        assert hasattr(mf, key.removeprefix("METAFLOW_")), key


@mock_aws
def test_complete_adds_the_generated_key_value_read_through_ssm_and_api_gateway():
    session = boto3.Session(region_name="us-east-1")
    key = session.client("apigateway").create_api_key(name="dsstack-demo-vision-metadata", enabled=True)
    session.client("ssm").put_parameter(Name="/dsstack/demo/vision/metadata/api-key-id", Value=key["id"],
                                        Type="String")
    published = {"METAFLOW_DEFAULT_METADATA": "service", "METAFLOW_SERVICE_URL": "https://x/v1/"}
    ready = metadata_config.complete(published, session, "demo", "vision")
    assert ready["METAFLOW_SERVICE_AUTH_KEY"] == key["value"] and len(key["value"]) >= 20
    assert published == {"METAFLOW_DEFAULT_METADATA": "service", "METAFLOW_SERVICE_URL": "https://x/v1/"}
    # Without the service (local metadata) nothing is looked up or added.
    assert metadata_config.complete({"METAFLOW_DEFAULT_DATASTORE": "s3"}, session, "demo", "other") == {
        "METAFLOW_DEFAULT_DATASTORE": "s3"}


@mock_aws
def test_a_team_without_the_service_gets_a_clear_error():
    session = boto3.Session(region_name="us-east-1")
    with pytest.raises(metadata_config.MetadataServiceMissing, match="demo-vision-metadata"):
        metadata_config.auth_keys(session, "demo", "vision")


@mock_aws
def test_cli_delivers_the_key_ready_to_use(monkeypatch, tmp_path):
    import json
    from pathlib import Path

    from typer.testing import CliRunner

    from dsstack.cli import app

    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    session = boto3.Session(region_name="us-east-1")
    key = session.client("apigateway").create_api_key(name="k", enabled=True)
    ssm = session.client("ssm")
    ssm.put_parameter(Name="/dsstack/demo/vision/metadata/api-key-id", Value=key["id"], Type="String")
    ssm.put_parameter(Name="/dsstack/demo/vision/metaflow/config", Type="String", Value=json.dumps(
        {"METAFLOW_DEFAULT_METADATA": "service", "METAFLOW_SERVICE_URL": "https://x/v1/"}))
    config = Path(__file__).resolve().parents[2] / "config" / "example.yaml"
    result = CliRunner().invoke(app, ["metaflow-config", "-t", "vision", "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["METAFLOW_SERVICE_AUTH_KEY"] == key["value"]
