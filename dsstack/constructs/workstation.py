"""Cloud workstations: the team's data-scientist role and one EC2 instance per data scientist.

A workstation is reached only through SSM Session Manager (port forwarding to JupyterLab on
localhost:8888); its security group has no inbound rule and it has no key pair. The user's home lives
on its own encrypted EBS volume (RETAIN) so replacing the instance never touches the user's work:
- an instance-type change is an in-place stop/modify/start (AWS::EC2::Instance InstanceType updates
  with interruption, no replacement);
- the AMI is resolved by EC2 at launch (`resolve:ssm:` image id), so a new Amazon Linux release never
  changes the template and never replaces a running workstation; AL2023 updates in place with dnf.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from dsstack import naming
from dsstack.config import WorkstationConfig
from dsstack.constructs.cfn import cfn_resource
from dsstack.nag import acknowledge, acknowledge_all

BOOT_SCRIPT = Path(__file__).with_name("workstation_boot.sh")
TAG_USER = "dsstack:workstation-user"
JUPYTER_PORT = 8888
# Same Metaflow as the platform's tests use; JupyterLab pinned so every workstation is the same.
METAFLOW_VERSION = "2.19.39"
JUPYTERLAB_VERSION = "4.6.6"
# Files on the home volume keep their owner across instances only with a fixed uid.
WORKSTATION_UID = 2000
HOME_DEVICE = "/dev/sdf"
PORT_FORWARD_DOCUMENT = "AWS-StartPortForwardingSession"

AL2023_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{arch}"
GPU_AMI_PARAMETER = {
    "x86_64": "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id",
    "arm64": "/aws/service/deeplearning/ami/arm64/arm64-base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id",
}


def ami_parameter(settings: WorkstationConfig) -> str:
    """The public SSM parameter naming the Amazon Linux 2023 image for this workstation."""
    arch = "arm64" if settings.arm64 else "x86_64"
    return GPU_AMI_PARAMETER[arch] if settings.gpu else AL2023_PARAMETER.format(arch=arch)


def render_boot_script(*, user: str, region: str, home_volume_id: str, metaflow_config_parameter: str,
                       extra_packages: Sequence[str]) -> str:
    """The boot script with the team's values, every value shell-quoted (tokens resolve inside quotes)."""
    values = {
        "USER": user,
        "UID": str(WORKSTATION_UID),
        "REGION": region,
        "HOME_VOLUME_ID": home_volume_id,
        "METAFLOW_CONFIG_PARAMETER": metaflow_config_parameter,
        "METAFLOW_VERSION": METAFLOW_VERSION,
        "JUPYTERLAB_VERSION": JUPYTERLAB_VERSION,
    }
    text = BOOT_SCRIPT.read_text()
    for key, value in values.items():
        text = text.replace(f"@@{key}@@", shlex.quote(value))
    text = text.replace("@@EXTRA_PACKAGES@@", " ".join(shlex.quote(p) for p in extra_packages))
    if "@@" in text:
        raise ValueError(f"{BOOT_SCRIPT.name}: unrendered placeholder left: {text[text.index('@@'):][:40]!r}")
    return text


# cloud-init runs user-data scripts once per instance by default; `always` reruns the (idempotent)
# script on every boot, so a changed config reaches an existing workstation at its next start.
CLOUD_CONFIG = "#cloud-config\ncloud_final_modules:\n- [scripts-user, always]\n"


def user_data(script: str) -> ec2.UserData:
    multipart = ec2.MultipartUserData()
    multipart.add_part(ec2.MultipartBody.from_raw_body(content_type='text/cloud-config; charset="utf8"',
                                                       body=CLOUD_CONFIG))
    multipart.add_user_data_part(ec2.UserData.custom(script), ec2.MultipartBody.SHELL_SCRIPT, True)
    return multipart


