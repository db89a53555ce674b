"""Serve a Python Lambda handler over local HTTP, the way API Gateway (REST API, proxy integration) calls it.

Each HTTP request becomes an API Gateway REST proxy event (payload format 1.0, a `/{proxy+}` resource)
and the handler's proxy response becomes the HTTP response. Real HTTP clients (the Metaflow client,
requests, curl) can then talk to a handler without AWS: the tests use it in-process, and the embedded
emulator can run it as a process:

    python -m dsstack.local.lambda_http --code-dir lambda/metadata --handler metadata_api.handler.handler

As in API Gateway: a handler that raises or returns a malformed response gives 502, and a request body
over 10 MB gives 413. Unlike API Gateway there is no authorizer, API key check or throttling here.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import importlib
import json
import logging
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

LambdaHandler = Callable[[dict[str, Any], Any], Any]

API_GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024
_log = logging.getLogger(__name__)


class LocalLambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    def __init__(self, function_name: str, timeout_seconds: float, memory_mb: int = 256) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def build_proxy_event(method: str, target: str, headers: Mapping[str, str] | list[tuple[str, str]],
                      body: bytes, *, stage: str = "local", source_ip: str = "127.0.0.1") -> dict[str, Any]:
    """The API Gateway REST proxy event (payload 1.0) for one HTTP request; `target` is path + query."""
    split = urlsplit(target)
    path = unquote(split.path) or "/"  # API Gateway hands the handler a decoded path
    query = parse_qs(split.query, keep_blank_values=True)
    header_items = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    multi_headers: dict[str, list[str]] = {}
    for name, value in header_items:
        multi_headers.setdefault(name, []).append(value)
    try:
        text_body: str | None = body.decode("utf-8") if body else None
        is_base64 = False
    except UnicodeDecodeError:
        text_body, is_base64 = base64.b64encode(body).decode("ascii"), True
    proxy = path.lstrip("/")
    request_id = str(uuid.uuid4())
    lower_headers = {name.lower(): values[-1] for name, values in multi_headers.items()}
    return {
        "resource": "/{proxy+}" if proxy else "/",
        "path": path,
        "httpMethod": method.upper(),
        "headers": {name: values[-1] for name, values in multi_headers.items()} or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": {"proxy": proxy} if proxy else None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}" if proxy else "/",
            "httpMethod": method.upper(),
            "path": f"/{stage}{path}",
            "stage": stage,
            "requestId": request_id,
            "extendedRequestId": request_id,
            "requestTimeEpoch": int(time.time() * 1000),
            "protocol": "HTTP/1.1",
            "accountId": "000000000000",
            "apiId": "local",
            "identity": {
                "sourceIp": source_ip,
                "userAgent": lower_headers.get("user-agent"),
                "apiKey": lower_headers.get("x-api-key"),
            },
        },
        "body": text_body,
        "isBase64Encoded": is_base64,
    }


def load_handler(spec: str, code_dir: str | Path | None = None) -> LambdaHandler:
    """`package.module.function` (Lambda's handler string) or `package.module:function`.

    `code_dir` (the function's asset folder) goes first on sys.path, as in the Lambda runtime.
    """
    if code_dir is not None and str(code_dir) not in sys.path:
        sys.path.insert(0, str(code_dir))
    module_name, _, function_name = spec.rpartition(":") if ":" in spec else spec.rpartition(".")
    if not module_name or not function_name:
        raise ValueError(f"handler spec {spec!r} is not 'module.function' or 'module:function'")
    handler = getattr(importlib.import_module(module_name), function_name)
    if not callable(handler):
        raise TypeError(f"{spec} is not callable")
    return handler


class LambdaHttpServer:
    """A threaded HTTP server on `host` (default 127.0.0.1) and a free port that invokes `handler`.

    Requests are served concurrently (one thread each), like concurrent Lambda invocations.
    Use as a context manager, or start()/stop(); `url` is the base URL once started.
    """

    def __init__(self, handler: LambdaHandler, *, host: str = "127.0.0.1", port: int = 0,
                 stage: str = "local", function_name: str = "local-function",
                 timeout_seconds: float = 30.0) -> None:
        self.handler = handler
        self.stage = stage
        self.function_name = function_name
        self.timeout_seconds = timeout_seconds
        self._server = ThreadingHTTPServer((host, port), _make_request_handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> LambdaHttpServer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, name=f"lambda-http:{self.port}",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._server.server_close()

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (the command-line use)."""
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()

    def __enter__(self) -> LambdaHttpServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def invoke(self, event: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        """Run the handler on one event; (status, headers, body) as API Gateway would answer."""
        context = LocalLambdaContext(self.function_name, self.timeout_seconds)
        try:
            result = self.handler(event, context)
        except Exception:
            _log.error("handler raised:\n%s", traceback.format_exc())
            return _gateway_error(502, "Internal server error")
        try:
            return _proxy_response(result)
        except (TypeError, ValueError, KeyError) as exc:
            _log.error("malformed proxy response from handler: %s", exc)
            return _gateway_error(502, "Malformed Lambda proxy response")


def _proxy_response(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    if not isinstance(result, dict) or not isinstance(result.get("statusCode"), int):
        raise ValueError("not a dict with an integer statusCode")
    headers: list[tuple[str, str]] = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
    single = {name.lower() for name, _ in headers}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        if name.lower() not in single:
            headers.extend((str(name), str(v)) for v in values)
    body = result.get("body") or ""
    if not isinstance(body, str):
        raise ValueError("body is not a string")
    payload = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode("utf-8")
    return result["statusCode"], headers, payload


def _gateway_error(status: int, message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    return status, [("Content-Type", "application/json")], json.dumps({"message": message}).encode()


def _make_request_handler(server: LambdaHttpServer) -> type[BaseHTTPRequestHandler]:
    class ProxyRequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the Metaflow client's requests.Session expects

        def _serve(self) -> None:
            length_header = self.headers.get("Content-Length") or "0"
            try:
                length = int(length_header)
            except ValueError:
                self._send(*_gateway_error(400, "Invalid Content-Length"))
                return
            if length > API_GATEWAY_MAX_BODY_BYTES:
                self.close_connection = True  # the unread body makes the connection unusable
                self._send(*_gateway_error(413, "Request Too Long"))
                return
            body = self.rfile.read(length) if length > 0 else b""
            event = build_proxy_event(self.command, self.path, list(self.headers.items()), body,
                                      stage=server.stage, source_ip=self.client_address[0])
            self._send(*server.invoke(event))

        def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

        def log_message(self, format: str, *args: Any) -> None:
            _log.debug("%s " + format, self.address_string(), *args)

    return ProxyRequestHandler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--handler", required=True, help="module.function, e.g. metadata_api.handler.handler")
    parser.add_argument("--code-dir", help="the function's code folder (put first on sys.path)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--stage", default="local")
    args = parser.parse_args(argv)
    server = LambdaHttpServer(load_handler(args.handler, args.code_dir), host=args.host, port=args.port,
                              stage=args.stage, function_name=args.handler)
    # The first stdout line is the URL, so a parent process can read where to connect.
    print(server.url, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
