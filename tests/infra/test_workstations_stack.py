"""`<env>-<team>-workstations`: instances, home volumes, auto-stop, the data-scientist role, access policies."""

from __future__ import annotations

import json

import pytest

from dsstack.constructs.workstation import GPU_AMI_PARAMETER
from tests.infra.helpers import only, props, resources, tags

STACK = "demo-vision-workstations"

# The home volume is the user's work: CloudFormation identifies it by this logical ID. Renaming the
# construct would create a new, empty volume (the old one is RETAINed but detached). Never change it.
PINNED_HOME_VOLUME_IDS = {"AnnHomeVolumeB743E5AE": "AWS::EC2::Volume"}


@pytest.fixture(scope="module")
def template(platform):
    return platform.template(STACK)


def _instance(template):
    return only(template, "AWS::EC2::Instance")


def _policy(template, fragment):
    (found,) = [p for k, p in resources(template, "AWS::IAM::ManagedPolicy").items() if fragment in k]
    return props(found)["PolicyDocument"]["Statement"]


def _statement(statements, sid):
    (found,) = [s for s in statements if s.get("Sid") == sid]
    return found


def test_only_teams_with_workstations_get_the_stack(platform):
    assert STACK in platform.templates
    assert "demo-forecasting-workstations" not in platform.templates


def test_home_volume_logical_id_is_pinned_and_retained(template):
    volumes = resources(template, "AWS::EC2::Volume")
    assert {k: v["Type"] for k, v in volumes.items()} == PINNED_HOME_VOLUME_IDS
    volume = volumes["AnnHomeVolumeB743E5AE"]
    assert volume["DeletionPolicy"] == "Retain" and volume["UpdateReplacePolicy"] == "Retain"


def test_home_volume_is_encrypted_with_the_team_key_and_attached(template, example_config):
    _, volume = only(template, "AWS::EC2::Volume")
    p = props(volume)
    assert p["Encrypted"] is True and p["VolumeType"] == "gp3"
    assert "TeamKey687C8DD0" in json.dumps(p["KmsKeyId"])
    assert p["Size"] == example_config.team("vision").workstations[0].home_volume_gb
    assert tags(volume)["dsstack:workstation-user"] == "ann"
    instance_id, instance = _instance(template)
    assert p["AvailabilityZone"] == props(instance)["AvailabilityZone"]  # same AZ, chosen without the instance
    _, attachment = only(template, "AWS::EC2::VolumeAttachment")
    assert props(attachment) == {"Device": "/dev/sdf", "InstanceId": {"Ref": instance_id},
                                 "VolumeId": {"Ref": "AnnHomeVolumeB743E5AE"}}


def test_instance_properties(template, example_config):
    settings = example_config.team("vision").workstations[0]
    _, instance = _instance(template)
    p = props(instance)
    assert p["InstanceType"] == settings.instance_type
    assert p["MetadataOptions"]["HttpTokens"] == "required"
    assert p["Monitoring"] is True
    assert "KeyName" not in p and "KeyPair" not in json.dumps(p)
    # Resolved by EC2 at launch: a new AMI release never changes the template (no replacement).
    assert p["ImageId"] == "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
    (root,) = p["BlockDeviceMappings"]
    assert root["Ebs"]["Encrypted"] is True and root["Ebs"]["VolumeSize"] == settings.root_volume_gb
    assert "TeamKey687C8DD0" in json.dumps(root["Ebs"]["KmsKeyId"])
    assert "publicSubnet1" in json.dumps(p["SubnetId"])  # egress: public -> the first public subnet
    assert tags(instance)["dsstack:workstation-user"] == "ann" and tags(instance)["dsstack:team"] == "vision"
    assert "LaunchTemplate" not in p  # no fixed-name launch template that would collide between workstations


def test_security_group_has_no_inbound_rule(template):
    _, group = only(template, "AWS::EC2::SecurityGroup")
    assert "SecurityGroupIngress" not in props(group)
    assert resources(template, "AWS::EC2::SecurityGroupIngress") == {}
    assert props(group)["SecurityGroupEgress"] == [{"CidrIp": "0.0.0.0/0", "Description": "HTTPS to AWS APIs and PyPI",
                                                    "FromPort": 443, "IpProtocol": "tcp", "ToPort": 443}]


