"""`dsstack metaflow-config`: fetch a team's deployed Metaflow config for `metaflow configure import`.

Reads the SSM parameter the compute stack publishes (/dsstack/<env>/<team>/metaflow/config) with
boto3, which honours AWS_ENDPOINT_URL (the embedded emulator) and the usual AWS credentials. When the
config uses the team's metadata service, METAFLOW_SERVICE_AUTH_KEY (the API key value, never published)
is added from API Gateway (dsstack/metadata_config.py).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from dsstack import metadata_config, metaflow_config
from dsstack.config import DEFAULT_CONFIG_PATH


def fetch(environment: str, team: str, region: str) -> dict[str, str]:
    """The published document of one team, as a dict. Raises LookupError with a user-facing message."""
    import boto3  # lazy: keeps `dsstack --help` fast
    from botocore.exceptions import BotoCoreError, ClientError

    name = metaflow_config.parameter_name(environment, team)
    try:
        value = boto3.client("ssm", region_name=region).get_parameter(Name=name)["Parameter"]["Value"]
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code == "ParameterNotFound":
            raise LookupError(f"{name} not found: is the {environment}-{team}-compute stack deployed "
                              f"in {region} (make deploy)?") from None
        raise LookupError(f"cannot read {name}: {error}") from None
    except BotoCoreError as error:
        raise LookupError(f"cannot read {name}: {error}") from None
    try:
        document = metaflow_config.parse_document(value, source=name)
    except ValueError as error:
        raise LookupError(str(error)) from None
    try:
        return metadata_config.complete(document, boto3.Session(region_name=region), environment, team)
    except (ClientError, BotoCoreError) as error:
        raise LookupError(f"cannot read the metadata service API key of team {team!r}: {error}") from None


def profile_path(profile: str) -> Path:
    """Where Metaflow looks for a named profile: $METAFLOW_HOME/config_<profile>.json."""
    home = os.environ.get("METAFLOW_HOME", "~/.metaflowconfig")
    return Path(home).expanduser() / f"config_{profile}.json"


def register(app: typer.Typer) -> None:
    from dsstack.cli import fail, load  # cli imports this module at its end

    @app.command("metaflow-config")
    def metaflow_config_command(
        team: Annotated[str, typer.Option("--team", "-t", help="Team name from the config.")],
        config: Annotated[Path, typer.Option("--config", "-c", help="Config file.")] = DEFAULT_CONFIG_PATH,
        profile: Annotated[str | None, typer.Option(
            "--profile", "-p", help="Write $METAFLOW_HOME/config_<profile>.json (use with METAFLOW_PROFILE).")] = None,
        output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file.")] = None,
    ) -> None:
        """Print (or write) the team's deployed Metaflow config as JSON for `metaflow configure import`."""
        loaded = load(config)
        try:
            loaded.team(team)
        except KeyError as error:
            raise fail(str(error.args[0])) from None
        try:
            document = metaflow_config.to_document(fetch(loaded.environment, team, loaded.region))
        except LookupError as error:
            raise fail(str(error), code=1) from None
        targets = [p for p in (output, profile_path(profile) if profile else None) if p is not None]
        if not targets:
            sys.stdout.write(document)
            return
        for target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(document)
            typer.echo(f"wrote {target}", err=True)
        if profile:
            typer.echo(f"use it with: export METAFLOW_PROFILE={profile} AWS_DEFAULT_REGION={loaded.region}", err=True)
