"""`<env>-<team>-data`: a team's stateful resources (key, bucket, tables). RETAIN by default."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from dsstack.config import PlatformConfig, TeamConfig
from dsstack.constructs.coordinates import publish_coordinate
from dsstack.constructs.datastore import Datastore, TeamKey, TeamTables


class DataStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: PlatformConfig, team: TeamConfig,
                 access_log_bucket: s3.IBucket, removal_policy: cdk.RemovalPolicy, **kwargs: Any) -> None:
        super().__init__(
            scope, construct_id,
            description=f"dsstack {config.environment}/{team.name}: datastore, key and tables (stateful)",
            termination_protection=removal_policy == cdk.RemovalPolicy.RETAIN,
            **kwargs,
        )
        self.team = team.name
        self.environment_name = config.environment
        # Construct ids below are pinned by tests/infra/test_data_stack.py: never rename them.
        self.key = TeamKey(self, "TeamKey", team=team.name, environment=config.environment,
                           removal_policy=removal_policy).key
        # Referencing the log bucket by name (not the object from the network stack) keeps CDK from
        # adding a per-bucket statement to its policy, which would make the stacks depend on each other.
        log_bucket = s3.Bucket.from_bucket_name(self, "AccessLogBucket", access_log_bucket.bucket_name)
        self.bucket = Datastore(self, "Datastore", key=self.key, settings=team.data, access_log_bucket=log_bucket,
                                team=team.name, removal_policy=removal_policy).bucket
        tables = TeamTables(self, "Tables", key=self.key, removal_policy=removal_policy)
        self.step_functions_state_table = tables.step_functions_state
        self.catalog_table = tables.catalog
        self.metadata_table = tables.metadata
        self.idempotency_table = tables.idempotency

        self.publish("bucket-name", self.bucket.bucket_name, "Team datastore bucket")
        self.publish("kms-key-arn", self.key.key_arn, "Team KMS key")
        self.publish("tables/step-functions-state", self.step_functions_state_table.table_name,
                     "Metaflow Step Functions state table")
        self.publish("tables/catalog", self.catalog_table.table_name, "Catalog of versions and runs")
        self.publish("tables/metadata", self.metadata_table.table_name, "Metaflow metadata service table")

    def publish(self, key: str, value: str, description: str) -> ssm.StringParameter:
        """Publish a coordinate as SSM parameter /dsstack/<env>/<team>/<key> and as a stack output."""
        return publish_coordinate(self, environment=self.environment_name, team=self.team, key=key, value=value,
                                  description=description)
