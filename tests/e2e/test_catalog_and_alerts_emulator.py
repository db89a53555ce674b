"""Versioning and alerts end to end in the embedded emulator: the deployed rules and Lambda zips, not in-process.

S3 -> EventBridge -> versioning Lambda -> catalog; Step Functions status event -> versioning (run record) and
alerts Lambda -> team SNS topic -> an SQS subscription this test reads. moto's Step Functions does not emit
status-change events, so the event is put on the bus in exactly the shape AWS sends.
Runs before tests/e2e/test_platform.py's update/destroy tests (file order) on the shared deployment.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from dsstack.local.server import ACCOUNT_ID
from tests.e2e.conftest import Deployment

pytestmark = pytest.mark.e2e
ACCOUNT_ARN = f"arn:aws:states:us-east-1:{ACCOUNT_ID}"  # the emulator's account and region
T = TypeVar("T")


def _eventually(check: Callable[[], T], what: str, timeout: float = 90.0) -> T:
    """The Lambdas run asynchronously (EventBridge targets): poll until `check` returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen within {timeout:.0f} s")
        time.sleep(0.5)


def _catalog(deployment: Deployment, team: str) -> Any:
    from dsstack_catalog import Catalog

    table = deployment.session.client("ssm").get_parameter(Name=f"/dsstack/demo/{team}/tables/catalog")
    return Catalog(table["Parameter"]["Value"], client=deployment.session.client("dynamodb"))


def _execution_event(*, flow: str, execution: str, status: str, team: str = "vision") -> dict[str, Any]:
    """A "Step Functions Execution Status Change" event as AWS sends it for a Metaflow state machine."""
    machine = f"dsstack-demo-{team}_{flow}"
    started = datetime.now(UTC) - timedelta(minutes=3)
    return {
        "Source": "aws.states", "DetailType": "Step Functions Execution Status Change",
        "Resources": [f"{ACCOUNT_ARN}:execution:{machine}:{execution}"],
        "Detail": json.dumps({
            "executionArn": f"{ACCOUNT_ARN}:execution:{machine}:{execution}",
            "stateMachineArn": f"{ACCOUNT_ARN}:stateMachine:{machine}",
            "name": execution, "status": status,
            "startDate": int(started.timestamp() * 1000), "stopDate": int(time.time() * 1000),
            "input": "{}", "output": None, "inputDetails": {"included": True}, "outputDetails": None,
            "error": "States.TaskFailed" if status == "FAILED" else None,
            "cause": "train step: CUDA out of memory" if status == "FAILED" else None,
            "redriveCount": 0, "redriveStatus": "NOT_REDRIVABLE", "redriveStatusReason": "e2e",
        }),
    }


def test_new_model_objects_become_numbered_versions_in_their_team_catalog(deployment: Deployment) -> None:
    s3 = deployment.session.client("s3")
    model = f"e2e-{uuid.uuid4().hex[:6]}"
    keys = [f"models/{model}/run-{n}/model.tar.gz" for n in (1, 2)]  # one key per version (docs/catalog.md)
    puts = {s3.put_object(Bucket=deployment.bucket("vision"), Key=key, Body=body)["VersionId"]: (key, len(body))
            for key, body in zip(keys, (b"one", b"two!"), strict=True)}
    s3.put_object(Bucket=deployment.bucket("forecasting"), Key=keys[0], Body=b"other team")
    vision = _catalog(deployment, "vision")

    versions = _eventually(lambda: (v := list(vision.model_versions(model, newest_first=False))) and len(v) >= 2 and v,
                           f"two catalog versions of {model}")
    # Numbered 1, 2 in the order the function registered them; each number stands for exactly one upload.
    assert [v.version for v in versions] == [1, 2]
    assert {v.object.s3_version_id: (v.object.key, v.object.size) for v in versions} == puts
    assert vision.latest_model_version(model).version == 2
    printed = deployment.cli("catalog", "versions", "--team", "vision", "--model", model, "--json")
    assert printed.returncode == 0, printed.stderr
    assert [json.loads(line)["version"] for line in printed.stdout.splitlines()] == [2, 1]
    # The forecasting bucket's object is forecasting's version 1 and never shows up in vision's catalog.
    forecasting = _eventually(lambda: list(_catalog(deployment, "forecasting").model_versions(model)),
                              "forecasting's own version")
    assert [(v.version, v.object.bucket) for v in forecasting] == [(1, deployment.bucket("forecasting"))]
    time.sleep(2)  # a duplicate or stray event would have landed by now
    assert len(list(vision.model_versions(model))) == 2


