"""DynamoDB single-table storage of the metadata service: the key layout and every access path.

One table per team (`pk`/`sk`, GSI `gsi1` on `gsi1pk`/`gsi1sk`, projecting ALL). Every request is served
with GetItem, BatchGetItem, Query, PutItem, UpdateItem or BatchWriteItem; nothing here ever scans.

    item            pk                     sk                                             gsi1pk / gsi1sk
    flow            FLOWS                  FLOW#<flow>
    run id counter  FLOW#<flow>            COUNTER#RUN
    run             FLOW#<flow>            RUN#<run>
    step            RUN#<flow>#<run>       STEP#<step>
    task id counter RUN#<flow>#<run>       COUNTER#TASK
    task            RUN#<flow>#<run>       TASK#<step>#<task>
    artifact        RUN#<flow>#<run>       ARTIFACT#<step>#<task>#<attempt:010d>#<name>
    metadata        RUN#<flow>#<run>       METADATA#<step>#<task>#<ts:013d>#<token>#<i>   FIELD#<flow>#<run>#<step>#<field>
                                                                                          / <task>#<ts>#<token>#<i>

Ids never contain `#` (the request layer rejects them), so every `begins_with` prefix is unambiguous.
"""

from __future__ import annotations

import json
import os
import random
import re
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

# How long a client waits between heartbeats; the Metaflow sidecar reads it from the response.
HEARTBEAT_INTERVAL_SECONDS = 10
# DynamoDB's item limit is 400 KB; keep a margin for attribute names and key overhead.
MAX_ITEM_BYTES = 380_000
_BATCH_WRITE_LIMIT = 25
_BATCH_RETRIES = 8
_THROTTLING_CODES = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable",
})


class NotFound(Exception):
    """The addressed object (or a parent it needs) does not exist."""


class Conflict(Exception):
    """The object already exists, or a concurrent update won the race (HTTP 409)."""


class ProtectedTags(Exception):
    """A tag mutation tried to remove system tags (HTTP 422)."""


class ItemTooLarge(Exception):
    """One object would exceed DynamoDB's item size limit (HTTP 413)."""


class StorageBusy(Exception):
    """DynamoDB throttled us beyond the SDK's retries; the Metaflow client retries on 503."""


def now_ms() -> int:
    return int(time.time() * 1000)


def exposed_id(raw: str) -> int | str:
    """Server-assigned run/task ids are integers in the API (as in metaflow-service); client ids stay strings."""
    return int(raw) if raw.isascii() and raw.isdigit() else raw


def _id_sort_key(value: int | str) -> tuple[int, int, str]:
    return (0, value, "") if isinstance(value, int) else (1, 0, value)


# --- attribute (un)marshalling: our items only hold strings, integers, booleans, null and lists/maps ---

def _to_attr(value: Any) -> dict[str, Any]:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (list, tuple)):
        return {"L": [_to_attr(v) for v in value]}
    if isinstance(value, dict):
        return {"M": {k: _to_attr(v) for k, v in value.items()}}
    raise TypeError(f"cannot store {type(value).__name__}")


def _from_attr(attr: dict[str, Any]) -> Any:
    (kind, value), = attr.items()
    if kind == "S":
        return value
    if kind == "N":
        return int(value) if re.fullmatch(r"-?\d+", value) else float(value)
    if kind == "BOOL":
        return value
    if kind == "NULL":
        return None
    if kind == "L":
        return [_from_attr(v) for v in value]
    if kind == "M":
        return {k: _from_attr(v) for k, v in value.items()}
    raise TypeError(f"unexpected attribute type {kind}")


def _marshal(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _to_attr(v) for k, v in item.items()}


def _unmarshal(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _from_attr(v) for k, v in item.items()}


_INTERNAL_ATTRIBUTES = frozenset({"pk", "sk", "gsi1pk", "gsi1sk", "ttl", "tag_version", "next_id"})


def public(item: dict[str, Any]) -> dict[str, Any]:
    """The API representation of a stored item: everything except keys and bookkeeping."""
    return {k: v for k, v in item.items() if k not in _INTERNAL_ATTRIBUTES}


