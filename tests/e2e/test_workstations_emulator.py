"""Workstations in the embedded emulator: instance, home volume and stop alarm exist; an instance-type
change keeps the home volume (same id)."""

from __future__ import annotations

import pytest
import yaml

pytestmark = pytest.mark.e2e

STACK = "demo-vision-workstations"


def _instance(ec2, user: str) -> dict:
    reservations = ec2.describe_instances(Filters=[
        {"Name": "tag:dsstack:team", "Values": ["vision"]},
        {"Name": "tag:dsstack:workstation-user", "Values": [user]},
        {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}])["Reservations"]
    instances = [i for r in reservations for i in r["Instances"]]
    assert len(instances) == 1, instances
    return instances[0]


def test_instance_volume_and_stop_alarm_exist(deployment):
    outputs = deployment.outputs()[STACK]
    ec2 = deployment.session.client("ec2")
    instance = _instance(ec2, "ann")
    assert instance["InstanceId"] == outputs["AnnInstanceId"]
    assert instance["InstanceType"] == "t3.large"
    volume = ec2.describe_volumes(VolumeIds=[outputs["AnnHomeVolumeId"]])["Volumes"][0]
    assert volume["Encrypted"] is True and volume["Size"] == 100
    assert any(a["InstanceId"] == instance["InstanceId"] for a in volume.get("Attachments", []))
    alarms = deployment.session.client("cloudwatch").describe_alarms()["MetricAlarms"]
    (alarm,) = [a for a in alarms if {"Name": "InstanceId", "Value": instance["InstanceId"]} in a["Dimensions"]]
    assert alarm["MetricName"] == "CPUUtilization" and alarm["EvaluationPeriods"] == 60
    assert alarm["AlarmActions"][0].endswith(":ec2:stop")
    assert outputs["AnnAccessPolicyArn"].startswith("arn:")


def test_instance_type_change_keeps_the_home_volume(deployment, tmp_path):
    before = deployment.outputs()[STACK]
    data = yaml.safe_load(deployment.config_path.read_text())
    vision = next(t for t in data["teams"] if t["name"] == "vision")
    vision["workstations"][0]["instance_type"] = "t3.xlarge"
    changed = tmp_path / deployment.config_path.name
    changed.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        deployment.redeploy(changed)
        after = deployment.outputs()[STACK]
        ec2 = deployment.session.client("ec2")
        assert _instance(ec2, "ann")["InstanceType"] == "t3.xlarge"
        assert after["AnnHomeVolumeId"] == before["AnnHomeVolumeId"]
        ec2.describe_volumes(VolumeIds=[before["AnnHomeVolumeId"]])  # still exists
    finally:
        deployment.redeploy()  # back to the example for the other e2e tests
