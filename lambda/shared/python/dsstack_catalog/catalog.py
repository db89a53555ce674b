"""Reads and writes of a team's catalog table. Every write is idempotent; see docs/catalog.md."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from . import keys
from .records import (
    ModelVersion,
    ObjectVersion,
    Promotion,
    RegisteredModelVersion,
    RunRecord,
    from_attribute_values,
    to_attribute_value,
    to_attribute_values,
)

# Optimistic numbering retries when writers race for the same model. Each retry re-reads the counter,
# so N concurrent writers need at most N rounds; 50 with jittered back-off covers bursts far beyond the
# Lambda's reserved concurrency.
MAX_NUMBERING_ATTEMPTS = 50


class CatalogError(Exception):
    """Base class of the catalog's own errors."""


class NumberingContentionError(CatalogError):
    """Could not get a version number after MAX_NUMBERING_ATTEMPTS; the caller should retry later."""


class UnknownModelVersionError(CatalogError):
    pass


class PromotionConflictError(CatalogError):
    """The model's promoted version is not the `from_version` the caller expected (someone else moved it)."""

    def __init__(self, model: str, expected_from: int | None, current: Promotion | None):
        self.model, self.expected_from, self.current = model, expected_from, current
        now = f"version {current.to_version} (by {current.promoted_by})" if current else "nothing promoted yet"
        super().__init__(
            f"cannot promote model {model!r}: expected it to be serving "
            f"{'nothing' if expected_from is None else f'version {expected_from}'}, but it is serving {now}"
        )


def _cancellation_codes(error: Any) -> list[str]:
    return [reason.get("Code", "None") for reason in error.response.get("CancellationReasons", [])]


