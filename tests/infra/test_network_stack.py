"""The shared network stack, in each egress mode."""

from __future__ import annotations

import pytest

from dsstack.constructs.network import PRIVATE_INTERFACE_ENDPOINTS
from tests.infra.helpers import only, props, resources, tags

NETWORK = "demo-network"


def _mode(synth_variant, egress: str):
    result = synth_variant(f"egress-{egress}", {
        "environment": f"e{egress}", "network": {"egress": egress, "cidr": "10.50.0.0/16"},
        "teams": [{"name": "alpha"}],
    })
    assert result.error is None, result.error
    return result.template(f"e{egress}-network")


def _gateway_services(template) -> set[str]:
    found = set()
    for endpoint in resources(template, "AWS::EC2::VPCEndpoint").values():
        if props(endpoint).get("VpcEndpointType", "Gateway") == "Gateway":
            name = props(endpoint)["ServiceName"]
            found.add(str(name).split("ServiceName")[-1] if not isinstance(name, dict) else
                      "".join(p if isinstance(p, str) else "" for p in name["Fn::Join"][1]).split(".")[-1])
    return found


def test_public_mode_has_public_subnets_only_and_no_nat(platform):
    t = platform.template(NETWORK)
    subnets = resources(t, "AWS::EC2::Subnet")
    assert len(subnets) == 2, "one public subnet per AZ, two AZs"
    assert all(props(s)["MapPublicIpOnLaunch"] is True for s in subnets.values())
    assert resources(t, "AWS::EC2::NatGateway") == {}
    assert len(resources(t, "AWS::EC2::InternetGateway")) == 1
    interface = [e for e in resources(t, "AWS::EC2::VPCEndpoint").values()
                 if props(e).get("VpcEndpointType") == "Interface"]
    assert interface == [], "interface endpoints cost money; public mode must have none"


def test_vpc_spans_two_azs_with_configured_cidr(platform):
    _, vpc = only(platform.template(NETWORK), "AWS::EC2::VPC")
    assert props(vpc)["CidrBlock"] == "10.42.0.0/16"
    subnets = resources(platform.template(NETWORK), "AWS::EC2::Subnet").values()
    azs = {str(props(s)["AvailabilityZone"]) for s in subnets}
    assert len(azs) == 2


@pytest.mark.parametrize("egress", ["public", "nat", "private"])
def test_gateway_endpoints_for_s3_and_dynamodb_in_every_mode(synth_variant, egress):
    t = _mode(synth_variant, egress)
    services = _gateway_services(t)
    assert services == {"s3", "dynamodb"}, services


def test_nat_mode_has_one_nat_gateway_and_private_subnets(synth_variant):
    t = _mode(synth_variant, "nat")
    assert len(resources(t, "AWS::EC2::NatGateway")) == 1
    subnets = resources(t, "AWS::EC2::Subnet").values()
    private = [s for s in subnets if "privateSubnet" in tags(s)["Name"]]
    assert len(private) == 2
    # In nat mode nothing but the NAT gateway lives in public subnets: no automatic public IPs.
    assert all(props(s)["MapPublicIpOnLaunch"] is False for s in subnets)


def test_private_mode_is_isolated_with_interface_endpoints(synth_variant):
    t = _mode(synth_variant, "private")
    assert resources(t, "AWS::EC2::InternetGateway") == {}
    assert resources(t, "AWS::EC2::NatGateway") == {}
    interface = [e for e in resources(t, "AWS::EC2::VPCEndpoint").values()
                 if props(e).get("VpcEndpointType") == "Interface"]
    assert len(interface) == len(PRIVATE_INTERFACE_ENDPOINTS)
    names = " ".join(str(props(e)["ServiceName"]) for e in interface)
    for needed in ("batch", "ecr.api", "ecr.dkr", "logs", "ssm", "ssmmessages", "ecs", "sts"):
        assert f".{needed}" in names, f"missing interface endpoint for {needed}"
    _, sg = only(t, "AWS::EC2::SecurityGroup")
    ingress = props(sg)["SecurityGroupIngress"]
    assert ingress == [{"CidrIp": "10.50.0.0/16", "Description": "HTTPS from the VPC", "FromPort": 443,
                        "IpProtocol": "tcp", "ToPort": 443}]


def test_flow_logs_capture_all_traffic_to_the_access_log_bucket(platform):
    t = platform.template(NETWORK)
    _, flow = only(t, "AWS::EC2::FlowLog")
    assert props(flow)["TrafficType"] == "ALL"
    assert props(flow)["LogDestinationType"] == "s3"
    bucket_id, _ = only(t, "AWS::S3::Bucket")
    assert bucket_id in str(props(flow)["LogDestination"])


def test_access_log_bucket_is_private_versioned_tls_only_and_retained(platform):
    t = platform.template(NETWORK)
    _, bucket = only(t, "AWS::S3::Bucket")
    assert bucket["DeletionPolicy"] == "Retain" and bucket["UpdateReplacePolicy"] == "Retain"
    p = props(bucket)
    assert p["VersioningConfiguration"] == {"Status": "Enabled"}
    assert p["PublicAccessBlockConfiguration"] == {k: True for k in (
        "BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")}
    sse = p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse == {"SSEAlgorithm": "AES256"}  # S3 access logging cannot write to SSE-KMS buckets
    _, policy = only(t, "AWS::S3::BucketPolicy")
    statements = props(policy)["PolicyDocument"]["Statement"]
    deny_tls = [s for s in statements if s["Effect"] == "Deny"
                and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"]
    assert deny_tls, "bucket must deny requests without TLS"
    delivery = [s for s in statements if s.get("Principal", {}).get("Service") == "logging.s3.amazonaws.com"]
    assert delivery and delivery[0]["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


def test_no_security_group_allows_inbound_from_anywhere(platform, synth_variant):
    for t in [platform.template(NETWORK), _mode(synth_variant, "nat"), _mode(synth_variant, "private")]:
        for sg in resources(t, "AWS::EC2::SecurityGroup").values():
            for rule in props(sg).get("SecurityGroupIngress", []):
                assert rule.get("CidrIp") not in ("0.0.0.0/0",) and rule.get("CidrIpv6") != "::/0"
