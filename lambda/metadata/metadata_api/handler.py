"""Lambda entry point: the Metaflow metadata service REST API (metaflow-service 2.5.x) on DynamoDB.

Handler: `metadata_api.handler.handler`, behind an API Gateway REST API with a `{proxy+}` resource.
Environment: METADATA_TABLE_NAME (the team's metadata table). Routes and key design: docs/metadata.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger

from metadata_api import store as storage
from metadata_api.http import (
    MAX_NAME_BYTES,
    MAX_PATTERN_CHARS,
    SERVICE_VERSION,
    ClientError,
    Request,
    attempt_number,
    bad_request,
    client_given_id,
    error_response,
    optional_str,
    parse_event,
    required_name,
    response,
    str_list,
    valid_id,
)

logger = Logger(service="metaflow-metadata")

Params = dict[str, str]
RouteFunction = Callable[[storage.MetadataStore, Request, Params], dict[str, Any]]
_ROUTES: list[tuple[str, tuple[str, ...], RouteFunction]] = []

# Path parameters that are ids; `attempt` is a number and `name` an artifact name.
_ID_PARAMETERS = {"flow": "flow name", "run": "run id", "step": "step name", "task": "task id"}


def route(method: str, *templates: str) -> Callable[[RouteFunction], RouteFunction]:
    def register(function: RouteFunction) -> RouteFunction:
        for template in templates:
            _ROUTES.append((method, tuple(template.strip("/").split("/")), function))
        return function
    return register


def _match(path: str) -> tuple[dict[str, RouteFunction], Params]:
    """Every method served at `path`, and the path parameters."""
    segments = tuple(path.split("/")) if path else ()
    methods: dict[str, RouteFunction] = {}
    params: Params = {}
    for method, template, function in _ROUTES:
        if len(template) != len(segments):
            continue
        candidate: Params = {}
        for pattern, segment in zip(template, segments, strict=True):
            if pattern.startswith("{"):
                candidate[pattern[1:-1]] = segment
            elif pattern != segment:
                break
        else:
            if not methods:
                params = candidate
            if candidate.keys() == params.keys():
                methods.setdefault(method, function)
    return methods, params


def _validated(params: Params) -> Params:
    for key, value in params.items():
        if key in _ID_PARAMETERS:
            valid_id(value, _ID_PARAMETERS[key])
        elif key == "attempt":
            attempt_number(value)
        elif key == "name":
            required_name(params, "name")
    return params


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request_id = None
    try:
        request = parse_event(event)
        request_id = request.request_id
        methods, params = _match(request.path)
        if not methods:
            raise ClientError(404, f"no such resource: /{request.path[:200]}")
        function = methods.get(request.method)
        if function is None:
            raise ClientError(405, f"{request.method} is not allowed here; allowed: {', '.join(sorted(methods))}")
        return function(storage.default_store(), request, _validated(params))
    except ClientError as exc:
        logger.warning("request refused", extra={"status": exc.status, "reason": exc.message,
                                                 "request_id": request_id})
        return error_response(exc.status, exc.message, request_id)
    except storage.NotFound as exc:
        return error_response(404, str(exc), request_id)
    except storage.Conflict as exc:
        return error_response(409, f"already exists or changed concurrently: {exc}", request_id)
    except storage.ProtectedTags as exc:
        return error_response(422, str(exc), request_id)
    except storage.ItemTooLarge as exc:
        return error_response(413, str(exc), request_id)
    except storage.StorageBusy:
        logger.warning("storage throttled", extra={"request_id": request_id})
        return error_response(503, "the metadata store is busy, retry shortly", request_id)
    except Exception:
        logger.exception("request failed", extra={"request_id": request_id})
        return error_response(500, "internal error; the service log has the details", request_id)


def _with_run_tags(items: list[dict[str, Any]], run: dict[str, Any]) -> list[dict[str, Any]]:
    """Steps, tasks and artifacts carry their run's current tags (run tags are mutable), as upstream."""
    for item in items:
        item["tags"] = run.get("tags") or []
        item["system_tags"] = run.get("system_tags") or []
    return items


