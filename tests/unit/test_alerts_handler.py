"""lambda/alerts/handler.py in-process against moto: the message for each event kind (read back through an
SQS subscription of the topic), duplicates, the chat webhook on a local HTTP server, refused events."""

from __future__ import annotations

import copy
import json
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from dsstack_events import PoisonEventError, UnexpectedEventError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
from test_catalog_support import (
    ACCOUNT,
    IDEMPOTENCY_TABLE,
    REGION,
    STATE_MACHINE_PREFIX,
    LambdaContext,
    create_idempotency_table,
    eventbridge_event,
    execution_status_event,
    load_handler,
    mocked_aws,
    refusals_logged_by,
)

handler = load_handler("alerts")
CONTEXT = LambdaContext(function_name="dsstack-demo-vision-alerts")
CAUSE = "Container exited with 137: OutOfMemoryError in step train"


# ------------------------------------------------------------------------------------------ events
def batch_job_event(status: str = "FAILED", *, metaflow: bool = True) -> dict[str, Any]:
    """After the example in batch/latest/userguide/batch_job_events.html, with a failed attempt."""
    job_id = "4c7599ae-0a82-49aa-ba5a-4727fcce14a8"
    parameters = {"metaflow.flow_name": "TrainFlow", "metaflow.run_id": "1714", "metaflow.step_name": "train",
                  "metaflow.task_id": "7", "metaflow.user": "alice"} if metaflow else {}
    detail = {
        "jobArn": f"arn:aws:batch:{REGION}:{ACCOUNT}:job/{job_id}",
        "jobName": "alice-TrainFlow-1714-train-7-0",
        "jobId": job_id,
        "jobQueue": f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/dsstack-demo-vision-cpu",
        "status": status,
        "statusReason": "Essential container in task exited",
        "attempts": [{"container": {"exitCode": 137, "reason": "OutOfMemoryError: Container killed due to memory usage",
                                    "logStreamName": "metaflow/default/abc"}, "statusReason": "Essential container"}],
        "createdAt": 1641944200058,
        "retryStrategy": {"attempts": 1, "evaluateOnExit": []},
        "dependsOn": [],
        "jobDefinition": f"arn:aws:batch:{REGION}:{ACCOUNT}:job-definition/metaflow:1",
        "parameters": parameters,
        "container": {"image": "python:3.11", "command": ["bash"], "exitCode": 137},
        "tags": {},
    }
    return eventbridge_event("aws.batch", "Batch Job State Change", detail, [detail["jobArn"]])


def endpoint_event(status: str = "FAILED") -> dict[str, Any]:
    """After the example in sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html (ms `time`)."""
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/dsstack-demo-vision-churn"
    detail = {
        "EndpointName": "dsstack-demo-vision-churn",
        "EndpointArn": arn,
        "EndpointConfigName": "dsstack-demo-vision-churn-v3",
        "ProductionVariants": [{"DesiredWeight": 1.0, "DesiredInstanceCount": 1.0}],
        "EndpointStatus": status,
        "FailureReason": "The primary container for production variant AllTraffic did not pass the ping health check.",
        "CreationTime": 1592411992203.0,
        "LastModifiedTime": 1592411994287.0,
        "Tags": {},
    }
    return eventbridge_event("aws.sagemaker", "SageMaker Endpoint State Change", detail, [arn], time="1583831889050")


BUDGET_MESSAGE = (
    "AWS Budget Notification May 01, 2024\nAWS Account 123456789012\n\nDear AWS Customer,\n\n"
    "You requested that we alert you when the ACTUAL Cost associated with your dsstack-demo-vision budget is "
    "greater than $500.00 for the current month. The ACTUAL Cost associated with this budget is $512.34. You can "
    "find additional details below and by accessing the AWS Budgets dashboard [1].\n\n"
    "Budget Name: dsstack-demo-vision\nBudget Type: Cost\nBudgeted Amount: $500.00\nAlert Type: ACTUAL\n"
    "Alert Threshold: > $500.00\nACTUAL Amount: $512.34\n\n[1] https://console.aws.amazon.com/billing/home#/budgets\n"
)


