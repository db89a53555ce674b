"""Benchmark of the versioning function (prints measurements; not a test).

1. Cold import time of each handler (lambda/versioning, lambda/alerts) in fresh interpreters, with only the
   Lambda layer's folder on the path, median of several runs.
2. Events/second through the versioning handler in-process against moto, and, in the same run, a bare boto3
   loop replaying exactly the catalog requests the handler made (recorded from its client) against fresh
   tables. The ratio is the handler's overhead: parsing, Powertools, idempotency, key design.

    .venv/bin/python bench/versioning.py [events] [import-runs]
"""

from __future__ import annotations

import gc
import os
import random
import statistics
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "unit"))

IMPORT_PROBE = """
import sys, time
sys.path.insert(0, {layer!r}); sys.path.insert(0, {function!r})
started = time.perf_counter()
import handler  # noqa
print(time.perf_counter() - started)
"""


def cold_import_seconds(function: str, runs: int) -> list[float]:
    probe = IMPORT_PROBE.format(layer=str(REPO / "lambda/shared/python"), function=str(REPO / "lambda" / function))
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "PYTHONDONTWRITEBYTECODE": "0"}
    samples = []
    for _ in range(runs):
        # -I: isolated (no user site, no cwd on sys.path), like the Lambda runtime's clean interpreter.
        output = subprocess.run([sys.executable, "-I", "-c", probe], capture_output=True, text=True, env=env, check=True)
        samples.append(float(output.stdout.strip().splitlines()[-1]))
    return samples


def event_stream(count: int, seed: int = 7) -> list[dict[str, Any]]:
    from test_catalog_support import object_created_event

    rng = random.Random(seed)
    unique = []
    for n in range(int(count * 0.9)):
        if n % 100 == 0:
            key = f"models/model-{n // 100 % 3}/model.tar.gz"
        elif n % 10 == 1:
            key = f"data/TrainFlow/sfn-{n % 5}/part-{n}.parquet"
        else:
            key = f"metaflow/TrainFlow/sfn-{n % 5}/train/{n}/0.data.json"
        unique.append(object_created_event(key, version_id=f"v{n}", sequencer=f"{0x617F08299329D189 + n:X}"))
    stream = unique + rng.choices(unique, k=count - len(unique))
    rng.shuffle(stream)
    return stream


class _MonkeyPatch:
    """The two methods versioning_environment needs, outside pytest."""

    def setenv(self, name: str, value: str) -> None:
        os.environ[name] = value

    def delenv(self, name: str, raising: bool = True) -> None:
        os.environ.pop(name, None)


def run_handler(events: list[dict[str, Any]], record: list | None = None) -> float:
    """Seconds for events[1:] through the handler on fresh moto tables; optionally records catalog requests."""
    from test_catalog_support import load_handler, versioning_environment

    handler = load_handler("versioning")
    with versioning_environment(_MonkeyPatch()) as versioning:
        versioning.invoke(events[0])  # builds the runtime (clients) outside the timed loop, as a warm Lambda
        if record is not None:
            handler.runtime().catalog.client.meta.events.register(
                "provide-client-params.dynamodb.*",
                lambda params, model, **_: record.append((model.name, dict(params))),
            )
        gc.collect()
        started = time.perf_counter()
        for event in events[1:]:
            versioning.invoke(event)
        return time.perf_counter() - started


def run_bare(recorded: list[tuple[str, dict[str, Any]]]) -> float:
    """Seconds for a plain boto3 loop sending the recorded catalog requests to fresh moto tables."""
    import boto3
    from botocore.exceptions import ClientError
    from moto import mock_aws
    from test_catalog_support import create_catalog_table, create_idempotency_table

    with mock_aws():
        create_catalog_table()
        create_idempotency_table()
        bare = boto3.client("dynamodb")
        calls = {name: getattr(bare, _snake(name)) for name in {name for name, _ in recorded}}
        gc.collect()
        started = time.perf_counter()
        for name, params in recorded:
            with suppress(ClientError):  # the handler's duplicates fail their conditions here too
                calls[name](**params)
        return time.perf_counter() - started


def throughput(events: list[dict[str, Any]], rounds: int = 2) -> tuple[float, float, int]:
    """(handler events/s, bare-boto3 events/s, catalog requests per pass), best of `rounds` alternated runs."""
    recorded: list[tuple[str, dict[str, Any]]] = []
    run_handler(events, record=recorded)  # records the requests (and warms imports and caches)
    handler_times, bare_times = [], []
    for _ in range(rounds):  # alternate, so load on a shared machine hits both sides alike
        bare_times.append(run_bare(recorded))
        handler_times.append(run_handler(events))
    timed = len(events) - 1
    return timed / min(handler_times), timed / min(bare_times), len(recorded)


def parse_cost_microseconds(events: list[dict[str, Any]]) -> float:
    """CPU per event of the handler's own work before any AWS call: validation and key attribution."""
    from dsstack_catalog import attribute_key
    from dsstack_events import ObjectCreatedEvent, parse_event

    started = time.perf_counter()
    for event in events:
        attribute_key(parse_event(event, ObjectCreatedEvent).detail.object.key)
    return (time.perf_counter() - started) / len(events) * 1e6


def _snake(operation: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")


def main() -> None:
    events = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    import_runs = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    for function in ("versioning", "alerts"):
        samples = cold_import_seconds(function, import_runs)
        print(f"cold import lambda/{function}/handler.py: median {statistics.median(samples) * 1000:.0f} ms "
              f"(min {min(samples) * 1000:.0f}, max {max(samples) * 1000:.0f}, {import_runs} runs)")
    boto3_only = cold_import_seconds_of("import boto3", import_runs)
    print(f"cold import boto3 alone (part of both): median {statistics.median(boto3_only) * 1000:.0f} ms")

    stream = event_stream(events)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # keep stdout for the figures
    handler_rate, bare_rate, requests = throughput(stream)
    print(f"versioning handler vs moto: {handler_rate:,.0f} events/s over {len(stream) - 1} events "
          f"(10% duplicates, 1% model versions)")
    print(f"bare boto3 replay of the same {requests} catalog requests: {bare_rate:,.0f} events/s")
    print(f"ratio handler time / bare time: {bare_rate / handler_rate:.2f}x (per event: handler "
          f"{1000 / handler_rate:.2f} ms, bare {1000 / bare_rate:.2f} ms)")
    print(f"handler CPU before any AWS call (parse + key attribution): {parse_cost_microseconds(stream):.0f} us/event")


def cold_import_seconds_of(statement: str, runs: int) -> list[float]:
    probe = f"import time\nstarted = time.perf_counter()\n{statement}\nprint(time.perf_counter() - started)\n"
    return [
        float(subprocess.run([sys.executable, "-I", "-c", probe], capture_output=True, text=True, check=True).stdout)
        for _ in range(runs)
    ]


if __name__ == "__main__":
    main()
