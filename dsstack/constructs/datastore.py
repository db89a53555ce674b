"""A team's stateful data: KMS key, S3 datastore, and DynamoDB tables.

These resources hold users' data. Their construct ids are part of the logical IDs CloudFormation
uses to identify them, so they must never change (tests/infra/test_data_stack.py pins them).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from dsstack.config import DataConfig
from dsstack.constructs.cfn import cfn_resource
from dsstack.nag import acknowledge_all

ACCESS_LOG_PREFIX = "s3-access-logs"


class TeamKey(Construct):
    """Customer-managed KMS key encrypting everything a team stores ($1/month + requests)."""

    def __init__(self, scope: Construct, construct_id: str, *, team: str, environment: str,
                 removal_policy: cdk.RemovalPolicy) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self, "Key",
            description=f"dsstack {environment}/{team}: datastore, tables, volumes",
            enable_key_rotation=True,
            removal_policy=removal_policy,
            pending_window=cdk.Duration.days(30),
        )
        # Services that encrypt the team's logs, queues and topics with this key on the team's behalf.
        # Each may only use it from this account (aws:SourceAccount) and CloudWatch Logs only for log groups.
        region, account = cdk.Aws.REGION, cdk.Aws.ACCOUNT_ID
        self.key.add_to_resource_policy(iam.PolicyStatement(
            sid="CloudWatchLogsEncryptTeamLogGroups",
            principals=[iam.ServicePrincipal(f"logs.{region}.amazonaws.com")],
            actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            resources=["*"],  # in a key policy "*" means this key
            conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:{cdk.Aws.PARTITION}:logs:{region}:{account}:log-group:*"}},
        ))
        self.key.add_to_resource_policy(iam.PolicyStatement(
            sid="AwsServicesPublishToTeamQueuesAndTopics",
            principals=[iam.ServicePrincipal(s) for s in (
                "events.amazonaws.com", "cloudwatch.amazonaws.com", "budgets.amazonaws.com", "sns.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            resources=["*"],  # in a key policy "*" means this key
            conditions={"StringEquals": {"aws:SourceAccount": account}},
        ))


class Datastore(Construct):
    """The team's S3 bucket: Metaflow datastore, datatools root, registered models."""

    def __init__(self, scope: Construct, construct_id: str, *, key: kms.IKey, settings: DataConfig,
                 access_log_bucket: s3.IBucket, team: str, removal_policy: cdk.RemovalPolicy) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self, "Bucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,  # cuts KMS request costs by ~99% for Metaflow's many small objects
            versioned=True,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=access_log_bucket,
            server_access_logs_prefix=f"{ACCESS_LOG_PREFIX}/{team}/",
            removal_policy=removal_policy,
            lifecycle_rules=[
                s3.LifecycleRule(id="abort-incomplete-uploads",
                                 abort_incomplete_multipart_upload_after=cdk.Duration.days(7)),
                s3.LifecycleRule(id="expire-noncurrent-versions",
                                 noncurrent_version_expiration=cdk.Duration.days(
                                     settings.noncurrent_version_expiration_days)),
            ],
        )
        cfn_bucket = cfn_resource(self.bucket)
        # Object events feed the versioning catalog. The native CloudFormation property is used instead
        # of `event_bridge_enabled=True`, which CDK implements with a custom-resource Lambda.
        cfn_bucket.add_property_override("NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True)
        # The log bucket's policy (network stack) admits S3 log delivery for the whole account.
        cdk.Annotations.of(self.bucket).acknowledge_warning(
            "@aws-cdk/aws-s3:accessLogsPolicyNotAdded",
            "The shared access-log bucket's policy grants logging.s3.amazonaws.com for this account.")
        acknowledge_all(cfn_bucket, {
            "NIST.800.53.R5-S3BucketReplicationEnabled": "Versioning + RETAIN protect the datastore; cross-region "
            "replication would double storage cost and is not requested by the config.",
            "HIPAA.Security-S3BucketReplicationEnabled": "Versioning + RETAIN protect the datastore; cross-region "
            "replication would double storage cost and is not requested by the config.",
        })


def _table(scope: Construct, construct_id: str, *, key: kms.IKey, partition_key: str, sort_key: str | None,
           ttl_attribute: str | None, removal_policy: cdk.RemovalPolicy,
           gsi: tuple[str, str, str] | None = None) -> dynamodb.Table:
    table = dynamodb.Table(
        scope, construct_id,
        partition_key=dynamodb.Attribute(name=partition_key, type=dynamodb.AttributeType.STRING),
        sort_key=dynamodb.Attribute(name=sort_key, type=dynamodb.AttributeType.STRING) if sort_key else None,
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
        encryption_key=key,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True),
        deletion_protection=removal_policy == cdk.RemovalPolicy.RETAIN,
        time_to_live_attribute=ttl_attribute,
        removal_policy=removal_policy,
    )
    if gsi:
        table.add_global_secondary_index(
            index_name=gsi[0],
            partition_key=dynamodb.Attribute(name=gsi[1], type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=gsi[2], type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.ALL,
        )
    acknowledge_all(cfn_resource(table), {
        "NIST.800.53.R5-DynamoDBInBackupPlan": "Point-in-time recovery (35 days) is on; an AWS Backup plan would "
        "add vault cost the config did not ask for.",
        "HIPAA.Security-DynamoDBInBackupPlan": "Point-in-time recovery (35 days) is on; an AWS Backup plan would "
        "add vault cost the config did not ask for.",
    })
    return table


class TeamTables(Construct):
    """DynamoDB tables of a team (on demand: $0 idle beyond storage).

    Every table uses generic string keys `pk`/`sk` (+ `gsi1pk`/`gsi1sk`) so the access patterns of the
    layers above can evolve without replacing a stateful table.
    """

    def __init__(self, scope: Construct, construct_id: str, *, key: kms.IKey,
                 removal_policy: cdk.RemovalPolicy) -> None:
        super().__init__(scope, construct_id)
        # Metaflow's Step Functions integration: METAFLOW_SFN_DYNAMO_DB_TABLE (key `pathspec`, TTL `ttl`).
        self.step_functions_state = _table(
            self, "StepFunctionsStateTable", key=key, partition_key="pathspec", sort_key=None,
            ttl_attribute="ttl", removal_policy=removal_policy)
        # Catalog of artifact/model versions, runs and promotions (docs/catalog.md).
        self.catalog = _table(
            self, "CatalogTable", key=key, partition_key="pk", sort_key="sk", ttl_attribute="ttl",
            removal_policy=removal_policy, gsi=("gsi1", "gsi1pk", "gsi1sk"))
        # Metaflow metadata service: flows, runs, steps, tasks, artifacts (docs/metadata.md).
        self.metadata = _table(
            self, "MetadataTable", key=key, partition_key="pk", sort_key="sk", ttl_attribute="ttl",
            removal_policy=removal_policy, gsi=("gsi1", "gsi1pk", "gsi1sk"))
        # Powertools idempotency records of the Lambda glue (short-lived, TTL `expiration`).
        self.idempotency = _table(
            self, "IdempotencyTable", key=key, partition_key="id", sort_key=None,
            ttl_attribute="expiration", removal_policy=removal_policy)