def sns_invocation(topic_arn: str, message: str, *, message_id: str = "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
                   attributes: dict | None = None) -> dict[str, Any]:
    """SNS -> Lambda invocation with one record (as SNS always sends)."""
    return {"Records": [{
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": f"{topic_arn}:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55",
        "Sns": {
            "Type": "Notification",
            "MessageId": message_id,
            "TopicArn": topic_arn,
            "Subject": "AWS Budgets: dsstack-demo-vision has exceeded your alert threshold",
            "Message": message,
            "Timestamp": "2024-05-01T19:20:37.147Z",
            "SignatureVersion": "1",
            "Signature": "EXAMPLE",
            "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000.pem",
            "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
            "MessageAttributes": attributes or {},
        },
    }]}


# ----------------------------------------------------------------------------------------- fixture
@dataclass
class Alerts:
    topic_arn: str
    intake_topic_arn: str
    queue_url: str
    refusals: list

    def invoke(self, event: Any) -> dict[str, Any]:
        return handler.lambda_handler(event, CONTEXT)

    def published(self) -> list[dict[str, Any]]:
        """Every message the alert topic delivered to its SQS subscriber, as SNS envelopes."""
        sqs, messages = boto3.client("sqs"), []
        while batch := sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", []):
            for message in batch:
                messages.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return messages


@pytest.fixture
def alerts(monkeypatch: pytest.MonkeyPatch) -> Iterator[Alerts]:
    with mocked_aws(monkeypatch):
        create_idempotency_table()
        sns, sqs = boto3.client("sns"), boto3.client("sqs")
        topic_arn = sns.create_topic(Name="dsstack-demo-vision-alerts")["TopicArn"]
        intake_arn = sns.create_topic(Name="dsstack-demo-vision-budget-intake")["TopicArn"]
        queue_url = sqs.create_queue(QueueName="alert-reader")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
        monkeypatch.setenv("ALERT_TOPIC_ARN", topic_arn)
        monkeypatch.setenv("IDEMPOTENCY_TABLE_NAME", IDEMPOTENCY_TABLE)
        monkeypatch.setenv("STATE_MACHINE_PREFIX", STATE_MACHINE_PREFIX)
        monkeypatch.delenv("CHAT_WEBHOOK_SECRET_ARN", raising=False)
        handler.runtime.cache_clear()
        try:
            with refusals_logged_by(handler.logger.name) as refusals:
                yield Alerts(topic_arn, intake_arn, queue_url, refusals)
        finally:
            handler.runtime.cache_clear()


# ------------------------------------------------------------------------------------------- messages
@pytest.mark.parametrize("status", ["FAILED", "TIMED_OUT", "ABORTED"])
def test_a_failed_execution_names_flow_run_error_cause_and_console(alerts: Alerts, status: str) -> None:
    event = execution_status_event("TrainFlow", "exec-42", status, stop_ms=1_714_564_900_000,
                                   error="States.TaskFailed", cause=CAUSE)
    result = alerts.invoke(event)
    (message,) = alerts.published()
    assert message["Subject"] == f"[dsstack] Flow TrainFlow run sfn-exec-42 {status}"
    execution_arn = event["detail"]["executionArn"]
    assert message["Message"] == "\n".join([
        f"Step Functions execution {status}.",
        "Flow: TrainFlow",
        f"Run: sfn-exec-42 (execution exec-42 of state machine {STATE_MACHINE_PREFIX}_TrainFlow)",
        "Error: States.TaskFailed",
        f"Cause: {CAUSE}",
        "Started 2024-05-01 12:00:00 UTC, stopped 2024-05-01 12:01:40 UTC",
        f"Console: https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1"
        f"#/v2/executions/details/{execution_arn}",
    ])
    assert message["MessageAttributes"]["dsstack-alert"]["Value"] == "execution"
    assert result["sns_message_id"] == message["MessageId"] and result["chat"] == "not configured"


def test_a_huge_cause_is_cut_short(alerts: Alerts) -> None:
    alerts.invoke(execution_status_event("TrainFlow", "e", "FAILED", cause="x" * 40_000))
    (message,) = alerts.published()
    assert "... (40000 characters)" in message["Message"] and len(message["Message"]) < 2_500


