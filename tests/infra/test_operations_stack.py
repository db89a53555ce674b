"""Versioning and alerts wiring: functions, rules, dead-letter queues, alarms, budget, least privilege."""

from __future__ import annotations

import json

import pytest

from dsstack.constructs.python_function import POWERTOOLS_LAYER_VERSION
from tests.infra.helpers import props, resources

OPS = "demo-vision-operations"


@pytest.fixture(scope="module")
def ops(platform):
    return platform.template(OPS)


def _functions(t):
    return {k: props(v) for k, v in resources(t, "AWS::Lambda::Function").items()}


def _by_handler_env(t, variable):
    (found,) = [(k, p) for k, p in _functions(t).items() if variable in p["Environment"]["Variables"]]
    return found


def test_two_functions_with_reserved_concurrency_dlq_tracing_and_layers(ops):
    functions = _functions(ops)
    assert len(functions) == 2
    for p in functions.values():
        assert p["Runtime"] == "python3.14" and p["Architectures"] == ["arm64"]
        assert p["ReservedConcurrentExecutions"] >= 1
        assert "DeadLetterConfig" in p and p["TracingConfig"] == {"Mode": "Active"}
        layers = json.dumps(p["Layers"])
        assert f"AWSLambdaPowertoolsPythonV3-python314-arm64:{POWERTOOLS_LAYER_VERSION}" in layers
        assert len(p["Layers"]) == 2, "Powertools + the shared dsstack layer"
        assert "KmsKeyArn" in p  # environment encrypted with the team key
    for invoke in resources(ops, "AWS::Lambda::EventInvokeConfig").values():
        assert props(invoke)["MaximumRetryAttempts"] == 2


def test_log_groups_have_retention_and_the_team_key(ops):
    groups = resources(ops, "AWS::Logs::LogGroup")
    assert len(groups) == 2
    for group in groups.values():
        assert props(group)["RetentionInDays"] == 90 and "KmsKeyId" in props(group)


def _rule_patterns(t):
    return {props(r)["Description"]: (props(r)["EventPattern"], props(r)["Targets"])
            for r in resources(t, "AWS::Events::Rule").values()}


def test_rules_route_the_right_events_with_dead_letter_queues(ops):
    rules = _rule_patterns(ops)
    assert len(rules) == 5
    for _pattern, targets in rules.values():
        (target,) = targets
        assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumEventAgeInSeconds"] == 86400
    objects, _ = next(v for k, v in rules.items() if k.startswith("New object versions"))
    assert objects["detail-type"] == ["Object Created"]
    assert objects["detail"]["object"]["key"] == [{"prefix": "metaflow/"}, {"prefix": "data/"}, {"prefix": "models/"}]
    assert "demo-vision-data" in json.dumps(objects["detail"]["bucket"]["name"])
    failed, _ = next(v for k, v in rules.items() if k.startswith("Failed, timed-out"))
    assert failed["detail"]["status"] == ["FAILED", "TIMED_OUT", "ABORTED"]
    assert "stateMachine:dsstack-demo-vision_" in json.dumps(failed["detail"]["stateMachineArn"])
    jobs, _ = next(v for k, v in rules.items() if k.startswith("Failed AWS Batch"))
    assert jobs["detail"]["status"] == ["FAILED"]
    assert "job-queue/dsstack-demo-vision-" in json.dumps(jobs["detail"]["jobQueue"])
    endpoints, _ = next(v for k, v in rules.items() if k.startswith("SageMaker endpoints"))
    assert endpoints["detail"]["EndpointName"] == [{"prefix": "dsstack-demo-vision-"}]
    assert set(endpoints["detail"]["EndpointStatus"]) == {"FAILED", "Failed", "UPDATE_ROLLBACK_FAILED",
                                                          "UpdateRollbackFailed"}


def test_errors_and_dead_letters_alarm_the_team_topic(ops):
    alarms = [props(a) for a in resources(ops, "AWS::CloudWatch::Alarm").values()]
    assert len(alarms) == 4
    topic_id = next(iter(k for k, v in ops["Resources"].items()
                         if v["Type"] == "AWS::SNS::Topic" and "AlertTopic" in k))
    for alarm in alarms:
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["Threshold"] == 1
    metrics = sorted(a["MetricName"] for a in alarms)
    assert metrics == ["ApproximateNumberOfMessagesVisible"] * 2 + ["Errors"] * 2


def test_team_budget_notifies_at_80_forecast_and_100_actual(ops, platform):
    (budget,) = resources(ops, "AWS::Budgets::Budget").values()
    data = props(budget)["Budget"]
    assert data["BudgetLimit"] == {"Amount": 500, "Unit": "USD"}
    assert data["CostFilters"] == {"TagKeyValue": ["user:dsstack:team$vision"]}
    notes = sorted((n["Notification"]["NotificationType"], n["Notification"]["Threshold"])
                   for n in props(budget)["NotificationsWithSubscribers"])
    assert notes == [("ACTUAL", 100), ("FORECASTED", 80)]
    # forecasting has no monthly_budget_usd in the example: no budget, no cost.
    assert resources(platform.template("demo-forecasting-operations"), "AWS::Budgets::Budget") == {}


def _statements(t, function_env_var):
    _, function = _by_handler_env(t, function_env_var)
    role_ref = function["Role"]["Fn::GetAtt"][0]
    found = []
    for policy in resources(t, "AWS::IAM::Policy").values():
        if {"Ref": role_ref} in props(policy)["Roles"]:
            found += props(policy)["PolicyDocument"]["Statement"]
    return found


def test_versioning_role_reaches_only_the_team_catalog_and_idempotency_tables(ops):
    statements = _statements(ops, "CATALOG_TABLE_NAME")
    dynamo = [s for s in statements if any(str(a).startswith("dynamodb:") for a in _list(s["Action"]))]
    resources_text = json.dumps([s["Resource"] for s in dynamo])
    assert "TablesCatalogTable" in resources_text and "TablesIdempotencyTable" in resources_text
    assert "Metadata" not in resources_text and "StepFunctionsState" not in resources_text
    for statement in statements:
        for action in _list(statement["Action"]):
            assert action != "*" and not action.endswith(":*"), statement
            assert "Scan" not in action and "DeleteTable" not in action


def test_alerts_role_publishes_only_to_the_team_topic(ops):
    statements = _statements(ops, "ALERT_TOPIC_ARN")
    publish = [s for s in statements if "sns:Publish" in _list(s["Action"])]
    assert len(publish) == 1 and "AlertTopic" in json.dumps(publish[0]["Resource"])


def _list(value):
    return value if isinstance(value, list) else [value]


def test_chat_webhook_url_stays_in_secrets_manager(synth_variant):
    result = synth_variant("webhook", {"environment": "hook", "teams": [
        {"name": "alpha", "alerts": {"chat_webhook_secret_name": "alpha/chat-webhook"}}]})
    t = result.template("hook-alpha-operations")
    _, function = _by_handler_env(t, "ALERT_TOPIC_ARN")
    assert function["Environment"]["Variables"]["CHAT_WEBHOOK_SECRET_ARN"] == "alpha/chat-webhook"
    secret = [s for s in _statements(t, "ALERT_TOPIC_ARN") if s["Action"] == "secretsmanager:GetSecretValue"]
    assert len(secret) == 1
    assert json.dumps(secret[0]["Resource"]).endswith(':secret:alpha/chat-webhook-??????"]]}')
    assert "hooks.slack.com" not in json.dumps(t)
