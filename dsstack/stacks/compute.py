"""`<env>-<team>-compute`: AWS Batch queues and the Step Functions/EventBridge roles Metaflow uses.

Stateless: may be replaced freely. Publishes the team's Metaflow config (SSM + outputs).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from dsstack import metaflow_config, naming
from dsstack.config import PlatformConfig, TeamConfig
from dsstack.constructs.batch_compute import BatchCompute
from dsstack.constructs.cfn import cfn_resource
from dsstack.constructs.orchestration import Orchestration
from dsstack.stacks.data import DataStack
from dsstack.stacks.network import NetworkStack


class ComputeStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: PlatformConfig, team: TeamConfig,
                 data: DataStack, network: NetworkStack, **kwargs: Any) -> None:
        super().__init__(scope, construct_id,
                         description=f"dsstack {config.environment}/{team.name}: AWS Batch and Step Functions roles",
                         **kwargs)
        prefix = naming.state_machine_prefix(config.environment, team.name)
        self.batch = BatchCompute(
            self, "Batch", environment=config.environment, team=team.name, settings=team.compute,
            vpc=network.network.vpc, subnets=network.network.workload_subnets, key=data.key,
            bucket_arn_export=_export(data, data.bucket.bucket_arn, "bucket-arn"),
            state_table=data.step_functions_state_table, catalog_table=data.catalog_table,
        )
        self.orchestration = Orchestration(
            self, "Orchestration", environment=config.environment, team=team.name,
            state_machine_prefix=naming.state_machine_name_prefix(config.environment, team.name),
            job_queues=list(self.batch.job_queues.values()), state_table=data.step_functions_state_table,
            key=data.key, log_retention=config.log_retention_days,
        )

        self.metaflow_parameter_name = metaflow_config.parameter_name(config.environment, team.name)
        self.metaflow_parameter = ssm.StringParameter(
            self, "MetaflowConfigParameter", parameter_name=self.metaflow_parameter_name, string_value="{}",
            description="dsstack: the team's Metaflow config (metaflow configure import format)",
            tier=ssm.ParameterTier.STANDARD,
        )
        # Per-layer Metaflow keys; other layers add theirs with add_metaflow_layer(), which re-renders the
        # parameter (eagerly: jsii cannot pass a resolve context to a Python Lazy producer).
        self._metaflow_layers: dict[str, Mapping[str, str]] = {}
        self.add_metaflow_layer("compute", metaflow_config.compute_keys(
            region=self.region,
            bucket_name=data.bucket.bucket_name,
            job_queues={name: q.job_queue_name for name, q in self.batch.job_queues.items()},
            job_role_arn=self.batch.job_role.role_arn,
            execution_role_arn=self.batch.execution_role.role_arn,
            step_functions_role_arn=self.orchestration.step_functions_role.role_arn,
            state_table_name=data.step_functions_state_table.table_name,
            state_machine_prefix=prefix,
            events_role_arn=self.orchestration.events_role.role_arn,
            execution_log_group_arn=self.orchestration.log_group.log_group_arn,
        ))
        # Outputs: the values this stack owns (an output re-exporting another stack's value is a cfn-lint
        # finding); the complete document, with the data and metadata values, is the SSM parameter.
        owned = {
            "JobRoleArn": ("METAFLOW_ECS_S3_ACCESS_IAM_ROLE", self.batch.job_role.role_arn),
            "ExecutionRoleArn": ("METAFLOW_ECS_FARGATE_EXECUTION_ROLE", self.batch.execution_role.role_arn),
            "StepFunctionsRoleArn": ("METAFLOW_SFN_IAM_ROLE", self.orchestration.step_functions_role.role_arn),
            "EventsRoleArn": ("METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE", self.orchestration.events_role.role_arn),
            "ExecutionLogGroupArn": ("METAFLOW_SFN_EXECUTION_LOG_GROUP_ARN",
                                     self.orchestration.log_group.log_group_arn),
            "StateMachinePrefix": ("METAFLOW_SFN_STATE_MACHINE_PREFIX", prefix),
            **{f"JobQueue{_pascal(name)}": (metaflow_config.queue_config_key(name), queue.job_queue_name)
               for name, queue in self.batch.job_queues.items()},
        }
        for output_id, (key, value) in owned.items():
            cdk.CfnOutput(self, output_id, value=value, description=f"{key} (all keys: SSM {self.metaflow_parameter_name})")

    def add_metaflow_layer(self, layer: str, keys: Mapping[str, str]) -> None:
        """Contribute a layer's Metaflow keys (e.g. the metadata service's) to the published config."""
        if layer in self._metaflow_layers:
            raise ValueError(f"Metaflow config layer {layer!r} is already registered")
        self._metaflow_layers[layer] = dict(keys)
        document = self.to_json_string(self.metaflow_keys())
        cfn_parameter = cfn_resource(self.metaflow_parameter, ssm.CfnParameter)
        cfn_parameter.value = document

    def metaflow_keys(self) -> dict[str, str]:
        """The merged keys (values may be tokens)."""
        return metaflow_config.merge_layers(self._metaflow_layers)


def _export(data: DataStack, value: str, suffix: str) -> str:
    """Export a data-stack value under a fixed name (`<data stack>-<suffix>`) and return that name."""
    name = f"{data.stack_name}-{suffix}"
    data.export_value(value, name=name)
    return name


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))
