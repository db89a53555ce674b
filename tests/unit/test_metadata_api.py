"""The metadata service handler in-process against moto: routes, payloads, status codes, bad requests.

Every test runs with a guard on the handler's DynamoDB client that fails on Scan: no request path may scan.
The table helpers here are shared by the other test_metadata_* modules.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

ROOT = Path(__file__).resolve().parents[2]
METADATA_CODE = ROOT / "lambda" / "metadata"
if str(METADATA_CODE) not in sys.path:
    sys.path.insert(0, str(METADATA_CODE))

from metadata_api import store as storage  # noqa: E402
from metadata_api.handler import handler  # noqa: E402
from metadata_api.http import SERVICE_VERSION  # noqa: E402

TABLE_NAME = "team-a-metadata"
CURRENT_CLIENT_TAGS = ["metaflow_version:2.19.39", "user:alice", "runtime:dev"]


def create_metadata_table(client: Any, table_name: str) -> None:
    """The table exactly as the data stack creates it (keys, GSI, TTL, on-demand)."""
    client.create_table(
        TableName=table_name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "gsi1pk", "gsi1sk")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{
            "IndexName": "gsi1", "Projection": {"ProjectionType": "ALL"},
            "KeySchema": [{"AttributeName": "gsi1pk", "KeyType": "HASH"},
                          {"AttributeName": "gsi1sk", "KeyType": "RANGE"}]}])
    client.update_time_to_live(TableName=table_name,
                               TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"})


def _forbid_scan(**_: Any) -> None:
    raise AssertionError("a metadata request path used Scan")


@contextmanager
def metadata_table(table_name: str = TABLE_NAME) -> Iterator[storage.MetadataStore]:
    """moto DynamoDB holding the team's metadata table; the handler's store refuses Scan."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                            "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
                            "METADATA_TABLE_NAME": table_name}.items():
            patch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
            patch.delenv(name, raising=False)
        with mock_aws():
            create_metadata_table(boto3.client("dynamodb", region_name="us-east-1"), table_name)
            storage.reset_default_store()
            store = storage.default_store()
            store.client.meta.events.register("before-call.dynamodb.Scan", _forbid_scan)
            try:
                yield store
            finally:
                storage.reset_default_store()


def proxy_event(method: str, path: str, body: Any = None, *, query: dict[str, str] | None = None,
                raw_body: str | None = None, base64_body: bool = False) -> dict[str, Any]:
    text = raw_body if raw_body is not None else (None if body is None else json.dumps(body))
    return {"resource": "/{proxy+}", "path": path, "httpMethod": method,
            "pathParameters": {"proxy": path.lstrip("/")}, "queryStringParameters": query,
            "requestContext": {"requestId": "test-request"}, "body": text, "isBase64Encoded": base64_body}


