"""AWS Batch resources as CloudFormation creates them (moto 5.2.5 half-implements them)."""

from __future__ import annotations

from typing import Any

from dsstack.local.patches import Patch

_ARN_ATTRIBUTES = {
    "AWS::Batch::ComputeEnvironment": "ComputeEnvironmentArn",
    "AWS::Batch::JobQueue": "JobQueueArn",
    "AWS::Batch::JobDefinition": "JobDefinitionArn",
}


def patch_batch_attributes_and_deletes() -> None:
    from moto.batch import models

    def arn_attribute(attribute: str):
        def has_cfn_attr(cls: Any, attr: str) -> bool:
            return attr == attribute

        def get_cfn_attribute(self: Any, attr: str) -> str:
            from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

            if attr == attribute:
                return self.arn
            raise UnformattedGetAttTemplateException()

        return classmethod(has_cfn_attr), get_cfn_attribute

    for model in (models.ComputeEnvironment, models.JobQueue, models.JobDefinition):
        has_attr, get_attr = arn_attribute(_ARN_ATTRIBUTES[model.cloudformation_type()])
        model.has_cfn_attr = has_attr
        model.get_cfn_attribute = get_attr

    def delete_compute_environment(cls: Any, resource_name: str, cloudformation_json: Any, account_id: str,
                                   region_name: str) -> None:
        backend = models.batch_backends[account_id][region_name]
        if backend.get_compute_environment(resource_name) is not None:
            backend.delete_compute_environment(resource_name)

    def delete_job_queue(cls: Any, resource_name: str, cloudformation_json: Any, account_id: str,
                         region_name: str) -> None:
        backend = models.batch_backends[account_id][region_name]
        if backend.get_job_queue(resource_name) is not None:
            backend.delete_job_queue(resource_name)

    models.ComputeEnvironment.delete_from_cloudformation_json = classmethod(delete_compute_environment)
    models.JobQueue.delete_from_cloudformation_json = classmethod(delete_job_queue)


PATCHES = [
    Patch("batch-cfn-attributes-and-delete",
          "AWS::Batch::ComputeEnvironment/JobQueue/JobDefinition answer no Fn::GetAtt (e.g. JobQueueArn fails "
          "the stack with \"'ComputeEnvironment' object has no attribute 'get_cfn_attribute'\"), and deleting "
          "the stack leaves compute environments and queues behind",
          "answers the *Arn attributes with the resource's ARN; deletes queues and environments with the stack",
          patch_batch_attributes_and_deletes),
]