def _one(item: dict[str, Any] | None, what: str) -> dict[str, Any]:
    if item is None:
        raise storage.NotFound(f"{what} does not exist")
    return response(200, item)


# --- admin ---

@route("GET", "ping")
def ping(store: storage.MetadataStore, request: Request, params: Params) -> dict[str, Any]:
    return response(200, "pong", content_type="text/plain")


@route("GET", "version")
def version(store: storage.MetadataStore, request: Request, params: Params) -> dict[str, Any]:
    return response(200, SERVICE_VERSION, content_type="text/plain")


# --- flows ---

@route("GET", "flows")
def list_flows(store: storage.MetadataStore, request: Request, params: Params) -> dict[str, Any]:
    return response(200, store.list_flows())


@route("GET", "flows/{flow}")
def get_flow(store: storage.MetadataStore, request: Request, params: Params) -> dict[str, Any]:
    return _one(store.get_flow(params["flow"]), f"flow {params['flow']}")


@route("POST", "flows/{flow}")
def create_flow(store: storage.MetadataStore, request: Request, params: Params) -> dict[str, Any]:
    body = request.json_object()
    return response(200, store.create_flow(
        params["flow"], user_name=optional_str(body, "user_name", MAX_NAME_BYTES),
        tags=str_list(body, "tags"), system_tags=str_list(body, "system_tags")))


# --- runs ---

@route("GET", "flows/{flow}/runs")
def list_runs(store: storage.MetadataStore, request: Request, params: Params) -> dict[str, Any]:
    return response(200, store.list_runs(params["flow"]))


@route("GET", "flows/{flow}/runs/{run}")
def get_run(store: storage.MetadataStore, request: Request, params: Params) -> dict[str, Any]:
    return _one(store.get_run(params["flow"], params["run"]), f"run {params['flow']}/{params['run']}")


@route("POST", "flows/{flow}/run")
def create_run(store: storage.MetadataStore, request: Request, params: Params) -> dict[str, Any]:
    body = request.json_object()
    return response(200, store.create_run(
        params["flow"], client_given_id(body.get("run_number"), "run_number"),
        user_name=optional_str(body, "user_name", MAX_NAME_BYTES),
        tags=str_list(body, "tags"), system_tags=str_list(body, "system_tags")))


@route("POST", "flows/{flow}/runs/{run}/heartbeat")
def heartbeat_run(store: storage.MetadataStore, request: Request, params: Params) -> dict[str, Any]:
    if not store.heartbeat_run(params["flow"], params["run"]):
        raise storage.NotFound(f"run {params['flow']}/{params['run']} does not exist")
    return _heartbeat_response()


@route("PATCH", "flows/{flow}/runs/{run}/tag/mutate")
def mutate_run_tags(store: storage.MetadataStore, request: Request, params: Params) -> dict[str, Any]:
    body = request.json_object()
    tags = store.mutate_run_tags(params["flow"], params["run"], add=set(str_list(body, "tags_to_add")),
                                 remove=set(str_list(body, "tags_to_remove")))
    return response(200, {"tags": tags})


def _heartbeat_response() -> dict[str, Any]:
    # The Metaflow sidecar decodes the body twice (`json.loads(response.json())`): metaflow-service
    # returns the JSON document as a JSON string, and so do we.
    return response(200, json.dumps({"wait_time_in_seconds": storage.HEARTBEAT_INTERVAL_SECONDS}))


# --- steps ---

@route("GET", "flows/{flow}/runs/{run}/steps")
def list_steps(store: storage.MetadataStore, request: Request, params: Params) -> dict[str, Any]:
    run = store.get_run(params["flow"], params["run"])
    if run is None:
        return response(200, [])
    return response(200, _with_run_tags(store.list_steps(params["flow"], params["run"]), run))


