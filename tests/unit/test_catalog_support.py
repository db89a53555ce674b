"""Shared helpers and fixtures for the catalog, versioning and alerts tests (no tests in here).

Event builders follow the examples in the AWS documentation of each event:
- S3 -> EventBridge "Object Created": AmazonS3/latest/userguide/ev-events.html
- "Step Functions Execution Status Change": step-functions/latest/dg/cw-events.html
- "Batch Job State Change": batch/latest/userguide/batch_job_events.html
- "SageMaker Endpoint State Change": sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html
- AWS Budgets notification through SNS (plain text body, as Budgets sends it)
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = "123456789012"
BUCKET = "dsstack-demo-vision-data"
CATALOG_TABLE = "dsstack-demo-vision-catalog"
IDEMPOTENCY_TABLE = "dsstack-demo-vision-idempotency"
STATE_MACHINE_PREFIX = "dsstack-demo-vision-"


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that Powertools reads."""

    function_name: str = "dsstack-demo-vision-versioning"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:dsstack-demo-vision-versioning"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def load_handler(function: str) -> Any:
    """Import lambda/<function>/handler.py under a unique module name (both functions name it handler.py)."""
    name = f"dsstack_lambda_{function}_handler"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "lambda" / function / "handler.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------------------------- AWS
@contextmanager
def mocked_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto for every AWS call in the block, with fake credentials so nothing can reach a real account."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield


def serialize_moto_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make moto execute one request at a time, as DynamoDB executes each request atomically.

    moto 5.2.5 is not thread-safe: concurrent requests raised "dictionary changed size during iteration"
    inside moto and left transactions half applied (counter moved, version item missing). Serializing
    requests inside moto keeps what the concurrency tests are about: the client-side races between
    requests (read counter, then transact) still interleave freely across threads.
    """
    from moto.core.botocore_stubber import BotocoreStubber

    lock = threading.Lock()
    original = BotocoreStubber.process_request

    def process_request_atomically(self: Any, request: Any) -> Any:
        with lock:
            return original(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", process_request_atomically)


def create_catalog_table(name: str = CATALOG_TABLE) -> None:
    """The catalog table exactly as the data stack defines it (schema fixed by the foundation issue)."""
    boto3.client("dynamodb").create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "gsi1pk", "gsi1sk")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "gsi1",
                "KeySchema": [
                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    boto3.client("dynamodb").update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"}
    )


def create_idempotency_table(name: str = IDEMPOTENCY_TABLE) -> None:
    boto3.client("dynamodb").create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )


def scan_all(table: str) -> list[dict[str, Any]]:
    client = boto3.client("dynamodb")
    items: list[dict[str, Any]] = []
    request: dict[str, Any] = {"TableName": table}
    while True:
        response = client.scan(**request)
        items += response["Items"]
        if "LastEvaluatedKey" not in response:
            return items
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


# ------------------------------------------------------------------------------------------ events
def eventbridge_event(
    source: str,
    detail_type: str,
    detail: dict[str, Any],
    resources: list[str],
    event_id: str | None = None,
    time: str = "2024-05-01T12:05:00Z",
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": ACCOUNT,
        "time": time,
        "region": REGION,
        "resources": resources,
        "detail": detail,
    }


def object_created_event(
    key: str,
    *,
    version_id: str | None = "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
    sequencer: str | None = "617f08299329d189",
    size: int | None = 5,
    bucket: str = BUCKET,
    time: str = "2024-05-01T12:00:00Z",
    event_id: str | None = None,
) -> dict[str, Any]:
    obj: dict[str, Any] = {"key": key, "etag": "b1946ac92492d2347c6235b4d2611184"}
    if size is not None:
        obj["size"] = size
    if version_id is not None:
        obj["version-id"] = version_id
    if sequencer is not None:
        obj["sequencer"] = sequencer
    detail = {
        "version": "0",
        "bucket": {"name": bucket},
        "object": obj,
        "request-id": "N4N7GDK58NMKJ12R",
        "requester": ACCOUNT,
        "source-ip-address": "1.2.3.4",
        "reason": "PutObject",
    }
    return eventbridge_event("aws.s3", "Object Created", detail, [f"arn:aws:s3:::{bucket}"], event_id, time)


def execution_status_event(
    flow: str,
    execution: str,
    status: str,
    *,
    start_ms: int = 1_714_564_800_000,
    stop_ms: int | None = None,
    error: str | None = None,
    cause: str | None = None,
    state_machine: str | None = None,
    redrive_count: int | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    machine = state_machine or f"{STATE_MACHINE_PREFIX}_{flow}"
    execution_arn = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{machine}:{execution}"
    detail: dict[str, Any] = {
        "executionArn": execution_arn,
        "stateMachineArn": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{machine}",
        "name": execution,
        "status": status,
        "startDate": start_ms,
        "stopDate": stop_ms,
        "input": "{}",
        "inputDetails": {"included": True},
        "output": None,
        "outputDetails": None,
    }
    if error is not None:
        detail["error"] = error
    if cause is not None:
        detail["cause"] = cause
    if redrive_count is not None:
        detail["redriveCount"] = redrive_count
    return eventbridge_event("aws.states", "Step Functions Execution Status Change", detail, [execution_arn], event_id)


# ------------------------------------------------------------------------------------ function setups
class RefusalLog(logging.Handler):
    """Collects the log records of refused events (those carrying a `refusal` field)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if hasattr(record, "refusal"):
            self.records.append(record)


@contextmanager
def refusals_logged_by(logger_name: str) -> Iterator[list[logging.LogRecord]]:
    collector = RefusalLog()
    logging.getLogger(logger_name).addHandler(collector)
    try:
        yield collector.records
    finally:
        logging.getLogger(logger_name).removeHandler(collector)


@dataclass
class Versioning:
    catalog: Any
    refusals: list[logging.LogRecord]
    context: LambdaContext

    def invoke(self, event: Any) -> dict[str, Any]:
        return load_handler("versioning").lambda_handler(event, self.context)


@contextmanager
def versioning_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[Versioning]:
    """moto with the catalog and idempotency tables, and the versioning function's environment."""
    from dsstack_catalog import Catalog

    handler = load_handler("versioning")
    with mocked_aws(monkeypatch):
        create_catalog_table()
        create_idempotency_table()
        for name, value in {
            "CATALOG_TABLE_NAME": CATALOG_TABLE,
            "IDEMPOTENCY_TABLE_NAME": IDEMPOTENCY_TABLE,
            "STATE_MACHINE_PREFIX": STATE_MACHINE_PREFIX,
            "BUCKET_NAME": BUCKET,
        }.items():
            monkeypatch.setenv(name, value)
        handler.runtime.cache_clear()  # clients and the idempotency cache belong to one moto backend
        try:
            with refusals_logged_by(handler.logger.name) as refusals:
                yield Versioning(Catalog(CATALOG_TABLE), refusals, LambdaContext())
        finally:
            handler.runtime.cache_clear()