def call(method: str, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
    result = handler(proxy_event(method, path, body, **kwargs), None)
    if result["headers"]["Content-Type"] == "application/json":
        return result["statusCode"], json.loads(result["body"])
    return result["statusCode"], result["body"]


@pytest.fixture
def table() -> Iterator[storage.MetadataStore]:
    with metadata_table() as store:
        yield store


@pytest.fixture
def run_path(table: storage.MetadataStore) -> str:
    """A flow with one run (created by a current, heartbeat-capable client) and a `start` step."""
    assert call("POST", "/flows/HelloFlow", {"flow_id": "HelloFlow"})[0] == 200
    status, run = call("POST", "/flows/HelloFlow/run", {"system_tags": CURRENT_CLIENT_TAGS, "tags": ["mine"]})
    assert status == 200
    path = f"/flows/HelloFlow/runs/{run['run_number']}"
    assert call("POST", f"{path}/steps/start/step", {})[0] == 200
    return path


def new_task(run_path: str, step: str = "start", **body: Any) -> Any:
    status, task = call("POST", f"{run_path}/steps/{step}/task", {"system_tags": CURRENT_CLIENT_TAGS, **body})
    assert status == 200, task
    return task["task_id"]


# --- version and admin ---

def test_ping_reports_a_version_the_client_treats_as_current(table):
    from metaflow.util import version_parse

    result = handler(proxy_event("GET", "/ping"), None)
    assert (result["statusCode"], result["body"]) == (200, "pong")
    reported = result["headers"]["METADATA_SERVICE_VERSION"]
    # thresholds in metaflow/plugins/metadata_providers/service.py: heartbeats, attempt gets, tag mutation,
    # and filtered_tasks (its error message asks for 2.5.0)
    for needed in ("2.0.4", "2.0.6", "2.3.0", "2.5.0"):
        assert version_parse(reported) >= version_parse(needed)
    assert call("GET", "/version") == (200, SERVICE_VERSION)


def test_handler_module_imports_without_boto3():
    code = "import sys, metadata_api.handler; print('boto3' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=METADATA_CODE, capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"


def test_the_scan_guard_would_catch_a_scan(table):
    with pytest.raises(AssertionError, match="Scan"):
        table.client.scan(TableName=TABLE_NAME)


# --- flows and runs ---

def test_flow_create_get_list_and_recreate_conflict(table):
    assert call("GET", "/flows/HelloFlow")[0] == 404
    status, flow = call("POST", "/flows/HelloFlow", {"flow_id": "HelloFlow", "ts_epoch": 1})
    assert status == 200 and flow["flow_id"] == "HelloFlow" and flow["ts_epoch"] > 1
    assert call("POST", "/flows/HelloFlow", {})[0] == 409
    assert call("GET", "/flows/HelloFlow") == (200, flow)
    assert call("GET", "/flows") == (200, [flow])


def test_runs_get_sequential_server_ids_and_client_ids_conflict_on_recreate(table):
    assert call("POST", "/flows/NoSuchFlow/run", {})[0] == 404
    call("POST", "/flows/HelloFlow", {})
    numbers = [call("POST", "/flows/HelloFlow/run", {"user_name": "alice"})[1]["run_number"] for _ in range(3)]
    assert numbers == [1, 2, 3]
    status, named = call("POST", "/flows/HelloFlow/run", {"run_number": "argo-hello-7", "tags": ["t"]})
    assert status == 200 and named["run_number"] == "argo-hello-7" and named["tags"] == ["t"]
    assert call("POST", "/flows/HelloFlow/run", {"run_number": "argo-hello-7"})[0] == 409
    status, body = call("POST", "/flows/HelloFlow/run", {"run_number": "42"})
    assert status == 400 and "numeric" in body["message"]
    assert call("GET", "/flows/HelloFlow/runs/argo-hello-7")[1]["tags"] == ["t"]
    assert call("GET", "/flows/HelloFlow/runs/2")[1]["user_name"] == "alice"
    assert call("GET", "/flows/HelloFlow/runs/99")[0] == 404
    listed = call("GET", "/flows/HelloFlow/runs")[1]
    assert sorted(str(r["run_number"]) for r in listed) == ["1", "2", "3", "argo-hello-7"]
    assert call("GET", "/flows/OtherFlow/runs") == (200, [])


def test_heartbeats_refresh_timestamps_and_answer_like_metaflow_service(run_path, table):
    run = call("GET", run_path)[1]
    assert run["last_heartbeat_ts"] is not None  # heartbeat-capable client: set at creation
    old_client = call("POST", "/flows/HelloFlow/run", {"system_tags": ["metaflow_version:2.0.1"]})[1]
    assert old_client["last_heartbeat_ts"] is None
    result = handler(proxy_event("POST", f"{run_path}/heartbeat", raw_body="{}"), None)
    assert result["statusCode"] == 200
    # the Metaflow sidecar does json.loads(response.json())
    assert json.loads(json.loads(result["body"])) == {"wait_time_in_seconds": 10}
    task_id = new_task(run_path)
    assert call("POST", f"{run_path}/steps/start/tasks/{task_id}/heartbeat", {})[0] == 200
    assert call("GET", f"{run_path}/steps/start/tasks/{task_id}")[1]["last_heartbeat_ts"] is not None
    assert call("POST", "/flows/HelloFlow/runs/77/heartbeat", {})[0] == 404
    assert call("POST", f"{run_path}/steps/start/tasks/77/heartbeat", {})[0] == 404


# --- steps and tasks ---

def test_steps_and_tasks_need_their_parents_and_conflict_on_recreate(run_path, table):
    assert call("POST", f"{run_path}/steps/start/step", {})[0] == 409
    assert call("POST", "/flows/HelloFlow/runs/99/steps/start/step", {})[0] == 404
    assert call("POST", f"{run_path}/steps/missing/task", {})[0] == 404
    first, second = new_task(run_path), new_task(run_path)
    assert (first, second) == (1, 2)
    assert new_task(run_path, task_id="sfn-task-a") == "sfn-task-a"
    assert call("POST", f"{run_path}/steps/start/task", {"task_id": "sfn-task-a"})[0] == 409
    status, body = call("POST", f"{run_path}/steps/start/task", {"task_id": "12"})
    assert status == 400 and "numeric" in body["message"]
    step = call("GET", f"{run_path}/steps/start")[1]
    assert step["step_name"] == "start" and step["run_number"] == 1
    assert [s["step_name"] for s in call("GET", f"{run_path}/steps")[1]] == ["start"]
    tasks = call("GET", f"{run_path}/steps/start/tasks")[1]
    assert sorted(str(t["task_id"]) for t in tasks) == ["1", "2", "sfn-task-a"]
    assert call("GET", f"{run_path}/steps/start/tasks/sfn-task-a")[1]["task_id"] == "sfn-task-a"
    assert call("GET", f"{run_path}/steps/start/tasks/3")[0] == 404
    assert call("GET", f"{run_path}/steps/nope")[0] == 404


def test_children_carry_the_runs_current_tags(run_path, table):
    task_id = new_task(run_path)
    call("POST", f"{run_path}/steps/start/tasks/{task_id}/artifact", [{"name": "x", "attempt_id": 0}])
    assert call("PATCH", f"{run_path}/tag/mutate", {"tags_to_add": ["reviewed"]})[0] == 200
    for path in (f"{run_path}/steps/start", f"{run_path}/steps/start/tasks/{task_id}",
                 f"{run_path}/steps/start/tasks/{task_id}/artifacts/x"):
        item = call("GET", path)[1]
        assert sorted(item["tags"]) == ["mine", "reviewed"] and "user:alice" in item["system_tags"]


# --- artifacts and metadata ---

def _register_two_attempts(run_path: str) -> int:
    task_id = new_task(run_path)
    artifacts = [{"name": n, "attempt_id": 0, "sha": f"{n}-0", "ds_type": "local", "location": "/x",
                  "content_type": "gzip+pickle-v2", "type": "metaflow.artifact"} for n in ("name", "x", "only0")]
    artifacts += [{"name": n, "attempt_id": 1, "sha": f"{n}-1"} for n in ("name", "x")]
    status, body = call("POST", f"{run_path}/steps/start/tasks/{task_id}/artifact", artifacts)
    assert (status, body) == (200, {"artifacts_created": 5})
    return task_id


def test_artifacts_default_to_the_latest_attempt(run_path, table):
    task_id = _register_two_attempts(run_path)
    task_path = f"{run_path}/steps/start/tasks/{task_id}"
    latest = call("GET", f"{task_path}/artifacts")[1]
    assert sorted((a["name"], a["attempt_id"], a["sha"]) for a in latest) == [("name", 1, "name-1"), ("x", 1, "x-1")]
    attempt0 = call("GET", f"{task_path}/attempt/0/artifacts")[1]
    assert sorted(a["name"] for a in attempt0) == ["name", "only0", "x"]
    assert call("GET", f"{task_path}/artifacts/x")[1]["sha"] == "x-1"
    assert call("GET", f"{task_path}/artifacts/x/attempt/0")[1]["sha"] == "x-0"
    assert call("GET", f"{task_path}/artifacts/only0")[0] == 404  # not set by the latest attempt
    assert call("GET", f"{task_path}/artifacts/only0/attempt/0")[1]["content_type"] == "gzip+pickle-v2"
    assert len(call("GET", f"{run_path}/steps/start/artifacts")[1]) == 2
    assert len(call("GET", f"{run_path}/artifacts")[1]) == 2
    assert call("POST", f"{run_path}/steps/start/tasks/999/artifact", [{"name": "x"}])[0] == 404


def test_metadata_entries_listing_and_filtered_tasks(run_path, table):
    first, second, bare = new_task(run_path), new_task(run_path), new_task(run_path)
    for task_id, letter in ((first, "a"), (second, "b")):
        status, body = call("POST", f"{run_path}/steps/start/tasks/{task_id}/metadata", [
            {"field_name": "foreach-execution-path", "value": f"start:{letter}", "type": "foreach-execution-path",
             "tags": ["attempt_id:0"]},
            {"field_name": "foreach-stack", "value": [f"letters={letter}"], "tags": ["attempt_id:0"]},
        ])
        assert (status, body) == (200, {"metadata_created": 2})
    entries = call("GET", f"{run_path}/steps/start/tasks/{first}/metadata")[1]
    assert {e["field_name"]: e["value"] for e in entries} == {
        "foreach-execution-path": "start:a", "foreach-stack": ["letters=a"]}
    assert entries[0]["tags"] == ["attempt_id:0"]
    assert len(call("GET", f"{run_path}/metadata")[1]) == 4
    filtered = f"{run_path}/steps/start/filtered_tasks"
    everything = [f"HelloFlow/1/start/{first}", f"HelloFlow/1/start/{second}"]
    assert call("GET", filtered) == (200, everything)  # tasks without metadata (`bare`) are not listed
    assert bare not in (first, second)
    assert call("GET", filtered, query={"metadata_field_name": "foreach-execution-path"})[1] == everything
    assert call("GET", filtered, query={"metadata_field_name": "foreach-execution-path",
                                        "pattern": "^(?:start:b)$"})[1] == everything[1:]
    assert call("GET", filtered, query={"pattern": "letters=a"})[1] == everything[:1]
    assert call("GET", filtered, query={"metadata_field_name": "nothing"})[1] == []
    status, body = call("GET", filtered, query={"pattern": "(unclosed"})
    assert status == 400 and "regular expression" in body["message"]
    assert call("POST", f"{run_path}/steps/start/tasks/999/metadata", [{"field_name": "x", "value": "1"}])[0] == 404


# --- tag mutation ---

def test_tag_mutation_rules(run_path, table):
    mutate = f"{run_path}/tag/mutate"
    assert call("PATCH", mutate, {"tags_to_add": ["b", "c"], "tags_to_remove": ["mine"]}) == (200, {"tags": ["b", "c"]})
    # removals apply before additions; adding a system tag does not duplicate it as a user tag
    assert call("PATCH", mutate, {"tags_to_add": ["c", "user:alice"], "tags_to_remove": ["c"]})[1] == {"tags": ["b", "c"]}
    status, body = call("PATCH", mutate, {"tags_to_remove": ["user:alice"]})
    assert status == 422 and "system tags" in body["message"]
    assert call("PATCH", mutate, {"tags_to_add": "b"})[0] == 400
    assert call("PATCH", mutate, {"tags_to_add": [1]})[0] == 400
    assert call("PATCH", "/flows/HelloFlow/runs/99/tag/mutate", {"tags_to_add": ["x"]})[0] == 404
    assert sorted(call("GET", run_path)[1]["tags"]) == ["b", "c"]


def test_tag_mutation_that_loses_a_race_gets_409(run_path, table, monkeypatch):
    real_get = storage.MetadataStore._get
    interfered: list[int] = []

    def get_then_let_another_writer_in(self, key):
        item = real_get(self, key)
        if not interfered and key["sk"].startswith("RUN#"):
            interfered.append(0)  # before the nested PATCH, whose own read must not interfere again
            interfered[0] = call("PATCH", f"{run_path}/tag/mutate", {"tags_to_add": ["theirs"]})[0]
        return item

    monkeypatch.setattr(storage.MetadataStore, "_get", get_then_let_another_writer_in)
    status, body = call("PATCH", f"{run_path}/tag/mutate", {"tags_to_add": ["ours"]})
    assert interfered == [200]
    assert status == 409 and "retry" in body["message"]
    assert sorted(call("GET", run_path)[1]["tags"]) == ["mine", "theirs"]


# --- bad requests: 4xx with a message, never 500 ---

BAD_REQUESTS = [
    ("unknown route", proxy_event("GET", "/nothing/here"), 404),
    ("empty path", proxy_event("GET", "/"), 404),
    ("wrong method", proxy_event("DELETE", "/flows"), 405),
    ("malformed JSON", proxy_event("POST", "/flows/F", raw_body="{nope"), 400),
    ("JSON NaN", proxy_event("POST", "/flows/F", raw_body='{"user_name": NaN}'), 400),
    ("array instead of object", proxy_event("POST", "/flows/F", [1, 2]), 400),
    ("object instead of array", proxy_event("POST", "/flows/F/runs/1/steps/s/tasks/1/artifact", {}), 400),
    ("tags not a list", proxy_event("POST", "/flows/F", {"tags": "a"}), 400),
    ("user_name not a string", proxy_event("POST", "/flows/F", {"user_name": 5}), 400),
    ("numeric client run id", proxy_event("POST", "/flows/F/run", {"run_number": "17"}), 400),
    ("run id of wrong type", proxy_event("POST", "/flows/F/run", {"run_number": 17}), 400),
    ("negative attempt", proxy_event("POST", "/flows/F/runs/1/steps/s/tasks/1/artifact",
                                     [{"name": "x", "attempt_id": -1}]), 400),
    ("boolean attempt", proxy_event("POST", "/flows/F/runs/1/steps/s/tasks/1/artifact",
                                    [{"name": "x", "attempt_id": True}]), 400),
    ("artifact without name", proxy_event("POST", "/flows/F/runs/1/steps/s/tasks/1/artifact", [{}]), 400),
    ("attempt in path not a number", proxy_event("GET", "/flows/F/runs/1/steps/s/tasks/1/attempt/x/artifacts"), 400),
    ("id with #", proxy_event("GET", "/flows/F%23x/runs/1".replace("%23", "#")), 400),
    ("id too long", proxy_event("GET", "/flows/" + "f" * 300), 400),
    ("lone surrogate", proxy_event("POST", "/flows/F", raw_body='{"user_name": "\\ud800"}'), 400),
    ("invalid base64", proxy_event("POST", "/flows/F", raw_body="***", base64_body=True), 400),
    ("body over 1 MB", proxy_event("POST", "/flows/F", raw_body=" " * (1024 * 1024 + 1)), 413),
    ("base64 body over 1 MB", proxy_event("POST", "/flows/F", base64_body=True,
                                          raw_body=base64.b64encode(b" " * (1024 * 1024 + 10)).decode()), 413),
    ("not an API Gateway event", {"hello": "world"}, 400),
    ("bad filter pattern", proxy_event("GET", "/flows/F/runs/1/steps/s/filtered_tasks", query={"pattern": "*"}), 400),
]


@pytest.mark.parametrize(("event", "status"), [(e, s) for _, e, s in BAD_REQUESTS],
                         ids=[name for name, _, _ in BAD_REQUESTS])
def test_bad_requests_get_a_4xx_with_a_message(table, event, status):
    result = handler(event, None)
    body = json.loads(result["body"])
    assert result["statusCode"] == status, body
    assert body["message"] and "Traceback" not in result["body"]


def test_an_item_over_dynamodbs_size_limit_is_refused_with_413(run_path, table):
    task_id = new_task(run_path)
    status, body = call("POST", f"{run_path}/steps/start/tasks/{task_id}/metadata",
                        [{"field_name": "huge", "value": "v" * 500_000}])
    assert status == 413 and body["message"]


def test_an_unexpected_failure_is_a_500_without_internals(table, monkeypatch):
    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(storage.MetadataStore, "list_flows", broken)
    result = handler(proxy_event("GET", "/flows"), None)
    assert result["statusCode"] == 500
    assert "secret" not in result["body"] and json.loads(result["body"])["message"]


_segments = st.one_of(st.sampled_from(["flows", "F", "runs", "1", "steps", "s", "tasks", "task", "run", "step",
                                       "artifacts", "artifact", "metadata", "attempt", "0", "heartbeat", "tag",
                                       "mutate", "filtered_tasks", "ping", ""]),
                      st.text(max_size=12))
_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                 max_size=4), max_leaves=12)
_bodies = st.one_of(st.none(), _json.map(json.dumps), st.text(max_size=60),
                    st.fixed_dictionaries({}, optional={k: _json for k in (
                        "run_number", "task_id", "tags", "system_tags", "user_name", "tags_to_add",
                        "tags_to_remove")}).map(json.dumps),
                    st.lists(st.fixed_dictionaries({}, optional={k: _json for k in (
                        "name", "attempt_id", "field_name", "value", "tags", "sha")}), max_size=3).map(json.dumps))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(["GET", "POST", "PATCH", "PUT", "DELETE", "get"]),
       segments=st.lists(_segments, max_size=11), body=_bodies,
       query=st.none() | st.dictionaries(st.sampled_from(["pattern", "metadata_field_name", "x"]),
                                         st.text(max_size=10), max_size=2))
def test_generated_requests_never_get_a_server_error(run_path, table, method, segments, body, query):
    result = handler(proxy_event(method, "/" + "/".join(segments), raw_body=body, query=query), None)
    assert result["statusCode"] < 500, result["body"]
    if result["statusCode"] >= 400:
        assert json.loads(result["body"])["message"]
