"""Id allocation under concurrency: many runs and tasks registered at once (threads) get unique ids."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.unit.test_catalog_support import serialize_moto_requests
from tests.unit.test_metadata_api import CURRENT_CLIENT_TAGS, call, metadata_table

THREADS = 24


@pytest.fixture(autouse=True)
def atomic_moto_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB applies each request (e.g. UpdateItem ADD) atomically; moto does not under threads, which
    made this test flaky on a loaded machine (two tasks got one id). The handler's own races still interleave."""
    serialize_moto_requests(monkeypatch)


def test_concurrent_task_and_run_registrations_get_unique_ids():
    with metadata_table():
        assert call("POST", "/flows/BusyFlow", {})[0] == 200
        assert call("POST", "/flows/BusyFlow/run", {})[1]["run_number"] == 1
        for step in ("left", "right"):
            assert call("POST", f"/flows/BusyFlow/runs/1/steps/{step}/step", {})[0] == 200

        def register_task(index: int) -> tuple[str, int]:
            step = ("left", "right")[index % 2]
            status, task = call("POST", f"/flows/BusyFlow/runs/1/steps/{step}/task",
                                {"system_tags": CURRENT_CLIENT_TAGS})
            assert status == 200, task
            return step, task["task_id"]

        def register_run(_: int) -> int:
            status, run = call("POST", "/flows/BusyFlow/run", {"system_tags": CURRENT_CLIENT_TAGS})
            assert status == 200, run
            return run["run_number"]

        with ThreadPoolExecutor(THREADS) as pool:
            tasks = list(pool.map(register_task, range(300)))
            runs = list(pool.map(register_run, range(60)))

        task_ids = [task_id for _, task_id in tasks]
        assert len(set(task_ids)) == 300, [i for i, n in Counter(task_ids).items() if n > 1]
        assert sorted(task_ids) == list(range(1, 301))  # ids are unique across the steps of a run
        assert sorted(runs) == list(range(2, 62))
        for step in ("left", "right"):
            listed = {t["task_id"] for t in call("GET", f"/flows/BusyFlow/runs/1/steps/{step}/tasks")[1]}
            assert listed == {task_id for s, task_id in tasks if s == step}


def test_concurrent_registrations_of_one_client_given_id_create_it_once():
    with metadata_table():
        call("POST", "/flows/BusyFlow", {})
        call("POST", "/flows/BusyFlow/run", {})
        call("POST", "/flows/BusyFlow/runs/1/steps/start/step", {})
        with ThreadPoolExecutor(THREADS) as pool:
            run_statuses = list(pool.map(
                lambda _: call("POST", "/flows/BusyFlow/run", {"run_number": "sfn-abc"})[0], range(40)))
            task_statuses = list(pool.map(
                lambda _: call("POST", "/flows/BusyFlow/runs/1/steps/start/task", {"task_id": "t-1"})[0],
                range(40)))
        assert Counter(run_statuses) == {200: 1, 409: 39}
        assert Counter(task_statuses) == {200: 1, 409: 39}
