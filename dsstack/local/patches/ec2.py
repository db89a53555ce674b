"""EC2 fixes for the network stack: flow logs to an S3 prefix, and deleting a VPC with its stack."""

from __future__ import annotations

from typing import Any

from moto.ec2.models import flow_logs

from dsstack.local.patches import Patch, classmethod_function, set_classmethod, set_method, set_property


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

    set_method(backend_class, "create_flow_logs", create_flow_logs)

    def create_from_cloudformation_json(cls: Any, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> Any:
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

    set_classmethod(flow_logs.FlowLogs, "create_from_cloudformation_json", create_from_cloudformation_json)


def patch_subnet_route_table_association() -> None:
    from moto.ec2.models import subnets

    cls_ = subnets.SubnetRouteTableAssociation
    original = classmethod_function(cls_, "create_from_cloudformation_json")

    def create_from_cloudformation_json(cls: Any, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> Any:
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

    set_classmethod(cls_, "create_from_cloudformation_json", create_from_cloudformation_json)
    set_property(cls_, "physical_resource_id", physical_resource_id)
    set_method(cls_, "delete", delete)


def patch_network_deletes() -> None:
    from moto.ec2.models import ec2_backends, internet_gateways, route_tables, vpcs, vpn_gateway

    def backend(account_id: str, region_name: str) -> Any:
        return ec2_backends[account_id][region_name]

    def delete_route_table(self: Any, account_id: str, region_name: str) -> None:
        from moto.ec2.exceptions import DependencyViolationError

        ec2 = backend(account_id, region_name)
        # The stack delete tries resources in no particular order and retries the ones that fail: refuse
        # while a gateway endpoint still routes through this table, so the endpoint goes first.
        users = [e.id for e in ec2.vpc_end_points.values() if e.state != "deleted" and self.id in e.route_table_ids]
        if users:
            raise DependencyViolationError(f"route table {self.id} is used by {', '.join(users)}")
        ec2.delete_route_table(self.id)

    def delete_route(self: Any, account_id: str, region_name: str) -> None:
        ec2 = backend(account_id, region_name)
        if self.route_table.id in ec2.route_tables:
            ec2.delete_route(self.route_table.id, self.destination_cidr_block,
                             destination_ipv6_cidr_block=self.destination_ipv6_cidr_block,
                             destination_prefix_list_id=getattr(self.destination_prefix_list, "id", None))

    def delete_internet_gateway(self: Any, account_id: str, region_name: str) -> None:
        backend(account_id, region_name).delete_internet_gateway(self.id)

    def delete_attachment(self: Any, account_id: str, region_name: str) -> None:
        ec2 = backend(account_id, region_name)
        if self.gateway_id.startswith("igw-"):
            ec2.detach_internet_gateway(self.gateway_id, self.vpc_id)
        else:
            ec2.detach_vpn_gateway(self.gateway_id, self.vpc_id)

    def delete_endpoint(self: Any, account_id: str, region_name: str) -> None:
        backend(account_id, region_name).delete_vpc_endpoints([self.id])

    def delete_flow_log(self: Any, account_id: str, region_name: str) -> None:
        backend(account_id, region_name).delete_flow_logs([self.id])

    set_method(route_tables.RouteTable, "delete", delete_route_table)
    set_method(route_tables.Route, "delete", delete_route)
    set_method(internet_gateways.InternetGateway, "delete", delete_internet_gateway)
    set_method(vpn_gateway.VPCGatewayAttachment, "delete", delete_attachment)
    set_method(vpcs.VPCEndPoint, "delete", delete_endpoint)
    set_method(flow_logs.FlowLogs, "delete", delete_flow_log)


def patch_volume_and_instance_updates() -> None:
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.elastic_block_store import Volume
    from moto.ec2.models.instances import Instance

    def create_volume(cls: Any, resource_name: str, cloudformation_json: dict[str, Any], account_id: str,
                      region_name: str, **kwargs: Any) -> Any:
        props = cloudformation_json["Properties"]
        volume = ec2_backends[account_id][region_name].create_volume(
            size=props.get("Size"), zone_name=props.get("AvailabilityZone"), snapshot_id=props.get("SnapshotId"),
            encrypted=bool(props.get("Encrypted", False)), kms_key_id=props.get("KmsKeyId"),
            volume_type=props.get("VolumeType"), iops=props.get("Iops"), throughput=props.get("Throughput"))
        for tag in props.get("Tags", []):
            volume.add_tag(tag["Key"], tag["Value"])
        return volume

    def update_instance(cls: Any, original_resource: Any, new_resource_name: str, cloudformation_json: dict[str, Any],
                        account_id: str, region_name: str) -> Any:
        props = cloudformation_json["Properties"]
        original_resource.instance_type = props.get("InstanceType", original_resource.instance_type)
        if props.get("UserData") is not None:
            original_resource.user_data = [props["UserData"]]
        return original_resource

    set_classmethod(Volume, "create_from_cloudformation_json", create_volume)
    set_classmethod(Instance, "update_from_cloudformation_json", update_instance)


PATCHES = [
    Patch("ec2-volume-and-instance-updates",
          "AWS::EC2::Volume from CloudFormation ignores Encrypted, KmsKeyId, VolumeType, Iops and Throughput; "
          "AWS::EC2::Instance has no update, so an instance-type change is silently not applied",
          "creates volumes with every property; applies InstanceType/UserData changes to the same instance, as "
          "CloudFormation does for these properties (update with some interruption); other properties are not "
          "updated",
          patch_volume_and_instance_updates),
    Patch("ec2-network-deletes",
          "RouteTable, Route, InternetGateway, VPCGatewayAttachment, VPCEndpoint and FlowLog have no delete: "
          "a stack delete drops them from the stack but leaves them in EC2, so the VPC delete then fails "
          "with DependencyViolation (DELETE_FAILED network stack)",
          "deletes/detaches each of them in EC2; the stack delete's retry loop orders them before the VPC",
          patch_network_deletes),
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
