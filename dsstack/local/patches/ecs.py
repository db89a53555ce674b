"""ECS task definitions and services as CloudFormation creates them (the hosting layer's `ecs` models)."""

from __future__ import annotations

from typing import Any

from dsstack.local.patches import Patch, set_classmethod

# AWS::ECS::TaskDefinition property -> register_task_definition keyword (moto passes only the first four).
_TASK_DEFINITION_ARGUMENTS = {
    "ContainerDefinitions": "container_definitions", "Volumes": "volumes", "Memory": "memory", "Cpu": "cpu",
    "NetworkMode": "network_mode", "RequiresCompatibilities": "requires_compatibilities",
    "TaskRoleArn": "task_role_arn", "ExecutionRoleArn": "execution_role_arn",
    "PlacementConstraints": "placement_constraints", "ProxyConfiguration": "proxy_configuration",
    "InferenceAccelerators": "inference_accelerators", "RuntimePlatform": "runtime_platform",
    "IpcMode": "ipc_mode", "PidMode": "pid_mode", "EphemeralStorage": "ephemeral_storage",
}
# AWS::ECS::Service properties moto ignores; kept on the service under the API's attribute names.
_SERVICE_ATTRIBUTES = {
    "DeploymentConfiguration": "deployment_configuration",
    "HealthCheckGracePeriodSeconds": "health_check_grace_period_seconds",
    "EnableECSManagedTags": "enable_ecs_managed_tags",
}


def _camel(value: Any) -> Any:
    from moto.core.utils import pascal_to_camelcase, remap_nested_keys

    return remap_nested_keys(value, pascal_to_camelcase)


def _tags(properties: dict[str, Any]) -> list[dict[str, str]]:
    return [{"key": t["Key"], "value": t["Value"]} for t in properties.get("Tags", [])]


def _name_of(value: Any, attribute: str) -> str:
    return getattr(value, attribute) if hasattr(value, attribute) else value


def _cluster_arn(cluster_name: str, account_id: str, region_name: str) -> str:
    """The ARN moto gives a cluster of that name (moto.ecs.models.Cluster)."""
    from moto.utilities.utils import get_partition

    return f"arn:{get_partition(region_name)}:ecs:{region_name}:{account_id}:cluster/{cluster_name}"


def patch_ecs_cfn_properties() -> None:
    from moto.ecs import models
    from moto.moto_api._internal import mock_random

    def register(properties: dict[str, Any], account_id: str, region_name: str) -> Any:
        arguments = {argument: properties[name] for name, argument in _TASK_DEFINITION_ARGUMENTS.items()
                     if name in properties}
        for nested in ("container_definitions", "volumes", "placement_constraints", "proxy_configuration",
                       "inference_accelerators", "runtime_platform", "ephemeral_storage"):
            if nested in arguments:
                arguments[nested] = _camel(arguments[nested])
        arguments.setdefault("container_definitions", [])
        family = properties.get("Family", f"task-definition-{int(mock_random.random() * 10**6)}")
        return models.ecs_backends[account_id][region_name].register_task_definition(
            family=family, tags=_tags(properties), **arguments)

    def create_task_definition(cls: Any, resource_name: str, cloudformation_json: dict[str, Any], account_id: str,
                               region_name: str, **kwargs: Any) -> Any:
        return register(cloudformation_json["Properties"], account_id, region_name)

    def update_task_definition(cls: Any, original_resource: Any, new_resource_name: str,
                               cloudformation_json: dict[str, Any], account_id: str, region_name: str) -> Any:
        # Task definitions are immutable: CloudFormation registers a new revision and deregisters the old one.
        replacement = register(cloudformation_json["Properties"], account_id, region_name)
        models.ecs_backends[account_id][region_name].deregister_task_definition(original_resource.arn)
        return replacement

    def apply_service_properties(service: Any, properties: dict[str, Any]) -> Any:
        for name, attribute in _SERVICE_ATTRIBUTES.items():
            if name in properties:
                setattr(service, attribute, _camel(properties[name]))
        return service

    def create_service(cls: Any, resource_name: str, cloudformation_json: dict[str, Any], account_id: str,
                       region_name: str, **kwargs: Any) -> Any:
        properties = cloudformation_json["Properties"]
        network = properties.get("NetworkConfiguration")
        service = models.ecs_backends[account_id][region_name].create_service(
            _name_of(properties["Cluster"], "name"), resource_name, properties.get("DesiredCount"),
            task_definition_str=_name_of(properties.get("TaskDefinition"), "arn"),
            load_balancers=_camel(properties.get("LoadBalancers", [])),
            tags=_tags(properties), launch_type=properties.get("LaunchType"),
            platform_version=properties.get("PlatformVersion"),
            propagate_tags=properties.get("PropagateTags", "NONE"),
            network_configuration=_camel(network) if network else None,
            role_arn=properties.get("Role"),
        )
        return apply_service_properties(service, properties)

    def update_service(cls: Any, original_resource: Any, new_resource_name: str, cloudformation_json: dict[str, Any],
                       account_id: str, region_name: str) -> Any:
        properties = cloudformation_json["Properties"]
        backend = models.ecs_backends[account_id][region_name]
        cluster = _name_of(properties["Cluster"], "name")
        if original_resource.cluster_arn != _cluster_arn(cluster, account_id, region_name):
            backend.delete_service(original_resource.cluster_name, original_resource.name, force=True)
            return create_service(cls, new_resource_name, cloudformation_json, account_id, region_name)
        changes: dict[str, Any] = {"cluster": cluster, "service": original_resource.name,
                                   "task_definition": _name_of(properties.get("TaskDefinition"), "arn"),
                                   "desired_count": properties.get("DesiredCount")}
        if properties.get("NetworkConfiguration"):
            changes["network_configuration"] = _camel(properties["NetworkConfiguration"])
        return apply_service_properties(backend.update_service(changes), properties)

    set_classmethod(models.TaskDefinition, "create_from_cloudformation_json", create_task_definition)
    set_classmethod(models.TaskDefinition, "update_from_cloudformation_json", update_task_definition)
    set_classmethod(models.Service, "create_from_cloudformation_json", create_service)
    set_classmethod(models.Service, "update_from_cloudformation_json", update_service)


PATCHES = [
    Patch("ecs-cfn-properties",
          "AWS::ECS::TaskDefinition from CloudFormation keeps only Family, ContainerDefinitions, Volumes and Memory "
          "(no Cpu, NetworkMode, RequiresCompatibilities, task/execution roles, tags), and AWS::ECS::Service only "
          "Cluster, TaskDefinition and DesiredCount: a Fargate service becomes an EC2 one without load balancers, "
          "network configuration or deployment circuit breaker",
          "registers task definitions with every property (an update registers a new revision and deregisters the "
          "old one, as CloudFormation does); creates services with launch type, load balancers, awsvpc network "
          "configuration, tags and deployment configuration, and applies them on update",
          patch_ecs_cfn_properties),
]
