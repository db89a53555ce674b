"""cdk-nag (AwsSolutions, NIST 800-53 R5, HIPAA Security, Serverless) and cfn-lint over the whole app."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dsstack.nag import MIN_REASON_LENGTH, RULE_PACKS

ACKNOWLEDGED = Path(__file__).with_name("nag_acknowledgements.txt")
VARIANTS = {
    "egress-nat": {"environment": "enat", "network": {"egress": "nat", "cidr": "10.50.0.0/16"},
                   "teams": [{"name": "alpha"}]},
    "egress-private": {"environment": "eprivate", "network": {"egress": "private", "cidr": "10.50.0.0/16"},
                       "teams": [{"name": "alpha"}]},
}


def _normalized(result) -> set[str]:
    """`<stack kind>/<path> <rule>` with environment and team names replaced, so the file lists each
    acknowledgement once however many teams the example has."""
    env = result.config.environment
    teams = [t.name for t in result.config.teams]
    lines = set()
    for ack in result.acknowledgements:
        path = ack.path.replace(f"{env}-", "<env>-", 1)
        for team in teams:
            path = path.replace(f"<env>-{team}-", "<env>-<team>-", 1)
        lines.add(f"{path} {ack.rule}")
    return lines


def test_all_four_packs_run(platform):
    assert set(RULE_PACKS) == {"AwsSolutions", "NIST.800.53.R5", "HIPAA.Security", "Serverless"}
    import json

    report = json.loads((platform.outdir / "validation-report.json").read_text())
    conclusions = {r["pluginName"]: r["conclusion"] for r in report["pluginReports"]}
    assert set(RULE_PACKS) <= set(conclusions), conclusions
    assert all(c == "success" for c in conclusions.values()), conclusions


def test_example_app_has_no_unacknowledged_findings(platform):
    assert platform.error is None and platform.violations == [], "\n".join(map(str, platform.violations))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_other_egress_modes_have_no_unacknowledged_findings(synth_variant, variant):
    result = synth_variant(variant, VARIANTS[variant])
    assert result.error is None and result.violations == [], "\n".join(map(str, result.violations))


def test_nag_really_fails_on_a_finding(tmp_path):
    """The harness must catch violations, or the two tests above prove nothing."""
    import aws_cdk as cdk
    from aws_cdk import aws_sqs as sqs

    from dsstack.nag import add_rule_packs
    from dsstack.synth import _read_violations

    app = cdk.App(outdir=str(tmp_path))
    sqs.Queue(cdk.Stack(app, "Probe"), "PlainQueue")
    add_rule_packs(app, ["AwsSolutions"])
    with pytest.raises(RuntimeError) as failure:
        app.synth()
    assert "ValidationFailed" in str(failure.value)
    rules = {v.rule for v in _read_violations(tmp_path / "validation-report.json")}
    assert {"AwsSolutions-SQS3", "AwsSolutions-SQS4"} <= rules


def test_acknowledgements_are_listed_for_review(platform, synth_variant):
    """Every acknowledgement, in every egress mode, is in nag_acknowledgements.txt (and nothing stale).

    Adding an acknowledgement means adding its line to that file, so reviewers see it.
    """
    found = _normalized(platform)
    for variant, data in VARIANTS.items():
        found |= _normalized(synth_variant(variant, data))
    if os.environ.get("DSSTACK_UPDATE_ACKS") == "1":  # deliberate refresh; the diff is what reviewers read
        ACKNOWLEDGED.write_text("# cdk-nag acknowledgements (construct path, rule). Reasons live beside each in the code.\n"
                                "# Regenerate with DSSTACK_UPDATE_ACKS=1 make test; review every added line.\n"
                                + "\n".join(sorted(found)) + "\n")
    listed = {line.strip() for line in ACKNOWLEDGED.read_text().splitlines()
              if line.strip() and not line.startswith("#")}
    assert found - listed == set(), "new acknowledgements; add them to nag_acknowledgements.txt:\n" + \
        "\n".join(sorted(found - listed))
    assert listed - found == set(), "stale lines in nag_acknowledgements.txt:\n" + "\n".join(sorted(listed - found))


def test_every_acknowledgement_is_narrow_and_explained(platform):
    for ack in platform.acknowledgements:
        assert re.fullmatch(r"(AwsSolutions|NIST\.800\.53\.R5|HIPAA\.Security|Serverless)-[A-Za-z0-9]+(\[.+\])?",
                            ack.rule), ack
        assert len(ack.reason) >= MIN_REASON_LENGTH, ack
        # Narrow: on an L1 resource (or a named child like a route), never a stack or whole stage.
        assert ack.path.count("/") >= 2, f"acknowledgement too broad: {ack}"


def test_acknowledge_rejects_a_vague_reason():
    import aws_cdk as cdk

    from dsstack.nag import acknowledge

    with pytest.raises(ValueError, match="specific reason"):
        acknowledge(cdk.Stack(cdk.App(), "S"), "AwsSolutions-S1", "not needed")


def test_cfn_lint_reports_nothing(platform, synth_variant):
    files = [str(platform.outdir / s.template_file) for s in platform.platform.stacks()]
    for variant, data in VARIANTS.items():
        result = synth_variant(variant, data)
        files += [str(result.outdir / s.template_file) for s in result.platform.stacks()]
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    proc = subprocess.run([str(cfn_lint), "--format", "parseable", *files],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and proc.stdout.strip() == "", proc.stdout + proc.stderr


def test_without_acknowledgements_the_findings_appear(tmp_path, monkeypatch, example_config):
    """Proves the packs really evaluate dsstack's own constructs (not just a probe queue)."""
    import dsstack.nag
    from dsstack.synth import synthesize

    monkeypatch.setattr(dsstack.nag.cdk.Validations, "of", _no_acknowledgements(dsstack.nag.cdk.Validations.of))
    result = synthesize(example_config, tmp_path)
    rules = {v.rule for v in result.violations}
    assert {"AwsSolutions-S1", "NIST.800.53.R5-DynamoDBInBackupPlan",
            "HIPAA.Security-VPCNoUnrestrictedRouteToIGW"} <= rules, rules


def _no_acknowledgements(original):
    class Ignoring:
        def __init__(self, inner):
            self.inner = inner

        def acknowledge(self, *rules):
            return None

        def add_plugins(self, *plugins):
            return self.inner.add_plugins(*plugins)

    return lambda scope: Ignoring(original(scope))
