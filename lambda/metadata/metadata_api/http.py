"""API Gateway REST proxy events in, proxy responses out: parsing, validation and client errors."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

# The metaflow-service release whose API this service implements. The Metaflow client reads it from the
# METADATA_SERVICE_VERSION header of /ping and enables features by version: heartbeats (>= 2.0.4),
# attempt-specific reads (>= 2.0.6), run tag mutation (>= 2.3.0), filtered_tasks (>= 2.5.0).
SERVICE_VERSION = "2.5.1"
VERSION_HEADER = "METADATA_SERVICE_VERSION"
MAX_BODY_BYTES = 1024 * 1024
MAX_ID_BYTES = 200
MAX_NAME_BYTES = 255
MAX_PATTERN_CHARS = 1024
_FORBIDDEN_ID_CHARACTERS = re.compile(r"[#/\x00-\x1f\x7f]")


class ClientError(Exception):
    """A request we refuse, with the HTTP status and a message for the caller."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad_request(message: str) -> ClientError:
    return ClientError(400, message)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    raw_body: bytes = b""
    request_id: str | None = None

    def json(self, *, default: Any = None) -> Any:
        """The body as JSON; `default` when there is no body (the Metaflow heartbeat sends "{}")."""
        if not self.raw_body.strip():
            return default
        try:
            body = json.loads(self.raw_body.decode("utf-8"), parse_constant=_reject_constant)
        except UnicodeDecodeError:
            raise bad_request("request body is not UTF-8") from None
        except (ValueError, RecursionError) as exc:
            raise bad_request(f"request body is not valid JSON: {str(exc)[:200]}") from None
        try:
            # JSON escapes can smuggle lone surrogates ("\ud800"), which DynamoDB cannot store
            json.dumps(body, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise bad_request("request body contains invalid Unicode (lone surrogates)") from None
        except (ValueError, RecursionError):
            raise bad_request("request body is nested too deeply") from None
        return body

    def json_object(self) -> dict[str, Any]:
        body = self.json(default={})
        if not isinstance(body, dict):
            raise bad_request("request body must be a JSON object")
        return body

    def json_list(self) -> list[Any]:
        body = self.json(default=[])
        if not isinstance(body, list):
            raise bad_request("request body must be a JSON array")
        return body


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_event(event: Any) -> Request:
    """Read an API Gateway REST (payload v1) proxy event; ClientError for anything malformed."""
    if not isinstance(event, dict) or not isinstance(event.get("httpMethod"), str):
        raise bad_request("not an API Gateway proxy request")
    path_parameters = event.get("pathParameters") or {}
    # Behind a `{proxy+}` resource the proxied part is the service path, whatever base path or stage
    # the API is mounted under; `path` is the fallback for a root-level integration.
    proxy = path_parameters.get("proxy") if isinstance(path_parameters, dict) else None
    path = proxy if isinstance(proxy, str) else event.get("path")
    if not isinstance(path, str):
        raise bad_request("request has no path")
    query = event.get("queryStringParameters") or {}
    if not isinstance(query, dict) or not all(isinstance(v, str) for v in query.values()):
        raise bad_request("malformed query string")
    body = event.get("body")
    if body is None:
        raw = b""
    elif not isinstance(body, str):
        raise bad_request("malformed request body")
    elif event.get("isBase64Encoded"):
        if len(body) > MAX_BODY_BYTES * 4 // 3 + 4:
            raise ClientError(413, f"request body larger than {MAX_BODY_BYTES} bytes")
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise bad_request("request body is not valid base64") from None
    else:
        raw = body.encode("utf-8", errors="surrogatepass")
    if len(raw) > MAX_BODY_BYTES:
        raise ClientError(413, f"request body larger than {MAX_BODY_BYTES} bytes")
    context = event.get("requestContext") or {}
    request_id = context.get("requestId") if isinstance(context, dict) else None
    return Request(method=event["httpMethod"].upper(), path=path.strip("/"), query=query, raw_body=raw,
                   request_id=request_id if isinstance(request_id, str) else None)


def response(status: int, body: Any, *, content_type: str = "application/json") -> dict[str, Any]:
    text = body if content_type.startswith("text/") else json.dumps(body)
    return {
        "statusCode": status,
        "headers": {"Content-Type": content_type, VERSION_HEADER: SERVICE_VERSION},
        "body": text,
        "isBase64Encoded": False,
    }


def error_response(status: int, message: str, request_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message, "status": status}
    if request_id:
        body["request_id"] = request_id
    return response(status, body)


# --- validators of path and body values ---

def valid_id(value: Any, what: str) -> str:
    """Flow names, run/step/task ids: they become key parts, so `#`, `/` and control characters are out."""
    if not isinstance(value, str) or not value:
        raise bad_request(f"{what} must be a non-empty string")
    if len(value.encode("utf-8", errors="surrogatepass")) > MAX_ID_BYTES:
        raise bad_request(f"{what} is longer than {MAX_ID_BYTES} bytes")
    if _FORBIDDEN_ID_CHARACTERS.search(value):
        raise bad_request(f"{what} may not contain '#', '/' or control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise bad_request(f"{what} is not valid UTF-8") from None
    return value


def client_given_id(value: Any, what: str) -> str | None:
    """A run/task id chosen by the client: never numeric, because numeric ids belong to the server."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(f"{what} must be a string")
    valid_id(value, what)
    try:
        int(value)
    except ValueError:
        return value
    raise bad_request(f"provided {what} may not be numeric (numeric ids are assigned by the service)")


def attempt_number(value: Any, what: str = "attempt") -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 9:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**9:
        return value
    raise bad_request(f"{what} must be a non-negative integer")


def optional_str(body: dict[str, Any], key: str, max_bytes: int | None = None) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(f"'{key}' must be a string")
    if max_bytes is not None and len(value.encode("utf-8", errors="surrogatepass")) > max_bytes:
        raise bad_request(f"'{key}' is longer than {max_bytes} bytes")
    return value


def str_list(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_request(f"'{key}' must be a list of strings")
    return list(dict.fromkeys(value))  # de-duplicated, order kept


def required_name(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise bad_request(f"'{key}' must be a non-empty string")
    if len(value.encode("utf-8", errors="surrogatepass")) > MAX_NAME_BYTES:
        raise bad_request(f"'{key}' is longer than {MAX_NAME_BYTES} bytes")
    return value
