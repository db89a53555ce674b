"""`dsstack workstation list|start|stop|connect --team T [--user U]`.

Finds workstations by their tags (dsstack:team, dsstack:workstation-user), so it needs no config file
and works with the per-user access policy alone (Describe*, start/stop and a session on one instance).
"""

from __future__ import annotations

import getpass
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from dsstack import naming

TAG_USER = "dsstack:workstation-user"  # same as dsstack.constructs.workstation.TAG_USER (no CDK import here)
JUPYTER_PORT = 8888
PORT_FORWARD_DOCUMENT = "AWS-StartPortForwardingSession"
LIVE_STATES = ["pending", "running", "stopping", "stopped"]

workstation_app = typer.Typer(help="Data scientists' cloud workstations: list, start, stop, connect.",
                              no_args_is_help=True)

TeamOption = Annotated[str, typer.Option("--team", "-t", help="Team name.")]
UserOption = Annotated[str | None, typer.Option("--user", "-u", help="Workstation user (default: your login).")]
WaitOption = Annotated[int, typer.Option("--timeout", help="Seconds to wait for the instance and SSM.")]


class WorkstationError(Exception):
    """A user-facing problem (printed without a traceback)."""


@dataclass
class WorkstationInfo:
    instance_id: str
    user: str
    team: str
    state: str
    instance_type: str


def _clients(region: str | None) -> tuple[Any, Any]:
    import boto3  # lazy: `dsstack validate` must not pay for boto3

    session = boto3.session.Session(region_name=region)
    return session.client("ec2"), session.client("ssm")


def find(ec2: Any, *, team: str, user: str | None = None) -> list[WorkstationInfo]:
    filters = [{"Name": f"tag:{naming.TAG_TEAM}", "Values": [team]},
               {"Name": "tag-key", "Values": [TAG_USER]},
               {"Name": "instance-state-name", "Values": LIVE_STATES}]
    if user:
        filters.append({"Name": f"tag:{TAG_USER}", "Values": [user]})
    found = []
    for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
                found.append(WorkstationInfo(instance["InstanceId"], tags.get(TAG_USER, "?"), team,
                                             instance["State"]["Name"], instance["InstanceType"]))
    return sorted(found, key=lambda w: w.user)


def find_one(ec2: Any, *, team: str, user: str) -> WorkstationInfo:
    found = find(ec2, team=team, user=user)
    if not found:
        raise WorkstationError(
            f"no workstation for user {user!r} in team {team!r}. Add it under teams[].workstations in the config "
            f"and deploy, or list the team's workstations: dsstack workstation list --team {team}")
    if len(found) > 1:
        ids = ", ".join(w.instance_id for w in found)
        raise WorkstationError(f"several instances are tagged as {team}/{user}'s workstation ({ids}); "
                               "terminate the stray one(s)")
    return found[0]


def wait_for(predicate: Callable[[], bool], *, timeout: float, what: str, poll: float = 5.0,
             sleep: Callable[[float], None] = time.sleep) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise WorkstationError(f"timed out after {timeout:.0f}s waiting for {what}; see docs/workstations.md "
                                   "('When a workstation does not come up')")
        sleep(poll)


def start(ec2: Any, ws: WorkstationInfo) -> str:
    """Start a stopped workstation; returns what happened (idempotent)."""
    if ws.state in ("running", "pending"):
        return f"{ws.instance_id} is already {ws.state}"
    if ws.state == "stopping":
        ec2.get_waiter("instance_stopped").wait(InstanceIds=[ws.instance_id])
    ec2.start_instances(InstanceIds=[ws.instance_id])
    return f"starting {ws.instance_id}"


def ssm_online(ssm: Any, instance_id: str) -> bool:
    info = ssm.describe_instance_information(
        Filters=[{"Key": "InstanceIds", "Values": [instance_id]}])["InstanceInformationList"]
    return bool(info) and info[0].get("PingStatus") == "Online"


