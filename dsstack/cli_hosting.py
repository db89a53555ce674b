"""`dsstack models promote`, `dsstack endpoints`, `dsstack invoke`: model hosting at runtime (docs/hosting.md).

They read the deployed environment through boto3 (AWS, or the emulator via AWS_ENDPOINT_URL).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dsstack.config import DEFAULT_CONFIG_PATH

TeamOption = Annotated[str, typer.Option("--team", "-t", help="Team name.")]
ModelOption = Annotated[str, typer.Option("--model", "-m", help="Model name (teams[].models[].name).")]
ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="Config file (for the environment and region).")]

models_app = typer.Typer(help="Model versions and promotion.", no_args_is_help=True)


def _hosting(config: Path, team: str):
    import boto3

    from dsstack.cli import fail, load
    from dsstack.hosting.promotion import Hosting

    loaded = load(config)
    try:
        loaded.team(team)
    except KeyError as error:
        raise fail(str(error.args[0])) from None
    return Hosting(loaded.environment, team, session=boto3.session.Session(region_name=loaded.region))


@models_app.command("promote")
def promote(team: TeamOption, model: ModelOption,
            version: Annotated[int, typer.Option("--version", "-v", help="Catalog model version to serve.")],
            note: Annotated[str | None, typer.Option(help="Why (kept in the catalog).")] = None,
            config: ConfigOption = DEFAULT_CONFIG_PATH) -> None:
    """Point the model's endpoint at catalog version N (blue/green for SageMaker, rolling for ECS)."""
    from dsstack.cli import fail
    from dsstack.hosting.promotion import PromotionError

    try:
        result = _hosting(config, team).promote(model, version, note=note)
    except PromotionError as error:
        raise fail(str(error), code=1) from None
    if not result.changed:
        typer.echo(f"{model}: already serving version {version}; nothing changed")
        return
    typer.echo(f"{model}: version {result.from_version} -> {result.to_version} ({result.kind}, {result.resource}); "
               f"recorded for {result.promoted_by}")


def endpoints(team: TeamOption, config: ConfigOption = DEFAULT_CONFIG_PATH) -> None:
    """List the team's endpoints with kind, live model version and URL."""
    hosting = _hosting(config, team)
    found = hosting.endpoints()
    if not found:
        typer.echo(f"team {team!r} has no deployed endpoints")
        return
    for endpoint in found:
        try:
            live = hosting.live_version(endpoint)
        except Exception as error:  # one broken endpoint must not hide the others
            live = f"unknown ({type(error).__name__})"
        typer.echo(f"{endpoint.model}\t{endpoint.kind}\tversion {live}\t{endpoint.url}")


def invoke(team: TeamOption, model: ModelOption,
           data: Annotated[Path, typer.Option("--data", "-d", help="Request body file.", exists=True,
                                              dir_okay=False, readable=True)],
           content_type: Annotated[str, typer.Option(help="Content-Type of the body.")] = "application/json",
           path: Annotated[str, typer.Option(help="Path on an ECS service.")] = "/invocations",
           config: ConfigOption = DEFAULT_CONFIG_PATH) -> None:
    """Call an endpoint: SageMaker runtime with SigV4 (your credentials), or HTTP to an ECS service."""
    from dsstack.cli import fail
    from dsstack.hosting.promotion import PromotionError

    hosting = _hosting(config, team)
    try:
        endpoint = hosting.endpoint(model)
    except PromotionError as error:
        raise fail(str(error), code=1) from None
    body = data.read_bytes()
    if endpoint.is_sagemaker:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = hosting.client("sagemaker-runtime").invoke_endpoint(
                EndpointName=endpoint.name, ContentType=content_type, Body=body)
        except (ClientError, BotoCoreError) as error:  # e.g. ModelError from the container, access denied
            raise fail(f"invoking SageMaker endpoint {endpoint.name!r} failed: {error}", code=1) from None
        typer.echo(response["Body"].read().decode(errors="replace"))
        return
    import urllib.request

    request = urllib.request.Request(endpoint.url.rstrip("/") + path, data=body, method="POST",
                                     headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            typer.echo(response.read().decode(errors="replace"))
    except OSError as error:
        raise fail(f"calling {endpoint.url}{path} failed: {error} (internal load balancers answer only inside the "
                   "VPC, e.g. from a workstation)", code=1) from None


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
    app.command("endpoints")(endpoints)
    app.command("invoke")(invoke)