class DataScientistRole(Construct):
    """What a data scientist of one team may do, and nothing of any other team.

    Used as the workstations' instance role. Every resource is the team's own: its bucket and key, its
    Batch queues (exact ARNs), its state machines and EventBridge rules (the team's name prefix), its SSM
    parameters (/dsstack/<env>/<team>/*) and its SageMaker endpoints (the team's name prefix).
    """

    def __init__(self, scope: Construct, construct_id: str, *, environment: str, team: str, key: kms.IKey,
                 job_queue_arns: Sequence[str], passable_role_arns: Sequence[str]) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        # The bucket name comes from the team's published coordinate (resolved by CloudFormation at deploy),
        # not a cross-stack export: the ARN stays readable in review and in cdk-nag's findings.
        bucket_name = cdk.CfnParameter(
            stack, "TeamBucketName", type="AWS::SSM::Parameter::Value<String>",
            default=naming.ssm_parameter_name(environment, team, "bucket-name"),
            description="SSM parameter holding the team's datastore bucket name (published by the data stack)",
        ).value_as_string
        bucket_arn = f"arn:{cdk.Aws.PARTITION}:s3:::{bucket_name}"
        region = "<AWS::Region>" if cdk.Token.is_unresolved(stack.region) else stack.region
        ssm_path = naming.ssm_prefix(environment, team).lstrip("/")
        prefix = naming.resource_prefix(environment, team)
        machine_prefix = naming.state_machine_name_prefix(environment, team)
        self.role = iam.Role(
            self, "Role",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description=f"dsstack {environment}/{team}: data scientist (workstations)",
        )
        arn = stack.format_arn
        statements = [
            # The datastore: Metaflow artifacts, datatools, registered models.
            iam.PolicyStatement(sid="TeamBucketList", actions=["s3:ListBucket", "s3:GetBucketLocation"],
                                resources=[bucket_arn]),
            iam.PolicyStatement(sid="TeamBucketObjects",
                                actions=["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject",
                                         "s3:AbortMultipartUpload"],
                                resources=[f"{bucket_arn}/*"]),
            iam.PolicyStatement(sid="TeamKey", actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey",
                                                        "kms:DescribeKey"],
                                resources=[key.key_arn]),
            # The team's coordinates and Metaflow config (the path itself is needed for GetParametersByPath).
            iam.PolicyStatement(sid="TeamParameters",
                                actions=["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
                                resources=[arn(service="ssm", resource="parameter",
                                               resource_name=ssm_path),
                                           arn(service="ssm", resource="parameter",
                                               resource_name=f"{ssm_path}/*")]),
            # Step Functions: Metaflow `step-functions create/trigger` under the team's prefix.
            iam.PolicyStatement(sid="TeamStateMachines",
                                actions=["states:CreateStateMachine", "states:UpdateStateMachine",
                                         "states:DeleteStateMachine", "states:DescribeStateMachine",
                                         "states:StartExecution", "states:ListExecutions", "states:TagResource"],
                                resources=[arn(service="states", resource="stateMachine",
                                               resource_name=f"{machine_prefix}*",
                                               arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)]),
            iam.PolicyStatement(sid="TeamExecutions",
                                actions=["states:DescribeExecution", "states:StopExecution",
                                         "states:GetExecutionHistory"],
                                resources=[arn(service="states", resource="execution",
                                               resource_name=f"{machine_prefix}*:*",
                                               arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)]),
            # Schedules of those state machines (Metaflow names the rule after the state machine).
            iam.PolicyStatement(sid="TeamSchedules",
                                actions=["events:PutRule", "events:DeleteRule", "events:DescribeRule",
                                         "events:PutTargets", "events:RemoveTargets"],
                                resources=[arn(service="events", resource="rule", resource_name=f"{machine_prefix}*")]),
            # Endpoints of the team (hosting names them with the team's prefix).
            iam.PolicyStatement(sid="TeamEndpoints", actions=["sagemaker:InvokeEndpoint"],
                                resources=[arn(service="sagemaker", resource="endpoint", resource_name=f"{prefix}-*")]),
            # Batch job definitions carry no team data; Metaflow registers `metaflow_<hash>` ones. Which
            # role a job runs with is limited by iam:PassRole below, where it may run by the queues.
            iam.PolicyStatement(sid="MetaflowJobDefinitions",
                                actions=["batch:RegisterJobDefinition", "batch:SubmitJob"],
                                resources=[arn(service="batch", resource="job-definition",
                                               resource_name="metaflow_*")]),
            # Read-only Batch and Step Functions calls that take no resource ARN.
            iam.PolicyStatement(sid="DescribeWithoutResource",
                                actions=["batch:DescribeJobs", "batch:DescribeJobQueues", "batch:DescribeJobDefinitions",
                                         "batch:ListJobs", "states:ListStateMachines"],
                                resources=["*"]),
            # SSM agent (Session Manager). These APIs have no resource-level permissions.
            iam.PolicyStatement(sid="SessionManagerAgent",
                                actions=["ssm:UpdateInstanceInformation", "ssmmessages:CreateControlChannel",
                                         "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel",
                                         "ssmmessages:OpenDataChannel", "ec2messages:AcknowledgeMessage",
                                         "ec2messages:DeleteMessage", "ec2messages:FailMessage",
                                         "ec2messages:GetEndpoint", "ec2messages:GetMessages", "ec2messages:SendReply"],
                                resources=["*"]),
        ]
        if job_queue_arns:
            # Exact queue ARNs of the team's compute stack. (Terminating jobs is left out: Batch jobs carry
            # no team tag, so TerminateJob could not be limited to the team's own jobs.)
            statements.append(iam.PolicyStatement(sid="TeamQueues", actions=["batch:SubmitJob"],
                                                  resources=list(job_queue_arns)))
        if passable_role_arns:
            # Batch job role, Step Functions role and EventBridge role of the team's compute stack.
            statements.append(iam.PolicyStatement(
                sid="PassTeamRoles", actions=["iam:PassRole"], resources=list(passable_role_arns),
                conditions={"StringEquals": {"iam:PassedToService": [
                    "batch.amazonaws.com", "ecs-tasks.amazonaws.com", "states.amazonaws.com",
                    "events.amazonaws.com"]}}))
        self.policy = iam.ManagedPolicy(self, "Policy", statements=statements, roles=[self.role],
                                        description=f"dsstack {environment}/{team}: data scientist permissions")
        # cdk-nag reports each wildcard separately; each is acknowledged by name so a new one fails review.
        scoped = "is scoped to this team's own name prefix or path; nothing of another team matches it."
        arn_of = f"arn:<AWS::Partition>:{{}}:{region}:<AWS::AccountId>:{{}}"
        acknowledge_all(cfn_resource(self.policy), {
            "AwsSolutions-IAM5[Resource::*]": "Only the SSM agent's channels and Describe/List calls, which support "
            "no resource-level permissions, use Resource '*'.",
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::<TeamBucketName>/*]":
                "Objects of the team's own datastore bucket (Metaflow artifacts, data, models).",
            f"AwsSolutions-IAM5[Resource::{arn_of.format('ssm', f'parameter/{ssm_path}/*')}]": f"The SSM path {scoped}",
            f"AwsSolutions-IAM5[Resource::{arn_of.format('states', f'stateMachine:{machine_prefix}*')}]":
                f"Metaflow names state machines after flows; the prefix {scoped}",
            f"AwsSolutions-IAM5[Resource::{arn_of.format('states', f'execution:{machine_prefix}*:*')}]":
                f"Executions of the team's state machines: the prefix {scoped}",
            f"AwsSolutions-IAM5[Resource::{arn_of.format('events', f'rule/{machine_prefix}*')}]":
                f"Metaflow schedules are rules named after the state machine; the prefix {scoped}",
            f"AwsSolutions-IAM5[Resource::{arn_of.format('sagemaker', f'endpoint/{prefix}-*')}]":
                f"Endpoints the hosting layer creates for the team; the prefix {scoped}",
            f"AwsSolutions-IAM5[Resource::{arn_of.format('batch', 'job-definition/metaflow_*')}]":
                "Metaflow registers job definitions named metaflow_<hash>; which role a job gets is limited by "
                "iam:PassRole (team roles only) and where it runs by the team's queue ARNs.",
        })


class Workstation(Construct):
    """One data scientist's EC2 workstation, home volume, idle auto-stop and access policy."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: WorkstationConfig, environment: str,
                 team: str, vpc: ec2.IVpc, subnets: ec2.SubnetSelection, key: kms.IKey, role: iam.IRole) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        user = settings.user
        # Always the first subnet of the egress mode: its AZ is the home volume's AZ, which can never
        # change (an EBS volume cannot move between AZs), also when more AZs are added later.
        subnet = vpc.select_subnets(
            subnet_type=subnets.subnet_type).subnets[0]

        self.security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=vpc, allow_all_outbound=False,
            description=f"dsstack workstation {team}/{user}: no inbound (SSM only), HTTPS out",
        )
        # HTTPS reaches AWS APIs (SSM, S3, Batch...) and package indexes; DNS/NTP are link-local.
        self.security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to AWS APIs and PyPI")

        # Stateful: the user's work. Construct id pinned by tests (logical ID = CloudFormation identity).
        self.home_volume = ec2.CfnVolume(
            self, "HomeVolume",
            availability_zone=subnet.availability_zone,
            size=settings.home_volume_gb,
            volume_type="gp3",
            encrypted=True,
            kms_key_id=key.key_arn,
            tags=[cdk.CfnTag(key=TAG_USER, value=user),
                  cdk.CfnTag(key="Name", value=f"{environment}-{team}-{user}-home")],
        )
        self.home_volume.apply_removal_policy(cdk.RemovalPolicy.RETAIN)

        script = render_boot_script(
            user=user, region=stack.region, home_volume_id=self.home_volume.ref,
            metaflow_config_parameter=naming.ssm_parameter_name(environment, team, "metaflow/config"),
            extra_packages=settings.extra_packages,
        )
        self.instance = ec2.Instance(
            self, "Instance",
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnets=[subnet]),
            instance_type=ec2.InstanceType(settings.instance_type),
            machine_image=ec2.MachineImage.resolve_ssm_parameter_at_launch(
                ami_parameter(settings),
                os=ec2.OperatingSystemType.LINUX),
            role=role,
            security_group=self.security_group,
            user_data=user_data(script),
            # A changed boot script is applied at the next boot (cloud-init `always`), never by
            # replacing the instance.
            user_data_causes_replacement=False,
            # IMDSv2 on the instance itself (MetadataOptions): `require_imdsv2` would add a launch template
            # with a fixed name that collides between workstations.
            http_tokens=ec2.HttpTokens.REQUIRED,
            http_endpoint=True,
            detailed_monitoring=True,
            instance_name=f"{environment}-{team}-{user}",
            propagate_tags_to_volume_on_creation=True,
            block_devices=[ec2.BlockDevice(
                device_name="/dev/xvda",
                volume=ec2.BlockDeviceVolume.ebs(settings.root_volume_gb, encrypted=True, kms_key=key,
                                                 volume_type=ec2.EbsDeviceVolumeType.GP3,
                                                 delete_on_termination=True),
            )],
        )
        cdk.Tags.of(self.instance).add(TAG_USER, user)
        self.attachment = ec2.CfnVolumeAttachment(
            self, "HomeVolumeAttachment", instance_id=self.instance.instance_id,
            volume_id=self.home_volume.ref, device=HOME_DEVICE)

        self.instance_arn = stack.format_arn(service="ec2", resource="instance",
                                             resource_name=self.instance.instance_id)
        cfn_instance = cfn_resource(self.instance)
        # EC2 resolves `resolve:ssm:<public AMI parameter>` at launch; cfn-lint and CDK's template check only
        # know literal ami- ids. Narrow: this one property check, on this one resource.
        cfn_instance.add_metadata("cfn-lint", {"config": {"ignore_checks": ["E1152"]}})
        cdk.Validations.of(cfn_instance).acknowledge(cdk.Acknowledgment(
            id="CloudFormation-Validate::E1152",
            reason="ImageId is an SSM parameter EC2 resolves at launch (resolve:ssm:), not a literal ami- id."))
        acknowledge(cfn_instance, "AwsSolutions-EC29",
                    "The workstation keeps nothing durable on the instance (the home volume is separate and "
                    "RETAIN); termination protection would block removing a user from the config.")
        acknowledge_all(self.home_volume, {
            f"{pack}-EC2EBSInBackupPlan": "The home volume is RETAIN and encrypted; backups (AWS Backup or DLM "
            "snapshots) are a cost the config does not ask for yet." for pack in ("NIST.800.53.R5", "HIPAA.Security")
        })
        # Auto-stop: CPU below the threshold for idle_minutes consecutive minutes (1-minute data from
        # detailed monitoring). A stopped instance sends no data: notBreaching keeps it out of ALARM.
        self.idle_alarm = cloudwatch.Alarm(
            self, "IdleAlarm",
            alarm_description=f"Stops workstation {team}/{user} after {settings.idle_minutes} idle minutes",
            metric=cloudwatch.Metric(namespace="AWS/EC2", metric_name="CPUUtilization",
                                     dimensions_map={"InstanceId": self.instance.instance_id},
                                     statistic="Average", period=cdk.Duration.minutes(1)),
            threshold=settings.idle_cpu_percent,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=settings.idle_minutes,
            datapoints_to_alarm=settings.idle_minutes,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.idle_alarm.add_alarm_action(cw_actions.Ec2Action(cw_actions.Ec2InstanceAction.STOP))

        self.access_policy = self._access_policy(environment=environment, team=team, user=user, key=key)

    def _access_policy(self, *, environment: str, team: str, user: str, key: kms.IKey) -> iam.ManagedPolicy:
        """For the identity setup (SSO permission set, IAM group): this user's workstation and nothing else."""
        stack = cdk.Stack.of(self)
        on_this_instance = {"StringEquals": {f"aws:ResourceTag/{TAG_USER}": user,
                                             f"aws:ResourceTag/{naming.TAG_TEAM}": team}}
        policy = iam.ManagedPolicy(
            self, "AccessPolicy",
            description=f"dsstack {environment}/{team}: connect to, start and stop {user}'s workstation",
            statements=[
                iam.PolicyStatement(
                    sid="SessionToThisWorkstation", actions=["ssm:StartSession"], resources=[self.instance_arn],
                    conditions={"StringEquals": {f"ssm:resourceTag/{TAG_USER}": user,
                                                 f"ssm:resourceTag/{naming.TAG_TEAM}": team}}),
                iam.PolicyStatement(
                    sid="PortForwardingDocument", actions=["ssm:StartSession"],
                    resources=[stack.format_arn(service="ssm", account="", resource="document",
                                                resource_name=PORT_FORWARD_DOCUMENT)]),
                iam.PolicyStatement(
                    sid="OwnSessions", actions=["ssm:TerminateSession", "ssm:ResumeSession"],
                    resources=[stack.format_arn(service="ssm", resource="session",
                                                resource_name="${aws:userid}-*")]),
                iam.PolicyStatement(
                    sid="StartStopThisWorkstation", actions=["ec2:StartInstances", "ec2:StopInstances"],
                    resources=[self.instance_arn], conditions=on_this_instance),
                # Starting an instance whose volumes use the team key makes EC2 create a grant on it.
                iam.PolicyStatement(
                    sid="TeamKeyForEc2", actions=["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey"],
                    resources=[key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": f"ec2.{stack.region}.amazonaws.com"}}),
                # Finding the instance and waiting for SSM: these APIs take no resource ARN.
                iam.PolicyStatement(
                    sid="FindWorkstation",
                    actions=["ec2:DescribeInstances", "ec2:DescribeInstanceStatus",
                             "ssm:DescribeInstanceInformation", "ssm:GetConnectionStatus", "ssm:DescribeSessions"],
                    resources=["*"]),
            ],
        )
        region = "<AWS::Region>" if cdk.Token.is_unresolved(stack.region) else stack.region
        acknowledge_all(cfn_resource(policy), {
            "AwsSolutions-IAM5[Resource::*]": "Only Describe*/GetConnectionStatus calls, which support no "
            "resource-level permissions, use Resource '*'; start/stop/session name this one instance.",
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:{region}:<AWS::AccountId>:session/<aws:userid>-*]":
                "Session Manager names sessions after the caller's user id: the caller may end/resume only its own.",
        })
        return policy
