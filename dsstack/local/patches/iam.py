"""IAM resources deleted with their stack as CloudFormation does it (moto 5.2.5 leaves them attached)."""

from __future__ import annotations

import contextlib
from typing import Any

from dsstack.local.patches import Patch, classmethod_function, set_classmethod


def patch_managed_policy_deletes() -> None:
    from moto.iam import models
    from moto.utilities.utils import get_partition

    def backend_of(account_id: str, region_name: str) -> Any:
        return models.iam_backends[account_id][get_partition(region_name)]

    def delete_managed_policy(cls: Any, resource_name: str, cloudformation_json: dict[str, Any], account_id: str,
                              region_name: str) -> None:
        backend = backend_of(account_id, region_name)
        policy = backend.managed_policies.get(resource_name)
        if policy is None:
            return
        for role in backend.roles.values():
            if resource_name in role.managed_policies:
                backend.detach_role_policy(resource_name, role.name)
        with contextlib.suppress(Exception):  # attached to a user or group outside the stack: AWS refuses too
            backend.delete_policy(resource_name)

    original_role_delete = classmethod_function(models.Role, "delete_from_cloudformation_json")

    def delete_role(cls: Any, resource_name: str, cloudformation_json: dict[str, Any], account_id: str,
                    region_name: str) -> None:
        backend = backend_of(account_id, region_name)
        for role in list(backend.roles.values()):
            if role.name == resource_name:
                for arn in list(role.managed_policies):
                    backend.detach_role_policy(arn, role.name)
        original_role_delete(cls, resource_name, cloudformation_json, account_id, region_name)

    set_classmethod(models.ManagedPolicy, "delete_from_cloudformation_json", delete_managed_policy)
    set_classmethod(models.Role, "delete_from_cloudformation_json", delete_role)


PATCHES = [
    Patch("iam-managed-policy-deletes",
          "AWS::IAM::ManagedPolicy has no CloudFormation delete and deleting an AWS::IAM::Role from a stack does "
          "not detach its managed policies, so every stack with a customer-managed policy ends DELETE_FAILED "
          "(DeleteConflict: must detach all policies first)",
          "deletes the stack's managed policies after detaching them, and detaches a role's managed policies "
          "before deleting it (CloudFormation removes the attachments first)",
          patch_managed_policy_deletes),
]
