"""Metadata service handler in-process against moto: the hot routes beside bare DynamoDB calls.

    .venv/bin/python bench/metadata.py [--requests 400] [--artifacts 10]

Hot routes (what every Metaflow task does): task create, task heartbeat, artifact registration. For each,
the handler (API Gateway event in, proxy response out, with validation) and the same storage work as
bare boto3 calls against the same moto table, in the same run. Sequential, one thread: requests/second is
1 / mean latency. moto's latency is not DynamoDB's; the ratio and the DynamoDB calls per request are
what carry over to AWS.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "lambda" / "metadata"))
sys.path.insert(0, str(ROOT))

TABLE = "bench-metadata"
CLIENT_TAGS = ["metaflow_version:2.19.39", "user:bench", "runtime:dev", "python_version:3.11.7"]


def measure(operation: Callable[[int], None], count: int) -> dict[str, float]:
    for i in range(min(20, count)):  # warm-up: imports, moto backends, connection reuse
        operation(-1 - i)
    samples = []
    for i in range(count):
        started = time.perf_counter()
        operation(i)
        samples.append(time.perf_counter() - started)
    samples.sort()
    mean = statistics.fmean(samples)
    return {"rps": 1 / mean, "p50_ms": samples[len(samples) // 2] * 1000,
            "p99_ms": samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400, help="measured requests per operation")
    parser.add_argument("--artifacts", type=int, default=10, help="artifacts per registration request")
    args = parser.parse_args()

    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_DEFAULT_REGION": "us-east-1", "METADATA_TABLE_NAME": TABLE})
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        os.environ.pop(name, None)

    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        from tests.unit.test_metadata_api import create_metadata_table

        create_metadata_table(client, TABLE)
        from metadata_api import store as storage
        from metadata_api.handler import handler

        storage.reset_default_store()
        dynamodb_calls: list[str] = []
        storage.default_store().client.meta.events.register(
            "before-call.dynamodb", lambda model, **_: dynamodb_calls.append(model.name))

        def request(method: str, path: str, body: object) -> dict:
            result = handler({"httpMethod": method, "path": path, "pathParameters": {"proxy": path.lstrip("/")},
                              "body": json.dumps(body), "requestContext": {"requestId": "bench"}}, None)
            if result["statusCode"] != 200:
                raise RuntimeError(f"{method} {path}: {result['statusCode']} {result['body']}")
            return json.loads(result["body"])

        request("POST", "/flows/BenchFlow", {})
        run = request("POST", "/flows/BenchFlow/run", {"system_tags": CLIENT_TAGS})["run_number"]
        run_path = f"/flows/BenchFlow/runs/{run}"
        request("POST", f"{run_path}/steps/train/step", {})
        task_ids: list[int] = []

        def handler_task_create(_: int) -> None:
            task_ids.append(request("POST", f"{run_path}/steps/train/task",
                                    {"user_name": "bench", "system_tags": CLIENT_TAGS, "tags": []})["task_id"])

        def handler_heartbeat(i: int) -> None:
            request("POST", f"{run_path}/steps/train/tasks/{task_ids[i % len(task_ids)]}/heartbeat", {})

        def artifacts_body(task_id: int, attempt: int) -> list[dict]:
            return [{"name": f"artifact_{n}", "attempt_id": attempt, "sha": f"{n:040x}", "ds_type": "s3",
                     "location": f"s3://bucket/BenchFlow/data/{n:02x}/{n:040x}", "type": "metaflow.artifact",
                     "content_type": "gzip+pickle-v4", "user_name": "bench", "run_number": run,
                     "step_name": "train", "task_id": task_id, "tags": [], "system_tags": CLIENT_TAGS}
                    for n in range(args.artifacts)]

        def handler_artifacts(i: int) -> None:
            task_id = task_ids[i % len(task_ids)]
            request("POST", f"{run_path}/steps/train/tasks/{task_id}/artifact", artifacts_body(task_id, i + 100))

        # the same storage work, as bare boto3 calls
        partition = f"RUN#BenchFlow#{run}"

        def bare_task_create(i: int) -> None:
            number = client.update_item(
                TableName=TABLE, Key={"pk": {"S": partition}, "sk": {"S": "COUNTER#BARE"}},
                UpdateExpression="ADD next_id :one", ExpressionAttributeValues={":one": {"N": "1"}},
                ReturnValues="UPDATED_NEW")["Attributes"]["next_id"]["N"]
            client.put_item(TableName=TABLE, ConditionExpression="attribute_not_exists(pk)", Item={
                "pk": {"S": partition}, "sk": {"S": f"TASK#bare#{number}"}, "task_id": {"N": number},
                "step_name": {"S": "bare"}, "user_name": {"S": "bench"}, "ts_epoch": {"N": str(int(time.time()))}})

        def bare_heartbeat(i: int) -> None:
            client.update_item(
                TableName=TABLE, Key={"pk": {"S": partition}, "sk": {"S": f"TASK#train#{task_ids[i % len(task_ids)]}"}},
                UpdateExpression="SET last_heartbeat_ts = :now", ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":now": {"N": str(int(time.time()))}})

        def bare_artifacts(i: int) -> None:
            task_id = task_ids[i % len(task_ids)]
            items = [{"PutRequest": {"Item": {
                "pk": {"S": partition}, "sk": {"S": f"ARTIFACT#train#{task_id}#{i + 5000:010d}#{a['name']}"},
                **{k: {"S": a[k]} for k in ("name", "sha", "ds_type", "location", "type", "content_type")},
                "attempt_id": {"N": str(a["attempt_id"])}}}} for a in artifacts_body(task_id, i + 5000)]
            for start in range(0, len(items), 25):
                client.batch_write_item(RequestItems={TABLE: items[start:start + 25]})

        rows = []
        for route, via_handler, bare, bare_calls in (
            ("task create", handler_task_create, bare_task_create, "UpdateItem ADD + PutItem"),
            ("task heartbeat", handler_heartbeat, bare_heartbeat, "UpdateItem"),
            (f"artifacts ({args.artifacts}/request)", handler_artifacts, bare_artifacts, "BatchWriteItem"),
        ):
            dynamodb_calls.clear()
            handler_stats = measure(via_handler, args.requests)
            per_request = len(dynamodb_calls) / (args.requests + min(20, args.requests))
            names = sorted(set(dynamodb_calls))
            rows.append((route, "handler", handler_stats, f"{per_request:.1f} calls: {'+'.join(names)}"))
            rows.append((route, "bare DynamoDB", measure(bare, args.requests), bare_calls))

    print(f"metadata handler vs bare DynamoDB, moto in-process, {args.requests} sequential requests each "
          f"(Python {sys.version.split()[0]})")
    print(f"{'route':<24} {'path':<14} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}  DynamoDB work per request")
    for route, kind, stats, calls in rows:
        print(f"{route:<24} {kind:<14} {stats['rps']:>8.0f} {stats['p50_ms']:>8.2f} {stats['p99_ms']:>8.2f}  {calls}")


if __name__ == "__main__":
    main()
