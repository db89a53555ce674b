"""Roles and logs for the Step Functions state machines Metaflow creates (`step-functions create`).

Metaflow generates the state machines itself; dsstack provides what they assume: a Step Functions
role that can only submit to this team's queues, an EventBridge role that can only start this team's
state machines (by name prefix), and a log group for execution history.
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_batch as batch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from dsstack import naming
from dsstack.constructs.batch_compute import acknowledge_resources, role_policy
from dsstack.constructs.log_retention import retention_days

# The managed rule Step Functions creates for `batch:submitJob.sync` to learn when a job finishes.
BATCH_SYNC_RULE = "StepFunctionsGetEventsForBatchJobsRule"
# Metaflow registers job definitions as metaflow_<sha224 of the definition> (batch_client.py).
METAFLOW_JOB_DEFINITIONS = "metaflow_*"


class Orchestration(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, environment: str, team: str,
                 state_machine_prefix: str, job_queues: Sequence[batch.IJobQueue], state_table: dynamodb.ITable,
                 key: kms.IKey, log_retention: int) -> None:
        super().__init__(scope, construct_id)
        region, account, partition = cdk.Aws.REGION, cdk.Aws.ACCOUNT_ID, cdk.Aws.PARTITION
        batch_arn = f"arn:{partition}:batch:{region}:{account}"

        # Step Functions log delivery prefers /aws/vendedlogs/ names (keeps the account's log resource
        # policy under its size limit).
        self.log_group = logs.LogGroup(
            self, "ExecutionLogs",
            log_group_name=f"/aws/vendedlogs/states/{naming.state_machine_prefix(environment, team)}-executions",
            retention=retention_days(log_retention), encryption_key=key,
            # Execution history of a stateless stack, under the fixed /aws/vendedlogs/ name Step Functions
            # prefers: a retained group with a fixed name would make the next deploy after a destroy fail.
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )

        self.step_functions_role = iam.Role(
            self, "StepFunctionsRole",
            assumed_by=iam.ServicePrincipal("states.amazonaws.com", conditions={
                "StringEquals": {"aws:SourceAccount": account},
                "ArnLike": {"aws:SourceArn": f"arn:{partition}:states:{region}:{account}:stateMachine:"
                                             f"{state_machine_prefix}*"},
            }),
            description=f"dsstack {environment}/{team}: Metaflow state machines (this team's queues only)",
        )
        job_definitions = f"{batch_arn}:job-definition/{METAFLOW_JOB_DEFINITIONS}"
        jobs = f"{batch_arn}:job/*"
        batch_rule = f"arn:{partition}:events:{region}:{account}:rule/{BATCH_SYNC_RULE}"
        policy = role_policy(self.step_functions_role, [
            iam.PolicyStatement(sid="SubmitToTeamQueues", actions=["batch:SubmitJob"],
                                resources=[*(q.job_queue_arn for q in job_queues), job_definitions]),
            # With METAFLOW_BATCH_EMIT_TAGS Metaflow tags each job (flow, run, user) at submission.
            iam.PolicyStatement(sid="TagAndStopJobs", actions=["batch:TagResource", "batch:TerminateJob"],
                                resources=[jobs]),
            iam.PolicyStatement(sid="DescribeJobs", actions=["batch:DescribeJobs"], resources=["*"]),
            # The managed rule through which `batch:submitJob.sync` learns that a job finished.
            iam.PolicyStatement(sid="BatchSyncRule", actions=["events:PutTargets", "events:PutRule",
                                                              "events:DescribeRule"], resources=[batch_rule]),
            # Foreach joins read the parents' task ids that the steps wrote.
            iam.PolicyStatement(sid="StateTable", actions=["dynamodb:GetItem"], resources=[state_table.table_arn]),
            iam.PolicyStatement(sid="ExecutionLogDelivery", resources=["*"], actions=[
                "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
                "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies",
                "logs:DescribeLogGroups"]),
        ])
        acknowledge_resources(policy, {
            "*": "batch:DescribeJobs and the CloudWatch Logs delivery APIs support no resource-level permissions "
                 "(Step Functions docs: IAM policies for logging; Batch service authorization reference).",
            job_definitions: "Metaflow registers job definitions as metaflow_<hash>; submission is limited to this "
                             "team's queues in the same statement.",
            jobs: "Batch job ids are generated; tagging and stopping follow from submitting to the team's queues.",
        })

        self.events_role = iam.Role(
            self, "EventsRole",
            assumed_by=iam.ServicePrincipal("events.amazonaws.com",
                                            conditions={"StringEquals": {"aws:SourceAccount": account}}),
            description=f"dsstack {environment}/{team}: schedules start this team's state machines only",
        )
        state_machines = f"arn:{partition}:states:{region}:{account}:stateMachine:{state_machine_prefix}*"
        events_policy = role_policy(self.events_role, [iam.PolicyStatement(
            sid="StartTeamStateMachines", actions=["states:StartExecution"], resources=[state_machines])])
        acknowledge_resources(events_policy, {
            state_machines: "Metaflow names state machines <team prefix><flow>; the wildcard covers only names "
                            "with this team's prefix."})
