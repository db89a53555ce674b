"""cdk-nag rule packs and the one way dsstack acknowledges a finding.

cdk-nag 3.x runs as a CDK validation plugin. An acknowledgement is attached to one construct (the
narrowest that carries the finding) with a reason specific to that construct; `acknowledgements(app)`
lists them all so a test can show every one in review.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import aws_cdk as cdk
import cdk_nag
from constructs import Construct, IConstruct

# Pack name -> the pack's constructor (NagPack itself is abstract: only the concrete packs can be made).
RULE_PACKS: dict[str, Callable[[IConstruct], cdk_nag.NagPack]] = {
    "AwsSolutions": cdk_nag.AwsSolutionsChecks,
    "NIST.800.53.R5": cdk_nag.NIST80053R5Checks,
    "HIPAA.Security": cdk_nag.HIPAASecurityChecks,
    "Serverless": cdk_nag.ServerlessChecks,
}

MIN_REASON_LENGTH = 40


@dataclass(frozen=True)
class Acknowledgement:
    path: str
    rule: str
    reason: str


def add_rule_packs(app: cdk.App, packs: list[str] | None = None) -> None:
    """Run the given cdk-nag packs (default: all four) over the whole app at synth."""
    for name in packs if packs is not None else list(RULE_PACKS):
        cdk.Validations.of(app).add_plugins(RULE_PACKS[name](app))


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding on one construct, with a reason a reviewer can check.

    Prefer the L1 resource (`construct.node.default_child`) over a whole L2 subtree so the
    acknowledgement does not hide the same finding on a sibling added later.
    """
    if len(reason) < MIN_REASON_LENGTH:
        raise ValueError(f"acknowledgement of {rule} on {construct.node.path} needs a specific reason "
                         f"(at least {MIN_REASON_LENGTH} characters), got {reason!r}")
    pack = rule_pack(rule)
    cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=f"{pack}::{rule}", reason=reason))


def rule_pack(rule: str) -> str:
    """'NIST.800.53.R5-S3BucketLoggingEnabled' -> 'NIST.800.53.R5' (the plugin name cdk-nag reports)."""
    for pack in RULE_PACKS:
        if rule.startswith(f"{pack}-"):
            return pack
    raise ValueError(f"{rule!r} is not a rule of the packs dsstack runs ({', '.join(RULE_PACKS)})")


def acknowledge_all(construct: IConstruct, rules: dict[str, str]) -> None:
    for rule, reason in rules.items():
        acknowledge(construct, rule, reason)


def acknowledgements(root: Construct) -> list[Acknowledgement]:
    """Every acknowledgement recorded under `root`, in construct-tree order."""
    key = cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
    found: list[Acknowledgement] = []
    for node in root.node.find_all():
        for entry in node.node.metadata:
            if entry.type != key:
                continue
            # {"<plugin>::<rule>": "<reason>", ...}; annotation acknowledgements are not cdk-nag's.
            for rule_id, reason in dict(entry.data).items():
                plugin, _, rule = str(rule_id).partition("::")
                if plugin in RULE_PACKS:
                    found.append(Acknowledgement(node.node.path, rule, str(reason)))
    return found
