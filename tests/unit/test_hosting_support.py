"""Fixtures for the hosting tests (no tests in here): a deployed team's endpoints, faked in moto.

moto 5.2.5 implements CreateEndpoint but not UpdateEndpoint; the emulator's patch adds it, and
`install_update_endpoint` below applies that patch in-process and records each call so tests can check the
blue/green policy and the rollback alarms that were sent.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

sys.path.insert(0, str(Path(__file__).parent))
from test_catalog_support import CATALOG_TABLE, create_catalog_table

from dsstack import naming
from dsstack.hosting import names

ENV, TEAM = "demo", "vision"
BUCKET = "dsstack-demo-vision-data"
SM_MODEL, ECS_MODEL = "churn", "dashboard"
ROLE_ARN = "arn:aws:iam::123456789012:role/sagemaker-execution"
CLUSTER = "dsstack-demo-vision-cluster"


def install_update_endpoint(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The emulator's UpdateEndpoint (dsstack/local/patches/sagemaker.py) in this process, recording each call."""
    from moto.sagemaker.models import SageMakerModelBackend

    from dsstack.local.patches.sagemaker import patch_sagemaker_endpoint_names_and_update

    patch_sagemaker_endpoint_names_and_update()  # idempotent: sets the same functions again
    calls: list[dict[str, Any]] = []
    update_endpoint = SageMakerModelBackend.update_endpoint

    def recording_update_endpoint(self: Any, endpoint_name: str, endpoint_config_name: str,
                                  deployment_config: dict[str, Any] | None) -> Any:
        endpoint = update_endpoint(self, endpoint_name, endpoint_config_name, deployment_config)
        calls.append({"EndpointName": endpoint_name, "EndpointConfigName": endpoint_config_name,
                      "DeploymentConfig": deployment_config})
        return endpoint

    monkeypatch.setattr(SageMakerModelBackend, "update_endpoint", recording_update_endpoint)
    return calls


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto for every AWS call, with fake credentials so nothing can reach a real account."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                        "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "DSSTACK_MODEL_VERSIONS"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        yield


@pytest.fixture
def atomic_moto_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """One moto request at a time (moto 5.2.5 is not thread-safe; DynamoDB applies each request atomically).
    The races the tests are about (read the serving version, then write) still interleave across threads."""
    from moto.core.botocore_stubber import BotocoreStubber

    lock = threading.Lock()
    original = BotocoreStubber.process_request

    def process_request_atomically(self: Any, request: Any) -> Any:
        with lock:
            return original(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", process_request_atomically)


def put_parameter(key: str, value: str) -> None:
    boto3.client("ssm").put_parameter(Name=naming.ssm_parameter_name(ENV, TEAM, key), Value=value, Type="String",
                                      Overwrite=True)


def register_version(model: str, n: int, *, key: str | None = None) -> Any:
    """Upload an object under models/<model>/ and register it as the model's next catalog version."""
    from dsstack_catalog import Catalog, ObjectVersion

    key = key or f"models/{model}/run-{n}/model.tar.gz"
    put = boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=f"model {model} {n}".encode())
    obj = ObjectVersion(bucket=BUCKET, key=key, s3_version_id=put["VersionId"], sequencer=f"{0x617F0829 + n:X}",
                        size=10, etag=put["ETag"].strip('"'), created_at=datetime(2024, 5, 1, 12, n, tzinfo=UTC),
                        kind="model")
    return Catalog(CATALOG_TABLE).register_model_version(model, obj).version


def model_env(version: int) -> dict[str, str]:
    return {names.ENV_MODEL_NAME: SM_MODEL, names.ENV_MODEL_VERSION: str(version)}


@pytest.fixture
def deployed(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The team as `cdk deploy` leaves it: data coordinates, catalog with 3 versions per model, a serverless
    SageMaker endpoint and an ECS service both serving version 1, and their SSM parameters."""
    calls = install_update_endpoint(monkeypatch)
    create_catalog_table()
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    put_parameter(names.CATALOG_TABLE_KEY, CATALOG_TABLE)
    put_parameter(names.BUCKET_KEY, BUCKET)
    versions = {m: [register_version(m, n) for n in (1, 2, 3)] for m in (SM_MODEL, ECS_MODEL)}

    sm = boto3.client("sagemaker")
    endpoint = names.endpoint_name(ENV, TEAM, SM_MODEL)
    v1 = versions[SM_MODEL][0]
    sm.create_model(ModelName="initial-model", ExecutionRoleArn=ROLE_ARN, PrimaryContainer={
        "Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
        "ModelDataUrl": f"s3://{BUCKET}/{v1.object.key}", "Environment": model_env(1)})
    sm.create_endpoint_config(EndpointConfigName="initial-config", ProductionVariants=[{
        "VariantName": names.VARIANT_NAME, "ModelName": "initial-model", "InitialVariantWeight": 1.0,
        "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}])
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName="initial-config")
    alarms = ",".join(names.alarm_name(ENV, TEAM, SM_MODEL, w) for w in ("5xx", "latency"))
    for field, value in {names.PARAM_KIND: "sagemaker-serverless", names.PARAM_ENDPOINT_NAME: endpoint,
                         names.PARAM_URL: f"https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/{endpoint}/"
                         "invocations", names.PARAM_ARN: f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{endpoint}",
                         names.PARAM_ALARMS: alarms}.items():
        put_parameter(names.model_key(SM_MODEL, field), value)

    ecs = boto3.client("ecs")
    ecs.create_cluster(clusterName=CLUSTER)
    service_name = names.endpoint_name(ENV, TEAM, ECS_MODEL)
    task = ecs.register_task_definition(
        family="dsstack-demo-vision-dashboard", networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
        cpu="256", memory="512", taskRoleArn="arn:aws:iam::123456789012:role/task",
        executionRoleArn="arn:aws:iam::123456789012:role/execution",
        containerDefinitions=[{"name": names.CONTAINER_NAME, "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/"
                               "dsstack-demo-vision:v1", "essential": True,
                               "portMappings": [{"containerPort": 8080}],
                               "environment": [{"name": names.ENV_MODEL_NAME, "value": ECS_MODEL},
                                               {"name": names.ENV_MODEL_VERSION, "value": "1"}]}],
    )["taskDefinition"]
    service = ecs.create_service(cluster=CLUSTER, serviceName=service_name, taskDefinition=task["taskDefinitionArn"],
                                 desiredCount=0, launchType="FARGATE")["service"]
    for field, value in {names.PARAM_KIND: "ecs", names.PARAM_ENDPOINT_NAME: service_name,
                         names.PARAM_URL: "http://internal-dash.us-east-1.elb.amazonaws.com",
                         names.PARAM_ARN: service["serviceArn"], names.PARAM_CLUSTER: CLUSTER,
                         names.PARAM_ALARMS: names.alarm_name(ENV, TEAM, ECS_MODEL, "5xx")}.items():
        put_parameter(names.model_key(ECS_MODEL, field), value)
    yield {"versions": versions, "update_calls": calls, "endpoint": endpoint, "service": service_name,
           "initial_task": task["taskDefinitionArn"]}
