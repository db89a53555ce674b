"""An ECS Fargate service for one model behind an Application Load Balancer.

Internal by default (reachable from the VPC: workstations, Batch jobs, peered networks); internet-facing
only with a CIDR allow-list and HTTPS with the configured certificate. Rolling deployments stop and roll
back on their own (deployment circuit breaker). Promotions register a new task definition revision and
update the service (dsstack/hosting/promotion.py); the template holds the version read at synth.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from dsstack.config import ModelConfig
from dsstack.constructs.cfn import cfn_resource
from dsstack.constructs.log_retention import retention_days
from dsstack.hosting import names
from dsstack.hosting.serving import ServingVersion
from dsstack.nag import acknowledge, acknowledge_all


class ContainerService(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment: str,
        team: str,
        model: ModelConfig,
        serving: ServingVersion,
        image: ecs.ContainerImage,
        bucket: s3.IBucket,
        key: kms.IKey,
        alert_topic: sns.ITopic,
        vpc: ec2.IVpc,
        vpc_cidr: str,
        workload_subnets: ec2.SubnetSelection,
        public_ip: bool,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        if model.kind != "ecs":
            raise ValueError(f"model {model.name!r} is kind {model.kind!r}; ContainerService hosts kind 'ecs'")
        assert model.port and model.cpu and model.memory_mib and model.min_tasks is not None and model.max_tasks
        assert model.target_cpu_percent is not None  # ModelConfig fills in the ecs defaults
        self.service_name = names.endpoint_name(environment, team, model.name)

        self.cluster = ecs.Cluster(self, "Cluster", vpc=vpc, container_insights_v2=ecs.ContainerInsights.ENABLED)

        # ---- task: the task role may read this model's versions and nothing else
        task_definition = ecs.FargateTaskDefinition(self, "TaskDefinition", cpu=model.cpu,
                                                     memory_limit_mib=model.memory_mib)
        task_definition.task_role.add_to_principal_policy(iam.PolicyStatement(
            sid="ReadThisModelsVersions", actions=["s3:GetObject", "s3:GetObjectVersion"],
            resources=[bucket.arn_for_objects(f"models/{model.name}/*")]))
        key.grant_decrypt(task_definition.task_role)
        log_group = logs.LogGroup(self, "Logs", retention=retention_days(log_retention_days), encryption_key=key,
                                  removal_policy=cdk.RemovalPolicy.RETAIN)  # expires by retention
        environment_vars = {names.ENV_MODEL_NAME: model.name, names.ENV_MODEL_VERSION: str(serving.version)}
        if serving.key:
            environment_vars[names.ENV_MODEL_S3_URI] = f"s3://{bucket.bucket_name}/{serving.key}"
            environment_vars[names.ENV_MODEL_S3_VERSION_ID] = serving.s3_version_id or ""
        task_definition.add_container(
            names.CONTAINER_NAME,
            image=image,
            port_mappings=[ecs.PortMapping(container_port=model.port)],
            environment=environment_vars,
            logging=ecs.LogDrivers.aws_logs(stream_prefix=model.name, log_group=log_group),
            readonly_root_filesystem=False,
        )
        acknowledge(cfn_resource(task_definition), "AwsSolutions-ECS2",
                    "The environment holds only the model name, version and S3 location (no secrets); promotion "
                    "rewrites it in each new task definition revision.")

        # ---- load balancer
        self.load_balancer_security_group = ec2.SecurityGroup(
            # Outbound open: a load balancer only connects to its targets, and the per-target egress rule CDK
            # would otherwise add is a separate SecurityGroupEgress resource the embedded emulator lacks.
            self, "LoadBalancerSecurityGroup", vpc=vpc, allow_all_outbound=True,
            description=f"{self.service_name} load balancer")
        if model.internet_facing:
            for cidr in model.allowed_cidrs or ():
                self.load_balancer_security_group.add_ingress_rule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(443),
                                                                   "HTTPS from an allowed range")
        else:
            self.load_balancer_security_group.add_ingress_rule(ec2.Peer.ipv4(vpc_cidr), ec2.Port.tcp(80),
                                                               "HTTP from inside the VPC")
        if model.internet_facing and not vpc.public_subnets:
            raise ValueError(f"model {model.name!r}: internet_facing needs public subnets, but the network's egress "
                             "mode 'private' has none; use egress public or nat, or an internal load balancer")
        self.load_balancer = elbv2.ApplicationLoadBalancer(
            self, "LoadBalancer", vpc=vpc, internet_facing=bool(model.internet_facing),
            security_group=self.load_balancer_security_group,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC) if model.internet_facing
            else workload_subnets,
            drop_invalid_header_fields=True,
        )
        if model.internet_facing:
            listener = self.load_balancer.add_listener(
                "Https", port=443, protocol=elbv2.ApplicationProtocol.HTTPS, open=False,
                certificates=[elbv2.ListenerCertificate.from_arn(model.certificate_arn or "")],
                ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS)
        else:
            listener = self.load_balancer.add_listener("Http", port=80, protocol=elbv2.ApplicationProtocol.HTTP,
                                                       open=False)

        # ---- service
        self.service_security_group = ec2.SecurityGroup(
            self, "ServiceSecurityGroup", vpc=vpc, allow_all_outbound=True,
            description=f"{self.service_name} tasks: only the load balancer may connect")
        self.service = ecs.FargateService(
            self, "Service",
            cluster=self.cluster, task_definition=task_definition,
            desired_count=model.min_tasks,
            vpc_subnets=workload_subnets, assign_public_ip=public_ip,
            security_groups=[self.service_security_group],
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            min_healthy_percent=100, max_healthy_percent=200,
            health_check_grace_period=cdk.Duration.seconds(60),
        )
        # Load balancer -> tasks on the container port only: attaching the service to the target group below
        # adds that ingress rule to the service's group.
        self.target_group = listener.add_targets(
            "Targets", port=model.port, protocol=elbv2.ApplicationProtocol.HTTP, targets=[self.service],
            health_check=elbv2.HealthCheck(path=model.health_check_path, healthy_http_codes="200",
                                           interval=cdk.Duration.seconds(15), healthy_threshold_count=2,
                                           unhealthy_threshold_count=3),
            deregistration_delay=cdk.Duration.seconds(30),
        )
        # CDK makes the service depend on the target group it already references (cfn-lint W3005); keep the
        # dependencies that matter: the listener (the target group must be attached) and the task role policy.
        cfn_service = cfn_resource(self.service)
        task_policy = cfn_resource(task_definition.task_role.node.find_child("DefaultPolicy"))
        cfn_service.add_override("DependsOn", [cdk.Stack.of(self).get_logical_id(c) for c in (
            cfn_resource(listener), task_policy, cfn_resource(task_definition.task_role))])
        scaling = self.service.auto_scale_task_count(min_capacity=model.min_tasks, max_capacity=model.max_tasks)
        scaling.scale_on_cpu_utilization("Cpu", target_utilization_percent=model.target_cpu_percent,
                                         scale_in_cooldown=cdk.Duration.minutes(5),
                                         scale_out_cooldown=cdk.Duration.minutes(1))

        # ---- alarms
        self.alarms = [
            cloudwatch.Alarm(
                self, "Errors5xxAlarm",
                alarm_name=names.alarm_name(environment, team, model.name, "5xx"),
                alarm_description=f"ECS service {self.service_name}: 5xx responses from the model container",
                metric=self.load_balancer.metrics.http_code_target(
                    elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=cdk.Duration.minutes(5), statistic="Sum"),
                threshold=names.ALARM_5XX_IN_5_MINUTES, evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            cloudwatch.Alarm(
                self, "LatencyAlarm",
                alarm_name=names.alarm_name(environment, team, model.name, "latency"),
                alarm_description=f"ECS service {self.service_name}: p90 response time above "
                f"{names.ALARM_LATENCY_P90_SECONDS} s",
                metric=self.load_balancer.metrics.target_response_time(period=cdk.Duration.minutes(5),
                                                                       statistic="p90"),
                threshold=names.ALARM_LATENCY_P90_SECONDS, evaluation_periods=2,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
        ]
        for alarm in self.alarms:
            alarm.add_alarm_action(cloudwatch_actions.SnsAction(alert_topic))
        self.alarm_names = [names.alarm_name(environment, team, model.name, w) for w in ("5xx", "latency")]
        scheme = "https" if model.internet_facing else "http"
        self.url = f"{scheme}://{self.load_balancer.load_balancer_dns_name}"
        self._acknowledge(model, listener, task_definition)

    def _acknowledge(self, model: ModelConfig, listener: elbv2.ApplicationListener,
                     task_definition: ecs.FargateTaskDefinition) -> None:
        execution_role = task_definition.execution_role
        assert execution_role is not None  # CDK creates it for the awslogs driver
        for role, what in ((task_definition.task_role, "the model's own S3 prefix and the team key"),
                           (execution_role, "this service's image and log group")):
            policy = cfn_resource(role.node.find_child("DefaultPolicy"))
            acknowledge_all(policy, {
                f"{pack}-IAMNoInlinePolicy": f"CDK grants write this role's statements into its own policy, scoped "
                f"to {what}; nothing else can attach it." for pack in ("NIST.800.53.R5", "HIPAA.Security")})
        acknowledge(cfn_resource(task_definition.task_role.node.find_child("DefaultPolicy")),
                    names.iam5_finding(f"{names.NAG_BUCKET}/models/{model.name}/*"),
                    "The model's own prefix models/<name>/*: every registered version of this model, nothing else.")
        if model.team_ecr_tag is not None:
            acknowledge(cfn_resource(execution_role.node.find_child("DefaultPolicy")),
                        names.iam5_finding("*"), "ecr:GetAuthorizationToken has no resource scope (CDK adds it for "
                        "pulling from the team repository, which is granted by its ARN).")
        lb = cfn_resource(self.load_balancer)
        reasons = {
            "AwsSolutions-ELB2": "ALB access logs need an ELB-account grant in the shared log bucket's policy (another "
            "stack); request metrics and alarms cover this endpoint.",
        }
        for pack in ("NIST.800.53.R5", "HIPAA.Security"):
            reasons[f"{pack}-ELBLoggingEnabled"] = reasons["AwsSolutions-ELB2"]
            reasons[f"{pack}-ELBDeletionProtectionEnabled"] = ("A stateless model endpoint: the stack may replace "
                                                               "its load balancer; callers use the published URL.")
        reasons["NIST.800.53.R5-ALBWAFEnabled"] = ("Internal endpoint or a CIDR allow-list in front of it; WAF "
                                                   "($5/month + rules) is not requested by the config.")
        acknowledge_all(lb, reasons)
        if not model.internet_facing:
            for pack in ("NIST.800.53.R5", "HIPAA.Security"):
                acknowledge_all(cfn_resource(listener), {
                    f"{pack}-ELBv2ACMCertificateRequired": "Internal load balancer reachable from the VPC only; a "
                    "certificate (required when internet-facing) is not part of the config.",
                    f"{pack}-ALBHttpToHttpsRedirection": "Internal load balancer reachable from the VPC only; "
                    "internet-facing endpoints listen on HTTPS only, without an HTTP listener.",
                })
