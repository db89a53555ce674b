"""`<env>-<team>-metadata`: API Gateway -> Lambda metadata service per team (docs/metadata.md)."""

from __future__ import annotations

import json

import pytest

from tests.infra.helpers import only, props, resources

VARIANT = {
    "environment": "mdvar",
    "log_retention_days": 30,
    "network": {"cidr": "10.60.0.0/16"},
    "teams": [
        {"name": "off", "metadata_service": {"enabled": False}},
        {"name": "tuned", "metadata_service": {"throttle_rate_per_second": 37, "throttle_burst": 55}},
    ],
}


@pytest.fixture(scope="module")
def variant(synth_variant):
    return synth_variant("metadata-variant", VARIANT)


def _metadata(platform, team: str) -> dict:
    return platform.template(f"{platform.config.environment}-{team}-metadata")


def _imports(node) -> list[str]:
    """Every Fn::ImportValue export name in a template fragment."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Fn::ImportValue":
                found.append(value if isinstance(value, str) else json.dumps(value))
            else:
                found += _imports(value)
    elif isinstance(node, list):
        for value in node:
            found += _imports(value)
    return found


def _teams(platform) -> list[str]:
    return [t.name for t in platform.config.teams]


def test_every_enabled_team_gets_its_stack_and_a_disabled_one_none(platform, variant):
    names = set(platform.templates)
    for team in _teams(platform):
        assert f"demo-{team}-metadata" in names
    assert "mdvar-tuned-metadata" in variant.templates
    assert "mdvar-off-metadata" not in variant.templates
    assert not any(n.startswith("mdvar-off-") and resources(t, "AWS::ApiGateway::RestApi")
                   for n, t in variant.templates.items())


def test_one_proxy_method_lambda_proxy_integration_and_api_key_required(platform):
    for team in _teams(platform):
        template = _metadata(platform, team)
        _, api = only(template, "AWS::ApiGateway::RestApi")
        assert props(api)["ApiKeySourceType"] == "HEADER"
        assert props(api)["EndpointConfiguration"] == {"Types": ["REGIONAL"]}
        _, resource = only(template, "AWS::ApiGateway::Resource")
        assert props(resource)["PathPart"] == "{proxy+}"
        methods = resources(template, "AWS::ApiGateway::Method")
        assert len(methods) == 1, "only {proxy+} ANY: no anonymous method anywhere (root included)"
        method = props(next(iter(methods.values())))
        assert method["HttpMethod"] == "ANY" and method["ApiKeyRequired"] is True
        assert method["Integration"]["Type"] == "AWS_PROXY"
        function_id, _ = only(template, "AWS::Lambda::Function")
        assert {"Fn::GetAtt": [function_id, "Arn"]} in method["Integration"]["Uri"]["Fn::Join"][1]
        assert method["RequestParameters"] == {"method.request.path.proxy": True,
                                               "method.request.header.x-api-key": True}
        validator_id, validator = only(template, "AWS::ApiGateway::RequestValidator")
        assert method["RequestValidatorId"] == {"Ref": validator_id}
        assert props(validator)["ValidateRequestParameters"] is True


def test_handler_is_the_metadata_function(platform):
    template = _metadata(platform, "vision")
    _, function = only(template, "AWS::Lambda::Function")
    assert props(function)["Handler"] == "metadata_api.handler.handler"
    assert props(function)["TracingConfig"] == {"Mode": "Active"}
    assert props(function)["Timeout"] < 29  # under API Gateway's integration timeout
    env = props(function)["Environment"]["Variables"]
    (table,) = _imports(env["METADATA_TABLE_NAME"])
    assert table.startswith("demo-vision-data:") and "MetadataTable" in table


def test_the_api_key_value_is_generated_by_api_gateway_never_in_the_template(platform):
    for team in _teams(platform):
        template = _metadata(platform, team)
        _, key = only(template, "AWS::ApiGateway::ApiKey")
        assert "Value" not in props(key) and props(key)["Enabled"] is True
        assert props(key)["Name"] == f"dsstack-demo-{team}-metadata"


def test_usage_plan_throttling_comes_from_the_config(platform, variant):
    for result, team, rate, burst in ((platform, "vision", 200, 400), (variant, "tuned", 37, 55)):
        template = _metadata(result, team)
        _, plan = only(template, "AWS::ApiGateway::UsagePlan")
        assert props(plan)["Throttle"] == {"RateLimit": rate, "BurstLimit": burst}
        _, stage = only(template, "AWS::ApiGateway::Stage")
        (settings,) = props(stage)["MethodSettings"]
        assert (settings["ThrottlingRateLimit"], settings["ThrottlingBurstLimit"]) == (rate, burst)


def test_one_key_one_plan_one_stage_per_team_and_no_cross_team_reference(platform):
    """Team A's key is attached only to team A's usage plan, which names only team A's API stage: every
    reference is a local Ref (a Ref cannot reach another stack), and the only imports come from the
    team's own data and operations stacks."""
    for team in _teams(platform):
        template = _metadata(platform, team)
        api_id, _ = only(template, "AWS::ApiGateway::RestApi")
        stage_id, _ = only(template, "AWS::ApiGateway::Stage")
        key_id, _ = only(template, "AWS::ApiGateway::ApiKey")
        plan_id, plan = only(template, "AWS::ApiGateway::UsagePlan")
        assert props(plan)["ApiStages"] == [{"ApiId": {"Ref": api_id}, "Stage": {"Ref": stage_id}, "Throttle": {}}]
        _, plan_key = only(template, "AWS::ApiGateway::UsagePlanKey")
        assert props(plan_key) == {"KeyId": {"Ref": key_id}, "KeyType": "API_KEY", "UsagePlanId": {"Ref": plan_id}}
        imports = _imports(template)
        assert imports and all(i.startswith((f"demo-{team}-data:", f"demo-{team}-operations:")) for i in imports), imports
        others = [t for t in _teams(platform) if t != team]
        assert not any(f"-{other}-" in json.dumps(template) for other in others)
    # Each team's key, plan and API are distinct resources in distinct stacks.
    assert len({json.dumps(only(_metadata(platform, t), "AWS::ApiGateway::ApiKey")[1]) for t in _teams(platform)}) \
        == len(_teams(platform))


