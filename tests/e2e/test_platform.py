"""The platform deployed into the embedded emulator, driven with real clients (boto3, Metaflow, CDK CLI).

Tests run in file order and share one deployment (tests/e2e/conftest.py): reads first, then the update
path, the destroy path, and the fault path last (it replaces the emulator).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dsstack.local import emulator
from dsstack.local.deploy import destroy
from tests.e2e.conftest import ROOT, Deployment

pytestmark = pytest.mark.e2e
TEAMS = ("vision", "forecasting")


def test_every_stack_deployed_and_verified(deployment: Deployment) -> None:
    report = deployment.result.report
    assert report is not None and not report.problems
    assert {"demo-network", "demo-vision-data", "demo-forecasting-data"} <= set(report.stacks)
    # UPDATE_COMPLETE: test_hosting_emulator.py (earlier in file order) redeploys the hosting stack.
    assert {stack["status"] for stack in report.stacks.values()} <= {"CREATE_COMPLETE", "UPDATE_COMPLETE"}
    assert report.checked["AWS::S3::Bucket"] >= 3 and report.checked["AWS::DynamoDB::Table"] >= 8
    assert "s3://" in deployment.result.summary and "AWS_ENDPOINT_URL" in deployment.result.summary


@pytest.mark.parametrize("team", TEAMS)
def test_team_bucket_keeps_versions(deployment: Deployment, team: str) -> None:
    s3 = deployment.session.client("s3")
    bucket = deployment.bucket(team)
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    s3.put_object(Bucket=bucket, Key="data/e2e.txt", Body=b"first")
    s3.put_object(Bucket=bucket, Key="data/e2e.txt", Body=b"second")
    assert s3.get_object(Bucket=bucket, Key="data/e2e.txt")["Body"].read() == b"second"
    versions = s3.list_object_versions(Bucket=bucket, Prefix="data/e2e.txt")["Versions"]
    assert len(versions) == 2
    oldest = next(v for v in versions if not v["IsLatest"])
    assert s3.get_object(Bucket=bucket, Key="data/e2e.txt", VersionId=oldest["VersionId"])["Body"].read() == b"first"


@pytest.mark.parametrize("team", TEAMS)
def test_catalog_items_and_ssm_coordinates(deployment: Deployment, team: str) -> None:
    ssm = deployment.session.client("ssm")
    params = {p["Name"].rsplit(f"/dsstack/demo/{team}/", 1)[1]: p["Value"] for p in ssm.get_parameters_by_path(
        Path=f"/dsstack/demo/{team}/", Recursive=True)["Parameters"]}
    outputs = deployment.outputs()[f"demo-{team}-data"]
    assert params["bucket-name"] == outputs["BucketName"]
    assert params["tables/catalog"] == outputs["TablesCatalog"]
    assert params["kms-key-arn"].startswith("arn:aws:kms:")
    table = deployment.session.resource("dynamodb").Table(params["tables/catalog"])
    table.put_item(Item={"pk": "model#churn", "sk": "v#0001", "gsi1pk": "models", "gsi1sk": "churn", "team": team})
    assert table.get_item(Key={"pk": "model#churn", "sk": "v#0001"})["Item"]["team"] == team


def _flow_env(deployment: Deployment, bucket: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "METAFLOW_"))}
    env.update(deployment.emulator.client_env())
    env.update({
        "METAFLOW_DEFAULT_DATASTORE": "s3", "METAFLOW_DEFAULT_METADATA": "local",
        "METAFLOW_DATASTORE_SYSROOT_S3": f"s3://{bucket}/metaflow",
        "METAFLOW_DATATOOLS_S3ROOT": f"s3://{bucket}/data",
        "METAFLOW_S3_ENDPOINT_URL": deployment.emulator.endpoint,
        "METAFLOW_HOME": str(home), "USERNAME": "e2e", "HOME": str(home),
    })
    return env


def test_metaflow_foreach_flow_uses_only_its_team_bucket(deployment: Deployment, tmp_path: Path) -> None:
    vision, forecasting = deployment.bucket("vision"), deployment.bucket("forecasting")
    run = subprocess.run([sys.executable, str(ROOT / "tests" / "flows" / "foreach_flow.py"), "--no-pylint", "run"],
                         cwd=tmp_path, env=_flow_env(deployment, vision, tmp_path), capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    s3 = deployment.session.client("s3")
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=vision, Prefix="metaflow/")
            for o in page.get("Contents", [])]
    assert any(k.startswith("metaflow/ForeachFlow/") for k in keys), keys[:10]
    assert any("/data/" in k for k in keys), "artifacts (content-addressed data) are in team vision's bucket"
    assert s3.list_objects_v2(Bucket=forecasting, Prefix="metaflow/")["KeyCount"] == 0


def test_update_adds_a_team_and_keeps_data(deployment: Deployment, e2e_dir: Path) -> None:
    s3 = deployment.session.client("s3")
    vision = deployment.bucket("vision")
    before = s3.list_object_versions(Bucket=vision, Prefix="data/e2e.txt")["Versions"]
    grown = e2e_dir / "e2e-example.yaml"
    grown.write_text(grown.read_text() + "  - name: nlp\n")
    deployment.redeploy(grown)
    assert deployment.bucket("vision") == vision, "the datastore bucket must not be replaced"
    after = s3.list_object_versions(Bucket=vision, Prefix="data/e2e.txt")["Versions"]
    assert {v["VersionId"] for v in after} == {v["VersionId"] for v in before}
    assert "demo-nlp-data" in deployment.outputs()
    catalog = deployment.session.resource("dynamodb").Table(deployment.outputs()["demo-vision-data"]["TablesCatalog"])
    assert catalog.get_item(Key={"pk": "model#churn", "sk": "v#0001"})["Item"]["team"] == "vision"


def _retained(deployment: Deployment) -> dict[str, Any]:
    outputs = deployment.outputs()
    return {team: outputs[f"demo-{team}-data"] for team in TEAMS}


def test_destroy_keeps_retained_resources_and_redeploy_works(deployment: Deployment) -> None:
    retained = _retained(deployment)
    cfn = deployment.session.client("cloudformation")
    # The data stacks are termination-protected (RETAIN): an operator lifts that first, in AWS as here.
    for stack in cfn.describe_stacks()["Stacks"]:
        if stack.get("EnableTerminationProtection"):
            cfn.update_termination_protection(StackName=stack["StackName"], EnableTerminationProtection=False)
    destroy(deployment.config_path, "local", state_dir=deployment.state_dir, echo=lambda _: None)
    assert [s["StackName"] for s in cfn.describe_stacks()["Stacks"]] == ["CDKToolkit"]
    s3, ddb, kms = (deployment.session.client(n) for n in ("s3", "dynamodb", "kms"))
    for team, coordinates in retained.items():
        assert s3.get_object(Bucket=coordinates["BucketName"], Key="data/e2e.txt")["Body"].read() == b"second"
        item = ddb.get_item(TableName=coordinates["TablesCatalog"], Key={"pk": {"S": "model#churn"},
                                                                          "sk": {"S": "v#0001"}})
        assert item["Item"]["team"]["S"] == team
        assert kms.describe_key(KeyId=coordinates["KmsKeyArn"])["KeyMetadata"]["Enabled"] is True
    result = deployment.redeploy()
    assert result.report is not None and all(s["status"] == "CREATE_COMPLETE" for s in result.report.stacks.values())


def test_killed_emulator_fails_clearly_and_next_deploy_recovers(deployment: Deployment) -> None:
    running = deployment.emulator
    command = [sys.executable, "-m", "dsstack.local", "deploy", "--config", str(deployment.config_path),
               "--target", "local", "--state-dir", str(deployment.state_dir)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    # Force a real deploy (the stacks exist): a changed config makes the CLI create change sets.
    deployment.config_path.write_text(deployment.config_path.read_text() + "  - name: fault\n")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + 120
    assert process.stdout is not None
    for line in process.stdout:
        if "creating CloudFormation changeset" in line or "deploying..." in line:
            os.kill(running.pid, signal.SIGKILL)
            break
        assert time.monotonic() < deadline, "the deploy never reached CloudFormation"
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 1
    assert "the emulator" in stderr and "stopped during the operation" in stderr and "make deploy" in stderr
    assert "Traceback" not in stderr
    assert emulator.status(deployment.state_dir) is None
    result = deployment.redeploy()
    assert {"demo-fault-data", "demo-vision-data"} <= set(result.report.stacks)
