"""API Gateway REST APIs in the emulator: the CloudFormation types CDK emits, and Lambda proxy invocation.

moto only invokes HTTP/AWS integrations, and only for requests addressed to the host
`<api>.execute-api.<region>.amazonaws.com`. The emulator serves every deployed stage at

    http://localhost:PORT/_dsstack/execute-api/<rest-api-id>/<stage>/<path>

(`execute_api_url()` builds it), matching resources like API Gateway ({param}, {proxy+}, ANY), checking
the API key against usage plans, and invoking AWS_PROXY Lambda integrations with a v1 proxy event.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from typing import Any
from urllib.parse import parse_qs

from dsstack.local.patches import Patch, set_property
from dsstack.local.patches.resources import EMULATED_TYPES, EmulatedResource, RecordedResource

PREFIX = "/_dsstack/execute-api/"


def execute_api_url(endpoint: str, rest_api_id: str, stage: str) -> str:
    return f"{endpoint.rstrip('/')}{PREFIX}{rest_api_id}/{stage}"


def _backend(account_id: str, region_name: str) -> Any:
    from moto.apigateway.models import apigateway_backends

    return apigateway_backends[account_id][region_name]


class Stage(EmulatedResource):
    TYPE = "AWS::ApiGateway::Stage"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> Stage:
        props = cloudformation_json["Properties"]
        stage = _backend(account_id, region_name).create_stage(
            props["RestApiId"], props["StageName"], props["DeploymentId"], variables=props.get("Variables"),
            description=props.get("Description", ""), tracing_enabled=props.get("TracingEnabled"))
        return cls(stage.name, api=props["RestApiId"])

    @classmethod
    def update_from_cloudformation_json(cls, original_resource: Any, new_resource_name: str,
                                        cloudformation_json: dict[str, Any], account_id: str, region_name: str) -> Any:
        props = cloudformation_json["Properties"]
        api = _backend(account_id, region_name).get_rest_api(props["RestApiId"])
        api.stages[original_resource.physical_id].deployment_id = props["DeploymentId"]
        return original_resource

    def delete(self, account_id: str, region_name: str) -> None:
        _backend(account_id, region_name).delete_stage(self.state["api"], self.physical_id)


class ApiKey(EmulatedResource):
    TYPE = "AWS::ApiGateway::ApiKey"
    ATTRIBUTES = ("APIKeyId",)

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> ApiKey:
        props = cloudformation_json["Properties"]
        payload = {"name": props.get("Name", resource_name), "enabled": props.get("Enabled", False),
                   "description": props.get("Description", ""),
                   "stageKeys": [{"restApiId": k["RestApiId"], "stageName": k["StageName"]}
                                 for k in props.get("StageKeys", [])]}
        if props.get("Value"):
            payload["value"] = props["Value"]
        key = _backend(account_id, region_name).create_api_key(payload)
        return cls(key.id, {"APIKeyId": key.id})

    def delete(self, account_id: str, region_name: str) -> None:
        _backend(account_id, region_name).delete_api_key(self.physical_id)


class UsagePlan(EmulatedResource):
    TYPE = "AWS::ApiGateway::UsagePlan"
    ATTRIBUTES = ("Id",)

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> UsagePlan:
        props = cloudformation_json["Properties"]
        payload: dict[str, Any] = {"name": props.get("UsagePlanName", resource_name),
                                   "description": props.get("Description"),
                                   "apiStages": [{"apiId": s["ApiId"], "stage": s["Stage"]}
                                                 for s in props.get("ApiStages", [])]}
        if props.get("Throttle"):
            payload["throttle"] = {"burstLimit": props["Throttle"].get("BurstLimit"),
                                   "rateLimit": props["Throttle"].get("RateLimit")}
        if props.get("Quota"):
            payload["quota"] = {"limit": props["Quota"].get("Limit"), "period": props["Quota"].get("Period")}
        plan = _backend(account_id, region_name).create_usage_plan(payload)
        return cls(plan.id, {"Id": plan.id})

    def delete(self, account_id: str, region_name: str) -> None:
        _backend(account_id, region_name).delete_usage_plan(self.physical_id)


class UsagePlanKey(EmulatedResource):
    TYPE = "AWS::ApiGateway::UsagePlanKey"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> UsagePlanKey:
        props = cloudformation_json["Properties"]
        _backend(account_id, region_name).create_usage_plan_key(
            props["UsagePlanId"], {"keyId": props["KeyId"], "keyType": props["KeyType"]})
        return cls(f"{props['UsagePlanId']}:{props['KeyId']}", plan=props["UsagePlanId"], key=props["KeyId"])

    def delete(self, account_id: str, region_name: str) -> None:
        _backend(account_id, region_name).delete_usage_plan_key(self.state["plan"], self.state["key"])


class ApiGatewayAccount(RecordedResource):
    """AWS::ApiGateway::Account only sets the CloudWatch role of the region: nothing to emulate."""

    TYPE = "AWS::ApiGateway::Account"


def register_types() -> None:
    from moto.apigateway.models import Deployment

    for cls in (Stage, ApiKey, UsagePlan, UsagePlanKey, ApiGatewayAccount):
        EMULATED_TYPES[cls.TYPE] = cls
    # {"Ref": <AWS::ApiGateway::Deployment>} resolved to the Python object (no physical id): a stage
    # referring to it stored the object, and GetStages failed to serialize it (500).
    set_property(Deployment, "physical_resource_id", lambda self: self.id)


# --- serving a stage ---------------------------------------------------------------------------------------

def _template_regex(path: str) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{(\w+)\\\+\\\}", r"(?P<\1>.+)", re.escape(path))
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", pattern)
    return re.compile(f"^{pattern}$")


def match_resource(api: Any, path: str) -> tuple[Any, dict[str, str]] | None:
    candidates = []
    for resource in api.resources.values():
        template = resource.get_path()
        found = _template_regex(template).match(path)
        if found:
            # Prefer literal segments over {param} over {proxy+}, as API Gateway does.
            candidates.append((template.count("+}") * 100 + template.count("{"), resource, found.groupdict()))
    if not candidates:
        return None
    _, resource, params = min(candidates, key=lambda c: c[0])
    return resource, params


def _api_key_allowed(backend: Any, api_id: str, stage: str, value: str | None) -> bool:
    if not value:
        return False
    keys = [k for k in backend.keys.values() if k.value == value and k.enabled]
    for key in keys:
        for plan in backend.usage_plans.values():
            stages = plan.api_stages or []
            if any(s.get("apiId") == api_id and s.get("stage") == stage for s in stages) and \
                    key.id in backend.usage_plan_keys.get(plan.id, {}):
                return True
    return False


def _respond(start_response: Any, status: int, body: bytes | str, headers: dict[str, str] | None = None) -> list[bytes]:
    data = body.encode() if isinstance(body, str) else body
    header_list = [("Content-Type", "application/json"), *((headers or {}).items())]
    header_list.append(("Content-Length", str(len(data))))
    reasons = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 403: "Forbidden",
               404: "Not Found", 500: "Internal Server Error", 502: "Bad Gateway"}
    start_response(f"{status} {reasons.get(status, 'Status')}", header_list)
    return [data]


def serve(environ: dict[str, Any], start_response: Any, account_id: str = "123456789012") -> list[bytes]:
    from moto.awslambda.utils import get_backend as lambda_backend

    from dsstack.local.patches.lambdas import invoke_locally

    parts = environ["PATH_INFO"][len(PREFIX):].split("/", 2)
    if len(parts) < 2:
        return _respond(start_response, 404, '{"message":"Not Found"}')
    api_id, stage_name = parts[0], parts[1]
    path = "/" + (parts[2] if len(parts) > 2 else "")
    method = environ["REQUEST_METHOD"]
    headers = {key[5:].replace("_", "-").title(): value for key, value in environ.items() if key.startswith("HTTP_")}
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").title()] = environ[key]
    lowered = {k.lower(): v for k, v in headers.items()}
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""

    from moto.apigateway.models import apigateway_backends

    owner = next(((region, backend) for region, backend in apigateway_backends[account_id].items()
                  if api_id in backend.apis), None)
    if owner is None:
        return _respond(start_response, 404, json.dumps({"message": f"REST API {api_id} not found"}))
    region, backend = owner
    api = backend.apis[api_id]
    if stage_name not in api.stages:
        return _respond(start_response, 403, json.dumps({"message": f"Stage {stage_name} not deployed"}))
    matched = match_resource(api, path)
    if matched is None:
        return _respond(start_response, 403, '{"message":"Missing Authentication Token"}')
    resource, path_params = matched
    api_method = resource.resource_methods.get(method) or resource.resource_methods.get("ANY")
    if api_method is None:
        return _respond(start_response, 403, '{"message":"Missing Authentication Token"}')
    if api_method.api_key_required and not _api_key_allowed(backend, api_id, stage_name, lowered.get("x-api-key")):
        return _respond(start_response, 403, '{"message":"Forbidden"}')
    integration = api_method.method_integration
    if integration is None or integration.integration_type != "AWS_PROXY" or ":lambda:path" not in integration.uri:
        return _respond(start_response, 500, json.dumps({
            "message": "the dsstack emulator serves AWS_PROXY Lambda integrations only"}))
    function_arn = integration.uri.split("/functions/")[1].removesuffix("/invocations")
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    is_text = all(b >= 32 or b in (9, 10, 13) for b in body[:1024]) if body else True
    try:
        text_body = body.decode() if is_text else None
    except UnicodeDecodeError:
        text_body, is_text = None, False
    request_id = str(uuid.uuid4())
    event = {
        "resource": resource.get_path(), "path": path, "httpMethod": method,
        "headers": headers or None, "multiValueHeaders": {k: [v] for k, v in headers.items()} or None,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": path_params or None,
        "stageVariables": api.stages[stage_name].variables or None,
        "requestContext": {
            "accountId": account_id, "apiId": api_id, "resourceId": resource.id, "resourcePath": resource.get_path(),
            "httpMethod": method, "stage": stage_name, "requestId": request_id, "path": f"/{stage_name}{path}",
            "protocol": environ.get("SERVER_PROTOCOL", "HTTP/1.1"), "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": environ.get("REMOTE_ADDR", "127.0.0.1"), "apiKey": lowered.get("x-api-key"),
                         "userAgent": lowered.get("user-agent")},
            "domainName": lowered.get("host", "localhost"),
        },
        "body": text_body if is_text else base64.b64encode(body).decode(),
        "isBase64Encoded": not is_text,
    }
    fn = lambda_backend(account_id, region).get_function(function_arn)
    payload, errored, _ = invoke_locally(fn, event)
    try:
        result = json.loads(payload) if not errored else None
    except ValueError:
        result = None
    if not isinstance(result, dict) or "statusCode" not in result:
        return _respond(start_response, 502, '{"message": "Internal server error"}')
    out_headers = {k: str(v) for k, v in (result.get("headers") or {}).items()}
    for key, values in (result.get("multiValueHeaders") or {}).items():
        out_headers[key] = ", ".join(str(v) for v in values)
    out_headers.setdefault("x-amzn-RequestId", request_id)
    raw = result.get("body") or ""
    data = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
    content_type = out_headers.pop("Content-Type", out_headers.pop("content-type", "application/json"))
    return _respond_typed(start_response, int(result["statusCode"]), data, content_type, out_headers)


def _respond_typed(start_response: Any, status: int, data: bytes, content_type: str,
                   headers: dict[str, str]) -> list[bytes]:
    from http import HTTPStatus

    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Status"
    start_response(f"{status} {reason}", [("Content-Type", content_type), *headers.items(),
                                          ("Content-Length", str(len(data)))])
    return [data]


PATCHES = [
    Patch("apigateway-cfn-types",
          "AWS::ApiGateway::Stage, ApiKey, UsagePlan, UsagePlanKey and Account are skipped: a CDK RestApi "
          "deploys with no stage and no key; Ref to a Deployment yields no id",
          "creates them in moto's API Gateway backend (Account is recorded: it only names a CloudWatch role)",
          register_types),
    Patch("apigateway-lambda-proxy",
          "moto does not invoke AWS_PROXY integrations and only routes execute-api requests by host name",
          f"serves every stage at {PREFIX}<api>/<stage>/<path>: resource matching, API key + usage plan "
          "check, v1 proxy event to the Lambda (run locally), proxy response back",
          lambda: None),
]
