"""A team coordinate: an SSM parameter /dsstack/<env>/<team>/<key> plus a stack output with the same value."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from dsstack import naming


def publish_coordinate(scope: Construct, *, environment: str, team: str, key: str, value: str,
                       description: str) -> ssm.StringParameter:
    name = naming.ssm_parameter_name(environment, team, key)
    construct_id = "".join(part.capitalize() for part in key.replace("/", "-").split("-"))
    parameter = ssm.StringParameter(scope, f"{construct_id}Parameter", parameter_name=name, string_value=value,
                                    description=f"dsstack: {description}")
    cdk.CfnOutput(scope, construct_id, value=value, description=f"{description} (SSM {name})")
    return parameter
