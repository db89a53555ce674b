"""`dsstack catalog`: what the versioning glue recorded for a team (docs/catalog.md).

    dsstack catalog models   --team T                  registered models and their latest version
    dsstack catalog versions --team T --model M        all versions of a model, newest first
    dsstack catalog object   --team T --model M -v N   the S3 object behind a version
    dsstack catalog runs     --team T --flow F         runs of a flow with their status, newest first

The table name is read from the team's SSM coordinate `/dsstack/<env>/<team>/tables/catalog`; boto3 honours
AWS_ENDPOINT_URL for the embedded emulator.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from dsstack import naming
from dsstack.config import DEFAULT_CONFIG_PATH

catalog_app = typer.Typer(help="Model versions and runs recorded in the team's catalog.", no_args_is_help=True)

TeamOption = Annotated[str, typer.Option("--team", "-t", help="Team name from the config.")]
ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="Config file.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON lines instead of a table.")]


def open_catalog(config_path: Path, team: str) -> Any:
    """The team's Catalog, or a clean CLI error naming what is missing."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError
    from dsstack_catalog import Catalog

    from dsstack.cli import fail, load

    loaded = load(config_path)
    try:
        loaded.team(team)
    except KeyError as error:
        raise fail(str(error.args[0])) from None
    parameter = naming.ssm_parameter_name(loaded.environment, team, "tables/catalog")
    try:
        name = boto3.client("ssm", region_name=loaded.region).get_parameter(Name=parameter)["Parameter"]["Value"]
    except (ClientError, BotoCoreError) as error:
        raise fail(f"cannot read {parameter} ({error}); is the team's data stack deployed in this account/region?",
                   code=1) from None
    return Catalog(name, client=boto3.client("dynamodb", region_name=loaded.region))


def _emit(rows: list[dict[str, Any]], as_json: bool, empty: str) -> None:
    if not rows:
        typer.echo(empty, err=True)
        return
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, default=str))
        return
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    typer.echo("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        typer.echo("  ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns))


def _version_row(version: Any) -> dict[str, Any]:
    return {"model": version.model, "version": version.version, "key": version.object.key,
            "s3_version_id": version.object.s3_version_id, "size": version.object.size,
            "registered_at": version.registered_at.isoformat()}


@catalog_app.command("models")
def models(team: TeamOption, config: ConfigOption = DEFAULT_CONFIG_PATH, as_json: JsonOption = False) -> None:
    """Registered models with their latest version."""
    catalog = open_catalog(config, team)
    rows = []
    for model in catalog.models():
        latest = catalog.latest_model_version(model)
        rows.append({"model": model, "latest_version": latest.version if latest else "-",
                     "key": latest.object.key if latest else "-"})
    _emit(rows, as_json, f"no models registered for team {team!r} (upload under models/<name>/)")


@catalog_app.command("versions")
def versions(team: TeamOption, model: Annotated[str, typer.Option("--model", "-m")],
             config: ConfigOption = DEFAULT_CONFIG_PATH, as_json: JsonOption = False) -> None:
    """All versions of a model, newest first."""
    rows = [_version_row(v) for v in open_catalog(config, team).model_versions(model)]
    _emit(rows, as_json, f"model {model!r} has no versions in team {team!r}")


@catalog_app.command("object")
def object_of_version(team: TeamOption, model: Annotated[str, typer.Option("--model", "-m")],
                      version: Annotated[int, typer.Option("--version", "-v", min=1)],
                      config: ConfigOption = DEFAULT_CONFIG_PATH) -> None:
    """The S3 object (key and version id) behind a model version, as JSON."""
    from dsstack.cli import fail

    found = open_catalog(config, team).model_version(model, version)
    if found is None:
        raise fail(f"model {model!r} has no version {version} in team {team!r}; "
                   f"list them with `dsstack catalog versions --team {team} --model {model}`", code=1)
    typer.echo(json.dumps(_version_row(found) | {"bucket": found.object.bucket, "etag": found.object.etag}))


@catalog_app.command("runs")
def runs(team: TeamOption, flow: Annotated[str, typer.Option("--flow", "-f")],
         config: ConfigOption = DEFAULT_CONFIG_PATH, limit: Annotated[int, typer.Option(min=1)] = 20,
         as_json: JsonOption = False) -> None:
    """Runs of a flow (Step Functions executions) with their status, newest first."""
    rows = [{"run": r.run_id, "status": r.status, "started_at": r.started_at.isoformat(),
             "stopped_at": r.stopped_at.isoformat() if r.stopped_at else "-", "error": r.error or ""}
            for r in open_catalog(config, team).runs(flow, limit=limit)]
    _emit(rows, as_json, f"no runs recorded for flow {flow!r} in team {team!r}")


def register(app: typer.Typer) -> None:
    app.add_typer(catalog_app, name="catalog")
