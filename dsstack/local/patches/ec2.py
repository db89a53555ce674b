"""EC2 fixes for the network stack: flow logs to an S3 prefix, and deleting a VPC with its stack."""

from __future__ import annotations

from typing import Any

from moto.ec2.models import flow_logs

from dsstack.local.patches import Patch


def patch_flow_log_s3_prefix() -> None:
    backend_class = flow_logs.FlowLogsBackend
    original = backend_class.create_flow_logs

    def create_flow_logs(self: Any, resource_type: str, resource_ids: list[str], traffic_type: str,
                         deliver_logs_permission_arn: str, log_destination_type: str, log_destination: str,
                         log_group_name: str, log_format: str, max_aggregation_interval: int) -> Any:
        if log_destination_type != "s3" or not log_destination:
            return original(self, resource_type, resource_ids, traffic_type, deliver_logs_permission_arn,
                            log_destination_type, log_destination, log_group_name, log_format,
                            max_aggregation_interval)
        # moto looks up "bucket/prefix/" as a bucket name: check the bucket, keep the full destination.
        bucket_arn = log_destination.split("/", 1)[0]
        created, unsuccessful = original(self, resource_type, resource_ids, traffic_type,
                                         deliver_logs_permission_arn, log_destination_type, bucket_arn,
                                         log_group_name, log_format, max_aggregation_interval)
        for flow_log in created:
            flow_log.log_destination = log_destination
        return created, unsuccessful

    backend_class.create_flow_logs = create_flow_logs

    original_cfn = flow_logs.FlowLogs.create_from_cloudformation_json.__func__

    def create_from_cloudformation_json(cls: Any, resource_name: str, cloudformation_json: Any, account_id: str,
                                        region_name: str, **kwargs: Any) -> Any:
        from moto.ec2.models import ec2_backends

        props = cloudformation_json["Properties"]
        backend = ec2_backends[account_id][region_name]
        # moto indexes [0] of the created list: an unsuccessful creation was an IndexError.
        _, unsuccessful = backend.create_flow_logs(
            props.get("ResourceType"), [props.get("ResourceId")], props.get("TrafficType"),
            props.get("DeliverLogsPermissionArn"), props.get("LogDestinationType"), props.get("LogDestination"),
            props.get("LogGroupName"), props.get("LogFormat"), props.get("MaxAggregationInterval"))
        if unsuccessful:
            raise ValueError(f"flow log not created: {unsuccessful[0][2]}")
        created = [f for f in backend.flow_logs.values() if f.resource_id == props.get("ResourceId")][-1]
        for tag in props.get("Tags", []):
            created.add_tag(tag["Key"], tag["Value"])
        return created

    flow_logs.FlowLogs.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)
    del original_cfn


def patch_subnet_route_table_association() -> None:
    from moto.ec2.models import subnets

    cls_ = subnets.SubnetRouteTableAssociation
    original = cls_.create_from_cloudformation_json.__func__

    def create_from_cloudformation_json(cls: Any, resource_name: str, cloudformation_json: Any, account_id: str,
                                        region_name: str, **kwargs: Any) -> Any:
        from moto.ec2.models import ec2_backends

        association = original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        props = cloudformation_json["Properties"]
        # moto records the association in the subnet backend only: the route table never learns about it.
        association.association_id = ec2_backends[account_id][region_name].associate_route_table(
            props["RouteTableId"], subnet_id=props["SubnetId"])
        return association

    def physical_resource_id(self: Any) -> str:
        return getattr(self, "association_id", None) or self.route_table_id  # rtbassoc-..., as in AWS

    def delete(self: Any, account_id: str, region_name: str) -> None:
        from moto.ec2.models import ec2_backends

        if getattr(self, "association_id", None):
            ec2_backends[account_id][region_name].disassociate_route_table(self.association_id)

    cls_.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)
    cls_.physical_resource_id = property(physical_resource_id)
    cls_.delete = delete


PATCHES = [
    Patch("ec2-subnet-route-table-association",
          "AWS::EC2::SubnetRouteTableAssociation is recorded but the route table is never associated with "
          "the subnet (DescribeRouteTables shows no association), and it cannot be deleted",
          "associates the route table (physical id: the rtbassoc- id, as in AWS) and disassociates on delete",
          patch_subnet_route_table_association),
    Patch("ec2-flow-log-s3-prefix",
          "a flow log to `arn:aws:s3:::bucket/prefix/` is rejected (the whole path is looked up as a bucket) "
          "and from CloudFormation that rejection is an IndexError",
          "checks the bucket, keeps the full destination, and reports a real rejection by name",
          patch_flow_log_s3_prefix),
]
