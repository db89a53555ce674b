"""Typed models of the AWS events dsstack's functions consume, and how a bad event is refused.

Needs pydantic and Powertools, which the functions get from the AWS-managed Powertools layer; kept apart
from dsstack_catalog so the CLI can import the catalog without them.

Shapes follow the AWS documentation of each event (examples in tests/unit/*events*.py): unknown extra
fields are accepted (AWS adds fields over time), fields we need are required.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from aws_lambda_powertools.utilities.parser import ValidationError, parse
from aws_lambda_powertools.utilities.parser.exceptions import InvalidModelTypeError
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel, S3EventNotificationEventBridgeModel
from pydantic import BaseModel, ConfigDict, Field, field_validator


# ------------------------------------------------------------------------------------------ refusals
class PoisonEventError(Exception):
    """An event this function will never process successfully. Raised, never swallowed: the async
    invocation fails, Lambda retries it (bounded) and then hands it to the on-failure destination (the
    function's DLQ) with this error's type and message, while later events carry on."""


class MalformedEventError(PoisonEventError):
    """The event does not have the shape AWS documents for its source and type."""


class UnexpectedEventError(PoisonEventError):
    """A well-formed event this function is not meant to receive (wrong bucket, source, status...): the
    EventBridge rule that routed it is wrong, which someone needs to see."""


Model = TypeVar("Model", bound=BaseModel)


def parse_event(event: Any, model: type[Model]) -> Model:
    """Validate `event` against `model`; any mismatch becomes MalformedEventError naming the fields."""
    if not isinstance(event, dict):
        raise MalformedEventError(f"event is a {type(event).__name__}, expected a JSON object")
    try:
        return parse(event=event, model=model)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or '<event>'}: {problem['msg']}"
            for problem in error.errors()[:5]
        )
        raise MalformedEventError(f"not a valid {model.__name__}: {problems}") from None
    except (InvalidModelTypeError, TypeError, ValueError) as error:
        raise MalformedEventError(f"not a valid {model.__name__}: {error}") from None


def envelope_kind(event: Any) -> tuple[str, str]:
    """(source, detail-type) of an EventBridge event, or ("aws:sns", "") for an SNS invocation."""
    if not isinstance(event, dict):
        raise MalformedEventError(f"event is a {type(event).__name__}, expected a JSON object")
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict):
        return str(records[0].get("EventSource", "")), ""
    source, detail_type = event.get("source"), event.get("detail-type")
    if not isinstance(source, str) or not isinstance(detail_type, str):
        raise MalformedEventError("event has no string 'source' and 'detail-type': not an EventBridge event")
    return source, detail_type


def epoch_millis_to_datetime(value: int | float) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=UTC)


class _Detail(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


# ------------------------------------------------------------------------------------ S3 (EventBridge)
_SEQUENCER = re.compile(r"^[0-9A-Fa-f]{1,32}$")


class ObjectCreatedEvent(S3EventNotificationEventBridgeModel):
    """S3 "Object Created" from a bucket with EventBridge notifications on (Powertools' model, narrowed)."""

    source: Literal["aws.s3"]
    detail_type: Literal["Object Created"] = Field(alias="detail-type")

    @field_validator("detail")
    @classmethod
    def _key_and_sequencer(cls, detail: Any) -> Any:
        if not detail.object.key:
            raise ValueError("object.key is empty")
        sequencer = detail.object.sequencer
        if sequencer is not None and not _SEQUENCER.match(sequencer):
            raise ValueError(f"object.sequencer {sequencer!r} is not 1 to 32 hex digits")
        return detail


# -------------------------------------------------------------------------------------- Step Functions
ExecutionStatus = Literal["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE"]


class ExecutionStatusDetail(_Detail):
    execution_arn: str = Field(alias="executionArn", min_length=1)
    state_machine_arn: str = Field(alias="stateMachineArn", min_length=1)
    name: str = Field(min_length=1)
    status: ExecutionStatus
    start_date: int = Field(alias="startDate", ge=0)  # epoch milliseconds
    stop_date: int | None = Field(None, alias="stopDate")
    error: str | None = None
    cause: str | None = None
    redrive_count: int = Field(0, alias="redriveCount", ge=0)

    @property
    def state_machine_name(self) -> str:
        # arn:aws:states:<region>:<account>:stateMachine:<name>
        return self.state_machine_arn.rsplit(":", 1)[-1]

    @property
    def started_at(self) -> datetime:
        return epoch_millis_to_datetime(self.start_date)

    @property
    def stopped_at(self) -> datetime | None:
        return epoch_millis_to_datetime(self.stop_date) if self.stop_date else None


class ExecutionStatusChangeEvent(EventBridgeModel):
    source: Literal["aws.states"]
    detail_type: Literal["Step Functions Execution Status Change"] = Field(alias="detail-type")
    detail: ExecutionStatusDetail


def flow_of_state_machine(state_machine_name: str, prefix: str) -> str | None:
    """The Metaflow flow a team's state machine runs, or None if the name lacks the team's prefix.

    Metaflow names a state machine `<METAFLOW_SFN_STATE_MACHINE_PREFIX>_<flow>` (or `<prefix>_<project
    flow name>` for @project flows), so the separator underscore is dropped too.
    """
    if not prefix or not state_machine_name.startswith(prefix):
        return None
    flow = state_machine_name[len(prefix):]
    flow = flow[1:] if flow.startswith("_") else flow
    return flow or None


def metaflow_run_id(execution_name: str) -> str:
    """Metaflow's run id for a Step Functions execution (step_functions_cli: run_id = 'sfn-' + name)."""
    return "sfn-" + execution_name


# ------------------------------------------------------------------------------------------- Batch
class BatchContainerDetail(_Detail):
    exit_code: int | None = Field(None, alias="exitCode")
    reason: str | None = None
    log_stream_name: str | None = Field(None, alias="logStreamName")


class BatchAttempt(_Detail):
    container: BatchContainerDetail | None = None
    status_reason: str | None = Field(None, alias="statusReason")


class BatchJobDetail(_Detail):
    job_arn: str = Field(alias="jobArn", min_length=1)
    job_name: str = Field(alias="jobName", min_length=1)
    job_id: str = Field(alias="jobId", min_length=1)
    job_queue: str = Field(alias="jobQueue", min_length=1)
    status: str
    status_reason: str | None = Field(None, alias="statusReason")
    attempts: list[BatchAttempt] = []
    container: BatchContainerDetail | None = None
    parameters: dict[str, str] = {}

    @property
    def queue_name(self) -> str:
        return self.job_queue.rsplit("/", 1)[-1]


class BatchJobStateChangeEvent(EventBridgeModel):
    source: Literal["aws.batch"]
    detail_type: Literal["Batch Job State Change"] = Field(alias="detail-type")
    detail: BatchJobDetail


# ---------------------------------------------------------------------------------------- SageMaker
class EndpointStateDetail(_Detail):
    endpoint_name: str = Field(alias="EndpointName", min_length=1)
    endpoint_arn: str | None = Field(None, alias="EndpointArn")
    endpoint_config_name: str | None = Field(None, alias="EndpointConfigName")
    # AWS's example shows "IN_SERVICE" while the API says "InService"; compare with normalized_status.
    endpoint_status: str = Field(alias="EndpointStatus", min_length=1)
    failure_reason: str | None = Field(None, alias="FailureReason")

    @property
    def normalized_status(self) -> str:
        return self.endpoint_status.replace("_", "").upper()


class EndpointStateChangeEvent(EventBridgeModel):
    source: Literal["aws.sagemaker"]
    detail_type: Literal["SageMaker Endpoint State Change"] = Field(alias="detail-type")
    detail: EndpointStateDetail
