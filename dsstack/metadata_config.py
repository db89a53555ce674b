"""The metadata service's part of a team's Metaflow config (pure Python: no aws_cdk import).

- `metaflow_keys(service_url)`: the keys the deployed config carries (published with the compute
  layer's document under /dsstack/<env>/<team>/metaflow/config);
- `auth_keys(session, environment, team)`: METAFLOW_SERVICE_AUTH_KEY, read at runtime. The API key's
  value never appears in a template or a parameter: its id is published at
  /dsstack/<env>/<team>/metadata/api-key-id and the value comes from `apigateway:GetApiKey`
  (includeValue=True) with the caller's credentials.
"""

from __future__ import annotations

from typing import Any

from dsstack import naming

LAYER = "metadata"
URL_KEY = "metadata/url"
API_KEY_ID_KEY = "metadata/api-key-id"
AUTH_KEY = "METAFLOW_SERVICE_AUTH_KEY"


def url_parameter_name(environment: str, team: str) -> str:
    return naming.ssm_parameter_name(environment, team, URL_KEY)


def api_key_id_parameter_name(environment: str, team: str) -> str:
    return naming.ssm_parameter_name(environment, team, API_KEY_ID_KEY)


def metaflow_keys(service_url: str) -> dict[str, str]:
    """Keys of the metadata layer (the URL may be a CDK token)."""
    return {"METAFLOW_DEFAULT_METADATA": "service", "METAFLOW_SERVICE_URL": service_url}


class MetadataServiceMissing(LookupError):
    """The team has no deployed metadata service (disabled, or the stack is not deployed)."""


def api_key_value(session: Any, environment: str, team: str) -> str:
    """The team's API key value: SSM api-key-id, then API Gateway GetApiKey(includeValue=True)."""
    name = api_key_id_parameter_name(environment, team)
    ssm = session.client("ssm")
    try:
        key_id = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        raise MetadataServiceMissing(f"{name} does not exist: the metadata service of team {team!r} is not "
                                     f"deployed (metadata_service.enabled: false, or deploy the "
                                     f"{naming.team_stack_name(environment, team, 'metadata')} stack)") from None
    value = session.client("apigateway").get_api_key(apiKey=key_id, includeValue=True).get("value")
    if not value:
        raise MetadataServiceMissing(f"API key {key_id} (from {name}) has no value")
    return value


def auth_keys(session: Any, environment: str, team: str) -> dict[str, str]:
    """{'METAFLOW_SERVICE_AUTH_KEY': <value>}: what `dsstack metaflow-config` adds to the published config."""
    return {AUTH_KEY: api_key_value(session, environment, team)}


def complete(config: dict[str, str], session: Any, environment: str, team: str) -> dict[str, str]:
    """The published config, ready to use: the auth key added when it uses the service (else unchanged)."""
    if config.get("METAFLOW_DEFAULT_METADATA") != "service":
        return dict(config)
    return dict(sorted({**config, **auth_keys(session, environment, team)}.items()))
