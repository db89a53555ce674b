"""`<env>-<team>-operations`: the team's alert topic, and the versioning/alerts Lambda glue (issue 5).

Stateless: may be replaced freely. Every layer's alarms notify `alert_topic`.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from dsstack import naming
from dsstack.config import PlatformConfig, TeamConfig
from dsstack.constructs.cfn import cfn_resource
from dsstack.constructs.event_glue import EventGlue
from dsstack.nag import acknowledge_all
from dsstack.stacks.data import DataStack


class OperationsStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: PlatformConfig, team: TeamConfig,
                 data: DataStack, **kwargs: Any) -> None:
        super().__init__(scope, construct_id,
                         description=f"dsstack {config.environment}/{team.name}: alerts, versioning catalog glue",
                         **kwargs)
        self.alert_topic = sns.Topic(
            self, "AlertTopic",
            display_name=f"dsstack {config.environment}/{team.name} alerts",
            master_key=data.key,
            enforce_ssl=True,
        )
        # Alerts SNS could not deliver (bouncing address, throttling) are kept here, never lost.
        self.undelivered_alerts = sqs.Queue(
            self, "UndeliveredAlerts", encryption=sqs.QueueEncryption.KMS, encryption_master_key=data.key,
            enforce_ssl=True, retention_period=cdk.Duration.days(14),
        )
        acknowledge_all(cfn_resource(self.undelivered_alerts), {
            "AwsSolutions-SQS3": "This queue is the dead-letter queue of the alert topic's subscriptions.",
            "Serverless-SQSRedrivePolicy": "This queue is the dead-letter queue of the alert topic's subscriptions; "
            "nothing consumes it automatically.",
        })
        for email in team.alerts.emails:
            self.alert_topic.add_subscription(
                subscriptions.EmailSubscription(email, dead_letter_queue=self.undelivered_alerts))
        self.glue = EventGlue(
            self, "EventGlue", environment=config.environment, team=team.name, alerts=team.alerts,
            bucket=data.bucket, catalog_table=data.catalog_table, idempotency_table=data.idempotency_table,
            key=data.key, alert_topic=self.alert_topic, log_retention_days=config.log_retention_days,
        )
        cdk.CfnOutput(self, "AlertTopicArn", value=self.alert_topic.topic_arn,
                      description="SNS topic receiving the team's alerts")
        self.parameter_name = naming.ssm_parameter_name(config.environment, team.name, "alerts/topic-arn")
