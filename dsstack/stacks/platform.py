"""Builds every stack of an environment from its config. Wiring only: constructs do the work."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import aws_cdk as cdk

from dsstack import naming
from dsstack.config import PlatformConfig
from dsstack.stacks.compute import ComputeStack
from dsstack.stacks.data import DataStack
from dsstack.stacks.hosting import HostingStack
from dsstack.stacks.metadata import MetadataStack
from dsstack.stacks.network import NetworkStack
from dsstack.stacks.operations import OperationsStack
from dsstack.stacks.workstations import WorkstationsStack


@dataclass
class TeamStacks:
    data: DataStack
    others: dict[str, cdk.Stack] = field(default_factory=dict)

    def all(self) -> list[cdk.Stack]:
        return [self.data, *self.others.values()]


@dataclass
class Platform:
    config: PlatformConfig
    network: NetworkStack
    teams: dict[str, TeamStacks]

    def stacks(self) -> list[cdk.Stack]:
        return [self.network, *(s for team in self.teams.values() for s in team.all())]


def build_platform(app: cdk.App, config: PlatformConfig) -> Platform:
    env = cdk.Environment(account=config.account, region=config.region)
    removal = cdk.RemovalPolicy.DESTROY if config.destroy_data_on_delete else cdk.RemovalPolicy.RETAIN
    if config.destroy_data_on_delete:
        print(f"WARNING: destroy_data_on_delete is true for environment {config.environment!r}: deleting a "
              "stack deletes its buckets, tables and keys. Use this for sandboxes only.", file=sys.stderr)

    network = NetworkStack(app, naming.network_stack_name(config.environment), config=config,
                           removal_policy=removal, env=env)
    cdk.Tags.of(network).add(naming.TAG_ENVIRONMENT, config.environment)

    def name(team: str, layer: str) -> str:
        return naming.team_stack_name(config.environment, team, layer)

    teams: dict[str, TeamStacks] = {}
    for team in config.teams:
        data = DataStack(app, name(team.name, "data"), config=config, team=team,
                         access_log_bucket=network.access_logs.bucket, removal_policy=removal, env=env)
        operations = OperationsStack(app, name(team.name, "operations"), config=config, team=team, data=data,
                                     env=env)
        compute = ComputeStack(app, name(team.name, "compute"), config=config, team=team, data=data,
                               network=network, env=env)
        stacks = TeamStacks(data=data, others={"operations": operations, "compute": compute})
        if team.metadata_service.enabled:
            metadata = MetadataStack(app, name(team.name, "metadata"), config=config, team=team, data=data,
                                     operations=operations, env=env)
            stacks.others["metadata"] = metadata
            # The compute stack publishes the team's Metaflow config; the service adds its keys.
            compute.add_metaflow_layer("metadata", metadata.metaflow_keys())
        if team.models:
            stacks.others["hosting"] = HostingStack(app, name(team.name, "hosting"), config=config, team=team,
                                                    network=network, data=data, operations=operations, env=env)
        if team.workstations:
            stacks.others["workstations"] = WorkstationsStack(
                app, name(team.name, "workstations"), config=config, team=team, network=network.network,
                data=data, compute=compute, env=env)
        for stack in stacks.all():
            cdk.Tags.of(stack).add(naming.TAG_ENVIRONMENT, config.environment)
            cdk.Tags.of(stack).add(naming.TAG_TEAM, team.name)
        teams[team.name] = stacks
    return Platform(config=config, network=network, teams=teams)
