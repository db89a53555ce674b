"""Config validation: every bad input gets a message naming the file, the field path and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsstack.config import ConfigError, PlatformConfig, json_schema, load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]


def problems(data, source="cfg.yaml") -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data, source=source)
    text = str(info.value)
    assert text.startswith(f"{source}: invalid dsstack config")
    assert "Traceback" not in text
    return info.value.problems


def minimal(**overrides):
    data = {"environment": "dev", "teams": [{"name": "alpha"}]}
    data.update(overrides)
    return data


def test_example_config_is_valid_and_has_two_teams():
    config = load_config(ROOT / "config" / "example.yaml")
    assert [t.name for t in config.teams] == ["vision", "forecasting"]
    assert config.network.egress == "public"
    assert config.destroy_data_on_delete is False


def test_defaults_are_safe_and_free_when_idle():
    config = parse_config(minimal())
    compute = config.teams[0].compute
    assert config.network.egress == "public" and config.destroy_data_on_delete is False
    assert all(env.min_vcpus == 0 for env in (compute.cpu, compute.cpu_spot, compute.gpu, compute.fargate))


def test_unknown_key_lists_the_allowed_keys():
    (msg,) = problems(minimal(teams=[{"name": "alpha", "gpus": 3}]))
    assert msg.startswith("teams[0].gpus: unknown key 'gpus'; allowed keys here: name, data, compute")


def test_unknown_top_level_key():
    (msg,) = problems(minimal(enviroment="typo"))
    assert "enviroment: unknown key 'enviroment'" in msg and "environment" in msg


def test_duplicate_team_names():
    (msg,) = problems(minimal(teams=[{"name": "alpha"}, {"name": "beta"}, {"name": "alpha"}]))
    assert msg == "teams[2].name: 'alpha' duplicates teams[0].name; each name must be unique"


def test_a_team_name_may_not_extend_another_with_a_hyphen():
    (msg,) = problems(minimal(teams=[{"name": "vision"}, {"name": "vision-x"}]))
    assert msg.startswith("teams[1].name: 'vision-x' starts with teams[0].name 'vision' followed by '-'")
    parse_config(minimal(teams=[{"name": "vision"}, {"name": "visionx"}]))  # no hyphen: no overlap


def test_duplicates_inside_a_team_name_the_full_path():
    msgs = problems(minimal(teams=[{"name": "alpha", "workstations": [{"user": "ann"}, {"user": "ann"}]}]))
    assert msgs == ["teams[0].workstations[1].user: 'ann' duplicates workstations[0].user; each user must be unique"]
    msgs = problems(minimal(teams=[{"name": "alpha",
                                    "compute": {"extra_queues": [{"name": "cpu", "instance_types": ["m7i"]}]}}]))
    assert any(m.startswith("teams[0].compute.extra_queues[0].name: 'cpu' is reserved") for m in msgs)


@pytest.mark.parametrize(("name", "why"), [
    ("Alpha", "lower-case letters"),
    ("team_a", "lower-case letters"),
    ("a", "2 to 16 characters"),
    ("a-very-long-team-name", "2 to 16 characters"),
    ("-alpha", "starting with a letter"),
    ("alpha-", "lower-case letters"),
    ("al--pha", "single hyphens"),
    ("1team", "starting with a letter"),
])
def test_team_names_that_break_aws_naming(name, why):
    (msg,) = problems(minimal(teams=[{"name": "ok"}, {"name": name}]))
    assert msg.startswith("teams[1].name: ") and why in msg


@pytest.mark.parametrize(("cidr", "why"), [
    ("10.0.0.0/33", "not a valid IPv4 network"),
    ("10.0.0.1/16", "not a valid IPv4 network"),  # host bits set
    ("10.0.0.0/8", "between /16 and /24"),
    ("8.8.0.0/16", "private range"),
    ("fd00::/64", "IPv4"),
    ("banana", "not a valid IPv4 network"),
])
def test_bad_cidr(cidr, why):
    (msg,) = problems(minimal(network={"cidr": cidr}))
    assert msg.startswith("network.cidr: ") and why in msg


def test_missing_required_fields():
    msgs = problems({"teams": [{}]})
    assert "environment: required field is missing" in msgs
    assert "teams[0].name: required field is missing" in msgs


def test_empty_team_list():
    assert problems(minimal(teams=[])) == ["teams: needs at least 1 item(s)"]


@pytest.mark.parametrize(("data", "expected"), [
    (minimal(teams="alpha"), "teams: Input should be a valid tuple"),
    (minimal(network={"max_azs": "two"}), "network.max_azs: Input should be a valid integer"),
    (minimal(network={"egress": "vpn"}), "network.egress: Input should be 'public', 'nat' or 'private', got 'vpn'"),
    (minimal(account=123456789012), "account: Input should be a valid string"),
    (minimal(account="12345"), "account: must be a 12-digit AWS account id"),
    (minimal(region="Europe"), "region: must be an AWS region name"),
    (minimal(log_retention_days=42), "log_retention_days: must be one of the CloudWatch Logs retention periods"),
])
def test_wrong_types_and_values(data, expected):
    (msg,) = problems(data)
    assert msg.startswith(expected), msg


def test_nested_section_errors_name_the_full_path():
    data = minimal(teams=[{"name": "alpha", "compute": {"root_volume_gb": -5,
                                                        "extra_queues": [{"name": "gpu", "instance_types": ["p5"]}]},
                           "alerts": {"emails": ["not-an-address"]}}])
    msgs = problems(data)
    assert any(m.startswith("teams[0].compute.root_volume_gb: Input should be greater than or equal to 30")
               for m in msgs)
    assert any(m.startswith("teams[0].alerts.emails[0]: must be an e-mail address") for m in msgs)


def test_file_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r"(?s)missing.yaml: .*file not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("environment: dev\nteams: [\n")
    with pytest.raises(ConfigError, match=r"(?s)bad.yaml: .*line 3, column 1: not valid YAML"):
        load_config(bad)
    dup = tmp_path / "dup.yaml"
    dup.write_text("environment: dev\nenvironment: prod\nteams: [{name: alpha}]\n")
    with pytest.raises(ConfigError, match=r"(?s)line 2, column 1: not valid YAML: duplicate key 'environment'"):
        load_config(dup)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just a string\n")
    with pytest.raises(ConfigError, match=r"(?s)must be a mapping"):
        load_config(scalar)


def test_json_schema_describes_the_file():
    schema = json_schema()
    assert schema["title"] == "dsstack config"
    assert set(schema["required"]) == {"environment", "teams"}
    assert schema["additionalProperties"] is False
    assert "TeamConfig" in schema["$defs"]


def test_checked_in_schema_is_current():
    import json

    checked_in = json.loads((ROOT / "docs" / "config.schema.json").read_text())
    assert checked_in == json_schema(), "run `dsstack schema -o docs/config.schema.json`"


# ---- property: any input either validates or raises the clean ConfigError, never anything else ----
names = st.one_of(st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True), st.text(max_size=20), st.integers())
leaf = st.one_of(st.none(), st.booleans(), st.integers(-10, 10_000), st.text(max_size=12), names)
team = st.fixed_dictionaries(
    {"name": names},
    optional={
        "compute": st.fixed_dictionaries({}, optional={
            "root_volume_gb": leaf, "gpu": st.fixed_dictionaries({}, optional={"max_vcpus": leaf, "enabled": leaf}),
            "extra_queues": st.lists(st.fixed_dictionaries({"name": names, "instance_types": st.lists(leaf)}),
                                     max_size=2)}),
        "alerts": st.fixed_dictionaries({}, optional={"emails": st.lists(leaf, max_size=2), "monthly_budget_usd": leaf}),
        "models": st.lists(st.fixed_dictionaries({"name": names}, optional={"kind": leaf}), max_size=2),
        "workstations": st.lists(st.fixed_dictionaries({"user": names}), max_size=2),
        "bogus": leaf,
    },
)
config_data = st.one_of(
    st.fixed_dictionaries(
        {"environment": names, "teams": st.lists(team, max_size=3)},
        optional={"network": st.fixed_dictionaries({}, optional={"cidr": leaf, "egress": leaf, "max_azs": leaf}),
                  "region": leaf, "account": leaf, "destroy_data_on_delete": leaf},
    ),
    st.recursive(leaf, lambda inner: st.lists(inner) | st.dictionaries(st.text(max_size=5), inner), max_leaves=8),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config_data)
def test_random_configs_validate_or_raise_config_error(data):
    try:
        config = parse_config(data, source="random.yaml")
    except ConfigError as error:
        assert error.problems, "a ConfigError must say what is wrong"
        for problem in error.problems:
            assert ": " in problem and "Traceback" not in problem
        return
    assert isinstance(config, PlatformConfig)
    assert 1 <= len(config.teams) == len({t.name for t in config.teams})


def test_every_allowed_log_retention_maps_to_a_cdk_retention():
    from dsstack.toolchain import use_bundled_node

    use_bundled_node()
    from dsstack.config import LOG_RETENTION_DAYS
    from dsstack.constructs.log_retention import retention_days

    assert len({retention_days(d) for d in LOG_RETENTION_DAYS}) == len(LOG_RETENTION_DAYS)
