"""`dsstack workstation list|start|stop|connect` against moto (EC2 + SSM)."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from dsstack import cli_workstation
from dsstack.cli import app

runner = CliRunner()
REGION = "us-east-1"


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setattr(cli_workstation.time, "sleep", lambda _s: None)
    with mock_aws():
        yield boto3.client("ec2", region_name=REGION)


def _launch(ec2, team: str, user: str) -> str:
    image = "ami-12c6146b"  # one of the AMIs moto ships; listing them all costs seconds per test
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.large", TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "dsstack:team", "Value": team},
                                              {"Key": "dsstack:workstation-user", "Value": user}]}])
    return instance["Instances"][0]["InstanceId"]


def _state(ec2, instance_id: str) -> str:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"]["Name"]


def test_list_shows_only_the_teams_workstations(aws):
    ann = _launch(aws, "vision", "ann")
    _launch(aws, "forecasting", "bob")
    result = runner.invoke(app, ["workstation", "list", "--team", "vision"])
    assert result.exit_code == 0, result.output
    assert ann in result.output and "ann" in result.output and "running" in result.output
    assert "bob" not in result.output


def test_start_and_stop(aws):
    ann = _launch(aws, "vision", "ann")
    result = runner.invoke(app, ["workstation", "stop", "--team", "vision", "--user", "ann"])
    assert result.exit_code == 0 and f"stopping {ann}" in result.output
    assert _state(aws, ann) == "stopped"
    result = runner.invoke(app, ["workstation", "stop", "--team", "vision", "--user", "ann"])
    assert "already stopped" in result.output
    result = runner.invoke(app, ["workstation", "start", "--team", "vision", "--user", "ann"])
    assert result.exit_code == 0 and f"starting {ann}" in result.output
    assert _state(aws, ann) == "running"


def test_missing_workstation_is_a_clear_error(aws):
    _launch(aws, "vision", "ann")
    for command in ("start", "stop", "connect"):
        result = runner.invoke(app, ["workstation", command, "--team", "vision", "--user", "zoe"])
        assert result.exit_code == 2, (command, result.output)
        assert "no workstation for user 'zoe' in team 'vision'" in result.output
        assert "Traceback" not in result.output
    # Another team's user is not found under this team.
    _launch(aws, "forecasting", "bob")
    assert runner.invoke(app, ["workstation", "start", "--team", "vision", "--user", "bob"]).exit_code == 2


def test_connect_starts_a_stopped_instance_waits_for_ssm_and_prints_the_command(aws, monkeypatch):
    ann = _launch(aws, "vision", "ann")
    aws.stop_instances(InstanceIds=[ann])
    seen = []

    def online(_ssm, instance_id):  # moto's SSM has no agents: the second poll sees it online
        seen.append(instance_id)
        return len(seen) >= 2

    monkeypatch.setattr(cli_workstation, "ssm_online", online)
    monkeypatch.setattr(cli_workstation.shutil, "which", lambda _name: None)  # no session-manager-plugin
    result = runner.invoke(app, ["workstation", "connect", "--team", "vision", "--user", "ann"])
    assert result.exit_code == 3, result.output
    assert f"starting {ann}" in result.output and _state(aws, ann) == "running"
    assert seen == [ann, ann]
    expected = (f"aws ssm start-session --target {ann} --document-name AWS-StartPortForwardingSession "
                f"--parameters '{{\"portNumber\":[\"8888\"],\"localPortNumber\":[\"8888\"]}}' --region {REGION}")
    assert expected in result.output


def test_connect_runs_the_port_forward_when_the_plugin_exists(aws, monkeypatch):
    ann = _launch(aws, "vision", "ann")
    monkeypatch.setattr(cli_workstation, "ssm_online", lambda _ssm, _id: True)
    monkeypatch.setattr(cli_workstation.shutil, "which", lambda name: f"/usr/bin/{name}")
    calls = []
    monkeypatch.setattr(cli_workstation.subprocess, "call", lambda command: calls.append(command) or 0)
    result = runner.invoke(app, ["workstation", "connect", "--team", "vision", "--user", "ann", "--local-port", "9999"])
    assert result.exit_code == 0, result.output
    assert "already running" in result.output and "http://localhost:9999" in result.output
    (command,) = calls
    assert command[:5] == ["aws", "ssm", "start-session", "--target", ann]
    assert '"localPortNumber":["9999"]' in command[command.index("--parameters") + 1]


def test_connect_times_out_when_ssm_never_sees_the_instance(aws, monkeypatch):
    _launch(aws, "vision", "ann")
    monkeypatch.setattr(cli_workstation, "ssm_online", lambda _ssm, _id: False)
    result = runner.invoke(app, ["workstation", "connect", "--team", "vision", "--user", "ann", "--timeout", "0"])
    assert result.exit_code == 2 and "timed out" in result.output and "docs/workstations.md" in result.output


def test_ssm_online_reads_the_agent_ping_status():
    """moto does not implement DescribeInstanceInformation; a fake client returns what SSM returns."""
    class FakeSsm:
        def __init__(self, listing):
            self.listing = listing

        def describe_instance_information(self, Filters):
            assert Filters == [{"Key": "InstanceIds", "Values": ["i-1"]}]
            return {"InstanceInformationList": self.listing}

    assert cli_workstation.ssm_online(FakeSsm([]), "i-1") is False
    assert cli_workstation.ssm_online(FakeSsm([{"InstanceId": "i-1", "PingStatus": "ConnectionLost"}]), "i-1") is False
    assert cli_workstation.ssm_online(FakeSsm([{"InstanceId": "i-1", "PingStatus": "Online"}]), "i-1") is True