class Catalog:
    """A team's catalog. `client` is a boto3 DynamoDB client; created lazily when not given."""

    def __init__(self, table_name: str, client: Any = None):
        if not table_name:
            raise ValueError("catalog table name is empty")
        self.table_name = table_name
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3  # only when no client was injected: keeps `import dsstack_catalog` cheap

            # Own session: boto3's default session is not thread-safe when clients are created concurrently.
            self._client = boto3.session.Session().client("dynamodb")
        return self._client

    # ================================================================================ writes: objects
    def put_object_version(self, obj: ObjectVersion) -> bool:
        """Record an object version. Returns False if it was already recorded (a duplicate event)."""
        fields = {
            "pk": keys.object_pk(obj.key),
            "sk": keys.object_sk(obj.sequencer, obj.s3_version_id),
            "type": keys.TYPE_OBJECT,
            **obj.object_fields(),
            "recorded_at": keys.format_time(keys.utc_now()),
        }
        if obj.flow and obj.run_id:
            fields["gsi1pk"] = keys.run_gsi_pk(obj.flow, obj.run_id)
            fields["gsi1sk"] = keys.run_object_gsi_sk(obj.step, obj.task, obj.key, obj.s3_version_id)
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=to_attribute_values(fields),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    # ================================================================================= writes: models
    def register_model_version(self, model: str, obj: ObjectVersion) -> RegisteredModelVersion:
        """Give an S3 object version the model's next version number, exactly once.

        One transaction writes three items: the model item's counter moves from n to n+1 (conditional on
        still being n), a claim item for (key, S3 version id) that must not exist yet, and version n+1.
        A duplicate event fails on the claim and gets the number the claim holds; a concurrent writer
        that took n+1 first makes the counter condition fail, and we retry with the new n.
        """
        model_key = {"pk": {"S": keys.model_pk(model)}, "sk": {"S": keys.MODEL_SK}}
        claim_key = {"pk": {"S": keys.model_pk(model)}, "sk": {"S": keys.version_claim_sk(obj.key, obj.s3_version_id)}}
        for attempt in range(MAX_NUMBERING_ATTEMPTS):
            latest = self._latest_version_number(model_key)
            number = latest + 1
            now = keys.utc_now()
            version_fields = {
                "pk": keys.model_pk(model),
                "sk": keys.model_version_sk(number),
                "type": keys.TYPE_MODEL_VERSION,
                "model": model,
                "version": number,
                "registered_at": keys.format_time(now),
                **obj.object_fields(),
            }
            if latest == 0:
                counter_condition = "attribute_not_exists(pk)"
                condition_values: dict[str, Any] = {}
            else:
                counter_condition = "latest_version = :latest"
                condition_values = {":latest": to_attribute_value(latest)}
            try:
                self.client.transact_write_items(
                    TransactItems=[
                        {
                            "Update": {
                                "TableName": self.table_name,
                                "Key": model_key,
                                "UpdateExpression": "SET latest_version = :next, #type = :type, model = :model, "
                                "gsi1pk = :models, gsi1sk = :model, updated_at = :now",
                                "ConditionExpression": counter_condition,
                                "ExpressionAttributeNames": {"#type": "type"},
                                "ExpressionAttributeValues": {
                                    ":next": to_attribute_value(number),
                                    ":type": to_attribute_value(keys.TYPE_MODEL),
                                    ":model": to_attribute_value(model),
                                    ":models": to_attribute_value(keys.MODELS_GSI_PK),
                                    ":now": to_attribute_value(keys.format_time(now)),
                                    **condition_values,
                                },
                            }
                        },
                        {
                            "Put": {
                                "TableName": self.table_name,
                                "Item": {
                                    **claim_key,
                                    **to_attribute_values({
                                        "type": keys.TYPE_VERSION_CLAIM,
                                        "model": model,
                                        "version": number,
                                        "key": obj.key,
                                        "s3_version_id": obj.s3_version_id,
                                    }),
                                },
                                "ConditionExpression": "attribute_not_exists(pk)",
                            }
                        },
                        {
                            "Put": {
                                "TableName": self.table_name,
                                "Item": to_attribute_values(version_fields),
                                "ConditionExpression": "attribute_not_exists(pk)",
                            }
                        },
                    ]
                )
            except self.client.exceptions.TransactionCanceledException as error:
                counter, claim, version = (_cancellation_codes(error) + ["None"] * 3)[:3]
                if claim == "ConditionalCheckFailed":
                    existing = self._claimed_version(model, claim_key)
                    if existing is not None:
                        return RegisteredModelVersion(existing, newly_registered=False)
                elif "ConditionalCheckFailed" not in (counter, version) and "TransactionConflict" not in (
                    counter, claim, version
                ):
                    raise
                # Lost a race for number n+1 (or a transaction conflict): back off and read the counter again.
                time.sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))
                continue
            return RegisteredModelVersion(
                ModelVersion(model=model, version=number, object=obj, registered_at=now), newly_registered=True
            )
        raise NumberingContentionError(
            f"gave up numbering a version of model {model!r} (object {obj.key!r} version {obj.s3_version_id}) "
            f"after {MAX_NUMBERING_ATTEMPTS} attempts of concurrent writers; the event will be retried"
        )

    def _latest_version_number(self, model_key: dict[str, Any]) -> int:
        response = self.client.get_item(
            TableName=self.table_name, Key=model_key, ConsistentRead=True, ProjectionExpression="latest_version"
        )
        item = response.get("Item")
        return int(item["latest_version"]["N"]) if item else 0

    def _claimed_version(self, model: str, claim_key: dict[str, Any]) -> ModelVersion | None:
        response = self.client.get_item(TableName=self.table_name, Key=claim_key, ConsistentRead=True)
        item = response.get("Item")
        if not item:
            return None
        return self.model_version(model, int(item["version"]["N"]), consistent=True)

    # =================================================================================== writes: runs
    def record_run(self, run: RunRecord) -> bool:
        """Store a run's status unless the record already holds the same or a later status.

        Returns False for a duplicate or an out-of-order (older) status event; both leave the record as is.
        """
        fields = {
            "pk": keys.flow_pk(run.flow),
            "sk": keys.run_sk(run.started_at, run.execution_name),
            "type": keys.TYPE_RUN,
            "gsi1pk": keys.run_gsi_pk(run.flow, run.run_id),
            "gsi1sk": keys.RUN_GSI_SK,
            **run.fields(),
            "recorded_at": keys.format_time(keys.utc_now()),
        }
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=to_attribute_values(fields),
                ConditionExpression="attribute_not_exists(pk) OR status_rank < :rank",
                ExpressionAttributeValues={":rank": to_attribute_value(run.rank)},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    # ============================================================================= writes: promotions
    def record_promotion(
        self,
        model: str,
        *,
        to_version: int,
        from_version: int | None,
        promoted_by: str,
        promoted_at: datetime | None = None,
        note: str | None = None,
    ) -> Promotion:
        """Record that `model` now serves `to_version` instead of `from_version`.

        `from_version` is what the caller believes is serving now (None: nothing promoted yet); if another
        promotion got in first this raises PromotionConflictError instead of silently overwriting it.
        `to_version` must be a registered version (UnknownModelVersionError otherwise).
        """
        if not promoted_by:
            raise ValueError("promoted_by is empty: a promotion record must say who promoted")
        promotion = Promotion(
            model=model,
            to_version=to_version,
            from_version=from_version,
            promoted_by=promoted_by,
            promoted_at=promoted_at or keys.utc_now(),
            note=note,
        )
        current_fields = {"pk": keys.model_pk(model), "sk": keys.PROMOTION_SK, "type": keys.TYPE_PROMOTION}
        history_fields = {
            "pk": keys.model_pk(model),
            "sk": keys.promotion_event_sk(promotion.promoted_at, to_version),
            "type": keys.TYPE_PROMOTION_EVENT,
        }
        if from_version is None:
            current_condition, condition_values = "attribute_not_exists(pk)", {}
        else:
            # The first recorded promotion may start from a version that was never promoted through the
            # catalog (the endpoint's initial version from the config).
            current_condition = "attribute_not_exists(pk) OR to_version = :from"
            condition_values = {":from": to_attribute_value(from_version)}
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "ConditionCheck": {
                            "TableName": self.table_name,
                            "Key": to_attribute_values(
                                {"pk": keys.model_pk(model), "sk": keys.model_version_sk(to_version)}
                            ),
                            "ConditionExpression": "attribute_exists(pk)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": to_attribute_values({**current_fields, **promotion.fields()}),
                            "ConditionExpression": current_condition,
                            **({"ExpressionAttributeValues": condition_values} if condition_values else {}),
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": to_attribute_values({**history_fields, **promotion.fields()}),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
        except self.client.exceptions.TransactionCanceledException as error:
            version_check, current, _history = (_cancellation_codes(error) + ["None"] * 3)[:3]
            if version_check == "ConditionalCheckFailed":
                raise UnknownModelVersionError(
                    f"model {model!r} has no version {to_version}; register it before promoting it"
                ) from None
            if current == "ConditionalCheckFailed":
                raise PromotionConflictError(model, from_version, self.current_promotion(model)) from None
            raise
        return promotion

    # ======================================================================================== queries
    def models(self) -> list[str]:
        items = self._query_index(gsi1pk=keys.MODELS_GSI_PK)
        return sorted(item["model"] for item in items)

    def latest_model_version(self, model: str) -> ModelVersion | None:
        for version in self.model_versions(model, newest_first=True, limit=1):
            return version
        return None

    def model_versions(self, model: str, *, newest_first: bool = True, limit: int | None = None) -> Iterator[ModelVersion]:
        for item in self._query(keys.model_pk(model), keys.VERSION_PREFIX, newest_first=newest_first, limit=limit):
            yield ModelVersion.from_item(item)

    def model_version(self, model: str, version: int, *, consistent: bool = False) -> ModelVersion | None:
        """The S3 object (key + version id) behind a model version."""
        response = self.client.get_item(
            TableName=self.table_name,
            Key=to_attribute_values({"pk": keys.model_pk(model), "sk": keys.model_version_sk(version)}),
            ConsistentRead=consistent,
        )
        item = response.get("Item")
        return ModelVersion.from_item(from_attribute_values(item)) if item else None

    def object_versions(self, key: str, *, limit: int | None = None) -> Iterator[ObjectVersion]:
        """Versions of one S3 key, newest first (S3 sequencer order)."""
        for item in self._query(keys.object_pk(key), keys.VERSION_PREFIX, newest_first=True, limit=limit):
            yield ObjectVersion.from_item(item)

    def runs(self, flow: str, *, limit: int | None = None) -> Iterator[RunRecord]:
        """Step Functions runs of a flow with their latest status, newest start first."""
        for item in self._query(keys.flow_pk(flow), keys.RUN_PREFIX, newest_first=True, limit=limit):
            yield RunRecord.from_item(item)

    def run_objects(self, flow: str, run_id: str) -> Iterator[ObjectVersion]:
        """Objects the run wrote (eventually consistent: read from the index)."""
        for item in self._query_index(gsi1pk=keys.run_gsi_pk(flow, run_id), sk_prefix=keys.RUN_OBJECT_GSI_PREFIX):
            yield ObjectVersion.from_item(item)

    def current_promotion(self, model: str) -> Promotion | None:
        response = self.client.get_item(
            TableName=self.table_name,
            Key=to_attribute_values({"pk": keys.model_pk(model), "sk": keys.PROMOTION_SK}),
            ConsistentRead=True,
        )
        item = response.get("Item")
        return Promotion.from_item(from_attribute_values(item)) if item else None

    def promotion_history(self, model: str) -> Iterator[Promotion]:
        """Every promotion of a model, newest first."""
        for item in self._query(keys.model_pk(model), keys.PROMOTION_HISTORY_PREFIX, newest_first=True):
            yield Promotion.from_item(item)

    # ====================================================================================== internals
    def _query(self, pk: str, sk_prefix: str, *, newest_first: bool, limit: int | None = None) -> Iterator[dict]:
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": pk}, ":prefix": {"S": sk_prefix}},
            "ScanIndexForward": not newest_first,
        }
        yield from self._paginate(request, limit)

    def _query_index(self, *, gsi1pk: str, sk_prefix: str | None = None) -> Iterator[dict]:
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": "gsi1",
            "KeyConditionExpression": "gsi1pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": gsi1pk}},
        }
        if sk_prefix:
            request["KeyConditionExpression"] += " AND begins_with(gsi1sk, :prefix)"
            request["ExpressionAttributeValues"][":prefix"] = {"S": sk_prefix}
        yield from self._paginate(request, None)

    def _paginate(self, request: dict[str, Any], limit: int | None) -> Iterator[dict]:
        returned = 0
        while True:
            if limit is not None:
                request["Limit"] = limit - returned
            response = self.client.query(**request)
            for item in response.get("Items", []):
                yield from_attribute_values(item)
                returned += 1
                if limit is not None and returned >= limit:
                    return
            if "LastEvaluatedKey" not in response:
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
