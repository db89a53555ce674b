"""Every name dsstack derives from the config lives here, so stacks, the CLI and tests agree."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dsstack.config import PlatformConfig, TeamConfig

TAG_ENVIRONMENT = "dsstack:environment"
TAG_TEAM = "dsstack:team"


def network_stack_name(environment: str) -> str:
    return f"{environment}-network"


def team_stack_name(environment: str, team: str, layer: str) -> str:
    """`<env>-<team>-<layer>`, e.g. demo-vision-data."""
    return f"{environment}-{team}-{layer}"


def team_layers(team: TeamConfig) -> list[str]:
    """The per-team stacks a team's config produces, in deployment order.

    Keep in step with dsstack/stacks/platform.py (a test compares them with what synthesizes).
    """
    layers = ["data", "operations", "compute"]
    if team.metadata_service.enabled:
        layers.append("metadata")
    if team.models:
        layers.append("hosting")
    if team.workstations:
        layers.append("workstations")
    return layers


def planned_stack_names(config: PlatformConfig) -> list[str]:
    """Stack names the config produces, without synthesizing (no jsii, no Node)."""
    names = [network_stack_name(config.environment)]
    for team in config.teams:
        names += [team_stack_name(config.environment, team.name, layer) for layer in team_layers(team)]
    return names


def ssm_prefix(environment: str, team: str) -> str:
    """Root of a team's SSM parameters: /dsstack/<env>/<team>."""
    return f"/dsstack/{environment}/{team}"


def ssm_parameter_name(environment: str, team: str, key: str) -> str:
    return f"{ssm_prefix(environment, team)}/{key}"


def resource_prefix(environment: str, team: str) -> str:
    """Prefix for names AWS needs us to choose (state machines, roles with path conditions)."""
    return f"dsstack-{environment}-{team}"


def state_machine_prefix(environment: str, team: str) -> str:
    """METAFLOW_SFN_STATE_MACHINE_PREFIX: Metaflow names a state machine `<prefix>_<flow>`."""
    return resource_prefix(environment, team)


def state_machine_name_prefix(environment: str, team: str) -> str:
    """What every one of the team's state machine names starts with, for IAM and EventBridge conditions.

    The `_` Metaflow adds is part of it, so team `vision` never matches team `vision2`'s machines.
    """
    return f"{state_machine_prefix(environment, team)}_"


# S3 layout of a team's datastore bucket.
METAFLOW_PREFIX = "metaflow"  # METAFLOW_DATASTORE_SYSROOT_S3 = s3://<bucket>/metaflow
DATATOOLS_PREFIX = "data"  # METAFLOW_DATATOOLS_S3ROOT = s3://<bucket>/data
MODELS_PREFIX = "models"  # models/<name>/... : registered model versions