@route("GET", "flows/{flow}/runs/{run}/steps/{step}")
def get_step(store: storage.MetadataStore, request: Request, params: Params) -> dict[str, Any]:
    run, step = store.get_run_and_step(params["flow"], params["run"], params["step"])
    if run is None or step is None:
        raise storage.NotFound(f"step {params['flow']}/{params['run']}/{params['step']} does not exist")
    return response(200, _with_run_tags([step], run)[0])


@route("POST", "flows/{flow}/runs/{run}/steps/{step}/step")
def create_step(store: storage.MetadataStore, request: Request, params: Params) -> dict[str, Any]:
    body = request.json_object()
    step, run = store.create_step(params["flow"], params["run"], params["step"],
                                  user_name=optional_str(body, "user_name", MAX_NAME_BYTES))
    return response(200, _with_run_tags([step], run)[0])


# --- tasks ---

@route("GET", "flows/{flow}/runs/{run}/steps/{step}/tasks")
def list_tasks(store: storage.MetadataStore, request: Request, params: Params) -> dict[str, Any]:
    run = store.get_run(params["flow"], params["run"])
    if run is None:
        return response(200, [])
    return response(200, _with_run_tags(store.list_tasks(params["flow"], params["run"], params["step"]), run))


@route("GET", "flows/{flow}/runs/{run}/steps/{step}/tasks/{task}")
def get_task(store: storage.MetadataStore, request: Request, params: Params) -> dict[str, Any]:
    run, task = store.get_run_and_task(params["flow"], params["run"], params["step"], params["task"])
    if run is None or task is None:
        raise storage.NotFound(
            f"task {params['flow']}/{params['run']}/{params['step']}/{params['task']} does not exist")
    return response(200, _with_run_tags([task], run)[0])


@route("POST", "flows/{flow}/runs/{run}/steps/{step}/task")
def create_task(store: storage.MetadataStore, request: Request, params: Params) -> dict[str, Any]:
    body = request.json_object()
    system_tags = str_list(body, "system_tags")
    task, run = store.create_task(
        params["flow"], params["run"], params["step"], client_given_id(body.get("task_id"), "task_id"),
        user_name=optional_str(body, "user_name", MAX_NAME_BYTES),
        heartbeat=storage.heartbeat_capable(system_tags))
    return response(200, _with_run_tags([task], run)[0])


@route("POST", "flows/{flow}/runs/{run}/steps/{step}/tasks/{task}/heartbeat")
def heartbeat_task(store: storage.MetadataStore, request: Request, params: Params) -> dict[str, Any]:
    if not store.heartbeat_task(params["flow"], params["run"], params["step"], params["task"]):
        raise storage.NotFound(
            f"task {params['flow']}/{params['run']}/{params['step']}/{params['task']} does not exist")
    return _heartbeat_response()


@route("GET", "flows/{flow}/runs/{run}/steps/{step}/filtered_tasks")
def filtered_tasks(store: storage.MetadataStore, request: Request, params: Params) -> dict[str, Any]:
    field_name = request.query.get("metadata_field_name") or None
    pattern_text = request.query.get("pattern") or None
    if field_name is not None:
        required_name({"metadata_field_name": field_name}, "metadata_field_name")
    pattern = None
    if pattern_text is not None:
        if len(pattern_text) > MAX_PATTERN_CHARS:
            raise bad_request(f"'pattern' is longer than {MAX_PATTERN_CHARS} characters")
        try:
            pattern = re.compile(pattern_text)
        except (re.error, RecursionError, OverflowError) as exc:
            raise bad_request(f"'pattern' is not a valid regular expression: {exc}") from None
    return response(200, store.filter_task_pathspecs(params["flow"], params["run"], params["step"],
                                                     field_name, pattern))


# --- artifacts ---

