"""A team's stateful data stack: key, datastore bucket, tables, coordinates."""

from __future__ import annotations

import json

from tests.infra.helpers import only, props, resources, tags

DATA = "demo-vision-data"

# Stateful resources are identified by CloudFormation through these logical IDs. Changing one makes
# CloudFormation create a new resource and orphan (RETAIN) or delete the old one: users lose data.
# This list may only grow.
PINNED_STATEFUL_IDS = {
    "demo-vision-data": {
        "TeamKey687C8DD0": "AWS::KMS::Key",
        "DatastoreBucketE89148D0": "AWS::S3::Bucket",
        "TablesStepFunctionsStateTable86BEC9EA": "AWS::DynamoDB::Table",
        "TablesCatalogTable9739F259": "AWS::DynamoDB::Table",
        "TablesMetadataTableF1522A0E": "AWS::DynamoDB::Table",
        "TablesIdempotencyTable9CFEB1A0": "AWS::DynamoDB::Table",
    },
    "demo-network": {
        "AccessLogsBucketCD784A59": "AWS::S3::Bucket",
    },
}
STATEFUL_TYPES = {"AWS::KMS::Key", "AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::EC2::Volume"}


def test_stateful_logical_ids_are_pinned(platform):
    for stack, expected in PINNED_STATEFUL_IDS.items():
        template = platform.template(stack)
        found = {k: v["Type"] for k, v in template["Resources"].items() if v["Type"] in STATEFUL_TYPES}
        assert found == expected, f"{stack}: stateful logical IDs changed"


def test_stateful_ids_are_identical_for_every_team(platform):
    """The pinned IDs do not depend on the team name (a rename of constructs would show here)."""
    for team in ("vision", "forecasting"):
        template = platform.template(f"demo-{team}-data")
        found = {k for k, v in template["Resources"].items() if v["Type"] in STATEFUL_TYPES}
        assert found == set(PINNED_STATEFUL_IDS["demo-vision-data"])


def test_every_stateful_resource_is_retained(platform):
    for name, template in platform.templates.items():
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] in STATEFUL_TYPES:
                assert resource.get("DeletionPolicy") == "Retain", f"{name}/{logical_id}"
                assert resource.get("UpdateReplacePolicy") == "Retain", f"{name}/{logical_id}"


def test_data_stack_has_termination_protection(platform):
    for team in platform.platform.teams.values():
        assert team.data.termination_protection is True


def test_team_key_rotates(platform):
    _, key = only(platform.template(DATA), "AWS::KMS::Key")
    assert props(key)["EnableKeyRotation"] is True
    assert props(key)["PendingWindowInDays"] == 30


def test_datastore_bucket(platform, example_config):
    t = platform.template(DATA)
    _, bucket = only(t, "AWS::S3::Bucket")
    p = props(bucket)
    rule = p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == {"Fn::GetAtt": ["TeamKey687C8DD0", "Arn"]}
    assert rule["BucketKeyEnabled"] is True
    assert p["VersioningConfiguration"] == {"Status": "Enabled"}
    assert all(p["PublicAccessBlockConfiguration"].values()) and len(p["PublicAccessBlockConfiguration"]) == 4
    assert p["NotificationConfiguration"] == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    assert p["LoggingConfiguration"]["LogFilePrefix"] == "s3-access-logs/vision/"
    assert "demo-network" in json.dumps(p["LoggingConfiguration"]["DestinationBucketName"])
    rules = {r["Id"]: r for r in p["LifecycleConfiguration"]["Rules"]}
    assert rules["abort-incomplete-uploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    days = example_config.team("vision").data.noncurrent_version_expiration_days
    assert rules["expire-noncurrent-versions"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": days}


def test_datastore_bucket_denies_plain_http(platform):
    _, policy = only(platform.template(DATA), "AWS::S3::BucketPolicy")
    statements = props(policy)["PolicyDocument"]["Statement"]
    assert any(s["Effect"] == "Deny" and s["Action"] == "s3:*"
               and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements)


def _tables(platform):
    return {k: props(v) for k, v in resources(platform.template(DATA), "AWS::DynamoDB::Table").items()}


def test_tables_are_on_demand_encrypted_recoverable_and_protected(platform):
    for logical_id, p in _tables(platform).items():
        assert p["BillingMode"] == "PAY_PER_REQUEST", logical_id
        assert p["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, logical_id
        assert p["DeletionProtectionEnabled"] is True, logical_id
        assert p["SSESpecification"]["SSEType"] == "KMS", logical_id
        assert p["SSESpecification"]["KMSMasterKeyId"] == {"Fn::GetAtt": ["TeamKey687C8DD0", "Arn"]}


def test_step_functions_state_table_matches_metaflow(platform):
    p = _tables(platform)["TablesStepFunctionsStateTable86BEC9EA"]
    assert p["KeySchema"] == [{"AttributeName": "pathspec", "KeyType": "HASH"}]
    assert p["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}


def test_catalog_table_keys_serve_version_and_run_queries(platform):
    p = _tables(platform)["TablesCatalogTable9739F259"]
    assert p["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    (gsi,) = p["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == "gsi1" and gsi["Projection"] == {"ProjectionType": "ALL"}


def test_coordinates_published_as_ssm_parameters_and_outputs(platform):
    t = platform.template(DATA)
    names = {props(p)["Name"] for p in resources(t, "AWS::SSM::Parameter").values()}
    assert names == {f"/dsstack/demo/vision/{k}" for k in (
        "bucket-name", "kms-key-arn", "tables/step-functions-state", "tables/catalog", "tables/metadata")}
    assert {"BucketName", "KmsKeyArn", "TablesCatalog", "TablesStepFunctionsState", "TablesMetadata"} <= set(t["Outputs"])


def test_every_taggable_resource_carries_environment_and_team_tags(platform):
    for name, template in platform.templates.items():
        for logical_id, resource in template["Resources"].items():
            if "Tags" not in props(resource):
                continue
            found = tags(resource)
            assert found.get("dsstack:environment") == "demo", f"{name}/{logical_id}"
            if name != "demo-network":
                team = name.split("-")[1]
                assert found.get("dsstack:team") == team, f"{name}/{logical_id}"


def test_team_stacks_never_name_another_team(platform, example_config):
    teams = [t.name for t in example_config.teams]
    for name, template in platform.templates.items():
        if name == "demo-network":
            continue
        owner = name.split("-")[1]
        text = json.dumps(template)
        for other in teams:
            if other != owner:
                assert f"demo-{other}" not in text and f"/{other}/" not in text, f"{name} mentions {other}"


def test_sandbox_mode_deletes_data_and_drops_protection(synth_variant):
    result = synth_variant("sandbox", {"environment": "sbx", "destroy_data_on_delete": True,
                                       "teams": [{"name": "alpha"}]})
    t = result.template("sbx-alpha-data")
    for resource in t["Resources"].values():
        if resource["Type"] in STATEFUL_TYPES:
            assert resource["DeletionPolicy"] == "Delete"
    for p in resources(t, "AWS::DynamoDB::Table").values():
        assert props(p)["DeletionProtectionEnabled"] is False
    assert result.platform.teams["alpha"].data.termination_protection is False
