"""A SageMaker endpoint for one model: model + endpoint config + endpoint, its role, alarms, autoscaling.

The template holds the version `serving` says (the promoted one, read at synth: dsstack/hosting/serving.py),
so a deploy never reverts a promotion. Promotions themselves create their own model and endpoint config
through the API (dsstack/hosting/promotion.py) and leave these resources alone.
"""

from __future__ import annotations

import re

import aws_cdk as cdk
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct

from dsstack.config import ModelConfig
from dsstack.constructs.cfn import cfn_resource
from dsstack.hosting import names
from dsstack.hosting.names import CANARY_PERCENT, CANARY_WAIT_SECONDS, TERMINATION_WAIT_SECONDS, deployment_config
from dsstack.hosting.serving import ServingVersion
from dsstack.nag import acknowledge_all

# Alarm thresholds. They also drive SageMaker's auto-rollback of a promotion (blue/green).
_ECR_IMAGE = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/([^:@]+)")


class ModelEndpoint(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment: str,
        team: str,
        model: ModelConfig,
        serving: ServingVersion,
        image_uri: str,
        repository: ecr.IRepository | None,
        bucket: s3.IBucket,
        key: kms.IKey,
        alert_topic: sns.ITopic,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
    ) -> None:
        super().__init__(scope, construct_id)
        if not model.is_sagemaker:
            raise ValueError(f"model {model.name!r} is kind {model.kind!r}; ModelEndpoint hosts sagemaker-* kinds")
        realtime = model.kind == "sagemaker-realtime"
        self.endpoint_name = names.endpoint_name(environment, team, model.name)
        region, partition = cdk.Aws.REGION, cdk.Aws.PARTITION

        # ---- execution role: the model's own prefix, the team key, its image, its logs and metrics
        self.role = iam.Role(self, "ExecutionRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
                             description=f"dsstack {environment}/{team}: SageMaker endpoint {model.name}")
        model_objects = bucket.arn_for_objects(f"models/{model.name}/*")
        self.role.add_to_policy(iam.PolicyStatement(
            sid="ReadThisModelsVersions", actions=["s3:GetObject", "s3:GetObjectVersion"], resources=[model_objects]))
        key.grant_decrypt(self.role)
        if repository is not None:
            repository.grant_pull(self.role)
        else:
            self._grant_image_pull(image_uri)
        log_group = f"log-group:/aws/sagemaker/Endpoints/{self.endpoint_name}:*"
        self.role.add_to_policy(iam.PolicyStatement(
            sid="EndpointLogs",
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            resources=[f"arn:{partition}:logs:{region}:{cdk.Aws.ACCOUNT_ID}:{log_group}"],
        ))
        self.role.add_to_policy(iam.PolicyStatement(
            sid="EndpointMetrics", actions=["cloudwatch:PutMetricData"], resources=["*"],  # no resource-level ARNs
            conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "AWS/SageMaker"]}},
        ))

        policy = cfn_resource(self.role.node.find_child("DefaultPolicy"))
        findings = {
            names.iam5_finding(f"{names.NAG_BUCKET}/models/{model.name}/*"):
                "The model's own prefix models/<name>/*: every registered version of this model, nothing else.",
            names.iam5_finding(f"arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:{log_group}"):
                "Log streams of this one endpoint's log group (SageMaker names a stream per instance).",
        }
        if repository is None or realtime:
            findings[names.iam5_finding("*")] = ("cloudwatch:PutMetricData (namespace condition) and "
                                                 "ecr:GetAuthorizationToken support no resource-level permissions.")
        if realtime and model.data_capture_percent:
            findings[names.iam5_finding(f"{names.NAG_BUCKET}/{names.CAPTURE_PREFIX}/{model.name}/*")] = (
                "Data capture writes objects under this endpoint's own capture prefix only.")
        acknowledge_all(policy, {
            **findings,
            **{f"{pack}-IAMNoInlinePolicy": "CDK grants write this role's statements into its own policy, scoped to "
               "this one endpoint's model, logs and image; nothing else can attach it."
               for pack in ("NIST.800.53.R5", "HIPAA.Security")},
        })

        # ---- model: the serving version's object, and the version in the container's environment
        environment_vars = {names.ENV_MODEL_NAME: model.name, names.ENV_MODEL_VERSION: str(serving.version)}
        model_data_url = None
        if serving.key:
            model_data_url = f"s3://{bucket.bucket_name}/{serving.key}"
            environment_vars[names.ENV_MODEL_S3_URI] = model_data_url
            environment_vars[names.ENV_MODEL_S3_VERSION_ID] = serving.s3_version_id or ""
        vpc_config = None
        if realtime:  # serverless endpoints run outside customer VPCs (SageMaker does not support it)
            self.security_group = ec2.SecurityGroup(
                self, "SecurityGroup", vpc=vpc, allow_all_outbound=True,
                description=f"SageMaker endpoint {model.name}: no inbound; invoked through the runtime API")
            vpc_config = sagemaker.CfnModel.VpcConfigProperty(
                security_group_ids=[self.security_group.security_group_id],
                subnets=vpc.select_subnets(**_selection(subnets)).subnet_ids)
        self.model = sagemaker.CfnModel(
            self, "Model",
            execution_role_arn=self.role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=image_uri, model_data_url=model_data_url, environment=environment_vars),
            vpc_config=vpc_config,
            # Real-time containers may not call out: SageMaker itself downloads the model data.
            enable_network_isolation=True if realtime else None,
        )
        # SageMaker checks the role's access when the model is created: create it after the policy exists.
        self.model.add_dependency(policy)

        # ---- endpoint config
        serverless_config = None
        if not realtime:
            assert model.memory_mb is not None and model.max_concurrency is not None  # ModelConfig's defaults
            serverless_config = sagemaker.CfnEndpointConfig.ServerlessConfigProperty(
                memory_size_in_mb=model.memory_mb, max_concurrency=model.max_concurrency)
        variant = sagemaker.CfnEndpointConfig.ProductionVariantProperty(
            variant_name=names.VARIANT_NAME,
            model_name=self.model.attr_model_name,
            initial_variant_weight=1,
            instance_type=model.instance_type if realtime else None,
            initial_instance_count=model.min_instances if realtime else None,
            serverless_config=serverless_config,
        )
        capture = None
        if realtime and model.data_capture_percent:
            prefix = f"{names.CAPTURE_PREFIX}/{model.name}"
            capture = sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
                enable_capture=True,
                initial_sampling_percentage=model.data_capture_percent,
                destination_s3_uri=f"s3://{bucket.bucket_name}/{prefix}",
                kms_key_id=key.key_arn,
                capture_options=[sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode=m)
                                 for m in ("Input", "Output")],
            )
            self.role.add_to_policy(iam.PolicyStatement(
                sid="WriteDataCapture", actions=["s3:PutObject"], resources=[bucket.arn_for_objects(f"{prefix}/*")]))
            key.grant(self.role, "kms:Encrypt", "kms:GenerateDataKey")
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self, "EndpointConfig",
            production_variants=[variant],
            data_capture_config=capture,
            # Serverless endpoints have no ML storage volume to encrypt; SageMaker rejects a key for them.
            kms_key_id=key.key_arn if realtime else None,
        )
        if not realtime:
            acknowledge_all(self.endpoint_config, {
                f"{pack}-SageMakerEndpointConfigurationKMSKeyConfigured": "Serverless endpoints have no ML storage "
                "volume; SageMaker rejects a KmsKeyId for a serverless endpoint config."
                for pack in ("NIST.800.53.R5", "HIPAA.Security")
            })

        # ---- alarms (named, so the endpoint can list them for auto-rollback without a reference cycle)
        dimensions = {"EndpointName": self.endpoint_name, "VariantName": names.VARIANT_NAME}
        self.alarms = [
            cloudwatch.Alarm(
                self, "Errors5xxAlarm",
                alarm_name=names.alarm_name(environment, team, model.name, "5xx"),
                alarm_description=f"SageMaker endpoint {self.endpoint_name}: 5xx responses",
                metric=cloudwatch.Metric(namespace="AWS/SageMaker", metric_name="Invocation5XXErrors",
                                         dimensions_map=dimensions, statistic="Sum", period=cdk.Duration.minutes(5)),
                threshold=names.ALARM_5XX_IN_5_MINUTES, evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            cloudwatch.Alarm(
                self, "LatencyAlarm",
                alarm_name=names.alarm_name(environment, team, model.name, "latency"),
                alarm_description=f"SageMaker endpoint {self.endpoint_name}: p90 model latency above "
                f"{names.ALARM_LATENCY_P90_SECONDS * 1000} ms",
                # ModelLatency is reported in microseconds.
                metric=cloudwatch.Metric(namespace="AWS/SageMaker", metric_name="ModelLatency",
                                         dimensions_map=dimensions, statistic="p90", period=cdk.Duration.minutes(5)),
                threshold=names.ALARM_LATENCY_P90_SECONDS * 1_000_000, evaluation_periods=2,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
        ]
        for alarm in self.alarms:
            alarm.add_alarm_action(cloudwatch_actions.SnsAction(alert_topic))
        self.alarm_names = [names.alarm_name(environment, team, model.name, w) for w in ("5xx", "latency")]

        # ---- endpoint: template updates use the same blue/green + auto-rollback as promotions
        config = deployment_config(self.alarm_names)
        self.endpoint = sagemaker.CfnEndpoint(
            self, "Endpoint",
            endpoint_name=self.endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
            deployment_config=sagemaker.CfnEndpoint.DeploymentConfigProperty(
                blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
                    traffic_routing_configuration=sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
                        type="CANARY",
                        canary_size=sagemaker.CfnEndpoint.CapacitySizeProperty(
                            type="CAPACITY_PERCENT", value=CANARY_PERCENT),
                        wait_interval_in_seconds=CANARY_WAIT_SECONDS),
                    termination_wait_in_seconds=TERMINATION_WAIT_SECONDS,
                    maximum_execution_timeout_in_seconds=config["BlueGreenUpdatePolicy"][
                        "MaximumExecutionTimeoutInSeconds"]),
                auto_rollback_configuration=sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
                    alarms=[sagemaker.CfnEndpoint.AlarmProperty(alarm_name=n) for n in self.alarm_names]),
            ),
        )
        for alarm in self.alarms:
            self.endpoint.node.add_dependency(alarm)
        self.endpoint_arn = self.endpoint.ref
        self.url = (f"https://runtime.sagemaker.{region}.{cdk.Aws.URL_SUFFIX}/endpoints/"
                    f"{self.endpoint_name}/invocations")

        # ---- autoscaling (real-time only; serverless scales by itself up to max_concurrency)
        if realtime:
            assert model.min_instances is not None and model.max_instances is not None  # ModelConfig's defaults
            assert model.target_invocations_per_instance is not None
            target = appscaling.ScalableTarget(
                self, "ScalableTarget",
                service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
                resource_id=f"endpoint/{self.endpoint_name}/variant/{names.VARIANT_NAME}",
                scalable_dimension="sagemaker:variant:DesiredInstanceCount",
                min_capacity=model.min_instances, max_capacity=model.max_instances,
            )
            target.node.add_dependency(self.endpoint)
            target.scale_to_track_metric(
                "InvocationsPerInstance",
                target_value=model.target_invocations_per_instance,
                predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
                scale_in_cooldown=cdk.Duration.minutes(5), scale_out_cooldown=cdk.Duration.minutes(1),
            )

    def _grant_image_pull(self, image_uri: str) -> None:
        """Pull rights on exactly the image's ECR repository (SageMaker framework images live in AWS accounts)."""
        match = _ECR_IMAGE.match(image_uri)
        if not match:
            raise ValueError(f"image {image_uri!r}: SageMaker pulls images from ECR only; use an ECR image URI "
                             "or 'ecr:<tag>' for the team repository")
        account, region, repo = match.groups()
        self.role.add_to_policy(iam.PolicyStatement(
            sid="PullModelImage",
            actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            resources=[f"arn:{cdk.Aws.PARTITION}:ecr:{region}:{account}:repository/{repo}"],
        ))
        self.role.add_to_policy(iam.PolicyStatement(
            sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]))  # account-level API


def _selection(subnets: ec2.SubnetSelection) -> dict:
    return {"subnet_type": subnets.subnet_type} if subnets.subnet_type is not None else {}
