"""Names shared by the hosting stack (which publishes them), promotion and the CLI (which read them).

Pure Python: importable without jsii, boto3 or the CDK.
"""

from __future__ import annotations

from typing import Any

from dsstack import naming

# The one production variant every dsstack endpoint has. Blue/green updates require the new endpoint
# config to keep the variant name, so it never changes.
VARIANT_NAME = "AllTraffic"
CONTAINER_NAME = "model"
# Data capture of real-time endpoints goes to s3://<team bucket>/model-captures/<model>/ (outside the
# cataloged prefixes, so captures are not numbered as model versions).
CAPTURE_PREFIX = "model-captures"

# The two alarms every endpoint has (docs/hosting.md), whichever kind serves it.
ALARM_5XX_IN_5_MINUTES = 5  # 5xx responses within one 5-minute period
ALARM_LATENCY_P90_SECONDS = 2  # p90 latency, two periods in a row

# Environment of every serving container: which catalog version it serves and where that object is.
ENV_MODEL_NAME = "DSSTACK_MODEL_NAME"
ENV_MODEL_VERSION = "DSSTACK_MODEL_VERSION"
ENV_MODEL_S3_URI = "DSSTACK_MODEL_S3_URI"
ENV_MODEL_S3_VERSION_ID = "DSSTACK_MODEL_S3_VERSION_ID"

# SSM parameters under /dsstack/<env>/<team>/models/<model>/ (one set per endpoint).
PARAM_KIND = "kind"
PARAM_ENDPOINT_NAME = "endpoint-name"  # SageMaker endpoint name, or the ECS service name
PARAM_URL = "url"  # SageMaker runtime invocation URL, or the load balancer's base URL
PARAM_ARN = "arn"  # SageMaker endpoint ARN, or the ECS service ARN
PARAM_ALARMS = "alarms"  # comma-separated CloudWatch alarm names (SageMaker auto-rollback watches them)
PARAM_CLUSTER = "cluster"  # ECS only
ECR_REPOSITORY_KEY = "hosting/ecr-repository"
CATALOG_TABLE_KEY = "tables/catalog"  # published by the data stack
BUCKET_KEY = "bucket-name"  # published by the data stack


def model_key(model: str, field: str) -> str:
    return f"models/{model}/{field}"


def model_parameter_path(environment: str, team: str, model: str) -> str:
    return naming.ssm_parameter_name(environment, team, f"models/{model}")


MAX_ENDPOINT_NAME = 63  # SageMaker endpoint names; ECS service names allow 255


def endpoint_name(environment: str, team: str, model: str) -> str:
    """`dsstack-<env>-<team>-<model>`: the team's resource prefix, which workstation roles may invoke.

    Raises ValueError when the combination exceeds SageMaker's 63 characters.
    """
    name = f"{naming.resource_prefix(environment, team)}-{model}"
    if len(name) > MAX_ENDPOINT_NAME:
        raise ValueError(f"endpoint name {name!r} is {len(name)} characters; SageMaker allows {MAX_ENDPOINT_NAME}. "
                         f"Shorten model {model!r} (teams[].models[].name) to at most "
                         f"{MAX_ENDPOINT_NAME - len(name) + len(model)} characters")
    return name


def iam5_finding(resource: str) -> str:
    """cdk-nag's id of a wildcard finding on `resource` (as cdk-nag renders tokens: <AWS::Region>)."""
    return f"AwsSolutions-IAM5[Resource::{resource}]"


BUCKET_NAME_PARAMETER = "TeamBucketName"  # CfnParameter: the bucket name, resolved from SSM at deploy
NAG_BUCKET = f"arn:<AWS::Partition>:s3:::<{BUCKET_NAME_PARAMETER}>"


def alarm_name(environment: str, team: str, model: str, what: str) -> str:
    return f"dsstack-{environment}-{team}-{model}-{what}"


# Blue/green traffic shifting for promotions and template updates: 10% canary, 5 minutes of watching
# the alarms, then everything; the old fleet is kept 5 more minutes for an instant rollback.
CANARY_PERCENT = 10
CANARY_WAIT_SECONDS = 300
TERMINATION_WAIT_SECONDS = 300


def deployment_config(alarm_names: list[str]) -> dict[str, Any]:
    """The DeploymentConfig of UpdateEndpoint, shared by the template and promotion (API shape)."""
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": CANARY_PERCENT},
                "WaitIntervalInSeconds": CANARY_WAIT_SECONDS,
            },
            "TerminationWaitInSeconds": TERMINATION_WAIT_SECONDS,
            "MaximumExecutionTimeoutInSeconds": 3600,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": n} for n in alarm_names]},
    }