def _error_code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None


# --- keys ---

def flow_key(flow: str) -> dict[str, str]:
    return {"pk": "FLOWS", "sk": f"FLOW#{flow}"}


def run_counter_key(flow: str) -> dict[str, str]:
    return {"pk": f"FLOW#{flow}", "sk": "COUNTER#RUN"}


def run_key(flow: str, run: str) -> dict[str, str]:
    return {"pk": f"FLOW#{flow}", "sk": f"RUN#{run}"}


def run_partition(flow: str, run: str) -> str:
    return f"RUN#{flow}#{run}"


def step_key(flow: str, run: str, step: str) -> dict[str, str]:
    return {"pk": run_partition(flow, run), "sk": f"STEP#{step}"}


def task_counter_key(flow: str, run: str) -> dict[str, str]:
    return {"pk": run_partition(flow, run), "sk": "COUNTER#TASK"}


def task_key(flow: str, run: str, step: str, task: str) -> dict[str, str]:
    return {"pk": run_partition(flow, run), "sk": f"TASK#{step}#{task}"}


def artifact_prefix(step: str | None = None, task: str | None = None, attempt: int | None = None) -> str:
    prefix = "ARTIFACT#"
    if step is not None:
        prefix += f"{step}#"
        if task is not None:
            prefix += f"{task}#"
            if attempt is not None:
                prefix += f"{attempt:010d}#"
    return prefix


def metadata_prefix(step: str | None = None, task: str | None = None) -> str:
    prefix = "METADATA#"
    if step is not None:
        prefix += f"{step}#"
        if task is not None:
            prefix += f"{task}#"
    return prefix


def metadata_field_partition(flow: str, run: str, step: str, field_name: str) -> str:
    return f"FIELD#{flow}#{run}#{step}#{field_name}"