def test_metaflow_task_objects_are_attributed_to_their_run(deployment: Deployment) -> None:
    s3 = deployment.session.client("s3")
    run = str(int(time.time()))
    key = f"metaflow/E2EFlow/{run}/train/7/0.attempt.json"
    put = s3.put_object(Bucket=deployment.bucket("vision"), Key=key, Body=b'{"attempt": 0}')
    catalog = _catalog(deployment, "vision")
    (item,) = _eventually(lambda: list(catalog.object_versions(key)), f"catalog item of {key}")
    assert (item.flow, item.run_id, item.step, item.task) == ("E2EFlow", run, "train", "7")
    assert item.s3_version_id == put["VersionId"]
    assert [o.key for o in catalog.run_objects("E2EFlow", run)] == [key]


def _subscribe_queue(deployment: Deployment, topic_arn: str) -> str:
    sqs, sns = deployment.session.client("sqs"), deployment.session.client("sns")
    queue_url = sqs.create_queue(QueueName=f"e2e-alerts-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return queue_url


def _messages(deployment: Deployment, queue_url: str) -> list[dict[str, Any]]:
    sqs = deployment.session.client("sqs")
    received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    return [json.loads(m["Body"]) for m in received.get("Messages", [])]


def test_failed_execution_is_a_run_record_and_an_alert_on_the_team_topic(deployment: Deployment) -> None:
    vision_topic = deployment.outputs()["demo-vision-operations"]["AlertTopicArn"]
    forecasting_topic = deployment.outputs()["demo-forecasting-operations"]["AlertTopicArn"]
    vision_queue, forecasting_queue = (_subscribe_queue(deployment, t) for t in (vision_topic, forecasting_topic))
    execution = f"e2e-{uuid.uuid4().hex[:8]}"
    events = deployment.session.client("events")
    running = _execution_event(flow="TrainFlow", execution=execution, status="RUNNING")
    failed = _execution_event(flow="TrainFlow", execution=execution, status="FAILED")
    assert events.put_events(Entries=[running, failed])["FailedEntryCount"] == 0

    catalog = _catalog(deployment, "vision")
    (run,) = _eventually(lambda: [r for r in catalog.runs("TrainFlow") if r.status == "FAILED"
                                  and r.run_id == f"sfn-{execution}"], "the FAILED run record")
    assert (run.error, run.cause) == ("States.TaskFailed", "train step: CUDA out of memory")
    assert run.stopped_at is not None and run.started_at < run.stopped_at
    printed = deployment.cli("catalog", "runs", "--team", "vision", "--flow", "TrainFlow", "--json")
    assert printed.returncode == 0, printed.stderr
    lines = [json.loads(line) for line in printed.stdout.splitlines()]
    assert {(r["run"], r["status"], r["error"]) for r in lines} >= {(f"sfn-{execution}", "FAILED", "States.TaskFailed")}

    alerts = _eventually(lambda: _messages(deployment, vision_queue), "an alert on vision's topic")
    assert len(alerts) == 1, [a.get("Subject") for a in alerts]  # RUNNING is not an alert
    alert = alerts[0]
    assert alert["TopicArn"] == vision_topic
    assert alert["Subject"] == f"[dsstack] Flow TrainFlow run sfn-{execution} FAILED"
    assert "Cause: train step: CUDA out of memory" in alert["Message"]
    assert f"#/v2/executions/details/{ACCOUNT_ARN}:execution:dsstack-demo-vision_TrainFlow:{execution}" \
        in alert["Message"]
    assert _messages(deployment, forecasting_queue) == [], "another team's failure must not alert forecasting"


def test_a_machine_of_another_team_is_neither_recorded_nor_alerted(deployment: Deployment) -> None:
    # `dsstack-demo-vision2_...` shares vision's name prefix but not its `<prefix>_`: vision's rules ignore it.
    topic = deployment.outputs()["demo-vision-operations"]["AlertTopicArn"]
    queue = _subscribe_queue(deployment, topic)
    execution = f"e2e-{uuid.uuid4().hex[:8]}"
    foreign = _execution_event(flow="TrainFlow", execution=execution, status="FAILED", team="vision2")
    # A FAILED vision event after it: once its alert arrives, the foreign one has had its chance too.
    own = _execution_event(flow="OtherFlow", execution=execution, status="FAILED")
    deployment.session.client("events").put_events(Entries=[foreign, own])
    alerts = _eventually(lambda: _messages(deployment, queue), "vision's own alert")
    time.sleep(2)
    alerts += _messages(deployment, queue)
    assert [a["Subject"] for a in alerts] == [f"[dsstack] Flow OtherFlow run sfn-{execution} FAILED"]
    assert [r.run_id for r in _catalog(deployment, "vision").runs("TrainFlow")
            if r.run_id == f"sfn-{execution}"] == []


def _dead_letter_queues(deployment: Deployment) -> dict[str, str]:
    """Logical id of each glue function in vision's operations stack -> its dead-letter queue URL."""
    cfn, lam, sqs = (deployment.session.client(n) for n in ("cloudformation", "lambda", "sqs"))
    queues = {}
    for resource in cfn.describe_stack_resources(StackName="demo-vision-operations")["StackResources"]:
        if resource["ResourceType"] == "AWS::Lambda::Function":
            config = lam.get_function_configuration(FunctionName=resource["PhysicalResourceId"])
            queue_name = config["DeadLetterConfig"]["TargetArn"].rsplit(":", 1)[1]
            queues[resource["LogicalResourceId"]] = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    return queues


def test_a_malformed_event_is_retried_then_kept_in_each_dead_letter_queue(deployment: Deployment) -> None:
    queues = _dead_letter_queues(deployment)
    assert len(queues) == 2, queues  # versioning and alerts
    marker = f"poison-{uuid.uuid4().hex[:8]}"
    # Matches both rules (vision's state machine, FAILED) but has no executionArn, name or dates.
    poison = {"Source": "aws.states", "DetailType": "Step Functions Execution Status Change",
              "Resources": [], "Detail": json.dumps({
                  "stateMachineArn": f"{ACCOUNT_ARN}:stateMachine:dsstack-demo-vision_{marker}", "status": "FAILED"})}
    deployment.session.client("events").put_events(Entries=[poison])
    sqs = deployment.session.client("sqs")

    def dead_letters(url: str) -> list[dict[str, Any]]:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                  MessageAttributeNames=["All"]).get("Messages", [])
        return [m for m in got if marker in m["Body"]]

    for function, url in queues.items():
        (letter,) = _eventually(lambda url=url: dead_letters(url), f"the poison event in {function}'s DLQ")
        event = json.loads(letter["Body"])
        assert event["detail-type"] == "Step Functions Execution Status Change"  # the whole event is kept
        assert letter["MessageAttributes"]["ErrorMessage"]["StringValue"], "the error travels with the event"
    assert list(_catalog(deployment, "vision").runs(marker)) == [], "a malformed event writes nothing"


