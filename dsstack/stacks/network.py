"""`<env>-network`: the shared VPC and access-log bucket of an environment."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from dsstack.config import PlatformConfig
from dsstack.constructs.network import AccessLogBucket, Network


class NetworkStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: PlatformConfig,
                 removal_policy: cdk.RemovalPolicy, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, description=f"dsstack {config.environment}: shared network",
                         **kwargs)
        # Stateful (logs): construct id pinned by tests.
        self.access_logs = AccessLogBucket(self, "AccessLogs", removal_policy=removal_policy)
        self.network = Network(self, "Network", settings=config.network, flow_log_bucket=self.access_logs.bucket)
        self.vpc = self.network.vpc

        cdk.CfnOutput(self, "VpcId", value=self.vpc.vpc_id, description="VPC of the environment")
        cdk.CfnOutput(self, "EgressMode", value=config.network.egress, description="Network egress mode")
        cdk.CfnOutput(self, "AccessLogBucketName", value=self.access_logs.bucket.bucket_name,
                      description="Server access logs and VPC flow logs")
