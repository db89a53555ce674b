"""`dsstack invoke`: SageMaker runtime through boto3 (SigV4), ECS over HTTP, clear errors otherwise."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
import test_hosting_support as support
from test_hosting_support import ECS_MODEL, ENV, SM_MODEL, TEAM

from dsstack.cli import app
from dsstack.hosting import names

aws, deployed = support.aws, support.deployed


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(f"environment: {ENV}\nteams:\n  - name: {TEAM}\n")
    return path


@pytest.fixture
def request_file(tmp_path: Path) -> Path:
    path = tmp_path / "request.json"
    path.write_text(json.dumps({"rows": [[1.0, 2.0]]}))
    return path


@pytest.fixture
def app_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A stand-in for the ECS container behind its load balancer: records requests, answers a prediction."""
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append({"path": self.path, "content_type": self.headers["Content-Type"], "body": body})
            reply = json.dumps({"prediction": [0.7]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()


def _invoke(config: Path, model: str, data: Path, *extra: str) -> Any:
    return CliRunner().invoke(app, ["invoke", "--team", TEAM, "--model", model, "--data", str(data),
                                    "-c", str(config), *extra])


def test_sagemaker_invoke_prints_the_runtime_response(deployed, config, request_file):
    import boto3

    # moto's runtime answers from a queue of canned results (its documented test API).
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sagemakerruntime.models import sagemakerruntime_backends

    sagemakerruntime_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].results_queue.append(
        ('{"prediction": [0.42]}', "application/json", names.VARIANT_NAME, ""))
    result = _invoke(config, SM_MODEL, request_file)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"prediction": [0.42]}
    assert boto3.client("sagemaker").describe_endpoint(EndpointName=deployed["endpoint"])["EndpointStatus"] == \
        "InService"


def test_ecs_invoke_posts_the_file_to_the_service(deployed, config, request_file, app_server):
    url, seen = app_server
    support.put_parameter(names.model_key(ECS_MODEL, names.PARAM_URL), url)
    result = _invoke(config, ECS_MODEL, request_file, "--path", "/predict", "--content-type", "text/csv")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"prediction": [0.7]}
    assert seen == [{"path": "/predict", "content_type": "text/csv", "body": request_file.read_bytes()}]


def test_unreachable_ecs_service_is_a_clear_error(deployed, config, request_file, app_server):
    url, _ = app_server
    support.put_parameter(names.model_key(ECS_MODEL, names.PARAM_URL), url.rsplit(":", 1)[0] + ":9")  # discard port
    result = _invoke(config, ECS_MODEL, request_file)
    assert result.exit_code == 1
    assert "failed" in result.output and "inside the VPC" in result.output and "Traceback" not in result.output


def test_unknown_model_and_missing_file_are_clear_errors(deployed, config, request_file, tmp_path, monkeypatch):
    unknown = _invoke(config, "nope", request_file)
    assert unknown.exit_code == 1 and "nope" in unknown.output and "Traceback" not in unknown.output
    monkeypatch.chdir(tmp_path)  # a short relative path: the error panel is 80 columns wide
    missing = _invoke(config, SM_MODEL, Path("absent.json"))
    assert missing.exit_code == 2 and "absent.json" in missing.output and "does not exist" in missing.output


def test_a_sagemaker_error_is_a_clear_error(deployed, config, request_file, monkeypatch):
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemakerruntime.models import SageMakerRuntimeBackend

    def failing(self: Any, endpoint_name: str, unique_repr: bytes) -> Any:
        raise ValidationError(message=f"Endpoint {endpoint_name} not found.")

    monkeypatch.setattr(SageMakerRuntimeBackend, "invoke_endpoint", failing)
    result = _invoke(config, SM_MODEL, request_file)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"invoking SageMaker endpoint '{deployed['endpoint']}' failed" in result.output
    assert "not found" in result.output
