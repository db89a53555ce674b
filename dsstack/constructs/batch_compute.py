"""A team's AWS Batch: CPU on-demand + Spot, GPU, optional Fargate, extra queues, and their roles.

Every EC2 environment scales to 0 vCPUs by default, so a team that runs nothing pays nothing for
compute. Queue names are fixed (`dsstack-<env>-<team>-<queue>`, see dsstack.metaflow_config) so flows
can name them in `@batch(queue=...)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

import aws_cdk as cdk
from aws_cdk import aws_batch as batch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from dsstack import naming
from dsstack.config import ComputeConfig
from dsstack.constructs.cfn import cfn_resource
from dsstack.metaflow_config import job_queue_name
from dsstack.nag import acknowledge

# Root device of the ECS-optimized Amazon Linux 2023 AMIs (CPU and GPU).
ROOT_DEVICE = "/dev/xvda"
# Prefixes of the team bucket a job may read and write (Metaflow datastore, datatools, models).
JOB_PREFIXES = (naming.METAFLOW_PREFIX, naming.DATATOOLS_PREFIX, naming.MODELS_PREFIX)


class _EnvironmentCommon(TypedDict):
    """Keyword arguments every compute environment of a team shares (EC2 and Fargate)."""

    vpc: ec2.IVpc
    vpc_subnets: ec2.SubnetSelection
    security_groups: Sequence[ec2.ISecurityGroup]
    service_role: iam.IRole


class BatchCompute(Construct):
    """Compute environments, job queues, launch template, security group and the Batch roles."""

    def __init__(self, scope: Construct, construct_id: str, *, environment: str, team: str,
                 settings: ComputeConfig, vpc: ec2.IVpc, subnets: ec2.SubnetSelection, bucket_arn_export: str,
                 key: kms.IKey, state_table: dynamodb.ITable, catalog_table: dynamodb.ITable) -> None:
        super().__init__(scope, construct_id)
        region, account, partition = cdk.Aws.REGION, cdk.Aws.ACCOUNT_ID, cdk.Aws.PARTITION

        # ---------------------------------------------------------------------------------- network
        # Instances only call out (AWS APIs, image registries); nothing ever connects to them.
        self.security_group = ec2.SecurityGroup(
            self, "InstanceSecurityGroup", vpc=vpc, allow_all_outbound=True,
            description=f"dsstack {environment}/{team} Batch instances: no inbound rules",
        )

        # ---------------------------------------------------------------------------------- roles
        self.job_role = iam.Role(
            self, "JobRole", assumed_by=_ecs_tasks(account, region, partition),
            description=f"dsstack {environment}/{team}: Batch jobs (Metaflow steps), team data only",
        )
        self._grant_team_data(self.job_role, bucket_arn_export=bucket_arn_export, key=key, state_table=state_table,
                              catalog_table=catalog_table)

        self.execution_role = iam.Role(
            self, "ExecutionRole", assumed_by=_ecs_tasks(account, region, partition),
            description=f"dsstack {environment}/{team}: pulls images and writes logs for Fargate jobs",
        )
        repositories = f"arn:{partition}:ecr:{region}:{account}:repository/*"
        batch_logs = f"arn:{partition}:logs:{region}:{account}:log-group:/aws/batch/job:*"
        execution_policy = role_policy(self.execution_role, [
            iam.PolicyStatement(sid="RegistryLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]),
            iam.PolicyStatement(sid="PullImages", resources=[repositories], actions=[
                "ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]),
            iam.PolicyStatement(sid="JobLogs", actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                                resources=[batch_logs]),
        ])
        acknowledge_resources(execution_policy, {
            "*": "ecr:GetAuthorizationToken supports no resource-level permissions (registry login).",
            repositories: "Jobs pull images from this account's ECR repositories, whose names the teams choose.",
            batch_logs: "AWS Batch writes every job's output to streams of the /aws/batch/job log group.",
        })

        self.service_role = iam.Role(
            self, "ServiceRole", assumed_by=iam.ServicePrincipal("batch.amazonaws.com"),
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AWSBatchServiceRole")],
            description=f"dsstack {environment}/{team}: AWS Batch manages the team's instances",
        )
        acknowledge(cfn_resource(self.service_role), _managed("service-role/AWSBatchServiceRole"),
                    "AWSBatchServiceRole is the AWS-maintained policy Batch needs to manage EC2/ECS for the "
                    "compute environments; AWS updates it as Batch adds features.")
        self.instance_role = iam.Role(
            self, "InstanceRole", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(
                "service-role/AmazonEC2ContainerServiceforEC2Role")],
            description=f"dsstack {environment}/{team}: ECS agent on Batch instances (no data access)",
        )
        acknowledge(cfn_resource(self.instance_role),
                    _managed("service-role/AmazonEC2ContainerServiceforEC2Role"),
                    "AmazonEC2ContainerServiceforEC2Role is the AWS-maintained policy the ECS agent on Batch "
                    "instances needs; jobs get data access from the job role only.")

        # ------------------------------------------------------------------------- launch template
        self.launch_template = ec2.LaunchTemplate(
            self, "LaunchTemplate",
            require_imdsv2=True,
            # Hop limit 1: containers cannot reach instance metadata, so jobs never see the instance
            # role's credentials, only their job role's.
            http_put_response_hop_limit=1,
            block_devices=[ec2.BlockDevice(
                device_name=ROOT_DEVICE,
                volume=ec2.BlockDeviceVolume.ebs(settings.root_volume_gb, encrypted=True, kms_key=key,
                                                 volume_type=ec2.EbsDeviceVolumeType.GP3,
                                                 delete_on_termination=True),
            )],
        )
        # EC2 encrypts the root volume with the team key on behalf of the service-linked roles that launch
        # Batch instances (Auto Scaling, EC2 Fleet/Spot). They cannot be given IAM policies and need not
        # exist yet when the key policy is written, so they are matched by path, only through EC2.
        key.add_to_resource_policy(iam.PolicyStatement(
            sid=f"BatchInstanceVolumes{_pascal(team)}",
            principals=[iam.AnyPrincipal()],
            actions=["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey",
                     "kms:CreateGrant"],
            resources=["*"],  # in a key policy "*" means this key
            conditions={
                "StringEquals": {"aws:PrincipalAccount": account, "kms:ViaService": f"ec2.{region}.amazonaws.com"},
                "ArnLike": {"aws:PrincipalArn": f"arn:{partition}:iam::{account}:role/aws-service-role/*"},
            },
        ))

        # ---------------------------------------------------------------------- compute environments
        self.compute_environments: dict[str, batch.IComputeEnvironment] = {}
        common: _EnvironmentCommon = {"vpc": vpc, "vpc_subnets": subnets, "security_groups": [self.security_group],
                                      "service_role": self.service_role}

        def ec2_environment(name: str, *, gpu: bool, spot: bool, min_vcpus: int, max_vcpus: int,
                            instance_types: tuple[str, ...]) -> batch.ManagedEc2EcsComputeEnvironment:
            image = batch.EcsMachineImageType.ECS_AL2023_NVIDIA if gpu else batch.EcsMachineImageType.ECS_AL2023
            environment_ = batch.ManagedEc2EcsComputeEnvironment(
                self, f"{_pascal(name)}Environment",
                minv_cpus=min_vcpus, maxv_cpus=max_vcpus, spot=spot,
                allocation_strategy=(batch.AllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED if spot
                                     else batch.AllocationStrategy.BEST_FIT_PROGRESSIVE),
                use_optimal_instance_classes=False,
                # Satisfies CDK's check that some class is set; replaced by the override below.
                instance_types=[ec2.InstanceType("m7i.large")],
                images=[batch.EcsMachineImage(image_type=image)],
                launch_template=self.launch_template,
                instance_role=self.instance_role,
                update_to_latest_image_version=True,
                **common,
            )
            # CloudFormation takes families ('m7i') and types ('m7i.2xlarge') in one list; CDK's InstanceType
            # accepts only full types and its InstanceClass enum lags new families, so set the list directly.
            cfn_resource(environment_).add_property_override("ComputeResources.InstanceTypes", list(instance_types))
            self.compute_environments[name] = environment_
            return environment_

        if settings.cpu_spot.enabled:
            ec2_environment("cpu-spot", gpu=False, spot=True, min_vcpus=settings.cpu_spot.min_vcpus,
                            max_vcpus=settings.cpu_spot.max_vcpus,
                            instance_types=settings.cpu_spot.resolved_instance_types())
        if settings.cpu.enabled:
            ec2_environment("cpu", gpu=False, spot=False, min_vcpus=settings.cpu.min_vcpus,
                            max_vcpus=settings.cpu.max_vcpus, instance_types=settings.cpu.resolved_instance_types())
        if settings.gpu.enabled:
            ec2_environment("gpu", gpu=True, spot=False, min_vcpus=settings.gpu.min_vcpus,
                            max_vcpus=settings.gpu.max_vcpus, instance_types=settings.gpu.resolved_instance_types())
        if settings.fargate.enabled:
            self.compute_environments["fargate"] = batch.FargateComputeEnvironment(
                self, "FargateEnvironment", maxv_cpus=settings.fargate.max_vcpus, **common)
        for extra in settings.extra_queues:
            ec2_environment(extra.name, gpu=extra.kind == "gpu", spot=extra.kind == "spot",
                            min_vcpus=extra.min_vcpus, max_vcpus=extra.max_vcpus, instance_types=extra.instance_types)

        for environment_ in self.compute_environments.values():
            # CDK writes `managed`; the documented CloudFormation value is MANAGED (moto accepts only that).
            cfn_resource(environment_).add_property_override("Type", "MANAGED")

        # ------------------------------------------------------------------------------ job queues
        # cpu: Spot first (up to ~90% cheaper), on-demand when Spot has no capacity or is disabled.
        queue_environments: dict[str, list[str]] = {
            "cpu": [n for n in ("cpu-spot", "cpu") if n in self.compute_environments]}
        if "gpu" in self.compute_environments:
            queue_environments["gpu"] = ["gpu"]
        if "fargate" in self.compute_environments:
            queue_environments["fargate"] = ["fargate"]
        for extra in settings.extra_queues:
            queue_environments[extra.name] = [extra.name]

        # Jobs that can never start (asking more than any instance has) are cancelled after 10 minutes;
        # jobs waiting for capacity after runnable_timeout_minutes, so nothing sits RUNNABLE unnoticed.
        limits = [
            batch.JobStateTimeLimitAction(
                max_time=cdk.Duration.minutes(settings.runnable_timeout_minutes),
                reason=batch.JobStateTimeLimitActionsReason.INSUFFICIENT_INSTANCE_CAPACITY,
                action=batch.JobStateTimeLimitActionsAction.CANCEL, state=batch.JobStateTimeLimitActionsState.RUNNABLE),
            *(batch.JobStateTimeLimitAction(
                max_time=cdk.Duration.minutes(10), reason=reason,
                action=batch.JobStateTimeLimitActionsAction.CANCEL, state=batch.JobStateTimeLimitActionsState.RUNNABLE)
              for reason in (batch.JobStateTimeLimitActionsReason.COMPUTE_ENVIRONMENT_MAX_RESOURCE,
                             batch.JobStateTimeLimitActionsReason.JOB_RESOURCE_REQUIREMENT)),
        ]
        self.job_queues: dict[str, batch.JobQueue] = {}
        for queue, environments in queue_environments.items():
            self.job_queues[queue] = batch.JobQueue(
                self, f"{_pascal(queue)}Queue",
                job_queue_name=job_queue_name(environment, team, queue),
                compute_environments=[batch.OrderedComputeEnvironment(
                    compute_environment=self.compute_environments[name], order=order + 1)
                    for order, name in enumerate(environments)],
                job_state_time_limit_actions=limits,
            )

    def _grant_team_data(self, role: iam.Role, *, bucket_arn_export: str, key: kms.IKey,
                         state_table: dynamodb.ITable, catalog_table: dynamodb.ITable) -> None:
        """The job role's data access: the team's prefixes, tables and key, with explicit actions only."""
        region = cdk.Aws.REGION
        # A named export renders the same in the template and in cdk-nag's finding ids, so each prefix
        # wildcard can be acknowledged by its exact finding.
        bucket_arn = cdk.Fn.import_value(bucket_arn_export)
        objects = {prefix: f"{bucket_arn}/{prefix}/*" for prefix in JOB_PREFIXES}
        policy = role_policy(role, [
            iam.PolicyStatement(sid="TeamPrefixesReadWrite",
                                actions=["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
                                resources=list(objects.values())),
            iam.PolicyStatement(sid="TeamPrefixesList", actions=["s3:ListBucket"], resources=[bucket_arn],
                                conditions={"StringLike": {"s3:prefix": [
                                    p for prefix in JOB_PREFIXES for p in (prefix, f"{prefix}/*")]}}),
            # Metaflow steps on Step Functions record foreach cardinality and join parents here.
            iam.PolicyStatement(sid="StepFunctionsStateTable",
                                actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                                resources=[state_table.table_arn]),
            # Flows may look up registered model versions; writing the catalog is the versioning glue's job.
            iam.PolicyStatement(sid="CatalogRead", actions=["dynamodb:GetItem", "dynamodb:Query"],
                                resources=[catalog_table.table_arn]),
            iam.PolicyStatement(sid="TeamKeyViaS3AndDynamoDB", actions=["kms:Decrypt", "kms:GenerateDataKey"],
                                resources=[key.key_arn],
                                conditions={"StringEquals": {"kms:ViaService": [
                                    f"s3.{region}.amazonaws.com", f"dynamodb.{region}.amazonaws.com"]}}),
        ])
        acknowledge_resources(policy, {
            f"{bucket_arn_export}/{prefix}/*": f"Metaflow and flows write objects with generated keys under the "
            f"team bucket's {prefix}/ prefix; the statement names only that prefix of that bucket."
            for prefix in JOB_PREFIXES})


def role_policy(role: iam.Role, statements: list[iam.PolicyStatement]) -> iam.ManagedPolicy:
    """A customer-managed policy for exactly one role (cdk-nag flags inline policies)."""
    return iam.ManagedPolicy(role, "Policy", statements=statements, roles=[role])


def acknowledge_resources(policy: iam.ManagedPolicy, reasons: dict[str, str]) -> None:
    """Acknowledge AwsSolutions-IAM5 for each wildcard resource (cdk-nag 3 reports each one separately)."""
    for resource, reason in reasons.items():
        acknowledge(cfn_resource(policy), f"AwsSolutions-IAM5[Resource::{_nag_arn(resource)}]", reason)


def _managed(policy: str) -> str:
    return f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{policy}]"


def _nag_arn(resource: str) -> str:
    """How cdk-nag prints pseudo parameters inside a resource: arn:<AWS::Partition>:..."""
    for token, name in ((cdk.Aws.PARTITION, "AWS::Partition"), (cdk.Aws.REGION, "AWS::Region"),
                        (cdk.Aws.ACCOUNT_ID, "AWS::AccountId")):
        resource = resource.replace(token, f"<{name}>")
    return resource


def _ecs_tasks(account: str, region: str, partition: str) -> iam.IPrincipal:
    """ECS tasks of this account only (confused-deputy protection)."""
    return iam.ServicePrincipal("ecs-tasks.amazonaws.com", conditions={
        "StringEquals": {"aws:SourceAccount": account},
        "ArnLike": {"aws:SourceArn": f"arn:{partition}:ecs:{region}:{account}:*"},
    })


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))

