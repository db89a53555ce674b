"""Real clients against the compute stack deployed in the embedded emulator.

`dsstack metaflow-config` fetches the deployed config; the real Metaflow CLI then runs
`step-functions create` on tests/flows/batch_flow.py (foreach, @batch CPU, @batch(gpu=1)), and the state
machine it creates must use the team's queues, roles and state table. The same flow also runs locally
against the emulated S3 datastore.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FLOW = ROOT / "tests" / "flows" / "batch_flow.py"
TEAM = "vision"
# Only the layers this test needs (network, data, operations, compute): the metadata service, hosting and
# workstations have their own e2e tests, and a deploy stops at the first stack the emulator rejects.
CONFIG = """\
environment: e2ecompute
network: {egress: public, cidr: 10.60.0.0/16}
teams:
  - name: vision
    metadata_service: {enabled: false}
"""

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """The example config deployed into a private emulator (stopped afterwards)."""
    from dsstack.local import deploy as deploy_mod
    from dsstack.local import emulator

    state_dir = tmp_path_factory.mktemp("emulator")
    config = state_dir / "e2e-compute.yaml"
    config.write_text(CONFIG)
    emu = emulator.up(state_dir)
    try:
        result = deploy_mod.deploy(config, "local", state_dir=state_dir, echo=lambda _: None)
        yield emu, result, config
    finally:
        emulator.down(state_dir)


@pytest.fixture(scope="module")
def metaflow_env(deployed, tmp_path_factory):
    emu, _, config_path = deployed
    home = tmp_path_factory.mktemp("metaflow-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "METAFLOW_"))}
    env.update(emu.client_env())
    env.update({"METAFLOW_HOME": str(home), "USERNAME": "e2e"})
    subprocess.run([sys.executable, "-m", "dsstack.cli", "metaflow-config", "--team", TEAM, "--config",
                    str(config_path), "--output", str(home / "config.json")],
                   env=env, check=True, capture_output=True, text=True, timeout=120)
    config = json.loads((home / "config.json").read_text())
    env["DSSTACK_BATCH_JOB_QUEUE_GPU"] = config["DSSTACK_BATCH_JOB_QUEUE_GPU"]
    return env, config


def test_step_functions_create_uses_the_team_resources(metaflow_env, deployed):
    env, config = metaflow_env
    emu = deployed[0]
    proc = subprocess.run([sys.executable, str(FLOW), "--no-pylint", "step-functions", "create"], env=env,
                          cwd=str(ROOT), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    from dsstack.local.deploy import client_session

    sfn = client_session(emu).client("stepfunctions")
    machines = [m for m in sfn.list_state_machines()["stateMachines"]
                if m["name"].startswith(config["METAFLOW_SFN_STATE_MACHINE_PREFIX"])]
    # Metaflow names a deployed flow's state machine `<METAFLOW_SFN_STATE_MACHINE_PREFIX>_<flow>`.
    assert [m["name"] for m in machines] == [f"{config['METAFLOW_SFN_STATE_MACHINE_PREFIX']}_BatchFlow"]
    described = sfn.describe_state_machine(stateMachineArn=machines[0]["stateMachineArn"])
    assert described["roleArn"] == config["METAFLOW_SFN_IAM_ROLE"]
    definition = described["definition"]
    assert config["METAFLOW_BATCH_JOB_QUEUE"] in definition
    assert config["DSSTACK_BATCH_JOB_QUEUE_GPU"] in definition
    assert config["METAFLOW_SFN_DYNAMO_DB_TABLE"] in definition
    # The job definitions Metaflow registered run as the team's job role.
    batch = client_session(emu).client("batch")
    roles = {d["containerProperties"].get("jobRoleArn") for d in
             batch.describe_job_definitions(status="ACTIVE")["jobDefinitions"]
             if d["jobDefinitionName"].startswith("metaflow_")}
    assert roles == {config["METAFLOW_ECS_S3_ACCESS_IAM_ROLE"]}


def test_flow_runs_locally_with_the_s3_datastore(metaflow_env, deployed):
    env, config = metaflow_env
    env = {**env, "DSSTACK_LOCAL_RUN": "1"}
    proc = subprocess.run([sys.executable, str(FLOW), "--no-pylint", "run", "--max-workers", "2"], env=env,
                          cwd=str(ROOT), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    emu = deployed[0]
    from dsstack.local.deploy import client_session

    bucket = config["METAFLOW_DATASTORE_SYSROOT_S3"].removeprefix("s3://").split("/")[0]
    listed = client_session(emu).client("s3").list_objects_v2(Bucket=bucket, Prefix="metaflow/BatchFlow/")
    assert listed.get("KeyCount", 0) > 0, "the run wrote nothing to the team's S3 datastore"
