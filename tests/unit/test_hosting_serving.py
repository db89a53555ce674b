"""The no-revert design: the template is built with the promoted version read at synth (serving.py),
and the hosting CLI on top of the same fixtures."""

from __future__ import annotations

import sys
from pathlib import Path

import boto3
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import test_hosting_support as support
from test_hosting_support import ECS_MODEL, ENV, SM_MODEL, TEAM

from dsstack.config import parse_config
from dsstack.hosting.promotion import Hosting
from dsstack.hosting.serving import ServingVersionError, serving_versions

aws, deployed = support.aws, support.deployed
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
CONFIG = parse_config({"environment": ENV, "teams": [{"name": TEAM, "models": [
    {"name": SM_MODEL, "image": IMAGE, "initial_version": 1},
    {"name": ECS_MODEL, "kind": "ecs", "image": "ecr:v1", "initial_version": 2}]}]})


def test_after_a_promotion_synth_uses_the_promoted_version(deployed):
    Hosting(ENV, TEAM, session=boto3.session.Session()).promote(SM_MODEL, 3, promoted_by="alice")
    found = serving_versions(CONFIG, CONFIG.team(TEAM))
    promoted = deployed["versions"][SM_MODEL][2]
    assert (found[SM_MODEL].version, found[SM_MODEL].source) == (3, "catalog")
    assert (found[SM_MODEL].key, found[SM_MODEL].s3_version_id) == (promoted.object.key, promoted.object.s3_version_id)
    # Never promoted: the config's initial version, with its object when the catalog has it.
    assert (found[ECS_MODEL].version, found[ECS_MODEL].source) == (2, "config")
    assert found[ECS_MODEL].key == deployed["versions"][ECS_MODEL][1].object.key


def test_the_promoted_version_reaches_the_template(deployed, tmp_path):
    """A later `cdk deploy` re-synthesizes: the hosting template must carry the promoted version."""
    Hosting(ENV, TEAM, session=boto3.session.Session()).promote(SM_MODEL, 2, promoted_by="alice")
    from dsstack.toolchain import use_bundled_node

    use_bundled_node()
    import aws_cdk as cdk

    from dsstack.stacks.platform import build_platform

    app = cdk.App(outdir=str(tmp_path))
    platform = build_platform(app, CONFIG)
    template = app.synth().get_stack_by_name(f"{ENV}-{TEAM}-hosting").template
    models = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::SageMaker::Model"]
    (container,) = [m["PrimaryContainer"] for m in models]
    assert container["Environment"]["DSSTACK_MODEL_VERSION"] == "2"
    assert container["ModelDataUrl"]["Fn::Join"][1][-1].endswith(deployed["versions"][SM_MODEL][1].object.key)
    assert platform.teams[TEAM].others["hosting"] is not None


def test_without_credentials_nothing_is_deployed_so_the_config_decides(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    found = serving_versions(CONFIG, CONFIG.team(TEAM))
    assert {m: (v.version, v.source) for m, v in found.items()} == {SM_MODEL: (1, "config"), ECS_MODEL: (2, "config")}


def test_team_not_deployed_yet_uses_the_config(aws):
    found = serving_versions(CONFIG, CONFIG.team(TEAM))
    assert found[SM_MODEL].source == "config" and found[SM_MODEL].key is None


def test_an_unreadable_catalog_fails_the_synth_instead_of_reverting(aws):
    support.put_parameter("tables/catalog", "no-such-table")
    with pytest.raises(ServingVersionError, match=r"could revert a promoted model.*DSSTACK_MODEL_VERSIONS=config"):
        serving_versions(CONFIG, CONFIG.team(TEAM))


def test_cli_promote_and_endpoints(deployed, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from dsstack.cli import app

    config = tmp_path / "c.yaml"
    config.write_text(f"environment: {ENV}\nteams:\n  - name: {TEAM}\n")
    runner = CliRunner()
    ok = runner.invoke(app, ["models", "promote", "--team", TEAM, "--model", SM_MODEL, "--version", "2", "-c", str(config)])
    assert ok.exit_code == 0 and "version 1 -> 2" in ok.output, ok.output
    listed = runner.invoke(app, ["endpoints", "--team", TEAM, "-c", str(config)])
    assert listed.exit_code == 0
    assert f"{SM_MODEL}\tsagemaker-serverless\tversion 2" in listed.output
    assert f"{ECS_MODEL}\tecs\tversion 1" in listed.output
    bad = runner.invoke(app, ["models", "promote", "--team", TEAM, "--model", SM_MODEL, "--version", "7", "-c", str(config)])
    assert bad.exit_code == 1 and "has no version 7" in bad.output and "Traceback" not in bad.output
