"""Which catalog version each endpoint serves, read when the app is synthesized.

This is how a `cdk deploy` after `dsstack models promote` keeps the promoted version: the template is
built with the version the catalog says is promoted (its S3 object becomes the model data), so the only
thing a later deploy can do to a promoted endpoint is re-deploy the same version. docs/hosting.md.

Without credentials there is no deployed environment to read and nothing to revert: the config's
`initial_version` is used. With credentials, anything other than "not deployed yet" that stops the read
fails the synth (a deploy that guessed could revert production). `DSSTACK_MODEL_VERSIONS=config` skips
the read deliberately, e.g. to rebuild an environment from scratch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from dsstack import naming
from dsstack.config import PlatformConfig, TeamConfig
from dsstack.hosting import names

SKIP_ENV = "DSSTACK_MODEL_VERSIONS"


class ServingVersionError(Exception):
    """The promoted versions could not be read; synthesizing now could revert a promotion."""


@dataclass(frozen=True)
class ServingVersion:
    model: str
    version: int
    source: str  # "config" (initial_version) or "catalog" (promoted)
    key: str | None = None  # the S3 key behind the version, when the catalog knows it
    s3_version_id: str | None = None


def from_config(team: TeamConfig) -> dict[str, ServingVersion]:
    return {m.name: ServingVersion(m.name, m.initial_version, "config") for m in team.models}


def serving_versions(config: PlatformConfig, team: TeamConfig, *, session: Any = None) -> dict[str, ServingVersion]:
    """The version each of the team's models should be deployed with (see the module docstring)."""
    if not team.models:
        return {}
    if os.environ.get(SKIP_ENV) == "config":
        return from_config(team)
    import boto3
    import botocore.exceptions
    from dsstack_catalog import Catalog

    session = session or boto3.session.Session(region_name=config.region)
    if session.get_credentials() is None:
        return from_config(team)
    table_parameter = naming.ssm_parameter_name(config.environment, team.name, names.CATALOG_TABLE_KEY)
    try:
        ssm = session.client("ssm", region_name=config.region)
        try:
            table = ssm.get_parameter(Name=table_parameter)["Parameter"]["Value"]
        except ssm.exceptions.ParameterNotFound:
            return from_config(team)  # the team's data stack is not deployed: nothing promoted yet
        catalog = Catalog(table, client=session.client("dynamodb", region_name=config.region))
        found = {}
        for model in team.models:
            promotion = catalog.current_promotion(model.name)
            number, source = (promotion.to_version, "catalog") if promotion else (model.initial_version, "config")
            version = catalog.model_version(model.name, number, consistent=True)
            found[model.name] = ServingVersion(
                model.name, number, source,
                key=version.object.key if version else None,
                s3_version_id=version.object.s3_version_id if version else None,
            )
        return found
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        raise ServingVersionError(
            f"cannot read the promoted model versions of team {team.name!r} (SSM {table_parameter} and its "
            f"catalog table): {error}. Deploying without them could revert a promoted model. Fix the access, "
            f"or set {SKIP_ENV}=config to deploy the config's initial_version deliberately."
        ) from error