def heartbeat_capable(system_tags: Iterable[str]) -> bool:
    """Whether the client that sent these system tags runs a heartbeat sidecar.

    Same rule as metaflow-service: Metaflow >= 2.2.12 (or 1.14.x on the 1.x line); a version we cannot
    parse is treated as capable, because only very old clients lack heartbeats.
    """
    for tag in system_tags:
        if tag.startswith("metaflow_version:"):
            match = re.match(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?", tag[len("metaflow_version:"):])
            if not match:
                return True
            version = tuple(int(part or 0) for part in match.groups())
            if version[0] == 1:
                return version >= (1, 14, 0)
            return version >= (2, 2, 12)
    return False


class MetadataStore:
    """All reads and writes of one team's metadata table."""

    def __init__(self, table_name: str, client: Any) -> None:
        self.table_name = table_name
        self.client = client

    # --- primitives ---

    def _get(self, key: dict[str, str]) -> dict[str, Any] | None:
        response = self._call("get_item", TableName=self.table_name, Key=_marshal(key), ConsistentRead=True)
        item = response.get("Item")
        return _unmarshal(item) if item else None

    def _get_many(self, keys: list[dict[str, str]]) -> list[dict[str, Any] | None]:
        """BatchGetItem in one round trip; results in the order of `keys` (None where missing)."""
        pending = [_marshal(k) for k in keys]
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for attempt in range(_BATCH_RETRIES):
            response = self._call(
                "batch_get_item",
                RequestItems={self.table_name: {"Keys": pending, "ConsistentRead": True}})
            for raw in response.get("Responses", {}).get(self.table_name, []):
                item = _unmarshal(raw)
                found[(item["pk"], item["sk"])] = item
            pending = response.get("UnprocessedKeys", {}).get(self.table_name, {}).get("Keys", [])
            if not pending:
                break
            _backoff(attempt)
        else:
            raise StorageBusy("DynamoDB left keys unprocessed")
        return [found.get((k["pk"], k["sk"])) for k in keys]

    def _query(self, pk: str, sk_prefix: str = "", *, index: str | None = None,
               newest_first: bool = False) -> Iterator[dict[str, Any]]:
        pk_name, sk_name = ("gsi1pk", "gsi1sk") if index else ("pk", "sk")
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "#pk = :pk" + (" AND begins_with(#sk, :prefix)" if sk_prefix else ""),
            "ExpressionAttributeNames": {"#pk": pk_name, **({"#sk": sk_name} if sk_prefix else {})},
            "ExpressionAttributeValues": {":pk": {"S": pk}, **({":prefix": {"S": sk_prefix}} if sk_prefix else {})},
            "ScanIndexForward": not newest_first,
        }
        if index:
            kwargs["IndexName"] = index  # GSIs only offer eventually consistent reads
        else:
            kwargs["ConsistentRead"] = True
        while True:
            response = self._call("query", **kwargs)
            for raw in response.get("Items", []):
                yield _unmarshal(raw)
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _put_new(self, item: dict[str, Any]) -> None:
        """Create an item; Conflict if one with the same key exists (a re-create is HTTP 409)."""
        marshalled = _check_size(_marshal(item))
        try:
            self._call("put_item", TableName=self.table_name, Item=marshalled,
                       ConditionExpression="attribute_not_exists(pk)")
        except Exception as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                raise Conflict(item["sk"]) from None
            raise

    def _touch(self, key: dict[str, str], heartbeat_s: int) -> bool:
        """Set last_heartbeat_ts on an existing item; False when the item does not exist."""
        try:
            self._call(
                "update_item", TableName=self.table_name, Key=_marshal(key),
                UpdateExpression="SET last_heartbeat_ts = :now",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":now": {"N": str(heartbeat_s)}})
        except Exception as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _next_id(self, counter_key: dict[str, str]) -> int:
        """Atomic counter: UpdateItem ADD returns a distinct value to every concurrent caller."""
        response = self._call(
            "update_item", TableName=self.table_name, Key=_marshal(counter_key),
            UpdateExpression="ADD next_id :one", ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW")
        return int(response["Attributes"]["next_id"]["N"])

    def _batch_put(self, items: list[dict[str, Any]]) -> None:
        # BatchWriteItem rejects two writes to one key in a batch: the last registration of a key wins.
        unique = {(item["pk"], item["sk"]): item for item in items}
        requests = [{"PutRequest": {"Item": _check_size(_marshal(item))}} for item in unique.values()]
        for start in range(0, len(requests), _BATCH_WRITE_LIMIT):
            pending = requests[start:start + _BATCH_WRITE_LIMIT]
            for attempt in range(_BATCH_RETRIES):
                response = self._call("batch_write_item", RequestItems={self.table_name: pending})
                pending = response.get("UnprocessedItems", {}).get(self.table_name, [])
                if not pending:
                    break
                _backoff(attempt)
            else:
                raise StorageBusy("DynamoDB left writes unprocessed")

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return getattr(self.client, operation)(**kwargs)
        except Exception as exc:
            if _error_code(exc) in _THROTTLING_CODES:
                raise StorageBusy(str(exc)) from exc
            raise

    # --- flows ---

    def create_flow(self, flow: str, *, user_name: str | None, tags: list[str],
                    system_tags: list[str]) -> dict[str, Any]:
        item = {**flow_key(flow), "flow_id": flow, "user_name": user_name, "ts_epoch": now_ms(),
                "tags": tags, "system_tags": system_tags}
        self._put_new(item)
        return public(item)

    def get_flow(self, flow: str) -> dict[str, Any] | None:
        item = self._get(flow_key(flow))
        return public(item) if item else None

    def list_flows(self) -> list[dict[str, Any]]:
        return [public(item) for item in self._query("FLOWS", "FLOW#")]

    # --- runs ---

    def create_run(self, flow: str, run: str | None, *, user_name: str | None, tags: list[str],
                   system_tags: list[str]) -> dict[str, Any]:
        if self._get(flow_key(flow)) is None:
            raise NotFound(f"flow {flow} does not exist; create it first (POST /flows/{flow})")
        item: dict[str, Any] = {
            "flow_id": flow, "user_name": user_name, "ts_epoch": now_ms(), "tags": tags,
            "system_tags": system_tags, "tag_version": 0,
            "last_heartbeat_ts": int(time.time()) if heartbeat_capable(system_tags) else None,
        }
        if run is not None:
            self._put_new({**run_key(flow, run), **item, "run_number": run})
            return public(item | {"run_number": run})
        while True:  # a numeric id is only ever handed out by the counter, so this loops at most once
            number = self._next_id(run_counter_key(flow))
            try:
                self._put_new({**run_key(flow, str(number)), **item, "run_number": number})
            except Conflict:
                continue
            return public(item | {"run_number": number})

    def get_run(self, flow: str, run: str) -> dict[str, Any] | None:
        item = self._get(run_key(flow, run))
        return public(item) if item else None

    def list_runs(self, flow: str) -> list[dict[str, Any]]:
        return [public(item) for item in self._query(f"FLOW#{flow}", "RUN#")]

    def heartbeat_run(self, flow: str, run: str) -> bool:
        return self._touch(run_key(flow, run), int(time.time()))

    def mutate_run_tags(self, flow: str, run: str, *, add: set[str], remove: set[str]) -> list[str]:
        """Optimistic concurrency: the update only applies if nobody changed the tags since we read them."""
        item = self._get(run_key(flow, run))
        if item is None:
            raise NotFound(f"run {flow}/{run} does not exist")
        existing = set(item.get("tags") or [])
        system = set(item.get("system_tags") or [])
        if remove & system:
            raise ProtectedTags(f"cannot remove system tags {sorted(remove & system)}")
        # removals apply before additions, and a system tag is never duplicated as a user tag
        new_tags = (existing - remove) | (add - system)
        if new_tags == existing:
            return sorted(existing)
        version = item.get("tag_version", 0)
        try:
            self._call(
                "update_item", TableName=self.table_name, Key=_marshal(run_key(flow, run)),
                UpdateExpression="SET tags = :tags, tag_version = :next",
                ConditionExpression="attribute_exists(pk) AND (tag_version = :current"
                                    " OR (attribute_not_exists(tag_version) AND :current = :zero))",
                ExpressionAttributeValues={
                    ":tags": _to_attr(sorted(new_tags)), ":next": {"N": str(version + 1)},
                    ":current": {"N": str(version)}, ":zero": {"N": "0"}})
        except Exception as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                raise Conflict("conflicting concurrent tag mutation, please retry") from None
            raise
        return sorted(new_tags)

    # --- steps ---

    def create_step(self, flow: str, run: str, step: str, *, user_name: str | None) -> tuple[dict, dict]:
        """Returns (step, run) so the caller can present the step with its run's tags."""
        run_item = self.get_run(flow, run)
        if run_item is None:
            raise NotFound(f"run {flow}/{run} does not exist")
        item = {**step_key(flow, run, step), "flow_id": flow, "run_number": exposed_id(run),
                "step_name": step, "user_name": user_name, "ts_epoch": now_ms()}
        self._put_new(item)
        return public(item), run_item

    def get_run_and_step(self, flow: str, run: str, step: str) -> tuple[dict | None, dict | None]:
        run_item, step_item = self._get_many([run_key(flow, run), step_key(flow, run, step)])
        return (public(run_item) if run_item else None), (public(step_item) if step_item else None)

    def list_steps(self, flow: str, run: str) -> list[dict[str, Any]]:
        return [public(item) for item in self._query(run_partition(flow, run), "STEP#")]

    # --- tasks ---

    def create_task(self, flow: str, run: str, step: str, task: str | None, *, user_name: str | None,
                    heartbeat: bool) -> tuple[dict, dict]:
        run_item, step_item = self.get_run_and_step(flow, run, step)
        if run_item is None:
            raise NotFound(f"run {flow}/{run} does not exist")
        if step_item is None:
            raise NotFound(f"step {flow}/{run}/{step} does not exist")
        item: dict[str, Any] = {
            "flow_id": flow, "run_number": exposed_id(run), "step_name": step, "user_name": user_name,
            "ts_epoch": now_ms(), "last_heartbeat_ts": int(time.time()) if heartbeat else None,
        }
        if task is not None:
            self._put_new({**task_key(flow, run, step, task), **item, "task_id": task})
            created = item | {"task_id": task}
        else:
            while True:  # numeric task ids only come from the counter: at most one pass
                number = self._next_id(task_counter_key(flow, run))
                try:
                    self._put_new({**task_key(flow, run, step, str(number)), **item, "task_id": number})
                except Conflict:
                    continue
                created = item | {"task_id": number}
                break
        if heartbeat:
            # Runs orchestrated without a local runtime (Step Functions, Argo) stay alive through their tasks.
            self.heartbeat_run(flow, run)
        return public(created), run_item

    def get_run_and_task(self, flow: str, run: str, step: str, task: str) -> tuple[dict | None, dict | None]:
        run_item, task_item = self._get_many([run_key(flow, run), task_key(flow, run, step, task)])
        return (public(run_item) if run_item else None), (public(task_item) if task_item else None)

    def task_exists(self, flow: str, run: str, step: str, task: str) -> bool:
        return self._get(task_key(flow, run, step, task)) is not None

    def list_tasks(self, flow: str, run: str, step: str) -> list[dict[str, Any]]:
        return [public(item) for item in self._query(run_partition(flow, run), f"TASK#{step}#")]

    def heartbeat_task(self, flow: str, run: str, step: str, task: str) -> bool:
        now_s = int(time.time())
        self._touch(run_key(flow, run), now_s)
        return self._touch(task_key(flow, run, step, task), now_s)

    # --- artifacts ---

    def put_artifacts(self, flow: str, run: str, step: str, task: str,
                      artifacts: list[dict[str, Any]]) -> int:
        if not self.task_exists(flow, run, step, task):
            raise NotFound(f"task {flow}/{run}/{step}/{task} does not exist; register the task first")
        ts = now_ms()
        items = []
        for artifact in artifacts:
            attempt = artifact["attempt_id"]
            items.append({
                "pk": run_partition(flow, run),
                "sk": artifact_prefix(step, task, attempt) + artifact["name"],
                "flow_id": flow, "run_number": exposed_id(run), "step_name": step, "task_id": exposed_id(task),
                "name": artifact["name"], "location": artifact.get("location"),
                "ds_type": artifact.get("ds_type"), "sha": artifact.get("sha"), "type": artifact.get("type"),
                "content_type": artifact.get("content_type"), "user_name": artifact.get("user_name"),
                "attempt_id": attempt, "ts_epoch": ts,
            })
        self._batch_put(items)
        return len(items)

    def list_artifacts(self, flow: str, run: str, step: str | None = None, task: str | None = None,
                       attempt: int | None = None) -> list[dict[str, Any]]:
        """Artifacts under a run, step or task: of the latest attempt per task, or of `attempt`."""
        items = [public(i) for i in self._query(run_partition(flow, run), artifact_prefix(step, task, attempt))]
        if attempt is not None:
            return items
        latest: dict[tuple[str, Any], int] = {}
        for item in items:
            key = (item["step_name"], item["task_id"])
            latest[key] = max(latest.get(key, 0), item["attempt_id"])
        return [i for i in items if i["attempt_id"] == latest[(i["step_name"], i["task_id"])]]

    def get_artifact(self, flow: str, run: str, step: str, task: str, name: str,
                     attempt: int | None = None) -> dict[str, Any] | None:
        if attempt is not None:
            item = self._get({"pk": run_partition(flow, run), "sk": artifact_prefix(step, task, attempt) + name})
            return public(item) if item else None
        # Without an attempt: the latest attempt that registered the `name` artifact (every attempt of a
        # Metaflow task does), as metaflow-service does; attempts that died before persisting don't count.
        items = [public(i) for i in self._query(run_partition(flow, run), artifact_prefix(step, task))]
        latest = max((i["attempt_id"] for i in items if i["name"] == "name"), default=0)
        return next((i for i in items if i["name"] == name and i["attempt_id"] == latest), None)

    # --- metadata ---

    def put_metadata(self, flow: str, run: str, step: str, task: str, entries: list[dict[str, Any]]) -> int:
        if not self.task_exists(flow, run, step, task):
            raise NotFound(f"task {flow}/{run}/{step}/{task} does not exist; register the task first")
        ts = now_ms()
        # Metadata is append-only (a field is registered again by every attempt): a per-request token
        # keeps entries registered in the same millisecond apart.
        token = uuid.uuid4().hex[:12]
        items = []
        for index, entry in enumerate(entries):
            suffix = f"{ts:013d}#{token}#{index:05d}"
            items.append({
                "pk": run_partition(flow, run), "sk": metadata_prefix(step, task) + suffix,
                "gsi1pk": metadata_field_partition(flow, run, step, entry["field_name"]),
                "gsi1sk": f"{task}#{suffix}",
                "flow_id": flow, "run_number": exposed_id(run), "step_name": step, "task_id": exposed_id(task),
                "field_name": entry["field_name"], **_metadata_value_attribute(entry["value"]),
                "type": entry.get("type"),
                "user_name": entry.get("user_name"), "ts_epoch": ts, "tags": entry.get("tags") or [],
                "system_tags": entry.get("system_tags") or [],
            })
        self._batch_put(items)
        return len(items)

    def list_metadata(self, flow: str, run: str, step: str | None = None,
                      task: str | None = None) -> list[dict[str, Any]]:
        return [_metadata_entry(i) for i in
                self._query(run_partition(flow, run), metadata_prefix(step, task), newest_first=True)]

    def filter_task_pathspecs(self, flow: str, run: str, step: str, field_name: str | None,
                              pattern: re.Pattern[str] | None) -> list[str]:
        """Pathspecs of the step's tasks with a metadata entry (named `field_name`) whose value matches."""
        if field_name:
            entries = self._query(metadata_field_partition(flow, run, step, field_name), index="gsi1")
        else:
            entries = self._query(run_partition(flow, run), metadata_prefix(step))
        task_ids = {e["task_id"] for e in entries
                    if pattern is None or pattern.search(e.get("value") or e.get("value_json") or "")}
        return [f"{flow}/{run}/{step}/{task_id}" for task_id in sorted(task_ids, key=_id_sort_key)]


def _metadata_value_attribute(value: Any) -> dict[str, Any]:
    """Strings are stored as they are; other JSON values (lists, numbers) as their JSON text, because
    DynamoDB numbers cannot hold every JSON number and the value is only ever returned, not queried."""
    return {"value": value} if isinstance(value, str) else {"value_json": json.dumps(value)}


def _metadata_entry(item: dict[str, Any]) -> dict[str, Any]:
    entry = public(item)
    if "value_json" in entry:
        entry["value"] = json.loads(entry.pop("value_json"))
    return entry


def _check_size(marshalled: dict[str, Any]) -> dict[str, Any]:
    if len(json.dumps(marshalled)) > MAX_ITEM_BYTES:
        raise ItemTooLarge(f"object larger than {MAX_ITEM_BYTES} bytes")
    return marshalled


def _backoff(attempt: int) -> None:
    time.sleep(min(1.0, 0.02 * 2 ** attempt) * random.uniform(0.5, 1.0))


_default_store: MetadataStore | None = None


def default_store() -> MetadataStore:
    """The store of this Lambda environment; boto3 is imported and its client built on first use only."""
    global _default_store
    if _default_store is None:
        import boto3
        from botocore.config import Config

        table_name = os.environ.get("METADATA_TABLE_NAME")
        if not table_name:
            raise RuntimeError("METADATA_TABLE_NAME is not set")
        client = boto3.client("dynamodb", config=Config(retries={"mode": "standard", "max_attempts": 4}))
        _default_store = MetadataStore(table_name, client)
    return _default_store


def reset_default_store() -> None:
    """Forget the cached client (tests switch tables and moto backends between modules)."""
    global _default_store
    _default_store = None