def port_forward_command(instance_id: str, *, region: str | None, local_port: int) -> list[str]:
    command = ["aws", "ssm", "start-session", "--target", instance_id, "--document-name", PORT_FORWARD_DOCUMENT,
               "--parameters", f'{{"portNumber":["{JUPYTER_PORT}"],"localPortNumber":["{local_port}"]}}']
    if region:
        command += ["--region", region]
    return command


def register(app: typer.Typer) -> None:
    """Add `dsstack workstation ...` to the main CLI."""
    app.add_typer(workstation_app, name="workstation")


def _fail(error: Exception) -> typer.Exit:
    typer.echo(f"error: {error}", err=True)
    return typer.Exit(2)


def _user(user: str | None) -> str:
    return user or getpass.getuser()


RegionOption = Annotated[str | None, typer.Option("--region", help="AWS region (default: your AWS config).")]


@workstation_app.command("list")
def list_(team: TeamOption, user: UserOption = None, region: RegionOption = None) -> None:
    """The team's workstations with their state."""
    ec2, _ = _clients(region)
    found = find(ec2, team=team, user=user)
    if not found:
        typer.echo(f"no workstations in team {team!r}")
        return
    for ws in found:
        typer.echo(f"{ws.user:<24} {ws.instance_id:<20} {ws.state:<10} {ws.instance_type}")


@workstation_app.command("start")
def start_(team: TeamOption, user: UserOption = None, region: RegionOption = None) -> None:
    """Start your workstation (it stops itself when idle)."""
    ec2, _ = _clients(region)
    try:
        typer.echo(start(ec2, find_one(ec2, team=team, user=_user(user))))
    except WorkstationError as error:
        raise _fail(error) from None


@workstation_app.command("stop")
def stop_(team: TeamOption, user: UserOption = None, region: RegionOption = None) -> None:
    """Stop your workstation now (the home volume keeps everything; only disks cost while stopped)."""
    ec2, _ = _clients(region)
    try:
        ws = find_one(ec2, team=team, user=_user(user))
    except WorkstationError as error:
        raise _fail(error) from None
    if ws.state in ("stopped", "stopping"):
        typer.echo(f"{ws.instance_id} is already {ws.state}")
        return
    ec2.stop_instances(InstanceIds=[ws.instance_id])
    typer.echo(f"stopping {ws.instance_id}")


@workstation_app.command("connect")
def connect(team: TeamOption, user: UserOption = None, region: RegionOption = None,
            local_port: Annotated[int, typer.Option(help="Local port for JupyterLab.")] = JUPYTER_PORT,
            timeout: WaitOption = 600) -> None:
    """Start the workstation if needed, wait for SSM, and forward JupyterLab to localhost."""
    ec2, ssm = _clients(region)
    try:
        ws = find_one(ec2, team=team, user=_user(user))
        typer.echo(start(ec2, ws))
        wait_for(lambda: find_one(ec2, team=team, user=ws.user).state == "running", timeout=timeout,
                 what=f"{ws.instance_id} to run")
        typer.echo("waiting for the SSM agent to come online ...")
        wait_for(lambda: ssm_online(ssm, ws.instance_id), timeout=timeout, what=f"SSM to see {ws.instance_id}")
    except WorkstationError as error:
        raise _fail(error) from None
    command = port_forward_command(ws.instance_id, region=region or ssm.meta.region_name, local_port=local_port)
    printable = " ".join(f"'{part}'" if "{" in part else part for part in command)
    if shutil.which("session-manager-plugin") is None or shutil.which("aws") is None:
        typer.echo("The AWS CLI or its Session Manager plugin is not installed (https://docs.aws.amazon.com/systems-manager/"
                   "latest/userguide/session-manager-working-with-install-plugin.html). After installing it run:\n"
                   f"  {printable}\nthen open http://localhost:{local_port}", err=True)
        raise typer.Exit(3)
    typer.echo(f"JupyterLab: http://localhost:{local_port} (Ctrl-C ends the port forward)")
    raise typer.Exit(subprocess.call(command))
