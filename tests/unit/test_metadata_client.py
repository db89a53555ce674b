"""The real Metaflow client against the metadata handler, served over HTTP by dsstack.local.lambda_http.

The handler runs in this process (moto in-process); Metaflow's runtime and task subprocesses only talk
HTTP to it, with METAFLOW_DEFAULT_METADATA=service. One server and one set of runs per module: alice runs
a linear flow (with a retried step), a foreach flow, and a flow that fails and is then resumed; she tags a
run with the `tag` CLI. Then bob, in another process, reads everything back with the client API
(tests/flows/metadata_client_check.py) and mutates tags with `add_tag` / `remove_tag`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dsstack.local.lambda_http import LambdaHttpServer
from tests.unit.test_metadata_api import call, handler, metadata_table

FLOWS = Path(__file__).resolve().parents[1] / "flows"
FLOW_TIMEOUT_SECONDS = 180


def metaflow_env(service_url: str, workdir: Path, user: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("METAFLOW_", "AWS_")) and k not in ("SUDO_USER", "USER")}
    (workdir / "home").mkdir(exist_ok=True)
    env.update({
        "METAFLOW_HOME": str(workdir / "home"),  # no ~/.metaflowconfig leaking in
        "METAFLOW_DEFAULT_METADATA": "service",
        "METAFLOW_SERVICE_URL": service_url,
        "METAFLOW_DEFAULT_DATASTORE": "local",
        "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(workdir),
        "USERNAME": user,
    })
    return env


def start_flow(flow: str, *args: str, env: dict[str, str], cwd: Path,
               extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(FLOWS / flow), "--no-pylint", *args], cwd=cwd,
                            env={**env, **(extra_env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def finish(process: subprocess.Popen, *, expect_success: bool = True) -> str:
    output, _ = process.communicate(timeout=FLOW_TIMEOUT_SECONDS)
    succeeded = process.returncode == 0
    assert succeeded == expect_success, f"{' '.join(process.args)} exited {process.returncode}:\n{output[-4000:]}"
    return output


@pytest.fixture(scope="module")
def service_url():
    with metadata_table(), LambdaHttpServer(handler, function_name="metadata") as server:
        yield server.url


@pytest.fixture(scope="module")
def runs(service_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    workdir = tmp_path_factory.mktemp("metaflow")
    alice = metaflow_env(service_url, workdir, "alice")
    # The three first runs are independent: run them side by side to keep the module fast.
    linear = start_flow("metadata_linear.py", "run", "--tag", "keep-me", "--run-id-file",
                        str(workdir / "linear_id"), env=alice, cwd=workdir)
    foreach = start_flow("metadata_foreach.py", "run", "--run-id-file", str(workdir / "foreach_id"),
                         env=alice, cwd=workdir)
    failing = start_flow("metadata_resume.py", "run", "--run-id-file", str(workdir / "failed_id"),
                         env=alice, cwd=workdir, extra_env={"METADATA_TEST_FAIL": "1"})
    finish(linear)
    finish(foreach)
    failed_output = finish(failing, expect_success=False)
    assert "fails on purpose" in failed_output
    finish(start_flow("metadata_resume.py", "resume", "--run-id-file", str(workdir / "resumed_id"),
                      env=alice, cwd=workdir))
    ids = {name: (workdir / f"{name}_id").read_text().strip() for name in ("linear", "foreach", "failed", "resumed")}
    finish(start_flow("metadata_resume.py", "tag", "add", "--run-id", ids["resumed"], "release", "candidate",
                      env=alice, cwd=workdir))
    finish(start_flow("metadata_resume.py", "tag", "remove", "--run-id", ids["resumed"], "candidate",
                      env=alice, cwd=workdir))

    bob = metaflow_env(service_url, workdir, "bob")
    check = subprocess.run(
        [sys.executable, str(FLOWS / "metadata_client_check.py"), ids["linear"], ids["foreach"], ids["failed"],
         ids["resumed"]], cwd=workdir, env=bob, capture_output=True, text=True, timeout=FLOW_TIMEOUT_SECONDS)
    assert check.returncode == 0, check.stderr[-4000:]
    return {**ids, "seen_by_bob": json.loads(check.stdout.strip().splitlines()[-1])}


def test_second_user_reads_the_service_and_sees_every_flow(runs, service_url):
    seen = runs["seen_by_bob"]
    assert seen["metadata"] == f"service@{service_url}"
    assert seen["flows"] == ["MetadataForeachFlow", "MetadataLinearFlow", "MetadataResumeFlow"]
    # Metaflow namespaces: bob's own namespace does not hold alice's flow; alice's does
    assert seen["own_namespace_sees_other_users_flow"] is False
    assert seen["alice_namespace_latest_linear"] == runs["linear"]


def test_linear_run_steps_artifacts_and_attempts(runs):
    linear = runs["seen_by_bob"]["linear"]
    assert linear["latest_run"] == runs["linear"]
    assert linear["successful"] is True and linear["finished"] is True
    assert linear["user"] == "alice" and "user:alice" in linear["system_tags"]
    assert linear["steps"] == ["end", "flaky", "start"]
    assert linear["tasks_per_step"] == {"start": 1, "flaky": 1, "end": 1}
    assert (linear["greeting"], linear["numbers"], linear["result"]) == ("hello", [1, 2, 3], 60)
    # the retried step: the latest attempt by default, the failed first attempt on request
    assert linear["flaky_current_attempt"] == 1
    assert (linear["flaky_attempt_seen"], linear["flaky_successful"]) == (1, True)
    assert (linear["attempt0_attempt_seen"], linear["attempt0_successful"]) == (0, False)


def test_foreach_tasks_join_and_parent_child_pathspecs(runs):
    foreach = runs["seen_by_bob"]["foreach"]
    run = f"MetadataForeachFlow/{runs['foreach']}"
    assert foreach["successful"] is True
    assert len(foreach["shout_tasks"]) == 3
    assert foreach["shout_louds"] == foreach["join_louds"] == ["AA", "BB", "CC"]
    # parent/child pathspecs come from the filtered_tasks route (foreach-execution-path metadata)
    assert foreach["join_parents"] == foreach["shout_tasks"] == foreach["start_children"]
    assert all(path.startswith(f"{run}/shout/") for path in foreach["shout_tasks"])
    assert foreach["foreach_stacks"] == [["letters=a"], ["letters=b"], ["letters=c"]]


def test_failed_run_and_its_resume(runs):
    resume = runs["seen_by_bob"]["resume"]
    assert resume["runs"] == sorted([runs["failed"], runs["resumed"]])
    assert resume["failed_successful"] is False and resume["resumed_successful"] is True
    assert resume["latest_successful"] == runs["resumed"]
    # the resumed run cloned `start` from the failed run, artifacts included
    assert resume["origin_run_id"] == runs["failed"]
    assert (resume["seed"], resume["final"]) == (7, 15)


def test_tags_added_and_removed_by_cli_and_by_the_client(runs):
    seen = runs["seen_by_bob"]
    assert seen["resume"]["user_tags"] == ["release"]  # `tag add release candidate`, `tag remove candidate`
    assert seen["linear"]["user_tags_after_client_mutation"] == ["reviewed-by-bob"]
    # the service itself agrees, including on the run's children
    flaky_tasks = call("GET", f"/flows/MetadataLinearFlow/runs/{runs['linear']}/steps/flaky/tasks")[1]
    assert [task["tags"] for task in flaky_tasks] == [["reviewed-by-bob"]]
