"""Typed access to the CloudFormation (L1) resource behind a CDK (L2) construct.

`construct.node.default_child` is typed `IConstruct | None` by the constructs library; dsstack reads it
to override properties, set dependencies and attach cdk-nag acknowledgements, and always expects a
resource. `cfn_resource` says so once, and fails with the construct's path if the child is missing.
"""

from __future__ import annotations

from typing import TypeVar, overload

import aws_cdk as cdk
from constructs import IConstruct

_Resource = TypeVar("_Resource", bound=cdk.CfnResource)


@overload
def cfn_resource(construct: IConstruct) -> cdk.CfnResource: ...


@overload
def cfn_resource(construct: IConstruct, kind: type[_Resource]) -> _Resource: ...


def cfn_resource(construct: IConstruct, kind: type[cdk.CfnResource] = cdk.CfnResource) -> cdk.CfnResource:
    """`construct.node.default_child`, checked to be a `kind` (e.g. `ssm.CfnParameter`)."""
    child = construct.node.default_child
    if not isinstance(child, kind):
        raise TypeError(f"{construct.node.path}: expected a {kind.__name__} as default child, got {child!r}")
    return child
