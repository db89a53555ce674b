"""Alerts: turns failures and budget notifications into a short message on the team's SNS topic (and chat).

Invoked asynchronously, one event per invocation:
- EventBridge "Step Functions Execution Status Change" with status FAILED, TIMED_OUT or ABORTED;
- EventBridge "Batch Job State Change" with status FAILED;
- EventBridge "SageMaker Endpoint State Change" with status Failed (or UpdateRollbackFailed);
- SNS: AWS Budgets notifications. Budgets sends plain text to SNS (its EventBridge events are CloudTrail
  API calls only), so the budget notifies an intake topic this function subscribes to.

Environment: ALERT_TOPIC_ARN, IDEMPOTENCY_TABLE_NAME; optional STATE_MACHINE_PREFIX (names the flow of a
state machine and refuses other teams' executions) and CHAT_WEBHOOK_SECRET_ARN (a Secrets Manager secret
holding a Slack/Teams-style incoming webhook URL, or JSON {"url": ...}).

The SNS alert is published first; the chat post comes after and its failure is logged, never raised, so a
broken webhook cannot lose or duplicate the SNS alert. Refused events raise (see dsstack_events).
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any
from urllib.parse import quote

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.idempotency import idempotent_function
from aws_lambda_powertools.utilities.parser.models import SnsModel
from dsstack_events import (
    BatchJobStateChangeEvent,
    EndpointStateChangeEvent,
    ExecutionStatusChangeEvent,
    UnexpectedEventError,
    envelope_kind,
    flow_of_state_machine,
    metaflow_run_id,
    parse_event,
)
from dsstack_events.runtime import idempotency, refusing_poison, required_env

logger = Logger(service="dsstack-alerts")

FAILED_EXECUTION_STATUSES = ("FAILED", "TIMED_OUT", "ABORTED")
FAILED_ENDPOINT_STATUSES = ("FAILED", "UPDATEROLLBACKFAILED")  # compared after removing "_" and upper-casing
# Message attribute on everything this function publishes, so it never re-alerts on its own messages.
ALERT_MARKER_ATTRIBUTE = "dsstack-alert"
SUBJECT_MAX_CHARS = 100  # SNS limit
CAUSE_MAX_CHARS = 1500  # a Batch-task failure cause is the whole job description as JSON
WEBHOOK_TIMEOUT_SECONDS = 5
WEBHOOK_URL_CACHE_SECONDS = 300  # re-read the secret now and then, so a rotated URL is picked up


@dataclass(frozen=True)
class Alert:
    kind: str
    subject: str
    lines: tuple[str, ...]

    @property
    def title(self) -> str:
        return f"[dsstack] {self.subject}"

    @property
    def body(self) -> str:
        return "\n".join(self.lines)


@dataclass
class Runtime:
    topic_arn: str
    state_machine_prefix: str
    webhook_secret_arn: str
    deliver: Any
    idempotency_config: Any
    sns: Any = field(default_factory=lambda: boto3.client("sns"))
    _webhook_url: tuple[str, float] | None = None

    def webhook_url(self) -> str:
        if self._webhook_url is None or time.monotonic() - self._webhook_url[1] > WEBHOOK_URL_CACHE_SECONDS:
            secret = boto3.client("secretsmanager").get_secret_value(SecretId=self.webhook_secret_arn)
            self._webhook_url = (_url_from_secret(secret.get("SecretString") or ""), time.monotonic())
        return self._webhook_url[0]


@cache
def runtime() -> Runtime:
    """Settings and clients, built on the first invocation (not at import) and kept for the container."""
    persistence, config = idempotency(required_env("IDEMPOTENCY_TABLE_NAME"))
    return Runtime(
        topic_arn=required_env("ALERT_TOPIC_ARN"),
        state_machine_prefix=os.environ.get("STATE_MACHINE_PREFIX", "").strip(),
        webhook_secret_arn=os.environ.get("CHAT_WEBHOOK_SECRET_ARN", "").strip(),
        deliver=idempotent_function(data_keyword_argument="identity", persistence_store=persistence, config=config)(
            _deliver
        ),
        idempotency_config=config,
    )


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    with refusing_poison(logger, event):
        source, detail_type = envelope_kind(event)
        env = runtime()
        env.idempotency_config.register_lambda_context(context)
        if source == "aws:sns":
            return _budget_notification(event, env)
        build = _BUILDERS.get((source, detail_type))
        if build is None:
            raise UnexpectedEventError(
                f"source {source!r} / detail-type {detail_type!r} is not an alert this function sends; "
                "check the EventBridge rules that target this function"
            )
        alert = build(event, env)
        return env.deliver(identity={"event_id": event["id"]}, alert=alert, publish=True)


# ------------------------------------------------------------------------------------------- builders
def _execution_failed(event: dict[str, Any], env: Runtime) -> Alert:
    parsed = parse_event(event, ExecutionStatusChangeEvent)
    detail = parsed.detail
    if detail.status not in FAILED_EXECUTION_STATUSES:
        raise UnexpectedEventError(f"execution status {detail.status} is not a failure; the rule should filter it")
    flow = None
    if env.state_machine_prefix:
        flow = flow_of_state_machine(detail.state_machine_name, env.state_machine_prefix)
        if flow is None:
            raise UnexpectedEventError(f"state machine {detail.state_machine_name!r} is not one of this team's")
    run_id = metaflow_run_id(detail.name)
    what = f"{flow} run {run_id}" if flow else f"{detail.state_machine_name} execution {detail.name}"
    stopped = f", stopped {_when(detail.stopped_at)}" if detail.stopped_at else ""
    return Alert(
        kind="execution",
        subject=f"Flow {what} {detail.status}",
        lines=(
            f"Step Functions execution {detail.status}.",
            f"Flow: {flow or '(not a dsstack flow name)'}",
            f"Run: {run_id} (execution {detail.name} of state machine {detail.state_machine_name})",
            f"Error: {detail.error or '(none given)'}",
            f"Cause: {_short(detail.cause)}",
            f"Started {_when(detail.started_at)}{stopped}",
            "Console: " + _console(parsed.region, "states", f"#/v2/executions/details/{detail.execution_arn}"),
        ),
    )


def _batch_job_failed(event: dict[str, Any], env: Runtime) -> Alert:
    parsed = parse_event(event, BatchJobStateChangeEvent)
    job = parsed.detail
    if job.status != "FAILED":
        raise UnexpectedEventError(f"Batch job status {job.status} is not a failure; the rule should filter it")
    params = job.parameters
    flow, run, step, task = (params.get(f"metaflow.{name}") for name in ("flow_name", "run_id", "step_name", "task_id"))
    container = (job.attempts[-1].container if job.attempts else None) or job.container
    exit_code = container.exit_code if container else None
    metaflow = f"Metaflow: flow {flow}, run {run}, step {step}, task {task}" if flow else "Metaflow: (not a Metaflow job)"
    return Alert(
        kind="batch_job",
        subject=f"Batch job {job.job_name} FAILED" + (f" ({flow}/{run}/{step})" if flow else ""),
        lines=(
            f"AWS Batch job FAILED in queue {job.queue_name}.",
            f"Job: {job.job_name} ({job.job_id})",
            metaflow,
            f"Reason: {_short(job.status_reason)}",
            f"Container: exit code {exit_code if exit_code is not None else '(none)'}, "
            f"{_short(container.reason if container else None)}",
            f"Log stream: {(container.log_stream_name if container else None) or '(none)'}",
            "Console: " + _console(parsed.region, "batch", f"#jobs/detail/{job.job_id}"),
        ),
    )


def _endpoint_failed(event: dict[str, Any], env: Runtime) -> Alert:
    parsed = parse_event(event, EndpointStateChangeEvent)
    endpoint = parsed.detail
    if endpoint.normalized_status not in FAILED_ENDPOINT_STATUSES:
        raise UnexpectedEventError(
            f"endpoint status {endpoint.endpoint_status} is not a failure; the rule should filter it"
        )
    return Alert(
        kind="endpoint",
        subject=f"SageMaker endpoint {endpoint.endpoint_name} {endpoint.endpoint_status}",
        lines=(
            f"SageMaker endpoint {endpoint.endpoint_name} is {endpoint.endpoint_status}.",
            f"Endpoint config: {endpoint.endpoint_config_name or '(unknown)'}",
            f"Reason: {_short(endpoint.failure_reason)}",
            "Console: " + _console(parsed.region, "sagemaker", f"#/endpoints/{quote(endpoint.endpoint_name)}"),
        ),
    )


_BUILDERS = {
    ("aws.states", "Step Functions Execution Status Change"): _execution_failed,
    ("aws.batch", "Batch Job State Change"): _batch_job_failed,
    ("aws.sagemaker", "SageMaker Endpoint State Change"): _endpoint_failed,
}


# --------------------------------------------------------------------------------------------- budgets
_BUDGET_FIELDS = ("Budget Name", "Budget Type", "Budgeted Amount", "Alert Type", "Alert Threshold")
BUDGETS_CONSOLE = "https://us-east-1.console.aws.amazon.com/billing/home#/budgets"


def _budget_notification(event: dict[str, Any], env: Runtime) -> dict[str, Any]:
    (record,) = parse_event(event, SnsModel).Records  # SNS invokes Lambda with exactly one record
    notification = record.Sns
    attributes = notification.MessageAttributes or {}
    if notification.TopicArn == env.topic_arn and ALERT_MARKER_ATTRIBUTE in attributes:
        logger.info("own alert echoed back by a subscription to the alert topic; nothing to do")
        return {"skipped": "own alert"}
    message = notification.Message if isinstance(notification.Message, str) else ""
    if "AWS Budget Notification" not in message:
        raise UnexpectedEventError(
            f"SNS message {notification.MessageId} on {notification.TopicArn} is not an AWS Budgets notification"
        )
    found = {name: _budget_field(message, name) for name in _BUDGET_FIELDS}
    alert_type = found["Alert Type"] or "?"
    amount = _budget_field(message, f"{alert_type} Amount")
    alert = Alert(
        kind="budget",
        subject=f"Budget {found['Budget Name']}: {alert_type} cost {amount} is over {found['Alert Threshold']}",
        lines=(
            f"AWS Budgets: the {alert_type.lower()} cost of budget {found['Budget Name']} is {amount}, "
            f"over the alert threshold {found['Alert Threshold']} (budgeted {found['Budgeted Amount']}).",
            "Console: " + BUDGETS_CONSOLE,
        ),
    )
    # Published straight to the alert topic, the e-mail subscribers already have AWS's text: chat only.
    publish = notification.TopicArn != env.topic_arn
    return env.deliver(identity={"sns_message_id": notification.MessageId}, alert=alert, publish=publish)


def _budget_field(message: str, name: str) -> str | None:
    found = re.search(rf"^{re.escape(name)}:\s*(.+?)\s*$", message, flags=re.MULTILINE)
    return found.group(1) if found else None


# -------------------------------------------------------------------------------------------- delivery
def _deliver(*, identity: dict[str, str], alert: Alert, publish: bool) -> dict[str, Any]:
    """Idempotent on the event id (or SNS message id): one alert per event, however often it arrives."""
    env = runtime()
    result: dict[str, Any] = {"kind": alert.kind, "subject": _sns_subject(alert.title)}
    if publish:
        response = env.sns.publish(
            TopicArn=env.topic_arn,
            Subject=result["subject"],
            Message=alert.body,
            MessageAttributes={ALERT_MARKER_ATTRIBUTE: {"DataType": "String", "StringValue": alert.kind}},
        )
        result["sns_message_id"] = response["MessageId"]
    result["chat"] = _post_to_chat(env, alert) if env.webhook_secret_arn else "not configured"
    logger.info("alert delivered", extra=result)
    return result


def _post_to_chat(env: Runtime, alert: Alert) -> str:
    import urllib.request  # only functions with a webhook pay for the import

    try:
        url = env.webhook_url()
        payload = json.dumps({"text": f"*{alert.title}*\n{alert.body}"}).encode()
        request = urllib.request.Request(
            url, data=payload, method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
            return f"sent ({response.status})"
    except Exception as error:  # any failure: the SNS alert is already out, the chat copy is best effort
        # The message is logged, never the URL: it is a credential.
        logger.error("chat webhook failed; the alert went to SNS only", extra={"webhook_error": _describe(error)})
        return "failed"


def _url_from_secret(secret: str) -> str:
    value = secret.strip()
    if value.startswith("{"):
        document = json.loads(value)
        value = str(document.get("url") or document.get("webhook_url") or "")
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if not parts.hostname or not (parts.scheme == "https" or (parts.scheme == "http" and loopback)):
        raise ValueError("the chat webhook secret must hold an https:// URL (or JSON {\"url\": ...})")
    return value


def _describe(error: BaseException) -> str:
    code = getattr(error, "code", None)
    return f"{type(error).__name__}" + (f" HTTP {code}" if isinstance(code, int) else "") + (
        f": {getattr(error, 'reason', '')}" if hasattr(error, "reason") else ""
    )


# ---------------------------------------------------------------------------------------------- format
def _sns_subject(text: str) -> str:
    """SNS subjects: ASCII, no line breaks, at most 100 characters."""
    ascii_text = re.sub(r"[^\x20-\x7e]", "?", text)
    return ascii_text if len(ascii_text) <= SUBJECT_MAX_CHARS else ascii_text[: SUBJECT_MAX_CHARS - 3] + "..."


def _short(text: str | None) -> str:
    if not text:
        return "(none given)"
    text = text.strip()
    return text if len(text) <= CAUSE_MAX_CHARS else text[:CAUSE_MAX_CHARS] + f"... ({len(text)} characters)"


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _console(region: str, service: str, fragment: str) -> str:
    return f"https://{region}.console.aws.amazon.com/{service}/home?region={region}{fragment}"
