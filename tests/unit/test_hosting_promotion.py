"""Promotion against moto: SageMaker (blue/green UpdateEndpoint) and ECS (task definition revision)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import boto3
import pytest
from dsstack_catalog import Catalog

sys.path.insert(0, str(Path(__file__).parent))
import test_hosting_support as support
from test_hosting_support import BUCKET, CATALOG_TABLE, ECS_MODEL, ENV, SM_MODEL, TEAM, register_version

from dsstack.hosting import names
from dsstack.hosting.promotion import (
    ConcurrentPromotionError,
    Hosting,
    PromotionError,
    UnknownVersionError,
)

# The support module's fixtures, used by name below.
aws, deployed, atomic_moto_requests = support.aws, support.deployed, support.atomic_moto_requests


def hosting() -> Hosting:
    return Hosting(ENV, TEAM, session=boto3.session.Session())


def sagemaker_state(endpoint: str) -> dict[str, Any]:
    sm = boto3.client("sagemaker")
    config_name = sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    variant = sm.describe_endpoint_config(EndpointConfigName=config_name)["ProductionVariants"][0]
    model = sm.describe_model(ModelName=variant["ModelName"])
    return {"config": config_name, "variant": variant, "container": model["PrimaryContainer"],
            "models": len(sm.list_models()["Models"]), "configs": len(sm.list_endpoint_configs()["EndpointConfigs"])}


def ecs_env(service: str) -> dict[str, str]:
    ecs = boto3.client("ecs")
    arn = ecs.describe_services(cluster="dsstack-demo-vision-cluster", services=[service])["services"][0][
        "taskDefinition"]
    task = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    return {e["name"]: e["value"] for e in task["containerDefinitions"][0]["environment"]} | {"arn": arn}


def test_promote_sagemaker_creates_a_config_and_updates_the_endpoint_blue_green(deployed):
    target = deployed["versions"][SM_MODEL][1]
    result = hosting().promote(SM_MODEL, 2, promoted_by="alice")
    state = sagemaker_state(deployed["endpoint"])
    assert result.changed and (result.from_version, result.to_version) == (1, 2)
    assert state["config"] == result.resource != "initial-config"
    assert state["container"]["ModelDataUrl"] == f"s3://{BUCKET}/{target.object.key}"
    assert state["container"]["Environment"][names.ENV_MODEL_VERSION] == "2"
    assert state["container"]["Environment"][names.ENV_MODEL_S3_VERSION_ID] == target.object.s3_version_id
    assert state["variant"]["VariantName"] == names.VARIANT_NAME  # blue/green needs the same variant name
    assert state["variant"]["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    (call,) = deployed["update_calls"]
    policy = call["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"]["Type"] == "CANARY"
    assert call["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"] == [
        {"AlarmName": "dsstack-demo-vision-churn-5xx"}, {"AlarmName": "dsstack-demo-vision-churn-latency"}]
    promotion = Catalog(CATALOG_TABLE).current_promotion(SM_MODEL)
    assert (promotion.to_version, promotion.from_version, promotion.promoted_by) == (2, 1, "alice")
    assert hosting().live_version(hosting().endpoint(SM_MODEL)) == 2


def test_promote_again_moves_on_from_the_promoted_version(deployed):
    hosting().promote(SM_MODEL, 2, promoted_by="alice")
    result = hosting().promote(SM_MODEL, 3, promoted_by="bob")
    assert (result.from_version, result.to_version) == (2, 3)
    assert sagemaker_state(deployed["endpoint"])["container"]["Environment"][names.ENV_MODEL_VERSION] == "3"
    history = [(p.from_version, p.to_version, p.promoted_by) for p in Catalog(CATALOG_TABLE).promotion_history(SM_MODEL)]
    assert history == [(2, 3, "bob"), (1, 2, "alice")]
    # Promoting back (a manual rollback) is a promotion like any other.
    assert hosting().promote(SM_MODEL, 1, promoted_by="bob").to_version == 1
    assert sagemaker_state(deployed["endpoint"])["container"]["Environment"][names.ENV_MODEL_VERSION] == "1"
    # Promoting the version already served changes nothing.
    assert hosting().promote(SM_MODEL, 1, promoted_by="bob").changed is False
    assert len(deployed["update_calls"]) == 3


@pytest.mark.parametrize("model", [SM_MODEL, ECS_MODEL])
def test_unknown_version_is_a_clear_error_and_leaves_the_endpoint_untouched(deployed, model):
    before = sagemaker_state(deployed["endpoint"]) if model == SM_MODEL else ecs_env(deployed["service"])
    with pytest.raises(UnknownVersionError) as error:
        hosting().promote(model, 9, promoted_by="alice")
    message = str(error.value)
    assert "has no version 9" in message and "latest versions: 3, 2, 1" in message and "not changed" in message
    after = sagemaker_state(deployed["endpoint"]) if model == SM_MODEL else ecs_env(deployed["service"])
    assert after == before
    assert Catalog(CATALOG_TABLE).current_promotion(model) is None
    assert deployed["update_calls"] == []


def test_unknown_model_names_the_deployed_ones(deployed):
    with pytest.raises(PromotionError, match=r"no deployed endpoint for model 'nope' \(deployed: churn, dashboard\)"):
        hosting().promote("nope", 1)


def test_a_version_whose_key_was_overwritten_is_refused_for_sagemaker(deployed):
    """SageMaker's ModelDataUrl cannot pin an S3 version: promoting an overwritten key would load another object."""
    old = deployed["versions"][SM_MODEL][1]
    boto3.client("s3").put_object(Bucket=BUCKET, Key=old.object.key, Body=b"newer")
    with pytest.raises(PromotionError, match="has since been overwritten"):
        hosting().promote(SM_MODEL, 2, promoted_by="alice")
    assert sagemaker_state(deployed["endpoint"])["config"] == "initial-config"
    assert Catalog(CATALOG_TABLE).current_promotion(SM_MODEL) is None


