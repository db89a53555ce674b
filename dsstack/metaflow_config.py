"""A team's Metaflow configuration: the keys each layer contributes, merged into one JSON document.

The document is the flat `{"METAFLOW_...": "value"}` mapping that `metaflow configure import FILE`
and `~/.metaflowconfig/config_<profile>.json` accept. Every `METAFLOW_*` key here is one the installed
metaflow package reads with `from_conf` (tests/unit/test_metaflow_config.py checks each against
`metaflow.metaflow_config`). Keys Metaflow itself does not read carry the `DSSTACK_` prefix so nobody
mistakes them for Metaflow settings; flows read them with `json.load` if they need them.

Layers: compute (issue 4) contributes `compute_keys(...)`; the metadata service adds
METAFLOW_DEFAULT_METADATA / METAFLOW_SERVICE_URL / METAFLOW_SERVICE_AUTH_KEY as its own layer dict.
`merge_layers` joins them and refuses two layers setting the same key differently.

Pure Python (no aws_cdk import): the CLI and unit tests use it without starting jsii.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from dsstack import naming

# SSM key under /dsstack/<env>/<team>/ holding the merged JSON document.
SSM_KEY = "metaflow/config"

# The queue `@batch` uses when a step names none.
DEFAULT_QUEUE = "cpu"
GPU_QUEUE = "gpu"


def parameter_name(environment: str, team: str) -> str:
    """/dsstack/<env>/<team>/metaflow/config"""
    return naming.ssm_parameter_name(environment, team, SSM_KEY)


def job_queue_name(environment: str, team: str, queue: str) -> str:
    """Batch job queue names are fixed (`dsstack-<env>-<team>-<queue>`) so flows can name them in
    `@batch(queue=...)` and IAM policies can name them before they exist."""
    return f"{naming.resource_prefix(environment, team)}-{queue}"


def queue_config_key(queue: str) -> str:
    """DSSTACK_BATCH_JOB_QUEUE_GPU etc.: the full name of each non-default queue (not a Metaflow key)."""
    return "DSSTACK_BATCH_JOB_QUEUE_" + queue.upper().replace("-", "_")


def compute_keys(*, region: str, bucket_name: str, job_queues: Mapping[str, str], job_role_arn: str,
                 execution_role_arn: str, step_functions_role_arn: str, state_table_name: str,
                 state_machine_prefix: str, events_role_arn: str, execution_log_group_arn: str) -> dict[str, str]:
    """The compute/orchestration layer's keys. Values may be CDK tokens (they resolve at deploy).

    `job_queues` maps dsstack queue names ('cpu', 'gpu', extra queues) to Batch job queue names; 'cpu'
    becomes METAFLOW_BATCH_JOB_QUEUE, every queue also gets a DSSTACK_BATCH_JOB_QUEUE_<NAME> key.
    """
    if DEFAULT_QUEUE not in job_queues:
        raise ValueError(f"job_queues needs the default {DEFAULT_QUEUE!r} queue, got {sorted(job_queues)}")
    sysroot = f"s3://{bucket_name}/{naming.METAFLOW_PREFIX}"
    keys = {
        "METAFLOW_DEFAULT_DATASTORE": "s3",
        "METAFLOW_DATASTORE_SYSROOT_S3": sysroot,
        "METAFLOW_DATATOOLS_S3ROOT": f"s3://{bucket_name}/{naming.DATATOOLS_PREFIX}",
        "METAFLOW_BATCH_JOB_QUEUE": job_queues[DEFAULT_QUEUE],
        "METAFLOW_ECS_S3_ACCESS_IAM_ROLE": job_role_arn,
        "METAFLOW_ECS_FARGATE_EXECUTION_ROLE": execution_role_arn,
        # The Step Functions role may tag jobs (batch:TagResource), so Metaflow can tag them with the
        # flow, run and user: cost allocation per flow in Cost Explorer.
        "METAFLOW_BATCH_EMIT_TAGS": "true",
        "METAFLOW_SFN_IAM_ROLE": step_functions_role_arn,
        "METAFLOW_SFN_DYNAMO_DB_TABLE": state_table_name,
        "METAFLOW_SFN_STATE_MACHINE_PREFIX": state_machine_prefix,
        "METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE": events_role_arn,
        "METAFLOW_SFN_EXECUTION_LOG_GROUP_ARN": execution_log_group_arn,
        # Metaflow reads no region setting outside its hosted sandbox: boto3 takes AWS_DEFAULT_REGION.
        # Recorded so `dsstack metaflow-config` users (and docs/compute.md) know which one to export.
        "DSSTACK_AWS_REGION": region,
    }
    for queue, name in job_queues.items():
        keys[queue_config_key(queue)] = name
    return keys


def merge_layers(layers: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """Merge per-layer key dicts ({'compute': {...}, 'metadata': {...}}) into one sorted document.

    A key set by two layers with different values is a wiring bug: raise instead of letting the
    order of the layers decide silently.
    """
    merged: dict[str, str] = {}
    owner: dict[str, str] = {}
    for layer, keys in layers.items():
        for key, value in keys.items():
            if key in merged and merged[key] != value:
                raise ValueError(f"Metaflow config key {key} is set by layers {owner[key]!r} and {layer!r} "
                                 "with different values")
            merged[key] = value
            owner.setdefault(key, layer)
    return dict(sorted(merged.items()))


def to_document(config: Mapping[str, str]) -> str:
    """The JSON text Metaflow writes itself (`metaflow configure`: indent 4, sorted keys)."""
    return json.dumps(dict(config), indent=4, sort_keys=True) + "\n"


def parse_document(text: str, *, source: str) -> dict[str, str]:
    """Read a published document back, refusing anything that is not a flat string mapping."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ValueError(f"{source}: expected a JSON object of string keys and values")
    return data
