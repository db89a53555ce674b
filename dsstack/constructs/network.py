"""The shared VPC of an environment, its endpoints, flow logs, and the shared access-log bucket."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from dsstack.config import NetworkConfig
from dsstack.constructs.cfn import cfn_resource
from dsstack.nag import acknowledge, acknowledge_all

# Interface endpoints a fully private VPC needs for Batch/ECS on EC2 and Fargate (agent, ECR image
# pulls, logs), SSM Session Manager (workstations), STS (role credentials), Step Functions and
# SageMaker runtime (invoking endpoints from workstations).
PRIVATE_INTERFACE_ENDPOINTS: dict[str, ec2.InterfaceVpcEndpointAwsService] = {
    "Batch": ec2.InterfaceVpcEndpointAwsService.BATCH,
    "Ecs": ec2.InterfaceVpcEndpointAwsService.ECS,
    "EcsAgent": ec2.InterfaceVpcEndpointAwsService.ECS_AGENT,
    "EcsTelemetry": ec2.InterfaceVpcEndpointAwsService.ECS_TELEMETRY,
    "EcrApi": ec2.InterfaceVpcEndpointAwsService.ECR,
    "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "Monitoring": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
    "Ssm": ec2.InterfaceVpcEndpointAwsService.SSM,
    "SsmMessages": ec2.InterfaceVpcEndpointAwsService.SSM_MESSAGES,
    "Ec2Messages": ec2.InterfaceVpcEndpointAwsService.EC2_MESSAGES,
    "Sts": ec2.InterfaceVpcEndpointAwsService.STS,
    "StepFunctions": ec2.InterfaceVpcEndpointAwsService.STEP_FUNCTIONS,
    "SageMakerRuntime": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_RUNTIME,
    "Kms": ec2.InterfaceVpcEndpointAwsService.KMS,
}

FLOW_LOG_PREFIX = "vpc-flow-logs"


class AccessLogBucket(Construct):
    """Receives S3 server access logs of every team bucket and the VPC flow logs.

    S3 server access logging cannot deliver to SSE-KMS buckets, so this bucket uses SSE-S3.
    """

    def __init__(self, scope: Construct, construct_id: str, *, removal_policy: cdk.RemovalPolicy,
                 noncurrent_days: int = 30) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self, "Bucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=removal_policy,
            lifecycle_rules=[
                s3.LifecycleRule(id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=cdk.Duration.days(7)),
                s3.LifecycleRule(id="expire-noncurrent", noncurrent_version_expiration=cdk.Duration.days(noncurrent_days)),
                s3.LifecycleRule(
                    id="archive-logs",
                    transitions=[s3.Transition(storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                                               transition_after=cdk.Duration.days(30))],
                    expiration=cdk.Duration.days(365),
                ),
            ],
        )
        # Team buckets live in other stacks; granting by source account (not by each bucket ARN)
        # keeps this stack free of references to them (no cross-stack cycle).
        self.bucket.add_to_resource_policy(iam.PolicyStatement(
            sid="S3ServerAccessLogsDelivery",
            principals=[iam.ServicePrincipal("logging.s3.amazonaws.com")],
            actions=["s3:PutObject"],
            resources=[self.bucket.arn_for_objects("s3-access-logs/*")],
            conditions={"StringEquals": {"aws:SourceAccount": cdk.Aws.ACCOUNT_ID}},
        ))
        resource = cfn_resource(self.bucket)
        acknowledge_all(resource, {
            "AwsSolutions-S1": "This is the access-log bucket itself; logging it into itself would loop.",
            "NIST.800.53.R5-S3BucketLoggingEnabled": "This is the access-log bucket itself; logging it into itself would loop.",
            "HIPAA.Security-S3BucketLoggingEnabled": "This is the access-log bucket itself; logging it into itself would loop.",
            "NIST.800.53.R5-S3DefaultEncryptionKMS": "S3 server access logging only delivers to SSE-S3 buckets, not SSE-KMS.",
            "HIPAA.Security-S3DefaultEncryptionKMS": "S3 server access logging only delivers to SSE-S3 buckets, not SSE-KMS.",
            "NIST.800.53.R5-S3BucketReplicationEnabled": "Access logs are operational data kept 365 days; cross-region replication would double their cost.",
            "HIPAA.Security-S3BucketReplicationEnabled": "Access logs are operational data kept 365 days; cross-region replication would double their cost.",
        })


class Network(Construct):
    """VPC across 2+ AZs whose subnets follow the configured egress mode."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: NetworkConfig,
                 flow_log_bucket: s3.IBucket) -> None:
        super().__init__(scope, construct_id)
        self.egress = settings.egress
        subnets: list[ec2.SubnetConfiguration] = []
        if settings.egress in ("public", "nat"):
            subnets.append(ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=20,
                                                   map_public_ip_on_launch=settings.egress == "public"))
        if settings.egress == "nat":
            subnets.append(ec2.SubnetConfiguration(name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS,
                                                   cidr_mask=20))
        if settings.egress == "private":
            subnets.append(ec2.SubnetConfiguration(name="isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED,
                                                   cidr_mask=20))
        self.vpc = ec2.Vpc(
            self, "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(settings.cidr),
            max_azs=settings.max_azs,
            nat_gateways=1 if settings.egress == "nat" else 0,
            subnet_configuration=subnets,
            # CDK would restrict the default SG through a custom-resource Lambda; nothing uses the
            # default SG (every dsstack resource gets its own SG without inbound rules).
            restrict_default_security_group=False,
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
                "DynamoDB": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.DYNAMODB),
            },
        )
        self.flow_log = self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_s3(flow_log_bucket, f"{FLOW_LOG_PREFIX}/"),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )
        acknowledge(cfn_resource(self.vpc), "NIST.800.53.R5-VPCDefaultSecurityGroupClosed",
                    "Closing the default SG needs a custom-resource Lambda; no dsstack resource uses the default SG.")
        acknowledge(cfn_resource(self.vpc), "HIPAA.Security-VPCDefaultSecurityGroupClosed",
                    "Closing the default SG needs a custom-resource Lambda; no dsstack resource uses the default SG.")

        for subnet in self.vpc.public_subnets:
            route = subnet.node.find_child("DefaultRoute")
            for pack in ("NIST.800.53.R5", "HIPAA.Security"):
                acknowledge(route, f"{pack}-VPCNoUnrestrictedRouteToIGW",
                            f"egress: {settings.egress}: public subnets route to the internet gateway by design; "
                            "no security group dsstack creates has an inbound rule from outside the VPC.")
                if settings.egress == "public":
                    acknowledge(cfn_resource(subnet), f"{pack}-VPCSubnetAutoAssignPublicIpDisabled",
                                "egress: public is the $0-idle mode: instances need a public IP to reach AWS APIs "
                                "without a NAT gateway; their security groups have no inbound rules.")

        self.endpoint_security_group: ec2.SecurityGroup | None = None
        if settings.egress == "private":
            self.endpoint_security_group = ec2.SecurityGroup(
                self, "EndpointSecurityGroup", vpc=self.vpc, allow_all_outbound=False,
                description="Interface endpoints: HTTPS from inside the VPC only",
            )
            self.endpoint_security_group.add_ingress_rule(ec2.Peer.ipv4(settings.cidr), ec2.Port.tcp(443),
                                                          "HTTPS from the VPC")
            for name, service in PRIVATE_INTERFACE_ENDPOINTS.items():
                self.vpc.add_interface_endpoint(
                    f"{name}Endpoint", service=service, private_dns_enabled=True, open=False,
                    security_groups=[self.endpoint_security_group],
                    subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
                )

    @property
    def workload_subnets(self) -> ec2.SubnetSelection:
        """Subnets for Batch instances, tasks, workstations and endpoints in this egress mode."""
        kind = {
            "public": ec2.SubnetType.PUBLIC,
            "nat": ec2.SubnetType.PRIVATE_WITH_EGRESS,
            "private": ec2.SubnetType.PRIVATE_ISOLATED,
        }[self.egress]
        return ec2.SubnetSelection(subnet_type=kind)