def test_failed_endpoint_update_is_compensated_in_the_catalog(deployed, monkeypatch):
    from moto.sagemaker.models import SageMakerModelBackend

    def fail(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("simulated UpdateEndpoint failure")

    monkeypatch.setattr(SageMakerModelBackend, "update_endpoint", fail)
    with pytest.raises(PromotionError, match="still serves version 1"):
        hosting().promote(SM_MODEL, 2, promoted_by="alice")
    assert sagemaker_state(deployed["endpoint"])["config"] == "initial-config"
    current = Catalog(CATALOG_TABLE).current_promotion(SM_MODEL)
    assert (current.to_version, current.from_version) == (1, 2) and "failed" in current.note


def test_promote_ecs_registers_a_revision_and_rolls_the_service(deployed):
    target = deployed["versions"][ECS_MODEL][2]
    result = hosting().promote(ECS_MODEL, 3, promoted_by="alice")
    env = ecs_env(deployed["service"])
    assert env["arn"] == result.resource != deployed["initial_task"]
    assert result.resource.endswith(":2")  # a new revision of the same family
    assert env[names.ENV_MODEL_VERSION] == "3"
    assert env[names.ENV_MODEL_S3_URI] == f"s3://{BUCKET}/{target.object.key}"
    assert env[names.ENV_MODEL_S3_VERSION_ID] == target.object.s3_version_id
    service = boto3.client("ecs").describe_services(cluster="dsstack-demo-vision-cluster",
                                                     services=[deployed["service"]])["services"][0]
    breaker = service.get("deploymentConfiguration", {}).get("deploymentCircuitBreaker")
    assert breaker == {"enable": True, "rollback": True}
    assert hosting().promote(ECS_MODEL, 2, promoted_by="bob").from_version == 3
    assert ecs_env(deployed["service"])[names.ENV_MODEL_VERSION] == "2"


@pytest.mark.parametrize("model", [SM_MODEL, ECS_MODEL])
def test_concurrent_promotions_one_wins_and_nothing_is_half_done(deployed, atomic_moto_requests, monkeypatch, model):
    """Four promotions to different versions race from the same starting point: exactly one wins, the
    endpoint serves the winner's version and the catalog says so; the losers changed nothing."""
    register_version(model, 4)
    contenders = [2, 3, 4, 2]
    barrier = threading.Barrier(len(contenders))
    original = Hosting.live_version

    def live_version_then_wait(self: Hosting, endpoint: Any) -> int | None:
        value = original(self, endpoint)
        barrier.wait(timeout=10)  # everyone has read "serving 1" before anyone writes
        return value

    monkeypatch.setattr(Hosting, "live_version", live_version_then_wait)
    outcomes: list[Any] = [None] * len(contenders)

    def run(i: int) -> None:
        try:
            outcomes[i] = hosting().promote(model, contenders[i], promoted_by=f"user{i}")
        except Exception as error:  # collected and asserted below
            outcomes[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(contenders))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    winners = [o for o in outcomes if not isinstance(o, Exception)]
    losers = [o for o in outcomes if isinstance(o, Exception)]
    assert len(winners) == 1, outcomes
    assert all(isinstance(e, ConcurrentPromotionError) for e in losers), losers
    monkeypatch.setattr(Hosting, "live_version", original)
    live = hosting().live_version(hosting().endpoint(model))
    current = Catalog(CATALOG_TABLE).current_promotion(model)
    assert live == current.to_version == winners[0].to_version
    assert len(list(Catalog(CATALOG_TABLE).promotion_history(model))) == 1
    if model == SM_MODEL:
        assert len(deployed["update_calls"]) == 1
        assert sagemaker_state(deployed["endpoint"])["models"] == 2  # the initial model + the winner's
    else:
        revisions = boto3.client("ecs").list_task_definitions(familyPrefix="dsstack-demo-vision-dashboard")
        assert len(revisions["taskDefinitionArns"]) == 2
