"""The versioning and alerts Lambda glue of a team, and the EventBridge rules and budget that feed them.

Runtime code: lambda/versioning/ and lambda/alerts/ (docs/catalog.md). Every rule target and every
async invocation has a dead-letter queue, so an event that cannot be handled is kept, never lost.
"""

from __future__ import annotations

from typing import TypedDict

import aws_cdk as cdk
from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from dsstack import naming
from dsstack.config import AlertsConfig
from dsstack.constructs.python_function import PythonFunction, SharedLayer

# Prefixes whose objects are catalogued (Metaflow datastore, datatools root, registered models).
CATALOGUED_PREFIXES = (f"{naming.METAFLOW_PREFIX}/", f"{naming.DATATOOLS_PREFIX}/", f"{naming.MODELS_PREFIX}/")
FAILED_EXECUTION_STATUSES = ("FAILED", "TIMED_OUT", "ABORTED")
CATALOG_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query",
                   "dynamodb:ConditionCheckItem")
IDEMPOTENCY_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")


class _FunctionCommon(TypedDict):
    """Keyword arguments both glue functions share."""

    key: kms.IKey
    alert_topic: sns.ITopic
    log_retention_days: int
    shared_layer: lambda_.ILayerVersion


class EventGlue(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment: str,
        team: str,
        alerts: AlertsConfig,
        bucket: s3.IBucket,
        catalog_table: dynamodb.ITable,
        idempotency_table: dynamodb.ITable,
        key: kms.IKey,
        alert_topic: sns.ITopic,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        prefix = naming.state_machine_name_prefix(environment, team)
        state_machine_arn_prefix = f"arn:{stack.partition}:states:{stack.region}:{stack.account}:stateMachine:{prefix}"
        shared = SharedLayer(self, "SharedLayer").layer
        common: _FunctionCommon = {"key": key, "alert_topic": alert_topic, "log_retention_days": log_retention_days,
                                   "shared_layer": shared}

        self.versioning = PythonFunction(
            self, "Versioning", code_folder="versioning", handler="handler.lambda_handler",
            description=f"dsstack {environment}/{team}: catalog object versions, model versions and runs",
            environment={"CATALOG_TABLE_NAME": catalog_table.table_name,
                         "IDEMPOTENCY_TABLE_NAME": idempotency_table.table_name,
                         "STATE_MACHINE_PREFIX": prefix, "BUCKET_NAME": bucket.bucket_name},
            reserved_concurrency=20, **common)
        environment_vars = {"ALERT_TOPIC_ARN": alert_topic.topic_arn,
                            "IDEMPOTENCY_TABLE_NAME": idempotency_table.table_name,
                            "STATE_MACHINE_PREFIX": prefix}
        if alerts.chat_webhook_secret_name:
            environment_vars["CHAT_WEBHOOK_SECRET_ARN"] = alerts.chat_webhook_secret_name  # a name is a valid SecretId
        self.alerts = PythonFunction(
            self, "Alerts", code_folder="alerts", handler="handler.lambda_handler",
            description=f"dsstack {environment}/{team}: readable alerts for failed runs, jobs, endpoints, budget",
            environment=environment_vars, reserved_concurrency=5, **common)

        # Least privilege: explicit item actions on the exact tables, no wildcards.
        self.versioning.role.add_to_principal_policy(iam.PolicyStatement(
            actions=list(CATALOG_ACTIONS), resources=[catalog_table.table_arn]))
        for function in (self.versioning, self.alerts):
            function.role.add_to_principal_policy(iam.PolicyStatement(
                actions=list(IDEMPOTENCY_ACTIONS), resources=[idempotency_table.table_arn]))
        # The topic is encrypted with the team key; PythonFunction already grants kms:GenerateDataKey on it.
        self.alerts.role.add_to_principal_policy(iam.PolicyStatement(
            actions=["sns:Publish"], resources=[alert_topic.topic_arn]))
        if alerts.chat_webhook_secret_name:
            self.alerts.role.add_to_principal_policy(iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue"],
                # Secrets Manager appends 6 random characters to a secret's name in its ARN.
                resources=[f"arn:{stack.partition}:secretsmanager:{stack.region}:{stack.account}:secret:"
                           f"{alerts.chat_webhook_secret_name}-??????"]))

        # ---- rules -> versioning
        self.object_created_rule = self._rule(
            "ObjectCreatedRule", self.versioning,
            description="New object versions in the team bucket under the catalogued prefixes",
            pattern=events.EventPattern(
                source=["aws.s3"], detail_type=["Object Created"],
                detail={"bucket": {"name": [bucket.bucket_name]},
                        "object": {"key": [{"prefix": p} for p in CATALOGUED_PREFIXES]}}))
        self.run_status_rule = self._rule(
            "RunStatusRule", self.versioning,
            description="Status changes of the team's Metaflow state machines (run records)",
            pattern=events.EventPattern(
                source=["aws.states"], detail_type=["Step Functions Execution Status Change"],
                detail={"stateMachineArn": [{"prefix": state_machine_arn_prefix}]}))
        # ---- rules -> alerts
        self.failed_run_rule = self._rule(
            "FailedRunRule", self.alerts, description="Failed, timed-out or aborted runs of the team's flows",
            pattern=events.EventPattern(
                source=["aws.states"], detail_type=["Step Functions Execution Status Change"],
                detail={"status": list(FAILED_EXECUTION_STATUSES),
                        "stateMachineArn": [{"prefix": state_machine_arn_prefix}]}))
        queue_arn_prefix = (f"arn:{stack.partition}:batch:{stack.region}:{stack.account}:job-queue/"
                            f"{naming.resource_prefix(environment, team)}-")
        self.failed_job_rule = self._rule(
            "FailedBatchJobRule", self.alerts, description="Failed AWS Batch jobs in the team's queues",
            pattern=events.EventPattern(
                source=["aws.batch"], detail_type=["Batch Job State Change"],
                detail={"status": ["FAILED"], "jobQueue": [{"prefix": queue_arn_prefix}]}))
        self.failed_endpoint_rule = self._rule(
            "FailedEndpointRule", self.alerts, description="SageMaker endpoints of the team that failed",
            pattern=events.EventPattern(
                source=["aws.sagemaker"], detail_type=["SageMaker Endpoint State Change"],
                # AWS's event samples spell statuses IN_SERVICE, the API InService: match both spellings.
                detail={"EndpointStatus": ["FAILED", "Failed", "UPDATE_ROLLBACK_FAILED", "UpdateRollbackFailed"],
                        # With the "-": team vision2's endpoints must not alert team vision.
                        "EndpointName": [{"prefix": naming.resource_prefix(environment, team) + "-"}]}))

        # ---- budget: AWS Budgets -> budget topic -> alerts function (readable message) -> alert topic
        self.budget: budgets.CfnBudget | None = None
        if alerts.monthly_budget_usd is not None:
            budget_topic = sns.Topic(self, "BudgetTopic", master_key=key, enforce_ssl=True,
                                     display_name=f"dsstack {environment}/{team} budget notifications")
            budget_topic.add_to_resource_policy(iam.PolicyStatement(
                sid="AwsBudgetsPublish", principals=[iam.ServicePrincipal("budgets.amazonaws.com")],
                actions=["sns:Publish"], resources=[budget_topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}}))
            budget_topic.add_subscription(subscriptions.LambdaSubscription(
                self.alerts.function, dead_letter_queue=self.alerts.dead_letter_queue))
            subscriber = budgets.CfnBudget.SubscriberProperty(subscription_type="SNS", address=budget_topic.topic_arn)
            self.budget = budgets.CfnBudget(
                self, "Budget",
                budget=budgets.CfnBudget.BudgetDataProperty(
                    budget_type="COST", time_unit="MONTHLY",
                    budget_limit=budgets.CfnBudget.SpendProperty(amount=alerts.monthly_budget_usd, unit="USD"),
                    cost_filters={"TagKeyValue": [f"user:{naming.TAG_TEAM}${team}"]},
                ),
                notifications_with_subscribers=[
                    budgets.CfnBudget.NotificationWithSubscribersProperty(
                        notification=budgets.CfnBudget.NotificationProperty(
                            notification_type="FORECASTED", comparison_operator="GREATER_THAN",
                            threshold=80, threshold_type="PERCENTAGE"),
                        subscribers=[subscriber]),
                    budgets.CfnBudget.NotificationWithSubscribersProperty(
                        notification=budgets.CfnBudget.NotificationProperty(
                            notification_type="ACTUAL", comparison_operator="GREATER_THAN",
                            threshold=100, threshold_type="PERCENTAGE"),
                        subscribers=[subscriber]),
                ],
            )

    def _rule(self, construct_id: str, function: PythonFunction, *, description: str,
              pattern: events.EventPattern) -> events.Rule:
        rule = events.Rule(self, construct_id, description=description, event_pattern=pattern)
        rule.add_target(targets.LambdaFunction(
            function.function,
            dead_letter_queue=function.dead_letter_queue,  # events EventBridge could not deliver
            retry_attempts=8,
            max_event_age=cdk.Duration.hours(24),
        ))
        return rule

