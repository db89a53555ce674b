"""What every dsstack event handler does the same way: settings from the environment, idempotency backed
by DynamoDB, and refusing a poison event loudly."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from . import PoisonEventError

# EventBridge retries delivery for up to 24 h and Lambda's async queue keeps an event up to 6 h, so a
# duplicate can turn up a day later; after that the catalog's own conditional writes still hold.
IDEMPOTENCY_WINDOW_SECONDS = 24 * 3600
# A refused event is logged whole so the DLQ message can be matched to its log line; this caps the size.
MAX_LOGGED_EVENT_CHARS = 20_000


class ConfigurationError(Exception):
    """The function's environment is incomplete: a deployment problem, not an event problem."""


def required_env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"environment variable {name} is not set; the function's stack must set it")
    return value


def idempotency(table_name: str) -> tuple[Any, Any]:
    """(persistence layer, config) for Powertools idempotency on the table with key `id`, TTL `expiration`.

    Each idempotent function is called with only the fields that identify its work as the data argument,
    so one persistence layer serves every function (Powertools prefixes keys with the function's name).
    """
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

    persistence = DynamoDBPersistenceLayer(table_name=table_name, key_attr="id", expiry_attr="expiration")
    config = IdempotencyConfig(
        expires_after_seconds=IDEMPOTENCY_WINDOW_SECONDS,
        raise_on_no_idempotency_key=True,
        use_local_cache=True,
    )
    return persistence, config


@contextmanager
def refusing_poison(logger: Any, event: Any) -> Iterator[None]:
    """Log a PoisonEventError with the event that caused it, then let it propagate.

    Propagating is the point: the failed async invocation is retried by Lambda (at most twice) and then
    delivered, with error type and message, to the on-failure destination. Nothing is dropped quietly.
    """
    try:
        yield
    except PoisonEventError as error:
        logger.error(
            "event refused; Lambda will retry it and then send it to the dead-letter queue",
            extra={
                "refusal": type(error).__name__,
                "reason": str(error),
                "refused_event": _truncated_json(event),
            },
        )
        raise


def _truncated_json(event: Any) -> str:
    try:
        text = json.dumps(event, default=repr, sort_keys=True)
    except (TypeError, ValueError):  # e.g. circular structures from a broken caller
        text = repr(event)
    return text if len(text) <= MAX_LOGGED_EVENT_CHARS else text[:MAX_LOGGED_EVENT_CHARS] + "...(truncated)"