def test_failed_batch_jobs_and_endpoints_of_the_team_are_alerts(deployment: Deployment) -> None:
    topic = deployment.outputs()["demo-vision-operations"]["AlertTopicArn"]
    queue = _subscribe_queue(deployment, topic)
    marker = uuid.uuid4().hex[:6]
    batch_arn = f"arn:aws:batch:us-east-1:{ACCOUNT_ID}"
    job = {"Source": "aws.batch", "DetailType": "Batch Job State Change", "Detail": json.dumps({
        "jobArn": f"{batch_arn}:job/{marker}", "jobName": f"train-{marker}", "jobId": marker, "status": "FAILED",
        "jobQueue": f"{batch_arn}:job-queue/dsstack-demo-vision-gpu", "statusReason": "Essential container exited",
        "attempts": [{"container": {"exitCode": 137, "reason": "OutOfMemoryError: Container killed",
                                    "logStreamName": f"metaflow/default/{marker}"}}],
        "parameters": {"metaflow.flow_name": "TrainFlow", "metaflow.run_id": "sfn-x", "metaflow.step_name": "train",
                       "metaflow.task_id": "3"}})}
    endpoint = {"Source": "aws.sagemaker", "DetailType": "SageMaker Endpoint State Change", "Detail": json.dumps({
        "EndpointName": f"dsstack-demo-vision-churn{marker}", "EndpointStatus": "Failed",
        "FailureReason": "model container did not pass the ping health check"})}
    # Not vision's: another team's queue and endpoint with vision's name as prefix, and a succeeded job.
    others = [{**job, "Detail": job["Detail"].replace("dsstack-demo-vision-gpu", "dsstack-demo-vision2-gpu")},
              {**endpoint, "Detail": endpoint["Detail"].replace("dsstack-demo-vision-", "dsstack-demo-vision2-")},
              {**job, "Detail": job["Detail"].replace('"FAILED"', '"SUCCEEDED"')}]
    assert deployment.session.client("events").put_events(Entries=[*others, job, endpoint])["FailedEntryCount"] == 0

    alerts = _eventually(lambda: _messages(deployment, queue), "the Batch and SageMaker alerts")
    deadline = time.monotonic() + 30
    while len(alerts) < 2 and time.monotonic() < deadline:
        alerts += _messages(deployment, queue)
    time.sleep(2)
    alerts += _messages(deployment, queue)
    subjects = sorted(a["Subject"] for a in alerts)
    assert subjects == sorted([f"[dsstack] Batch job train-{marker} FAILED (TrainFlow/sfn-x/train)",
                               f"[dsstack] SageMaker endpoint dsstack-demo-vision-churn{marker} Failed"])
    bodies = "\n".join(a["Message"] for a in alerts)
    assert "exit code 137" in bodies and "ping health check" in bodies
