"""The example's endpoints in the embedded emulator: described by their outputs, promoted at runtime.

Runs before tests/e2e/test_platform.py's update/destroy tests (file order) on the shared deployment.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dsstack.hosting import names
from dsstack.hosting.promotion import Hosting, PromotionError
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
    hosting = Hosting("demo", "vision", session=deployment.session)
    assert [e.model for e in hosting.endpoints()] == ["churn"]
    assert hosting.live_version(hosting.endpoint("churn")) == 1
    # The ECS example is not in config/example.yaml until the emulator supports Application Auto Scaling
    # (AWS::ApplicationAutoScaling::ScalableTarget); its promotion is tested against moto in
    # tests/unit/test_hosting_promotion.py.


def test_promotion_updates_the_sagemaker_endpoint(deployment: Deployment) -> None:
    _register(deployment, "churn", 1)
    version = _register(deployment, "churn", 2)
    assert version >= 2  # the endpoint serves initial_version 1: this is a real change
    hosting = Hosting("demo", "vision", session=deployment.session)
    try:
        result = hosting.promote("churn", version, promoted_by="e2e")
    except PromotionError as error:
        if "UpdateEndpoint" in str(error) or ("not" in str(error).lower() and "implement" in str(error).lower()):
            pytest.xfail(f"the emulator (moto 5.2.5) has no UpdateEndpoint yet: {error}")
        raise
    assert result.changed and result.from_version == 1
    assert hosting.live_version(hosting.endpoint("churn")) == version
    endpoint = deployment.session.client("sagemaker").describe_endpoint(
        EndpointName=hosting.endpoint("churn").name)
    assert endpoint["EndpointConfigName"] == result.resource
    assert result.resource.startswith(names.endpoint_name("demo", "vision", "churn") + f"-v{version}-")
