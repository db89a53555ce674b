"""`dsstack models promote`: point a deployed endpoint at a catalog model version, at runtime.

Order of operations (docs/hosting.md):
1. read the endpoint's coordinates (SSM /dsstack/<env>/<team>/models/<model>/*) and the version behind N
   in the catalog; an unknown N fails here, before anything changes;
2. record the promotion in the catalog with a conditional write (from the version serving now): of two
   concurrent promotions exactly one passes, the other fails before touching the endpoint;
3. SageMaker: a new model + endpoint config, then UpdateEndpoint with blue/green canary traffic shifting
   and auto-rollback on the endpoint's alarms. ECS: a new task definition revision, then a rolling
   update guarded by the deployment circuit breaker (with rollback);
4. if step 3 fails, a compensating promotion back to the previous version is recorded, so the catalog
   never claims a version the endpoint does not serve.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dsstack import naming
from dsstack.hosting import names
from dsstack.hosting.serving import ServingVersion

# The keys of a describe_* production variant that create_endpoint_config accepts.
_VARIANT_KEYS = ("VariantName", "ModelName", "InitialInstanceCount", "InstanceType", "InitialVariantWeight",
                 "ServerlessConfig", "VolumeSizeInGB", "ModelDataDownloadTimeoutInSeconds",
                 "ContainerStartupHealthCheckTimeoutInSeconds", "RoutingConfig")
# The keys of describe_task_definition that register_task_definition accepts.
_TASK_KEYS = ("family", "taskRoleArn", "executionRoleArn", "networkMode", "volumes", "placementConstraints",
              "requiresCompatibilities", "cpu", "memory", "pidMode", "ipcMode", "proxyConfiguration",
              "inferenceAccelerators", "ephemeralStorage", "runtimePlatform")


class PromotionError(Exception):
    """A promotion that did not happen; the message says why and what to do."""


class UnknownVersionError(PromotionError):
    pass


class ConcurrentPromotionError(PromotionError):
    pass


@dataclass(frozen=True)
class Endpoint:
    """A deployed endpoint as its SSM parameters describe it."""

    team: str
    model: str
    kind: str
    name: str  # SageMaker endpoint name or ECS service name
    url: str
    arn: str
    alarms: tuple[str, ...]
    cluster: str | None = None

    @property
    def is_sagemaker(self) -> bool:
        return self.kind.startswith("sagemaker")


@dataclass(frozen=True)
class PromotionResult:
    model: str
    kind: str
    from_version: int | None
    to_version: int
    promoted_by: str
    resource: str  # the new endpoint config name or task definition ARN
    changed: bool = True


class Hosting:
    """Runtime access to a team's endpoints. `session` is a boto3 Session (the emulator's or AWS's)."""

    def __init__(self, environment: str, team: str, *, session: Any = None) -> None:
        import boto3

        self.environment, self.team = environment, team
        self.session = session or boto3.session.Session()
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service)
        return self._clients[service]

    # ------------------------------------------------------------------------------- coordinates
    def _parameters(self, path: str) -> dict[str, str]:
        found: dict[str, str] = {}
        for page in self.client("ssm").get_paginator("get_parameters_by_path").paginate(Path=path, Recursive=True):
            for parameter in page["Parameters"]:
                found[parameter["Name"][len(path) + 1:]] = parameter["Value"]
        return found

    def endpoints(self) -> list[Endpoint]:
        root = naming.ssm_parameter_name(self.environment, self.team, "models")
        by_model: dict[str, dict[str, str]] = {}
        for key, value in self._parameters(root).items():
            model, _, field = key.partition("/")
            by_model.setdefault(model, {})[field] = value
        return [self._endpoint(model, fields) for model, fields in sorted(by_model.items())
                if names.PARAM_KIND in fields]

    def endpoint(self, model: str) -> Endpoint:
        fields = self._parameters(names.model_parameter_path(self.environment, self.team, model))
        if names.PARAM_KIND not in fields:
            known = ", ".join(e.model for e in self.endpoints()) or "none"
            raise PromotionError(f"team {self.team!r} in environment {self.environment!r} has no deployed endpoint "
                                 f"for model {model!r} (deployed: {known}); add it to the team's models: and deploy")
        return self._endpoint(model, fields)

    def _endpoint(self, model: str, fields: dict[str, str]) -> Endpoint:
        return Endpoint(team=self.team, model=model, kind=fields[names.PARAM_KIND],
                        name=fields.get(names.PARAM_ENDPOINT_NAME, ""), url=fields.get(names.PARAM_URL, ""),
                        arn=fields.get(names.PARAM_ARN, ""),
                        alarms=tuple(a for a in fields.get(names.PARAM_ALARMS, "").split(",") if a),
                        cluster=fields.get(names.PARAM_CLUSTER))

    def coordinate(self, key: str) -> str:
        name = naming.ssm_parameter_name(self.environment, self.team, key)
        try:
            return self.client("ssm").get_parameter(Name=name)["Parameter"]["Value"]
        except self.client("ssm").exceptions.ParameterNotFound:
            raise PromotionError(f"SSM parameter {name} is missing: is the team's data stack deployed?") from None

    def catalog(self) -> Any:
        from dsstack_catalog import Catalog

        return Catalog(self.coordinate(names.CATALOG_TABLE_KEY), client=self.client("dynamodb"))

    # ------------------------------------------------------------------------------ live version
    def live_version(self, endpoint: Endpoint) -> int | None:
        """The version the endpoint's current model/task definition serves (its DSSTACK_MODEL_VERSION)."""
        env = self._live_environment(endpoint)
        value = env.get(names.ENV_MODEL_VERSION)
        return int(value) if value and value.isdigit() else None

    def _live_environment(self, endpoint: Endpoint) -> dict[str, str]:
        if endpoint.is_sagemaker:
            sm = self.client("sagemaker")
            config_name = sm.describe_endpoint(EndpointName=endpoint.name)["EndpointConfigName"]
            variant = sm.describe_endpoint_config(EndpointConfigName=config_name)["ProductionVariants"][0]
            return sm.describe_model(ModelName=variant["ModelName"]).get("PrimaryContainer", {}).get("Environment", {})
        task = self._task_definition(endpoint)
        container = _model_container(task)
        return {e["name"]: e["value"] for e in container.get("environment", [])}

    def _task_definition(self, endpoint: Endpoint) -> dict[str, Any]:
        ecs = self.client("ecs")
        services = ecs.describe_services(cluster=endpoint.cluster, services=[endpoint.name])["services"]
        if not services:
            raise PromotionError(f"ECS service {endpoint.name!r} not found in cluster {endpoint.cluster!r}")
        return ecs.describe_task_definition(taskDefinition=services[0]["taskDefinition"])["taskDefinition"]

    # ---------------------------------------------------------------------------------- promotion
    def promote(self, model: str, version: int, *, promoted_by: str | None = None,
                note: str | None = None) -> PromotionResult:
        from dsstack_catalog import PromotionConflictError, UnknownModelVersionError

        endpoint = self.endpoint(model)
        catalog = self.catalog()
        target = catalog.model_version(model, version, consistent=True)
        if target is None:
            latest = [v.version for v in catalog.model_versions(model, limit=5)]
            hint = f"latest versions: {', '.join(map(str, latest))}" if latest else "no version is registered yet"
            raise UnknownVersionError(f"model {model!r} of team {self.team!r} has no version {version} ({hint}); "
                                      f"register it by writing under s3://<team bucket>/models/{model}/ first. "
                                      "The endpoint was not changed.")
        bucket = self.coordinate(names.BUCKET_KEY)
        if endpoint.is_sagemaker:
            self._check_sagemaker_ready(endpoint, bucket, target)
        # What this promotion starts from is read once, up front: the conditional write below fails if any
        # other promotion is recorded after this read, so two promotions can never both apply.
        current = catalog.current_promotion(model)
        live = self.live_version(endpoint)
        from_version = current.to_version if current else live
        by = promoted_by or self._caller()
        if from_version == version and live == version:
            return PromotionResult(model, endpoint.kind, from_version, version, by, "", changed=False)

        # The catalog decides first: a conditional write from the version serving now.
        try:
            catalog.record_promotion(model, to_version=version, from_version=from_version, promoted_by=by, note=note)
        except PromotionConflictError as error:
            raise ConcurrentPromotionError(f"{error}. Another promotion got there first; the endpoint was not "
                                           "changed by this one. Check `dsstack endpoints` and retry if needed.") from None
        except UnknownModelVersionError as error:
            raise UnknownVersionError(f"{error}. The endpoint was not changed.") from None

        serving = ServingVersion(model, version, "catalog", target.object.key, target.object.s3_version_id)
        try:
            if endpoint.is_sagemaker:
                resource = self._update_sagemaker(endpoint, bucket, serving)
            else:
                resource = self._update_ecs(endpoint, bucket, serving)
        except Exception as error:
            if from_version is not None:
                # Compensate: the catalog must keep naming the version the endpoint really serves.
                catalog.record_promotion(model, to_version=from_version, from_version=version, promoted_by=by,
                                         note=f"automatic: updating the endpoint to version {version} failed")
            raise PromotionError(f"updating {endpoint.kind} endpoint {endpoint.name!r} to version {version} failed: "
                                 f"{error}. It still serves version {from_version}.") from error
        return PromotionResult(model, endpoint.kind, from_version, version, by, resource)

    def _caller(self) -> str:
        try:
            return self.client("sts").get_caller_identity()["Arn"]
        except Exception:  # the promotion should not fail because STS is unreachable
            import getpass

            return f"local:{getpass.getuser()}"

    def _check_sagemaker_ready(self, endpoint: Endpoint, bucket: str, target: Any) -> None:
        status = self.client("sagemaker").describe_endpoint(EndpointName=endpoint.name)["EndpointStatus"]
        if status != "InService":
            raise PromotionError(f"SageMaker endpoint {endpoint.name!r} is {status}; wait until it is InService "
                                 "(a deployment or rollback is in progress). The endpoint was not changed.")
        # SageMaker's ModelDataUrl cannot name an S3 object version: the key must still hold this version.
        head = self.client("s3").head_object(Bucket=bucket, Key=target.object.key)
        if head.get("VersionId") != target.object.s3_version_id:
            raise PromotionError(
                f"version {target.version} of model {target.model!r} is S3 version {target.object.s3_version_id} of "
                f"{target.object.key!r}, which has since been overwritten; SageMaker would load the newer object. "
                f"Register each version under its own key (e.g. models/{target.model}/<run-id>/model.tar.gz). "
                "The endpoint was not changed.")

    def _update_sagemaker(self, endpoint: Endpoint, bucket: str, serving: ServingVersion) -> str:
        sm = self.client("sagemaker")
        described = sm.describe_endpoint(EndpointName=endpoint.name)
        config = sm.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
        variant = config["ProductionVariants"][0]
        old = sm.describe_model(ModelName=variant["ModelName"])
        name = _resource_name(endpoint.name, serving.version)
        container = {k: v for k, v in old["PrimaryContainer"].items() if k in ("Image", "ImageConfig", "Mode")}
        container["ModelDataUrl"] = f"s3://{bucket}/{serving.key}"
        container["Environment"] = {**old["PrimaryContainer"].get("Environment", {}), **_model_env(bucket, serving)}
        model_args: dict[str, Any] = {"ModelName": name, "ExecutionRoleArn": old["ExecutionRoleArn"],
                                      "PrimaryContainer": container,
                                      "Tags": [{"Key": "dsstack:model-version", "Value": str(serving.version)}]}
        if old.get("VpcConfig"):
            model_args["VpcConfig"] = old["VpcConfig"]
        if old.get("EnableNetworkIsolation"):
            model_args["EnableNetworkIsolation"] = True
        sm.create_model(**model_args)
        config_args: dict[str, Any] = {
            "EndpointConfigName": name,
            "ProductionVariants": [{**{k: variant[k] for k in _VARIANT_KEYS if k in variant}, "ModelName": name}],
        }
        for key in ("DataCaptureConfig", "KmsKeyId"):
            if config.get(key):
                config_args[key] = config[key]
        sm.create_endpoint_config(**config_args)
        sm.update_endpoint(EndpointName=endpoint.name, EndpointConfigName=name,
                           DeploymentConfig=names.deployment_config(list(endpoint.alarms)))
        return name

    def _update_ecs(self, endpoint: Endpoint, bucket: str, serving: ServingVersion) -> str:
        ecs = self.client("ecs")
        task = self._task_definition(endpoint)
        containers = []
        for container in task["containerDefinitions"]:
            if container["name"] == names.CONTAINER_NAME:
                env = {e["name"]: e["value"] for e in container.get("environment", [])}
                env.update(_model_env(bucket, serving))
                container = {**container, "environment": [{"name": k, "value": v} for k, v in sorted(env.items())]}
            containers.append(container)
        args = {k: task[k] for k in _TASK_KEYS if task.get(k)}
        registered = ecs.register_task_definition(
            **args, containerDefinitions=containers,
            tags=[{"key": "dsstack:model-version", "value": str(serving.version)}])["taskDefinition"]
        ecs.update_service(
            cluster=endpoint.cluster, service=endpoint.name, taskDefinition=registered["taskDefinitionArn"],
            deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": True},
                                     "maximumPercent": 200, "minimumHealthyPercent": 100})
        return registered["taskDefinitionArn"]


def _model_container(task: dict[str, Any]) -> dict[str, Any]:
    for container in task["containerDefinitions"]:
        if container["name"] == names.CONTAINER_NAME:
            return container
    raise PromotionError(f"task definition {task.get('taskDefinitionArn')} has no container named "
                         f"{names.CONTAINER_NAME!r}; was it deployed by dsstack?")


def _model_env(bucket: str, serving: ServingVersion) -> dict[str, str]:
    return {
        names.ENV_MODEL_NAME: serving.model,
        names.ENV_MODEL_VERSION: str(serving.version),
        names.ENV_MODEL_S3_URI: f"s3://{bucket}/{serving.key}",
        names.ENV_MODEL_S3_VERSION_ID: serving.s3_version_id or "",
    }


def _resource_name(endpoint_name: str, version: int) -> str:
    """`<endpoint>-v<N>-<UTC time with ms>`, at most 63 characters (SageMaker model/config names)."""
    suffix = f"-v{version}-{datetime.now(UTC).strftime('%Y%m%d%H%M%S%f')[:17]}"
    return re.sub(r"-+$", "", endpoint_name[: names.MAX_ENDPOINT_NAME - len(suffix)]) + suffix
