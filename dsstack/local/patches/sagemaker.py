"""SageMaker endpoints as the hosting layer and `dsstack models promote` use them."""

from __future__ import annotations

from typing import Any

from dsstack.local.patches import Patch, set_method

# CloudFormation's name property per SageMaker type: moto 5.2.5 declares none, so it generates a name
# even when the template gives one.
_NAME_PROPERTIES = {
    "FakeEndpoint": "EndpointName",
    "FakeEndpointConfig": "EndpointConfigName",
    "Model": "ModelName",
}


def patch_sagemaker_endpoint_names_and_update() -> None:
    from moto.cloudformation import parsing
    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow
    from moto.sagemaker import models
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.responses import SageMakerResponse

    for class_name, name_property in _NAME_PROPERTIES.items():
        getattr(models, class_name).cloudformation_name_type = staticmethod(lambda p=name_property: p)
    parsing.get_name_type_map.cache_clear()  # lru_cache'd from the classes above

    def update_endpoint(self: Any, endpoint_name: str, endpoint_config_name: str,
                        deployment_config: dict[str, Any] | None) -> Any:
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is None:
            arn = models.FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
            raise ValidationError(message=f"Could not find endpoint '{arn}'.")
        config = self.describe_endpoint_config(endpoint_config_name)  # ValidationError when unknown
        # AWS shifts traffic in the background (Updating -> InService); the emulator has no containers to
        # shift, so the endpoint serves the new config at once and keeps the policy it was asked to use.
        endpoint.endpoint_config_name = endpoint_config_name
        endpoint.production_variants = endpoint._process_production_variants(config["ProductionVariants"])
        endpoint.data_capture_config = config.get("DataCaptureConfig")
        endpoint.last_modified_time = utcnow()
        if deployment_config:  # DescribeEndpoint answers LastDeploymentConfig, as in AWS
            endpoint.last_deployment_config = deployment_config
        return endpoint

    def response_update_endpoint(self: Any) -> ActionResult:
        endpoint = self.sagemaker_backend.update_endpoint(
            self._get_param("EndpointName"), self._get_param("EndpointConfigName"),
            self._get_param("DeploymentConfig"))
        return ActionResult({"EndpointArn": endpoint.arn})

    set_method(models.SageMakerModelBackend, "update_endpoint", update_endpoint)
    set_method(SageMakerResponse, "update_endpoint", response_update_endpoint)


PATCHES = [
    Patch("sagemaker-endpoint-names-and-update",
          "AWS::SageMaker::Endpoint/EndpointConfig/Model ignore EndpointName/EndpointConfigName/ModelName (a "
          "generated name is used instead), and UpdateEndpoint is not implemented, so `dsstack models promote` "
          "cannot move an endpoint to a new config",
          "honours the name properties; UpdateEndpoint moves the endpoint to the new config at once (unknown "
          "endpoint or config is AWS's ValidationException) and keeps the DeploymentConfig it was sent",
          patch_sagemaker_endpoint_names_and_update),
]
