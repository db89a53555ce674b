"""`<env>-<team>-hosting`: the team's model endpoints (SageMaker and ECS) and its ECR repository.

Only synthesized when the team has `models:`. Stateless apart from the ECR repository (images can be
pushed again). Each endpoint is published as SSM parameters /dsstack/<env>/<team>/models/<name>/* and as
stack outputs; promotion and the CLI find endpoints through those parameters.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from dsstack import naming
from dsstack.config import PlatformConfig, TeamConfig
from dsstack.constructs.container_service import ContainerService
from dsstack.constructs.coordinates import publish_coordinate
from dsstack.constructs.model_endpoint import ModelEndpoint
from dsstack.hosting import names
from dsstack.hosting.serving import ServingVersion, serving_versions
from dsstack.stacks.data import DataStack
from dsstack.stacks.network import NetworkStack
from dsstack.stacks.operations import OperationsStack

KEEP_IMAGES = 20  # ECR lifecycle: the newest 20 images stay, older ones are expired


class HostingStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: PlatformConfig, team: TeamConfig,
                 network: NetworkStack, data: DataStack, operations: OperationsStack,
                 serving: dict[str, ServingVersion] | None = None, **kwargs: Any) -> None:
        super().__init__(scope, construct_id,
                         description=f"dsstack {config.environment}/{team.name}: model endpoints", **kwargs)
        if not team.models:
            raise ValueError(f"team {team.name!r} has no models; the hosting stack is only built for teams with models")
        self.environment_name, self.team = config.environment, team.name
        # The version each endpoint is deployed with: the promoted one (see dsstack/hosting/serving.py).
        serving = serving if serving is not None else serving_versions(config, team)
        # The bucket name comes from the team's published coordinate (resolved by CloudFormation at deploy),
        # not a cross-stack export: policies stay readable in review and in cdk-nag's findings.
        bucket_name = cdk.CfnParameter(
            self, names.BUCKET_NAME_PARAMETER, type="AWS::SSM::Parameter::Value<String>",
            default=naming.ssm_parameter_name(config.environment, team.name, names.BUCKET_KEY),
            description="SSM parameter holding the team's datastore bucket name (published by the data stack)",
        ).value_as_string
        bucket = s3.Bucket.from_bucket_name(self, "TeamBucket", bucket_name)
        self.add_dependency(data, "the team bucket's SSM parameter and key")
        self.repository = ecr.Repository(
            self, "Repository",
            # No fixed name: a RETAINed repository with a fixed name would block the next deploy after a destroy.
            image_scan_on_push=True,
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,  # a tag always means the same image
            encryption=ecr.RepositoryEncryption.KMS, encryption_key=data.key,
            lifecycle_rules=[ecr.LifecycleRule(description=f"keep the newest {KEEP_IMAGES} images",
                                               max_image_count=KEEP_IMAGES)],
            # Sandboxes delete it with the stack once it is empty (no custom-resource Lambda to force it).
            removal_policy=cdk.RemovalPolicy.DESTROY if config.destroy_data_on_delete else cdk.RemovalPolicy.RETAIN,
        )
        self._publish(names.ECR_REPOSITORY_KEY, self.repository.repository_uri, "Team ECR repository")

        self.endpoints: dict[str, ModelEndpoint | ContainerService] = {}
        vpc = network.vpc
        for model in team.models:
            version = serving.get(model.name) or ServingVersion(model.name, model.initial_version, "config")
            construct_id_ = "".join(part.capitalize() for part in model.name.split("-"))
            tag = model.team_ecr_tag
            if model.is_sagemaker:
                endpoint = ModelEndpoint(
                    self, f"{construct_id_}Endpoint", environment=config.environment, team=team.name, model=model,
                    serving=version,
                    image_uri=self.repository.repository_uri_for_tag(tag) if tag else model.image,
                    repository=self.repository if tag else None,
                    bucket=bucket, key=data.key, alert_topic=operations.alert_topic,
                    vpc=vpc, subnets=network.network.workload_subnets,
                )
                self.endpoints[model.name] = endpoint
                # The endpoint's own name attribute (equal to endpoint_name in AWS; the emulator names it itself).
                published = {names.PARAM_ENDPOINT_NAME: endpoint.endpoint.attr_endpoint_name,
                             names.PARAM_URL: endpoint.url,
                              names.PARAM_ARN: endpoint.endpoint_arn}
            else:
                service = ContainerService(
                    self, f"{construct_id_}Service", environment=config.environment, team=team.name, model=model,
                    serving=version,
                    image=ecs.ContainerImage.from_ecr_repository(self.repository, tag) if tag
                    else ecs.ContainerImage.from_registry(model.image),
                    bucket=bucket, key=data.key, alert_topic=operations.alert_topic,
                    vpc=vpc, vpc_cidr=config.network.cidr, workload_subnets=network.network.workload_subnets,
                    public_ip=config.network.egress == "public", log_retention_days=config.log_retention_days,
                )
                self.endpoints[model.name] = service
                published = {names.PARAM_ENDPOINT_NAME: service.service.service_name, names.PARAM_URL: service.url,
                             names.PARAM_ARN: service.service.service_arn,
                             names.PARAM_CLUSTER: service.cluster.cluster_name}
            published[names.PARAM_KIND] = model.kind
            published[names.PARAM_ALARMS] = ",".join(self.endpoints[model.name].alarm_names)
            for field, value in published.items():
                self._publish(names.model_key(model.name, field), value, f"model {model.name}: {field}")

    def _publish(self, key: str, value: str, description: str) -> ssm.StringParameter:
        """Publish a coordinate as SSM parameter /dsstack/<env>/<team>/<key> and as a stack output."""
        return publish_coordinate(self, environment=self.environment_name, team=self.team, key=key, value=value,
                                  description=description)