def test_access_logs_execution_logs_metrics_and_tracing(platform, variant):
    for result, team, days in ((platform, "vision", 90), (variant, "tuned", 30)):
        template = _metadata(result, team)
        _, stage = only(template, "AWS::ApiGateway::Stage")
        stage = props(stage)
        assert stage["TracingEnabled"] is True
        (settings,) = stage["MethodSettings"]
        assert settings["LoggingLevel"] == "ERROR" and settings["MetricsEnabled"] is True
        assert settings["DataTraceEnabled"] is False
        assert (settings["HttpMethod"], settings["ResourcePath"]) == ("*", "/*")
        destination = stage["AccessLogSetting"]["DestinationArn"]["Fn::GetAtt"][0]
        log_group = props(template["Resources"][destination])
        assert log_group["RetentionInDays"] == days
        assert "TeamKey" in json.dumps(log_group["KmsKeyId"])
        fields = json.loads(stage["AccessLogSetting"]["Format"])
        assert {"requestId", "status", "apiKeyId", "integrationLatency", "error"} <= set(fields)
        # The account-level CloudWatch role API Gateway needs for execution logs.
        assert resources(template, "AWS::ApiGateway::Account")


def test_function_role_reaches_only_the_team_metadata_table_its_index_and_key(platform):
    template = _metadata(platform, "vision")
    role_id = props(only(template, "AWS::Lambda::Function")[1])["Role"]["Fn::GetAtt"][0]
    statements = [s for p in resources(template, "AWS::IAM::Policy").values()
                  if {"Ref": role_id} in props(p)["Roles"] for s in props(p)["PolicyDocument"]["Statement"]]
    dynamo = [s for s in statements if any(a.startswith("dynamodb:") for a in _list(s["Action"]))]
    actions = {a for s in dynamo for a in _list(s["Action"])}
    assert actions == {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:PutItem",
                       "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"}, "no Scan, no Delete, no table admin"
    targets = {json.dumps(s["Resource"]) for s in dynamo}
    assert all("demo-vision-data:" in t and "MetadataTable" in t for t in targets), targets
    assert any(t.endswith('"/index/gsi1"]]}') for t in targets), "the GSI by name, not index/*"
    for statement in statements:
        resource = json.dumps(statement["Resource"])
        if any(a.startswith("kms:") for a in _list(statement["Action"])):
            assert "demo-vision-data:" in resource and "TeamKey" in resource
            assert not any("*" in a for a in _list(statement["Action"]))
        if resource == '"*"':
            assert set(_list(statement["Action"])) == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def test_url_and_api_key_id_are_published(platform):
    template = _metadata(platform, "vision")
    params = {props(p)["Name"]: props(p) for p in resources(template, "AWS::SSM::Parameter").values()}
    assert set(params) == {"/dsstack/demo/vision/metadata/url", "/dsstack/demo/vision/metadata/api-key-id"}
    key_id, _ = only(template, "AWS::ApiGateway::ApiKey")
    assert params["/dsstack/demo/vision/metadata/api-key-id"]["Value"] == {"Ref": key_id}
    url = json.dumps(params["/dsstack/demo/vision/metadata/url"]["Value"])
    assert url.startswith('{"Fn::Join": ["", ["https://"') and url.endswith('"/"]]}')
    assert {"ServiceUrl", "ApiKeyId"} <= set(template["Outputs"])


def test_metaflow_config_switches_to_the_service_only_when_enabled(platform, variant):
    def document(result, team):
        template = result.template(f"{result.config.environment}-{team}-compute")
        (param,) = [props(p) for p in resources(template, "AWS::SSM::Parameter").values()
                    if props(p)["Name"].endswith("/metaflow/config")]
        return json.dumps(param["Value"])

    vision = document(platform, "vision")
    assert '\\"METAFLOW_DEFAULT_METADATA\\":\\"service\\"' in vision
    assert '\\"METAFLOW_SERVICE_URL\\":\\"https://' in vision
    assert "demo-vision-metadata:" in vision and "demo-forecasting-metadata:" not in vision
    assert "METAFLOW_SERVICE_AUTH_KEY" not in vision, "the key value is delivered by the CLI, never published"
    off = document(variant, "off")
    assert "METAFLOW_DEFAULT_METADATA" not in off and "METAFLOW_SERVICE_URL" not in off


def _list(value) -> list:
    return value if isinstance(value, list) else [value]
