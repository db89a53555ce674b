"""A Python Lambda function the way dsstack runs every one of them.

- code: a plain folder under `lambda/` (no Docker bundling); third-party code comes only from the
  AWS-managed Powertools layer and the project's shared layer (`lambda/shared/`);
- a log group with the environment's retention, encrypted with the team key;
- a dead-letter queue (SQS, team key, TLS-only) for failed asynchronous invocations, with an alarm
  on its depth and on the function's errors, both notifying the team's alert topic;
- reserved concurrency, a bounded timeout, X-Ray tracing, ARM64.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from dsstack.constructs.cfn import cfn_resource
from dsstack.constructs.log_retention import retention_days
from dsstack.nag import acknowledge, acknowledge_all

LAMBDA_ROOT = Path(__file__).resolve().parents[2] / "lambda"
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
# AWS-managed Powertools for AWS Lambda (Python) v3 layer (python3.14, arm64). Bump together with the
# aws-lambda-powertools pin in pyproject.toml, the version the tests run the handlers with.
POWERTOOLS_LAYER_ACCOUNT = "017000801446"
POWERTOOLS_LAYER_VERSION = 38


def powertools_layer_arn(region: str) -> str:
    return (f"arn:{cdk.Aws.PARTITION}:lambda:{region}:{POWERTOOLS_LAYER_ACCOUNT}:layer:"
            f"AWSLambdaPowertoolsPythonV3-python314-arm64:{POWERTOOLS_LAYER_VERSION}")


class SharedLayer(Construct):
    """`lambda/shared/` as a layer (its `python/` folder is the import root): one per stack."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.layer = lambda_.LayerVersion(
            self, "Layer",
            code=lambda_.Code.from_asset(str(LAMBDA_ROOT / "shared"), exclude=["**/__pycache__", "**/*.pyc"]),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="dsstack shared runtime code (catalog keys, event helpers)",
        )


class PythonFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code_folder: str,
        handler: str,
        description: str,
        environment: dict[str, str],
        key: kms.IKey,
        alert_topic: sns.ITopic,
        log_retention_days: int,
        shared_layer: lambda_.ILayerVersion | None = None,
        reserved_concurrency: int = 10,
        timeout_seconds: int = 30,
        memory_size: int = 256,
        retry_attempts: int = 2,
    ) -> None:
        super().__init__(scope, construct_id)
        region = cdk.Stack.of(self).region
        self.dead_letter_queue = sqs.Queue(
            self, "DeadLetterQueue",
            encryption=sqs.QueueEncryption.KMS, encryption_master_key=key,
            enforce_ssl=True, retention_period=cdk.Duration.days(14),
        )
        acknowledge_all(cfn_resource(self.dead_letter_queue), {
            "AwsSolutions-SQS3": "This queue is itself the dead-letter queue of the function; its depth is alarmed.",
            "Serverless-SQSRedrivePolicy": "This queue is itself the dead-letter queue of the function; nothing "
            "consumes it automatically, its depth is alarmed.",
        })
        self.log_group = logs.LogGroup(
            self, "LogGroup",
            retention=retention_days(log_retention_days),
            encryption_key=key,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        # Own role instead of CDK's default (which attaches the AWS-managed AWSLambdaBasicExecutionRole):
        # it may write only to this function's log group.
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                             description=f"{description} (Lambda)")
        self.log_group.grant_write(self.role)
        layers = [lambda_.LayerVersion.from_layer_version_arn(self, "Powertools", powertools_layer_arn(region))]
        if shared_layer is not None:
            layers.append(shared_layer)
        self.function = lambda_.Function(
            self, "Function",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=lambda_.Code.from_asset(str(LAMBDA_ROOT / code_folder),
                                         exclude=["**/__pycache__", "**/*.pyc", "tests"]),
            handler=handler,
            description=description,
            environment={"POWERTOOLS_SERVICE_NAME": construct_id, "POWERTOOLS_LOG_LEVEL": "INFO", **environment},
            environment_encryption=key,
            layers=layers,
            memory_size=memory_size,
            timeout=cdk.Duration.seconds(timeout_seconds),
            reserved_concurrent_executions=reserved_concurrency,
            dead_letter_queue=self.dead_letter_queue,
            retry_attempts=retry_attempts,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            role=self.role,
        )
        # Environment variables and the dead-letter queue are encrypted with the team key.
        key.grant(self.role, "kms:Decrypt", "kms:GenerateDataKey")
        # CDK makes the function DependsOn its role, which the Role GetAtt already implies (cfn-lint W3005).
        # Keep only the dependency on the role's policy, so permissions exist before the function runs.
        function_resource = cfn_resource(self.function)
        policy_resource = cfn_resource(self.role.node.find_child("DefaultPolicy"))
        function_resource.add_override("DependsOn", [cdk.Stack.of(self).get_logical_id(policy_resource)])
        acknowledge_all(self.role, {
            "NIST.800.53.R5-IAMNoInlinePolicy": "CDK grants write this role's statements into its own policy, "
            "scoped to the exact resources of this one function; nothing else can attach it.",
            "HIPAA.Security-IAMNoInlinePolicy": "CDK grants write this role's statements into its own policy, "
            "scoped to the exact resources of this one function; nothing else can attach it.",
            "AwsSolutions-IAM5[Resource::*]": "X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level "
            "permissions; CDK adds them for active tracing.",
        })
        acknowledge(cfn_resource(self.function.node.find_child("EventInvokeConfig")),
                    "Serverless-LambdaAsyncFailureDestination",
                    "Failed asynchronous events go to the dead-letter queue (DeadLetterConfig); an on-failure "
                    "destination to the same queue would deliver each failure twice.")
        for pack in ("NIST.800.53.R5", "HIPAA.Security"):
            acknowledge(cfn_resource(self.function), f"{pack}-LambdaInsideVPC",
                        "The function only calls regional AWS APIs (DynamoDB, SNS, SQS, Secrets Manager); in the "
                        "$0-idle public egress mode a VPC-attached Lambda could not reach them without a NAT.")
        alarm_action = cloudwatch_actions.SnsAction(alert_topic)
        self.error_alarm = cloudwatch.Alarm(
            self, "ErrorAlarm",
            alarm_description=f"{description}: invocations failed",
            metric=self.function.metric_errors(period=cdk.Duration.minutes(5), statistic="Sum"),
            threshold=1, evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.dead_letter_alarm = cloudwatch.Alarm(
            self, "DeadLetterAlarm",
            alarm_description=f"{description}: events are waiting in the dead-letter queue",
            metric=self.dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=cdk.Duration.minutes(5), statistic="Maximum"),
            threshold=1, evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        for alarm in (self.error_alarm, self.dead_letter_alarm):
            alarm.add_alarm_action(alarm_action)
