"""`<env>-<team>-workstations`: one EC2 workstation per data scientist (only when the team has any).

Stateless except for the users' home volumes, which are RETAIN and pinned by tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aws_cdk as cdk
from constructs import Construct

from dsstack.config import PlatformConfig, TeamConfig
from dsstack.constructs.network import Network
from dsstack.constructs.workstation import DataScientistRole, Workstation
from dsstack.stacks.data import DataStack

if TYPE_CHECKING:
    from dsstack.stacks.compute import ComputeStack


def _construct_id(user: str) -> str:
    """'ann-lee' -> 'AnnLee' (user names are validated: letters, digits, single hyphens)."""
    return "".join(part.capitalize() for part in user.split("-"))


class WorkstationsStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: PlatformConfig, team: TeamConfig,
                 network: Network, data: DataStack, compute: ComputeStack | None, **kwargs: Any) -> None:
        super().__init__(scope, construct_id,
                         description=f"dsstack {config.environment}/{team.name}: data scientists' workstations",
                         **kwargs)
        if not team.workstations:
            raise ValueError(f"team {team.name!r} has no workstations; do not create {construct_id}")
        # Without a compute stack (none configured yet) the role simply cannot submit or schedule.
        job_queue_arns = [q.job_queue_arn for q in compute.batch.job_queues.values()] if compute else []
        passable_role_arns = [compute.batch.job_role.role_arn, compute.batch.execution_role.role_arn,
                              compute.orchestration.step_functions_role.role_arn,
                              compute.orchestration.events_role.role_arn] if compute else []
        # The role reads the bucket name from the data stack's SSM coordinate: deploy after it.
        self.add_stack_dependency(data)
        self.role = DataScientistRole(
            self, "DataScientist", environment=config.environment, team=team.name, key=data.key, job_queue_arns=job_queue_arns, passable_role_arns=passable_role_arns,
        ).role
        cdk.CfnOutput(self, "DataScientistRoleArn", value=self.role.role_arn,
                      description="Role of the team's workstations (the data-scientist role)")
        self.workstations: dict[str, Workstation] = {}
        for settings in team.workstations:
            cid = _construct_id(settings.user)
            workstation = Workstation(
                self, cid, settings=settings, environment=config.environment, team=team.name,
                vpc=network.vpc, subnets=network.workload_subnets, key=data.key, role=self.role,
            )
            self.workstations[settings.user] = workstation
            cdk.CfnOutput(self, f"{cid}InstanceId", value=workstation.instance.instance_id,
                          description=f"Workstation of {settings.user}")
            cdk.CfnOutput(self, f"{cid}HomeVolumeId", value=workstation.home_volume.ref,
                          description=f"Home volume of {settings.user} (RETAIN)")
            cdk.CfnOutput(self, f"{cid}AccessPolicyArn", value=workstation.access_policy.managed_policy_arn,
                          description=f"Attach to {settings.user}'s identity: session/start/stop of this workstation")