def test_a_failed_batch_job_names_the_metaflow_task_and_container_reason(alerts: Alerts) -> None:
    alerts.invoke(batch_job_event())
    (message,) = alerts.published()
    assert message["Subject"] == "[dsstack] Batch job alice-TrainFlow-1714-train-7-0 FAILED (TrainFlow/1714/train)"
    assert message["Message"].splitlines() == [
        "AWS Batch job FAILED in queue dsstack-demo-vision-cpu.",
        "Job: alice-TrainFlow-1714-train-7-0 (4c7599ae-0a82-49aa-ba5a-4727fcce14a8)",
        "Metaflow: flow TrainFlow, run 1714, step train, task 7",
        "Reason: Essential container in task exited",
        "Container: exit code 137, OutOfMemoryError: Container killed due to memory usage",
        "Log stream: metaflow/default/abc",
        "Console: https://us-east-1.console.aws.amazon.com/batch/home?region=us-east-1"
        "#jobs/detail/4c7599ae-0a82-49aa-ba5a-4727fcce14a8",
    ]


def test_a_non_metaflow_batch_job_says_so(alerts: Alerts) -> None:
    alerts.invoke(batch_job_event(metaflow=False))
    (message,) = alerts.published()
    assert message["Subject"] == "[dsstack] Batch job alice-TrainFlow-1714-train-7-0 FAILED"
    assert "Metaflow: (not a Metaflow job)" in message["Message"]


@pytest.mark.parametrize("status", ["FAILED", "Failed", "UPDATE_ROLLBACK_FAILED"])
def test_a_failed_endpoint_names_it_and_the_reason(alerts: Alerts, status: str) -> None:
    alerts.invoke(endpoint_event(status))
    (message,) = alerts.published()
    assert message["Subject"] == f"[dsstack] SageMaker endpoint dsstack-demo-vision-churn {status}"
    assert message["Message"].splitlines() == [
        f"SageMaker endpoint dsstack-demo-vision-churn is {status}.",
        "Endpoint config: dsstack-demo-vision-churn-v3",
        "Reason: The primary container for production variant AllTraffic did not pass the ping health check.",
        "Console: https://us-east-1.console.aws.amazon.com/sagemaker/home?region=us-east-1"
        "#/endpoints/dsstack-demo-vision-churn",
    ]


def test_a_budget_notification_becomes_a_short_alert(alerts: Alerts) -> None:
    alerts.invoke(sns_invocation(alerts.intake_topic_arn, BUDGET_MESSAGE))
    (message,) = alerts.published()
    assert message["Subject"] == "[dsstack] Budget dsstack-demo-vision: ACTUAL cost $512.34 is over > $500.00"
    assert message["Message"].splitlines() == [
        "AWS Budgets: the actual cost of budget dsstack-demo-vision is $512.34, over the alert threshold > $500.00 "
        "(budgeted $500.00).",
        "Console: https://us-east-1.console.aws.amazon.com/billing/home#/budgets",
    ]


def test_the_same_event_twice_alerts_once(alerts: Alerts) -> None:
    event = batch_job_event()
    first = alerts.invoke(event)
    assert alerts.invoke(copy.deepcopy(event)) == first
    handler.runtime.cache_clear()  # another container: DynamoDB's idempotency record decides
    alerts.invoke(copy.deepcopy(event))
    alerts.invoke(sns_invocation(alerts.intake_topic_arn, BUDGET_MESSAGE))
    alerts.invoke(sns_invocation(alerts.intake_topic_arn, BUDGET_MESSAGE))
    assert [m["MessageAttributes"]["dsstack-alert"]["Value"] for m in alerts.published()] == ["batch_job", "budget"]


def test_own_alerts_echoed_back_are_ignored_and_budgets_on_the_alert_topic_are_not_republished(alerts: Alerts) -> None:
    own = {"dsstack-alert": {"Type": "String", "Value": "execution"}}
    assert alerts.invoke(sns_invocation(alerts.topic_arn, "Step Functions execution FAILED.", attributes=own)) == {
        "skipped": "own alert"}
    result = alerts.invoke(sns_invocation(alerts.topic_arn, BUDGET_MESSAGE, message_id="other"))
    assert result["kind"] == "budget" and "sns_message_id" not in result
    assert alerts.published() == []


# -------------------------------------------------------------------------------------------- webhook
@dataclass
class ChatServer:
    status: int = 200
    received: list = field(default_factory=list)


@pytest.fixture
def chat_server() -> Iterator[tuple[ChatServer, str]]:
    """An incoming-webhook stand-in on 127.0.0.1 (never another address)."""
    state = ChatServer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append((self.path, self.headers["Content-Type"], json.loads(body)))
            self.send_response(state.status)
            self.end_headers()

        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_port}/hooks/T000/B000"
    finally:
        server.shutdown()
        server.server_close()


