"""AWS Batch resources as CloudFormation creates them (moto 5.2.5 half-implements them)."""

from __future__ import annotations

from typing import Any

from dsstack.local.patches import Patch, set_classmethod, set_method

_ARN_ATTRIBUTES = {
    "AWS::Batch::ComputeEnvironment": "ComputeEnvironmentArn",
    "AWS::Batch::JobQueue": "JobQueueArn",
    "AWS::Batch::JobDefinition": "JobDefinitionArn",
}


def patch_batch_attributes_and_deletes() -> None:
    from moto.batch import models

    def answer_arn_attribute(model: type, attribute: str) -> None:
        def has_cfn_attr(cls: Any, attr: str) -> bool:
            return attr == attribute

        def get_cfn_attribute(self: Any, attr: str) -> str:
            from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

            if attr == attribute:
                return self.arn
            raise UnformattedGetAttTemplateException()

        set_classmethod(model, "has_cfn_attr", has_cfn_attr)
        set_method(model, "get_cfn_attribute", get_cfn_attribute)

    for model in (models.ComputeEnvironment, models.JobQueue, models.JobDefinition):
        answer_arn_attribute(model, _ARN_ATTRIBUTES[model.cloudformation_type()])

    def delete_compute_environment(cls: Any, resource_name: str, cloudformation_json: dict[str, Any], account_id: str,
                                   region_name: str) -> None:
        backend = models.batch_backends[account_id][region_name]
        if backend.get_compute_environment(resource_name) is not None:
            backend.delete_compute_environment(resource_name)

    def delete_job_queue(cls: Any, resource_name: str, cloudformation_json: dict[str, Any], account_id: str,
                         region_name: str) -> None:
        backend = models.batch_backends[account_id][region_name]
        if backend.get_job_queue(resource_name) is not None:
            backend.delete_job_queue(resource_name)

    set_classmethod(models.ComputeEnvironment, "delete_from_cloudformation_json", delete_compute_environment)
    set_classmethod(models.JobQueue, "delete_from_cloudformation_json", delete_job_queue)


PATCHES = [
    Patch("batch-cfn-attributes-and-delete",
          "AWS::Batch::ComputeEnvironment/JobQueue/JobDefinition answer no Fn::GetAtt (e.g. JobQueueArn fails "
          "the stack with \"'ComputeEnvironment' object has no attribute 'get_cfn_attribute'\"), and deleting "
          "the stack leaves compute environments and queues behind",
          "answers the *Arn attributes with the resource's ARN; deletes queues and environments with the stack",
          patch_batch_attributes_and_deletes),
]
