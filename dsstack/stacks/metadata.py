"""`<env>-<team>-metadata`: the team's Metaflow metadata service (API Gateway + Lambda on the data stack's
metadata table). Stateless: the runs live in the data stack's table; this stack may be replaced freely.

Publishes /dsstack/<env>/<team>/metadata/url and /metadata/api-key-id (SSM + outputs); the key's value
is read at runtime by `dsstack metaflow-config` (dsstack/metadata_config.py).
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from dsstack import metadata_config, naming
from dsstack.config import PlatformConfig, TeamConfig
from dsstack.constructs.metadata_service import MetadataService
from dsstack.stacks.data import DataStack
from dsstack.stacks.operations import OperationsStack


class MetadataStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: PlatformConfig, team: TeamConfig,
                 data: DataStack, operations: OperationsStack, **kwargs: Any) -> None:
        super().__init__(scope, construct_id,
                         description=f"dsstack {config.environment}/{team.name}: Metaflow metadata service "
                         "(API Gateway + Lambda + DynamoDB)", **kwargs)
        self.service = MetadataService(
            self, "Service",
            name_prefix=naming.resource_prefix(config.environment, team.name),
            settings=team.metadata_service,
            table=data.metadata_table,
            key=data.key,
            alert_topic=operations.alert_topic,
            log_retention_days=config.log_retention_days,
        )
        self.url_parameter = self._publish(
            "ServiceUrl", metadata_config.url_parameter_name(config.environment, team.name),
            self.service.url, "Metaflow metadata service URL (METAFLOW_SERVICE_URL)")
        self.api_key_id_parameter = self._publish(
            "ApiKeyId", metadata_config.api_key_id_parameter_name(config.environment, team.name),
            self.service.api_key.key_id,
            "Metadata service API key id (its value: apigateway get-api-key --include-value)")

    def metaflow_keys(self) -> dict[str, str]:
        """This layer's Metaflow config keys (tokens of this stack)."""
        return metadata_config.metaflow_keys(self.service.url)

    def _publish(self, construct_id: str, name: str, value: str, description: str) -> ssm.StringParameter:
        cdk.CfnOutput(self, construct_id, value=value, description=f"{description} (SSM {name})")
        return ssm.StringParameter(self, f"{construct_id}Parameter", parameter_name=name, string_value=value,
                                   description=f"dsstack: {description}")
