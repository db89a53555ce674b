"""`dsstack`: the command line for platform engineers and data scientists.

Config commands work offline. Runtime commands (metaflow-config, catalog, models, endpoints,
workstation) read what is deployed, in AWS or in the embedded emulator (boto3 honours
AWS_ENDPOINT_URL, which `make deploy` prints for the emulator).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from dsstack.config import DEFAULT_CONFIG_PATH, ConfigError, PlatformConfig, json_schema, load_config
from dsstack.naming import planned_stack_names

app = typer.Typer(
    name="dsstack",
    help="Per-team data-science platform on AWS: validate the config, list stacks, read deployed settings.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="Config file.")]
ConfigArgument = Annotated[Path, typer.Argument(help="Config file.")]


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a user-facing error (no traceback) and return the exit to raise."""
    typer.echo(message, err=True)
    return typer.Exit(code)


def load(path: Path) -> PlatformConfig:
    try:
        return load_config(path)
    except ConfigError as error:
        raise fail(str(error)) from None


@app.command()
def validate(config: ConfigArgument = DEFAULT_CONFIG_PATH) -> None:
    """Check a config file; print a one-line summary or every problem with its field path."""
    loaded = load(config)
    teams = ", ".join(t.name for t in loaded.teams)
    typer.echo(f"{config}: valid: environment {loaded.environment!r}, region {loaded.region}, "
               f"egress {loaded.network.egress}, {len(loaded.teams)} team(s): {teams}")


@app.command()
def stacks(config: ConfigArgument = DEFAULT_CONFIG_PATH) -> None:
    """List the CloudFormation stacks the config produces, in deployment order."""
    for name in planned_stack_names(load(config)):
        typer.echo(name)


@app.command()
def schema(output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to a file.")] = None) -> None:
    """Print the JSON Schema of the config file (editors use it for completion and checks)."""
    text = json.dumps(json_schema(), indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)
        typer.echo(f"wrote {output}", err=True)


from dsstack import cli_metaflow  # noqa: E402

cli_metaflow.register(app)


from dsstack import cli_workstation  # noqa: E402 (subcommand modules register at the end)

cli_workstation.register(app)


from dsstack import cli_hosting  # noqa: E402

cli_hosting.register(app)

from dsstack import cli_catalog  # noqa: E402

cli_catalog.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