@route("POST", "flows/{flow}/runs/{run}/steps/{step}/tasks/{task}/artifact")
def create_artifacts(store: storage.MetadataStore, request: Request, params: Params) -> dict[str, Any]:
    artifacts = []
    for index, entry in enumerate(request.json_list()):
        if not isinstance(entry, dict):
            raise bad_request(f"artifact #{index} must be a JSON object")
        artifacts.append({
            "name": required_name(entry, "name"),
            "attempt_id": attempt_number(entry.get("attempt_id", 0), "attempt_id"),
            **{key: optional_str(entry, key) for key in
               ("location", "ds_type", "sha", "type", "content_type", "user_name")},
        })
    created = store.put_artifacts(params["flow"], params["run"], params["step"], params["task"], artifacts)
    return response(200, {"artifacts_created": created})


@route("GET",
       "flows/{flow}/runs/{run}/artifacts",
       "flows/{flow}/runs/{run}/steps/{step}/artifacts",
       "flows/{flow}/runs/{run}/steps/{step}/tasks/{task}/artifacts",
       "flows/{flow}/runs/{run}/steps/{step}/tasks/{task}/attempt/{attempt}/artifacts")
def list_artifacts(store: storage.MetadataStore, request: Request, params: Params) -> dict[str, Any]:
    """Latest attempt per task, or the attempt in the path."""
    run = store.get_run(params["flow"], params["run"])
    if run is None:
        return response(200, [])
    attempt = int(params["attempt"]) if "attempt" in params else None
    artifacts = store.list_artifacts(params["flow"], params["run"], params.get("step"), params.get("task"),
                                     attempt)
    return response(200, _with_run_tags(artifacts, run))


@route("GET",
       "flows/{flow}/runs/{run}/steps/{step}/tasks/{task}/artifacts/{name}",
       "flows/{flow}/runs/{run}/steps/{step}/tasks/{task}/artifacts/{name}/attempt/{attempt}")
def get_artifact(store: storage.MetadataStore, request: Request, params: Params) -> dict[str, Any]:
    path = "/".join(params[k] for k in ("flow", "run", "step", "task", "name"))
    run = store.get_run(params["flow"], params["run"])
    attempt = int(params["attempt"]) if "attempt" in params else None
    artifact = run and store.get_artifact(params["flow"], params["run"], params["step"], params["task"],
                                          params["name"], attempt)
    if not artifact:
        raise storage.NotFound(f"artifact {path} does not exist" + ("" if attempt is None else
                                                                     f" for attempt {attempt}"))
    return response(200, _with_run_tags([artifact], run)[0])


# --- metadata ---

@route("POST", "flows/{flow}/runs/{run}/steps/{step}/tasks/{task}/metadata")
def create_metadata(store: storage.MetadataStore, request: Request, params: Params) -> dict[str, Any]:
    entries = []
    for index, entry in enumerate(request.json_list()):
        if not isinstance(entry, dict):
            raise bad_request(f"metadata entry #{index} must be a JSON object")
        entries.append({
            "field_name": required_name(entry, "field_name"),
            # any JSON value: Metaflow sends strings, and lists for `foreach-stack`
            "value": entry.get("value"),
            "type": optional_str(entry, "type", MAX_NAME_BYTES),
            "user_name": optional_str(entry, "user_name", MAX_NAME_BYTES),
            "tags": str_list(entry, "tags"),
            "system_tags": str_list(entry, "system_tags"),
        })
    created = store.put_metadata(params["flow"], params["run"], params["step"], params["task"], entries)
    return response(200, {"metadata_created": created})


@route("GET",
       "flows/{flow}/runs/{run}/metadata",
       "flows/{flow}/runs/{run}/steps/{step}/tasks/{task}/metadata")
def list_metadata(store: storage.MetadataStore, request: Request, params: Params) -> dict[str, Any]:
    return response(200, store.list_metadata(params["flow"], params["run"], params.get("step"),
                                             params.get("task")))
