"""Versioning: turns a team's S3 object events and Step Functions status changes into catalog items.

Invoked asynchronously by EventBridge, one event per invocation:
- S3 "Object Created" from the team bucket under metaflow/, data/ or models/ -> an object-version item;
  under models/<name>/<file> also the model's next version number (exactly once per S3 version id).
- "Step Functions Execution Status Change" of the team's state machines -> the run's record.

Environment: CATALOG_TABLE_NAME, IDEMPOTENCY_TABLE_NAME, STATE_MACHINE_PREFIX, BUCKET_NAME.
A malformed or unexpected event raises a PoisonEventError subclass (see dsstack_events): Lambda retries
it and then delivers it to the function's on-failure destination. docs/catalog.md describes it all.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.idempotency import idempotent_function
from dsstack_catalog import Catalog, ObjectKind, ObjectVersion, RunRecord, attribute_key, is_cataloged
from dsstack_catalog.records import parse_time
from dsstack_events import (
    ExecutionStatusChangeEvent,
    MalformedEventError,
    ObjectCreatedEvent,
    UnexpectedEventError,
    envelope_kind,
    epoch_millis_to_datetime,
    flow_of_state_machine,
    metaflow_run_id,
    parse_event,
)
from dsstack_events.runtime import idempotency, refusing_poison, required_env

logger = Logger(service="dsstack-versioning")

OBJECT_CREATED = ("aws.s3", "Object Created")
EXECUTION_STATUS_CHANGE = ("aws.states", "Step Functions Execution Status Change")


@dataclass(frozen=True)
class Runtime:
    catalog: Catalog
    bucket_name: str
    state_machine_prefix: str
    register_model_version: Any
    record_run: Any
    idempotency_config: Any


@cache
def runtime() -> Runtime:
    """Settings and clients, built on the first invocation (not at import) and kept for the container."""
    persistence, config = idempotency(required_env("IDEMPOTENCY_TABLE_NAME"))
    decorate = idempotent_function(data_keyword_argument="identity", persistence_store=persistence, config=config)
    return Runtime(
        catalog=Catalog(required_env("CATALOG_TABLE_NAME")),
        bucket_name=required_env("BUCKET_NAME"),
        state_machine_prefix=required_env("STATE_MACHINE_PREFIX"),
        register_model_version=decorate(_register_model_version),
        record_run=decorate(_record_run),
        idempotency_config=config,
    )


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    with refusing_poison(logger, event):
        kind = envelope_kind(event)
        env = runtime()
        env.idempotency_config.register_lambda_context(context)
        if kind == OBJECT_CREATED:
            return _object_created(event, env)
        if kind == EXECUTION_STATUS_CHANGE:
            return _execution_status_change(event, env)
        raise UnexpectedEventError(
            f"source {kind[0]!r} / detail-type {kind[1]!r} is neither S3 'Object Created' nor "
            "'Step Functions Execution Status Change'; check the EventBridge rules that target this function"
        )


# ---------------------------------------------------------------------------------------- S3 objects
def _object_created(event: dict[str, Any], env: Runtime) -> dict[str, Any]:
    parsed = parse_event(event, ObjectCreatedEvent)
    bucket, obj = parsed.detail.bucket.name, parsed.detail.object
    if bucket != env.bucket_name:
        raise UnexpectedEventError(f"object event from bucket {bucket!r}; this function catalogs {env.bucket_name!r}")
    if not is_cataloged(obj.key):
        raise UnexpectedEventError(f"key {obj.key!r} is outside metaflow/, data/ and models/; the rule should filter it")
    if not obj.version_id or obj.version_id == "null":
        # Without version ids the catalog cannot tell versions apart; versioning is part of the bucket's design.
        raise UnexpectedEventError(f"object {obj.key!r} has no S3 version id: is versioning off on {bucket!r}?")
    if not obj.sequencer or obj.size is None:
        raise MalformedEventError(f"object {obj.key!r}: 'Object Created' without sequencer or size")
    where = attribute_key(obj.key)
    version = ObjectVersion(
        bucket=bucket,
        key=obj.key,
        s3_version_id=obj.version_id,
        sequencer=obj.sequencer,
        size=int(obj.size),
        etag=obj.etag,
        created_at=parsed.time,
        flow=where.flow,
        run_id=where.run_id,
        step=where.step,
        task=where.task,
        kind=where.kind.value,
    )
    # The object item's conditional put is its own idempotency guard (one write per event, the bulk of the
    # traffic); wrapping it in Powertools idempotency would triple the writes and change nothing.
    result: dict[str, Any] = {
        "recorded": "object",
        "key": version.key,
        "s3_version_id": version.s3_version_id,
        "kind": version.kind,
        "new": env.catalog.put_object_version(version),
    }
    if where.is_model_version:
        assert where.model is not None
        identity = {"model": where.model, "key": version.key, "s3_version_id": version.s3_version_id}
        result.update(env.register_model_version(identity=identity, created_at=version.created_at.isoformat(),
                                                 size=version.size, etag=version.etag, sequencer=version.sequencer,
                                                 bucket=bucket))
        logger.info("model version", extra=result)
    elif where.kind is ObjectKind.MODELS_OTHER:
        logger.warning(
            "object under models/ is not models/<name>/<file>: cataloged as an object, not as a model version",
            extra=result,
        )
    return result


def _register_model_version(
    *, identity: dict[str, str], created_at: str, size: int, etag: str, sequencer: str, bucket: str
) -> dict[str, Any]:
    """Powertools idempotency on (model, key, S3 version id) in front of the catalog's own claim item: a
    duplicate is answered from the idempotency record without re-reading the counter or retrying."""
    version = ObjectVersion(
        bucket=bucket,
        key=identity["key"],
        s3_version_id=identity["s3_version_id"],
        sequencer=sequencer,
        size=size,
        etag=etag,
        created_at=parse_time(created_at),
        kind=ObjectKind.MODEL.value,
    )
    registered = runtime().catalog.register_model_version(identity["model"], version)
    return {
        "model": identity["model"],
        "model_version": registered.version.version,
        "new_model_version": registered.newly_registered,
    }


# ------------------------------------------------------------------------------------ Step Functions
def _execution_status_change(event: dict[str, Any], env: Runtime) -> dict[str, Any]:
    detail = parse_event(event, ExecutionStatusChangeEvent).detail
    flow = flow_of_state_machine(detail.state_machine_name, env.state_machine_prefix)
    if flow is None:
        raise UnexpectedEventError(
            f"state machine {detail.state_machine_name!r} is not one of this team's "
            f"(prefix {env.state_machine_prefix!r}); the rule should filter it"
        )
    identity = {"execution_arn": detail.execution_arn, "status": detail.status, "redrive_count": detail.redrive_count}
    return env.record_run(
        identity=identity,
        flow=flow,
        execution_name=detail.name,
        state_machine=detail.state_machine_name,
        start_date=detail.start_date,
        stop_date=detail.stop_date,
        error=detail.error,
        cause=detail.cause,
    )


def _record_run(
    *,
    identity: dict[str, Any],
    flow: str,
    execution_name: str,
    state_machine: str,
    start_date: int,
    stop_date: int | None,
    error: str | None,
    cause: str | None,
) -> dict[str, Any]:
    run = RunRecord(
        flow=flow,
        run_id=metaflow_run_id(execution_name),
        execution_arn=identity["execution_arn"],
        execution_name=execution_name,
        state_machine=state_machine,
        status=identity["status"],
        started_at=epoch_millis_to_datetime(start_date),
        stopped_at=epoch_millis_to_datetime(stop_date) if stop_date else None,
        error=error,
        cause=cause,
        redrive_count=identity["redrive_count"],
    )
    applied = runtime().catalog.record_run(run)
    result = {"recorded": "run", "flow": flow, "run_id": run.run_id, "status": run.status, "applied": applied}
    if not applied:
        logger.info("run status not newer than the stored one (duplicate or out of order); record unchanged", extra=result)
    return result