def use_webhook(monkeypatch: pytest.MonkeyPatch, secret_string: str) -> str:
    arn = boto3.client("secretsmanager").create_secret(Name="dsstack/demo/vision/chat", SecretString=secret_string)["ARN"]
    monkeypatch.setenv("CHAT_WEBHOOK_SECRET_ARN", arn)
    handler.runtime.cache_clear()
    return arn


def test_the_alert_is_posted_to_chat_and_the_url_is_cached(
    alerts: Alerts, chat_server: tuple[ChatServer, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, url = chat_server
    arn = use_webhook(monkeypatch, json.dumps({"url": url}))
    assert alerts.invoke(batch_job_event())["chat"] == "sent (200)"
    boto3.client("secretsmanager").delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    assert alerts.invoke(endpoint_event())["chat"] == "sent (200)"  # served from the cached URL
    (path, content_type, payload), _ = server.received
    assert (path, content_type) == ("/hooks/T000/B000", "application/json")
    assert payload["text"].startswith("*[dsstack] Batch job alice-TrainFlow-1714-train-7-0 FAILED")
    assert "Container: exit code 137" in payload["text"]
    assert len(alerts.published()) == 2


@pytest.mark.parametrize("failure", ["http 500", "connection refused", "bad secret"])
def test_a_chat_failure_never_loses_the_sns_alert(
    alerts: Alerts, chat_server: tuple[ChatServer, str], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, failure: str
) -> None:
    server, url = chat_server
    if failure == "http 500":
        server.status = 500
        use_webhook(monkeypatch, url)
    elif failure == "connection refused":
        use_webhook(monkeypatch, "http://127.0.0.1:9/closed")  # discard port: nothing listens
    else:
        use_webhook(monkeypatch, "ftp://example.invalid/hook")
    result = alerts.invoke(execution_status_event("TrainFlow", "e", "FAILED"))
    assert result["chat"] == "failed"
    (message,) = alerts.published()
    assert message["Subject"] == "[dsstack] Flow TrainFlow run sfn-e FAILED"
    failures = [r for r in caplog.records if r.getMessage().startswith("chat webhook failed")]
    assert len(failures) == 1 and "/hooks/" not in failures[0].webhook_error and "closed" not in caplog.text


# ------------------------------------------------------------------------------------- refused events
@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (execution_status_event("TrainFlow", "e", "SUCCEEDED"), "not a failure"),
        (execution_status_event("F", "e", "FAILED", state_machine="other-team-F"), "not one of this team's"),
        (batch_job_event("SUCCEEDED"), "not a failure"),
        (endpoint_event("IN_SERVICE"), "not a failure"),
        ({**batch_job_event(), "detail-type": "Batch Job Queue Blocked"}, "EventBridge rules"),
    ],
)
def test_events_that_are_not_alerts_are_refused_loudly(alerts: Alerts, event: dict, reason: str) -> None:
    with pytest.raises(UnexpectedEventError, match=reason):
        alerts.invoke(event)
    assert [r.refusal for r in alerts.refusals] == ["UnexpectedEventError"]
    assert alerts.published() == []


def test_an_sns_message_that_is_not_a_budget_notification_is_refused(alerts: Alerts) -> None:
    with pytest.raises(UnexpectedEventError, match="not an AWS Budgets notification"):
        alerts.invoke(sns_invocation(alerts.intake_topic_arn, "hello"))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


@st.composite
def damaged_alert_events(draw: st.DrawFn) -> Any:
    event = copy.deepcopy(draw(st.sampled_from([batch_job_event(), endpoint_event(),
                                                 execution_status_event("TrainFlow", "e", "FAILED")])))
    detail = event["detail"]
    name = draw(st.sampled_from(sorted(detail)))
    if draw(st.booleans()):
        del detail[name]
    else:
        detail[name] = draw(json_values)
    return event


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event=st.one_of(damaged_alert_events(), json_values))
def test_generated_events_alert_or_are_refused_loudly(alerts: Alerts, event: Any) -> None:
    alerts.refusals.clear()
    alerts.published()
    try:
        result = alerts.invoke(event)
    except PoisonEventError as error:
        assert [r.refusal for r in alerts.refusals] == [type(error).__name__]
        assert alerts.published() == []
        return
    assert "sns_message_id" in result or result.get("skipped")