def test_idle_alarm_stops_the_instance(template, example_config):
    settings = example_config.team("vision").workstations[0]
    instance_id, _ = _instance(template)
    _, alarm = only(template, "AWS::CloudWatch::Alarm")
    p = props(alarm)
    assert p["AlarmActions"] == [{"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":automate:us-east-1:ec2:stop"]]}]
    assert (p["Namespace"], p["MetricName"], p["Statistic"], p["Period"]) == ("AWS/EC2", "CPUUtilization", "Average", 60)
    assert p["Dimensions"] == [{"Name": "InstanceId", "Value": {"Ref": instance_id}}]
    assert p["ComparisonOperator"] == "LessThanThreshold" and p["Threshold"] == settings.idle_cpu_percent
    assert p["EvaluationPeriods"] == p["DatapointsToAlarm"] == settings.idle_minutes
    assert p["TreatMissingData"] == "notBreaching"


def test_boot_script_is_rendered_with_the_team_values(template):
    _, instance = _instance(template)
    user_data = json.dumps(props(instance)["UserData"])
    assert "cloud_final_modules" in user_data and "scripts-user, always" in user_data
    for expected in ("WS_USER=ann", "METAFLOW_CONFIG_PARAMETER=/dsstack/demo/vision/metaflow/config",
                     "EXTRA_PACKAGES=(polars)", "AnnHomeVolumeB743E5AE", "/var/log/dsstack-workstation.log"):
        assert expected in user_data, expected
    assert "@@" not in user_data


def test_instance_role_is_the_data_scientist_role(template):
    _, profile = only(template, "AWS::IAM::InstanceProfile")
    assert props(profile)["Roles"] == [{"Ref": "DataScientistRoleF86E50E8"}]
    statements = _policy(template, "DataScientistPolicy")
    assert _statement(statements, "TeamBucketObjects")["Resource"] == {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3:::", {"Ref": "TeamBucketName"}, "/*"]]}
    assert template["Parameters"]["TeamBucketName"]["Default"] == "/dsstack/demo/vision/bucket-name"
    rendered = json.dumps(statements)
    for resource in ("parameter/dsstack/demo/vision/*", "stateMachine:dsstack-demo-vision_*",
                     "execution:dsstack-demo-vision_*:*", "rule/dsstack-demo-vision_*",
                     "endpoint/dsstack-demo-vision-*"):
        assert resource in rendered, resource


def test_data_scientist_submits_only_to_the_team_queues_and_passes_only_team_roles(template):
    statements = _policy(template, "DataScientistPolicy")
    queues = json.dumps(_statement(statements, "TeamQueues")["Resource"])
    assert "demo-vision-compute" in queues and "JobQueue" in queues
    passing = _statement(statements, "PassTeamRoles")
    assert all("demo-vision-compute" in json.dumps(r) for r in passing["Resource"]) and len(passing["Resource"]) == 4
    # batch:SubmitJob on `*` would allow any queue: only the team's queue ARNs and Metaflow's job definitions.
    for statement in statements:
        if "batch:SubmitJob" in statement["Action"]:
            assert statement["Resource"] != "*"


def test_team_a_never_names_team_b(template):
    """Nothing in vision's workstations (role, policies, user data) names the forecasting team."""
    assert "forecasting" not in json.dumps(template)


def test_access_policy_is_per_user_and_per_instance(template):
    instance_id, _ = _instance(template)
    statements = _policy(template, "AccessPolicy")
    session = _statement(statements, "SessionToThisWorkstation")
    assert session["Action"] == "ssm:StartSession"
    assert {"Ref": instance_id} in session["Resource"]["Fn::Join"][1]
    assert session["Condition"] == {"StringEquals": {"ssm:resourceTag/dsstack:workstation-user": "ann",
                                                     "ssm:resourceTag/dsstack:team": "vision"}}
    assert "document/AWS-StartPortForwardingSession" in json.dumps(_statement(statements, "PortForwardingDocument"))
    start_stop = _statement(statements, "StartStopThisWorkstation")
    assert sorted(start_stop["Action"]) == ["ec2:StartInstances", "ec2:StopInstances"]
    assert {"Ref": instance_id} in start_stop["Resource"]["Fn::Join"][1]
    # Wildcard resources only for calls without resource-level permissions.
    wildcard = [s for s in statements if s["Resource"] == "*"]
    assert all(a.split(":")[1].startswith(("Describe", "GetConnectionStatus")) for s in wildcard for a in s["Action"])
    assert "AnnAccessPolicyArn" in template["Outputs"]


def test_gpu_and_graviton_workstations_get_their_images(synth_variant):
    result = synth_variant("workstations-gpu", {
        "environment": "wsgpu", "network": {"egress": "private", "cidr": "10.60.0.0/16"},
        "teams": [{"name": "alpha", "workstations": [
            {"user": "gus", "instance_type": "g6.xlarge", "root_volume_gb": 100},
            {"user": "gia", "instance_type": "m7g.large"}]}]})
    assert result.error is None and result.violations == [], "\n".join(map(str, result.violations))
    template = result.template("wsgpu-alpha-workstations")
    images = {tags(r)["dsstack:workstation-user"]: props(r)["ImageId"]
              for r in resources(template, "AWS::EC2::Instance").values()}
    assert images == {"gus": f"resolve:ssm:{GPU_AMI_PARAMETER['x86_64']}",
                      "gia": "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"}
    for instance in resources(template, "AWS::EC2::Instance").values():
        assert "isolatedSubnet1" in json.dumps(props(instance)["SubnetId"])  # egress: private
    assert len(resources(template, "AWS::EC2::Volume")) == 2 and len(resources(template, "AWS::CloudWatch::Alarm")) == 2
