"""EventBridge fixes: complete event shape, rule state, target input, and Lambda/SNS/Step Functions targets."""

from __future__ import annotations

import copy
import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from moto.events import models as events_models
from moto.events.utils import EventMessageType

from dsstack.local.patches import Patch, set_method

log = logging.getLogger("dsstack.emulator")


def _iso(value: str | float | datetime) -> str:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def target_input(target: dict[str, Any], event: EventMessageType) -> Any:
    """What a target receives: Input, InputPath, InputTransformer, or the whole event (as in AWS)."""
    if target.get("Input") is not None:
        return json.loads(target["Input"])
    if target.get("InputPath"):
        from jsonpath_ng.ext import parse

        matches = parse(target["InputPath"]).find(event)
        return matches[0].value if matches else None
    transformer = target.get("InputTransformer")
    if transformer:
        from moto.events.utils import EventTemplateParser

        # <aws.events.event.ingestion-time> is an ISO time in AWS; moto's event type declares a number.
        received: EventMessageType = {"ingestion-time": event.get("time"), **event}  # type: ignore[typeddict-item]
        return EventTemplateParser.parse(input_template=transformer.get("InputTemplate"),
                                         input_paths_map=transformer.get("InputPathsMap", {}), event=received)
    return event


def deliver(account_id: str, region: str, target: dict[str, Any], payload: Any) -> None:
    arn = target["Arn"]
    service = arn.split(":")[2]
    body = payload if isinstance(payload, str) else json.dumps(payload)
    if service == "lambda":
        from moto.awslambda.utils import get_backend

        from dsstack.local.patches.lambdas import invoke_async

        invoke_async(get_backend(account_id, region).get_function(arn), payload)
    elif service == "sqs":
        from moto.sqs.models import sqs_backends

        group_id = target.get("SqsParameters", {}).get("MessageGroupId")
        sqs_backends[account_id][region].send_message(
            queue_name=arn.split(":")[-1], message_body=body, group_id=group_id,
            deduplication_id=str(uuid.uuid4()) if group_id else None)
    elif service == "sns":
        from moto.sns.models import sns_backends

        sns_backends[account_id][region].publish(message=body, arn=arn)
    elif service == "states":
        from moto.stepfunctions.models import stepfunctions_backends

        # Every execution has a name: EventBridge generates one (as moto does when it is given none).
        stepfunctions_backends[account_id][region].start_execution(arn, name=str(uuid.uuid4()), execution_input=body)
    elif service == "logs":
        from moto.logs import logs_backends

        group = arn.split(":log-group:")[1].removesuffix(":*")
        backend = logs_backends[account_id][region]
        stream = str(uuid.uuid4())
        backend.create_log_stream(group, stream)
        backend.put_log_events(group, stream, [{"timestamp": int(datetime.now(UTC).timestamp() * 1000),
                                                "message": body}])
    elif service == "events":
        from moto.events.models import events_backends

        event = payload if isinstance(payload, dict) else json.loads(body)
        events_backends[arn.split(":")[4]][arn.split(":")[3]].put_events([{
            "Source": event["source"], "DetailType": event["detail-type"], "Detail": json.dumps(event["detail"]),
            "Resources": event.get("resources", []), "EventBusName": arn}])
    else:
        log.warning("EventBridge: target type %s is not delivered by the emulator (%s)", service, arn)


def send_to_targets(self: Any, original_event: EventMessageType, transform_input: bool = True) -> None:
    if getattr(self, "state", "ENABLED") != "ENABLED":
        return
    event = copy.deepcopy(original_event)
    event["time"] = _iso(event.get("time") or datetime.now(UTC).timestamp())
    event.pop("ingestion-time", None)
    if not self.event_pattern.matches_event(event):
        return
    for target in self.targets:
        try:
            deliver(self.account_id, self.region_name, target, target_input(target, event))
        except Exception:  # one broken target must not block the others (asynchronous in AWS)
            log.exception("EventBridge rule %s: delivery to %s failed", self.name, target.get("Arn"))


def patch_targets() -> None:
    set_method(events_models.Rule, "send_to_targets", send_to_targets)


PATCHES = [
    Patch("events-targets",
          "rules deliver only to SQS, log groups, archives and buses (Lambda, SNS and Step Functions targets "
          "raise NotImplementedError, a 500 on PutEvents), ignore the rule state, drop `account` from the "
          "event unless an InputTransformer is set, ignore Input/InputPath, and send `time` as a number",
          "delivers to Lambda (async invoke, with retries and DLQ), SQS, SNS, Step Functions, log groups and "
          "buses; honours the rule state, Input/InputPath/InputTransformer; events carry every field with an "
          "ISO time; one failing target is logged and does not stop the others",
          patch_targets),
]
