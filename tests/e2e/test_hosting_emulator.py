"""The example's endpoints in the embedded emulator: described by their outputs, promoted at runtime.

Runs before tests/e2e/test_platform.py's update/destroy tests (file order) on the shared deployment.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from dsstack.hosting import names
from dsstack.hosting.promotion import Hosting
from tests.e2e.conftest import Deployment

pytestmark = pytest.mark.e2e
HOSTING = "demo-vision-hosting"


def _register(deployment: Deployment, model: str, run: int) -> int:
    """Upload a model object and give it a catalog number (directly: independent of the versioning glue)."""
    from dsstack_catalog import Catalog, ObjectVersion

    bucket = deployment.bucket("vision")
    key = f"models/{model}/run-{run}/model.tar.gz"
    put = deployment.session.client("s3").put_object(Bucket=bucket, Key=key, Body=f"{model} {run}".encode())
    table = deployment.session.client("ssm").get_parameter(Name="/dsstack/demo/vision/tables/catalog")["Parameter"][
        "Value"]
    catalog = Catalog(table, client=deployment.session.client("dynamodb"))
    existing = [v for v in catalog.model_versions(model) if v.object.key == key]
    if existing:
        return existing[0].version
    obj = ObjectVersion(bucket=bucket, key=key, s3_version_id=put["VersionId"], sequencer=f"{run:016X}", size=10,
                        etag=put["ETag"].strip('"'), created_at=datetime.now(UTC), kind="model")
    return catalog.register_model_version(model, obj).version.version


def test_endpoints_exist_and_are_described_by_their_outputs(deployment: Deployment) -> None:
    outputs = deployment.outputs()[HOSTING]
    assert outputs["ModelsChurnKind"] == "sagemaker-serverless"
    sm = deployment.session.client("sagemaker")
    endpoint = sm.describe_endpoint(EndpointName=outputs["ModelsChurnEndpointName"])
    assert endpoint["EndpointArn"] == outputs["ModelsChurnArn"]
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    assert config["ProductionVariants"][0]["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    assert endpoint["EndpointName"] == names.endpoint_name("demo", "vision", "churn")

    assert outputs["ModelsDashboardKind"] == "ecs"
    ecs = deployment.session.client("ecs")
    (service,) = ecs.describe_services(cluster=outputs["ModelsDashboardCluster"],
                                       services=[outputs["ModelsDashboardEndpointName"]])["services"]
    assert service["serviceArn"] == outputs["ModelsDashboardArn"]
    assert service["desiredCount"] == 0 and service["launchType"] == "FARGATE"  # min_tasks 0: only the ALB costs
    (target,) = deployment.session.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="ecs", ResourceIds=[f"service/{outputs['ModelsDashboardCluster']}/{service['serviceName']}"]
    )["ScalableTargets"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (0, 2)
    (balancer,) = deployment.session.client("elbv2").describe_load_balancers()["LoadBalancers"]
    assert balancer["Scheme"] == "internal" and outputs["ModelsDashboardUrl"] == f"http://{balancer['DNSName']}"

    hosting = Hosting("demo", "vision", session=deployment.session)
    assert sorted(e.model for e in hosting.endpoints()) == ["churn", "dashboard"]
    assert hosting.live_version(hosting.endpoint("churn")) == 1
    assert hosting.live_version(hosting.endpoint("dashboard")) == 1


def test_promotion_updates_the_sagemaker_endpoint(deployment: Deployment) -> None:
    _register(deployment, "churn", 1)
    version = _register(deployment, "churn", 2)
    assert version >= 2  # the endpoint serves initial_version 1: this is a real change
    hosting = Hosting("demo", "vision", session=deployment.session)
    result = hosting.promote("churn", version, promoted_by="e2e")
    assert result.changed and result.from_version == 1
    assert hosting.live_version(hosting.endpoint("churn")) == version
    endpoint = deployment.session.client("sagemaker").describe_endpoint(
        EndpointName=hosting.endpoint("churn").name)
    assert endpoint["EndpointConfigName"] == result.resource
    assert result.resource.startswith(names.endpoint_name("demo", "vision", "churn") + f"-v{version}-")
    # Blue/green with rollback on the endpoint's own alarms, as declared in the template.
    rollback = endpoint["LastDeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    assert {a["AlarmName"] for a in rollback} == set(hosting.endpoint("churn").alarms)
    promotion = hosting.catalog().current_promotion("churn")
    assert (promotion.to_version, promotion.from_version, promotion.promoted_by) == (version, 1, "e2e")


def test_promotion_updates_the_ecs_service(deployment: Deployment) -> None:
    _register(deployment, "dashboard", 1)
    version = _register(deployment, "dashboard", 2)
    hosting = Hosting("demo", "vision", session=deployment.session)
    endpoint = hosting.endpoint("dashboard")
    ecs = deployment.session.client("ecs")
    before = ecs.describe_services(cluster=endpoint.cluster, services=[endpoint.name])["services"][0]
    result = hosting.promote("dashboard", version, promoted_by="e2e")
    assert result.changed and result.from_version == 1
    (after,) = ecs.describe_services(cluster=endpoint.cluster, services=[endpoint.name])["services"]
    assert after["taskDefinition"] == result.resource != before["taskDefinition"]
    assert hosting.live_version(endpoint) == version
    task = ecs.describe_task_definition(taskDefinition=result.resource)["taskDefinition"]
    old = ecs.describe_task_definition(taskDefinition=before["taskDefinition"])["taskDefinition"]
    # Same family, roles, size and image: only the model coordinates changed.
    assert task["family"] == old["family"] and task["revision"] > old["revision"]
    assert (task["taskRoleArn"], task["cpu"], task["memory"]) == (old["taskRoleArn"], old["cpu"], old["memory"])
    assert [c["image"] for c in task["containerDefinitions"]] == [c["image"] for c in old["containerDefinitions"]]


def test_a_later_deploy_keeps_the_promoted_versions(deployment: Deployment) -> None:
    hosting = Hosting("demo", "vision", session=deployment.session)
    promoted = {model: hosting.catalog().current_promotion(model).to_version for model in ("churn", "dashboard")}
    assert all(version >= 2 for version in promoted.values()), promoted  # the promotion tests above ran
    # The synth inside this deploy reads the catalog (serving.py): the template now names the promoted versions.
    result = deployment.redeploy()
    assert result.report is not None and not result.report.problems
    assert result.report.stacks["demo-vision-hosting"]["status"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE")
    body = deployment.session.client("cloudformation").get_template(StackName=HOSTING)["TemplateBody"]
    resources = (json.loads(body) if isinstance(body, str) else body)["Resources"]
    # The deploy really rolled the template forward (not a no-op that left the promoted resources alone).
    deployed = {}
    for resource in resources.values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::SageMaker::Model":
            env = props["PrimaryContainer"]["Environment"]
        elif resource["Type"] == "AWS::ECS::TaskDefinition":
            env = {e["Name"]: e["Value"] for e in props["ContainerDefinitions"][0]["Environment"]}
        else:
            continue
        deployed[env[names.ENV_MODEL_NAME]] = int(env[names.ENV_MODEL_VERSION])
    assert deployed == promoted
    hosting = Hosting("demo", "vision", session=deployment.session)
    assert {model: hosting.live_version(hosting.endpoint(model)) for model in promoted} == promoted
    listed = deployment.cli("endpoints", "--team", "vision")
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line.split() for line in listed.stdout.splitlines() if line.split()}
    for model, version in promoted.items():
        assert str(version) in rows[model], listed.stdout
