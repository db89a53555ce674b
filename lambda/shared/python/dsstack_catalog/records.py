"""The catalog's records as plain dataclasses, and their conversion to and from DynamoDB items."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import keys

# Step Functions execution statuses in the order one execution can go through them. A record is only
# replaced by an event of a higher rank, so a late RUNNING event never overwrites SUCCEEDED. A redrive
# (FAILED -> PENDING_REDRIVE -> RUNNING with redriveCount + 1) starts a new, higher band.
_STATUS_PHASE = {"RUNNING": 1, "SUCCEEDED": 3, "FAILED": 3, "TIMED_OUT": 3, "ABORTED": 3, "PENDING_REDRIVE": 4}
RUN_STATUSES = tuple(_STATUS_PHASE)
TERMINAL_RUN_STATUSES = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


def status_rank(status: str, redrive_count: int) -> int:
    try:
        return redrive_count * 10 + _STATUS_PHASE[status]
    except KeyError:
        raise ValueError(f"unknown Step Functions execution status {status!r}; known: {RUN_STATUSES}") from None


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass(frozen=True, slots=True)
class ObjectVersion:
    """One S3 object version as the catalog keeps it."""

    bucket: str
    key: str
    s3_version_id: str
    sequencer: str
    size: int
    etag: str
    created_at: datetime
    flow: str | None = None
    run_id: str | None = None
    step: str | None = None
    task: str | None = None
    kind: str | None = None

    def object_fields(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "key": self.key,
            "s3_version_id": self.s3_version_id,
            "sequencer": self.sequencer,
            "size": self.size,
            "etag": self.etag,
            "created_at": keys.format_time(self.created_at),
            "flow": self.flow,
            "run_id": self.run_id,
            "step": self.step,
            "task": self.task,
            "kind": self.kind,
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> ObjectVersion:
        return cls(
            bucket=item["bucket"],
            key=item["key"],
            s3_version_id=item["s3_version_id"],
            sequencer=item["sequencer"],
            size=int(item["size"]),
            etag=item["etag"],
            created_at=parse_time(item["created_at"]),
            flow=item.get("flow"),
            run_id=item.get("run_id"),
            step=item.get("step"),
            task=item.get("task"),
            kind=item.get("kind"),
        )


@dataclass(frozen=True, slots=True)
class ModelVersion:
    model: str
    version: int
    object: ObjectVersion
    registered_at: datetime

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> ModelVersion:
        return cls(
            model=item["model"],
            version=int(item["version"]),
            object=ObjectVersion.from_item(item),
            registered_at=parse_time(item["registered_at"]),
        )


@dataclass(frozen=True, slots=True)
class RegisteredModelVersion:
    """The result of registering an object version: its number, and whether this call issued it."""

    version: ModelVersion
    newly_registered: bool


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A Metaflow run orchestrated by Step Functions, as the latest status event described it."""

    flow: str
    run_id: str  # Metaflow's run id: "sfn-" + execution name
    execution_arn: str
    execution_name: str
    state_machine: str
    status: str
    started_at: datetime
    stopped_at: datetime | None = None
    error: str | None = None
    cause: str | None = None
    redrive_count: int = 0

    @property
    def rank(self) -> int:
        return status_rank(self.status, self.redrive_count)

    def fields(self) -> dict[str, Any]:
        return {
            "flow": self.flow,
            "run_id": self.run_id,
            "execution_arn": self.execution_arn,
            "execution_name": self.execution_name,
            "state_machine": self.state_machine,
            "status": self.status,
            "started_at": keys.format_time(self.started_at),
            "stopped_at": keys.format_time(self.stopped_at) if self.stopped_at else None,
            "error": self.error,
            "cause": self.cause,
            "redrive_count": self.redrive_count,
            "status_rank": self.rank,
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> RunRecord:
        return cls(
            flow=item["flow"],
            run_id=item["run_id"],
            execution_arn=item["execution_arn"],
            execution_name=item["execution_name"],
            state_machine=item["state_machine"],
            status=item["status"],
            started_at=parse_time(item["started_at"]),
            stopped_at=parse_time(item["stopped_at"]) if item.get("stopped_at") else None,
            error=item.get("error"),
            cause=item.get("cause"),
            redrive_count=int(item.get("redrive_count", 0)),
        )


@dataclass(frozen=True, slots=True)
class Promotion:
    """Who moved a model's serving version from which version to which, and when."""

    model: str
    to_version: int
    from_version: int | None
    promoted_by: str
    promoted_at: datetime
    note: str | None = None

    def fields(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "to_version": self.to_version,
            "from_version": self.from_version,
            "promoted_by": self.promoted_by,
            "promoted_at": keys.format_time(self.promoted_at),
            "note": self.note,
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Promotion:
        from_version = item.get("from_version")
        return cls(
            model=item["model"],
            to_version=int(item["to_version"]),
            from_version=int(from_version) if from_version is not None else None,
            promoted_by=item["promoted_by"],
            promoted_at=parse_time(item["promoted_at"]),
            note=item.get("note"),
        )


# ------------------------------------------------------------------ DynamoDB attribute-value marshalling
# The low-level client is used (not boto3.resource) because it is faster to create and to call, which is
# the whole cost of a Lambda invocation here. Items hold only strings, integers, booleans and nulls.
def to_attribute_values(fields: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Marshal a flat dict; None values are left out rather than stored as NULL."""
    item: dict[str, dict[str, Any]] = {}
    for name, value in fields.items():
        if value is None:
            continue
        item[name] = to_attribute_value(value)
    return item


def to_attribute_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    raise TypeError(f"catalog items hold str, int and bool values only, got {type(value).__name__}: {value!r}")


def from_attribute_values(item: dict[str, dict[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, typed in item.items():
        (type_code, value), = typed.items()
        if type_code == "S":
            result[name] = value
        elif type_code == "N":
            result[name] = int(value) if value.lstrip("-").isdigit() else float(value)
        elif type_code == "BOOL":
            result[name] = value
        elif type_code == "NULL":
            result[name] = None
        else:
            raise TypeError(f"unexpected DynamoDB type {type_code} for attribute {name!r}")
    return result
