"""dsstack.local.lambda_http: HTTP requests in, API Gateway REST proxy events to a handler, responses out."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import requests

from dsstack.local.lambda_http import LambdaHttpServer, build_proxy_event, load_handler

ROOT = Path(__file__).resolve().parents[2]


def echo_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"statusCode": 201, "headers": {"X-Echo": "yes", "METADATA_SERVICE_VERSION": "9.9.9"},
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
            "body": json.dumps({"event": event, "remaining_ms": context.get_remaining_time_in_millis(),
                                "request_id": context.aws_request_id})}


@pytest.fixture(scope="module")
def echo_server():
    with LambdaHttpServer(echo_handler, stage="test") as server:
        yield server


def test_requests_become_api_gateway_proxy_events(echo_server):
    response = requests.post(f"{echo_server.url}/flows/My%20Flow/run?b=1&b=2&c=",
                             json={"x": 1}, headers={"X-Api-Key": "k"}, timeout=10)
    assert response.status_code == 201
    assert response.headers["X-Echo"] == "yes" and response.headers["METADATA_SERVICE_VERSION"] == "9.9.9"
    body = response.json()
    event = body["event"]
    assert event["httpMethod"] == "POST" and event["resource"] == "/{proxy+}"
    assert event["path"] == "/flows/My Flow/run"  # decoded, as API Gateway passes it
    assert event["pathParameters"] == {"proxy": "flows/My Flow/run"}
    assert event["queryStringParameters"] == {"b": "2", "c": ""}
    assert event["multiValueQueryStringParameters"] == {"b": ["1", "2"], "c": [""]}
    assert json.loads(event["body"]) == {"x": 1} and event["isBase64Encoded"] is False
    assert event["requestContext"]["stage"] == "test"
    assert event["requestContext"]["identity"]["apiKey"] == "k"
    assert body["remaining_ms"] > 0 and body["request_id"]


def test_binary_bodies_are_base64_and_root_has_no_proxy_parameter():
    event = build_proxy_event("PUT", "/", {"Content-Type": "application/octet-stream"}, b"\xff\x00")
    assert event["isBase64Encoded"] is True and event["body"] == "/wA="
    assert event["pathParameters"] is None and event["queryStringParameters"] is None


def test_handler_failures_are_502_like_api_gateway():
    def raising(event, context):
        raise RuntimeError("boom")

    def malformed(event, context):
        return {"no": "status"}

    for broken in (raising, malformed):
        with LambdaHttpServer(broken) as server:
            response = requests.get(f"{server.url}/x", timeout=10)
            assert response.status_code == 502 and response.json()["message"]


def test_oversized_requests_are_refused_before_the_handler(echo_server):
    connection = http.client.HTTPConnection(echo_server.host, echo_server.port, timeout=10)
    connection.putrequest("POST", "/big")
    connection.putheader("Content-Length", str(11 * 1024 * 1024))
    connection.endheaders()
    assert connection.getresponse().status == 413
    connection.close()


def test_load_handler_accepts_lambda_and_colon_specs(tmp_path):
    (tmp_path / "echo_fn.py").write_text("def handler(event, context):\n    return {'statusCode': 204}\n")
    assert load_handler("echo_fn.handler", tmp_path)({}, None) == {"statusCode": 204}
    assert load_handler("echo_fn:handler", tmp_path)({}, None) == {"statusCode": 204}
    with pytest.raises(ValueError):
        load_handler("nodots")


def test_command_line_serves_a_handler_folder(tmp_path):
    (tmp_path / "cli_fn.py").write_text(textwrap.dedent("""
        def handler(event, context):
            return {"statusCode": 200, "body": event["path"]}
    """))
    process = subprocess.Popen(
        [sys.executable, "-m", "dsstack.local.lambda_http", "--code-dir", str(tmp_path), "--handler",
         "cli_fn.handler"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert requests.get(f"{url}/hello/there", timeout=10).text == "/hello/there"
    finally:
        process.terminate()
        process.wait(timeout=10)
