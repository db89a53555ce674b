"""Each emulator patch (dsstack/local/patches) proven against a patched server: fast, no CDK.

The server is started once for the module with dsstack.local.emulator.up() in a temporary state dir,
so the launcher (free port, PID, idempotent up, down) is exercised too.
"""

from __future__ import annotations

import io
import json
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from dsstack.local import emulator
from dsstack.local.patches import all_patches

REGION = "us-east-1"
POWERTOOLS_LAYER = "arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python312-x86_64:7"


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[emulator.Emulator]:
    state_dir = tmp_path_factory.mktemp("emulator")
    started = emulator.up(state_dir)
    try:
        yield started
    finally:
        emulator.down(state_dir)


@pytest.fixture(scope="module")
def aws(emu: emulator.Emulator) -> Callable[[str], Any]:
    config = Config(retries={"max_attempts": 1})  # a 500 must surface, not be retried into success

    def client(service: str) -> Any:
        return boto3.client(service, endpoint_url=emu.endpoint, region_name=REGION, aws_access_key_id="testing",
                            aws_secret_access_key="testing", config=config)

    # moto checks that a function's role exists and trusts Lambda.
    client("iam").create_role(RoleName="lambda-role", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}))
    return client


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def run_change_set(cfn: Any, stack: str, template: dict[str, Any], parameters: list[dict[str, Any]] | None = None,
                   change_set: str = "cdk-deploy-change-set") -> dict[str, Any]:
    existing = True
    try:
        existing = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] != "REVIEW_IN_PROGRESS"
    except ClientError:
        existing = False
    cfn.create_change_set(StackName=stack, ChangeSetName=change_set, TemplateBody=json.dumps(template),
                          ChangeSetType="UPDATE" if existing else "CREATE", Parameters=parameters or [])
    cfn.execute_change_set(StackName=stack, ChangeSetName=change_set)
    return cfn.describe_stacks(StackName=stack)["Stacks"][0]


def events_of(cfn: Any, stack: str) -> list[dict[str, Any]]:
    return cfn.describe_stack_events(StackName=stack)["StackEvents"]


def wait_for(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"condition not met within {timeout}s")


def zip_code(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


ROLE = "arn:aws:iam::123456789012:role/lambda-role"


def make_function(aws: Callable[[str], Any], code: str, env: dict[str, str] | None = None, **extra: Any) -> str:
    name = unique("fn")
    aws("lambda").create_function(FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="app.handler",
                                  Code={"ZipFile": zip_code({"app.py": code})}, Timeout=30,
                                  Environment={"Variables": env or {}}, **extra)
    return name


# --- the launcher ---------------------------------------------------------------------------------------


def test_launcher_is_idempotent_and_records_pid(emu: emulator.Emulator) -> None:
    again = emulator.up(emu.state_dir)
    assert again == emu
    state = json.loads((emu.state_dir / "emulator.json").read_text())
    assert state["pid"] == emu.pid and state["endpoint"] == f"http://localhost:{emu.port}"
    assert emu.log_file.exists()


def test_down_stops_exactly_its_process(tmp_path: Path) -> None:
    other = emulator.up(tmp_path / "other")
    assert emulator.down(tmp_path / "other") == other.pid
    assert emulator.status(tmp_path / "other") is None
    assert emulator.down(tmp_path / "other") is None


def test_every_patch_has_a_test() -> None:
    source = Path(__file__).read_text()
    missing = [p.name for p in all_patches() if f"test_{p.name.replace('-', '_')}" not in source]
    assert not missing, f"patches without a test: {missing}"


# --- CloudFormation engine ---------------------------------------------------------------------------------

BUCKET_ONLY = {"Resources": {"B": {"Type": "AWS::S3::Bucket"}},
               "Outputs": {"Name": {"Value": {"Ref": "B"}, "Export": {"Name": {"Fn::Sub": "${AWS::StackName}-b"}}}}}


def test_cfn_termination_protection(aws: Callable[[str], Any]) -> None:
    cfn, name = aws("cloudformation"), unique("tp")
    run_change_set(cfn, name, BUCKET_ONLY)
    cfn.update_termination_protection(StackName=name, EnableTerminationProtection=True)
    assert cfn.describe_stacks(StackName=name)["Stacks"][0]["EnableTerminationProtection"] is True
    with pytest.raises(ClientError, match="TerminationProtection"):
        cfn.delete_stack(StackName=name)
    cfn.update_termination_protection(StackName=name, EnableTerminationProtection=False)
    cfn.delete_stack(StackName=name)
    assert cfn.describe_stacks(StackName=name.replace(name, cfn.list_stacks()["StackSummaries"][0]["StackId"]))


def test_cfn_change_set_scope(aws: Callable[[str], Any]) -> None:
    cfn, first, second = aws("cloudformation"), unique("cs-a"), unique("cs-b")
    for stack in (first, second):
        cfn.create_change_set(StackName=stack, ChangeSetName="same-name", TemplateBody=json.dumps(BUCKET_ONLY),
                              ChangeSetType="CREATE")
    assert cfn.describe_change_set(StackName=first, ChangeSetName="same-name")["StackName"] == first
    assert cfn.describe_change_set(StackName=second, ChangeSetName="same-name")["StackName"] == second
    cfn.execute_change_set(StackName=first, ChangeSetName="same-name")
    assert cfn.describe_stacks(StackName=first)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    assert cfn.describe_stacks(StackName=second)["Stacks"][0]["StackStatus"] == "REVIEW_IN_PROGRESS"
    cfn.delete_change_set(StackName=first, ChangeSetName="does-not-exist")  # 200, as in AWS
    with pytest.raises(ClientError) as missing:
        cfn.describe_change_set(StackName=first, ChangeSetName="does-not-exist")
    assert missing.value.response["Error"]["Code"] == "ChangeSetNotFound"


def test_cfn_use_previous_value(aws: Callable[[str], Any]) -> None:
    cfn, ssm, name = aws("cloudformation"), aws("ssm"), unique("upv")
    ssm.put_parameter(Name=f"/{name}/version", Value="21", Type="String")
    template = {"Parameters": {"Version": {"Type": "AWS::SSM::Parameter::Value<String>",
                                           "Default": f"/{name}/version"}},
                "Resources": {"B": {"Type": "AWS::S3::Bucket"}},
                "Outputs": {"V": {"Value": {"Ref": "Version"}}}}
    run_change_set(cfn, name, template, [{"ParameterKey": "Version", "ParameterValue": f"/{name}/version"}])
    template["Resources"]["C"] = {"Type": "AWS::S3::Bucket"}
    stack = run_change_set(cfn, name, template, [{"ParameterKey": "Version", "UsePreviousValue": True}])
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    assert stack["Outputs"] == [{"OutputKey": "V", "OutputValue": "21"}]


def test_cfn_execute_change_set(aws: Callable[[str], Any]) -> None:
    cfn, exporter, importer = aws("cloudformation"), unique("exp"), unique("imp")
    stack = run_change_set(cfn, exporter, BUCKET_ONLY)
    outputs = {o["OutputKey"]: o for o in stack["Outputs"]}
    assert outputs["Name"]["ExportName"] == f"{exporter}-b"
    importing = {"Resources": {"P": {"Type": "AWS::SSM::Parameter", "Properties": {
        "Type": "String", "Name": f"/{importer}/bucket", "Value": {"Fn::ImportValue": f"{exporter}-b"}}}}}
    assert run_change_set(cfn, importer, importing)["StackStatus"] == "CREATE_COMPLETE"
    assert aws("ssm").get_parameter(Name=f"/{importer}/bucket")["Parameter"]["Value"] == outputs["Name"]["OutputValue"]
    # A failing resource: a FAILED stack with the reason (not a 500 the SDK would retry into success).
    broken, failing = unique("broken"), {"Resources": {
        "Q": {"Type": "AWS::SSM::Parameter", "Properties": {"Type": "String", "Name": "/x",
                                                              "Value": {"Fn::ImportValue": "no-such-export"}}}}}
    assert run_change_set(cfn, broken, failing)["StackStatus"] == "ROLLBACK_COMPLETE"
    reasons = [e.get("ResourceStatusReason", "") for e in events_of(cfn, broken) if e["ResourceStatus"] == "CREATE_FAILED"]
    assert any("no-such-export" in r and "Q (AWS::SSM::Parameter)" in r for r in reasons), reasons


def test_s3_cfn_delete_nonempty(aws: Callable[[str], Any]) -> None:
    test_cfn_delete_stack(aws)


def test_cfn_delete_stack(aws: Callable[[str], Any]) -> None:
    cfn, s3, name = aws("cloudformation"), aws("s3"), unique("del")
    stack = run_change_set(cfn, name, {"Resources": {"B": {"Type": "AWS::S3::Bucket"}},
                                       "Outputs": {"N": {"Value": {"Ref": "B"}}}})
    bucket = stack["Outputs"][0]["OutputValue"]
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")  # a non-empty bucket cannot be deleted
    cfn.delete_stack(StackName=name)
    failed = cfn.describe_stacks(StackName=name)["Stacks"][0]
    assert failed["StackStatus"] == "DELETE_FAILED"
    s3.delete_object(Bucket=bucket, Key="k")
    cfn.delete_stack(StackName=name)
    assert not [s for s in cfn.describe_stacks()["Stacks"] if s["StackName"] == name]


def test_cfn_unsupported_types(aws: Callable[[str], Any]) -> None:
    cfn, name = aws("cloudformation"), unique("unsup")
    stack = run_change_set(cfn, name, {"Resources": {"M": {"Type": "AWS::CDK::Metadata",
                                                          "Properties": {"Analytics": "v2:x"}},
                                                    "X": {"Type": "AWS::Nope::Thing"}}})
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    reasons = " ".join(e.get("ResourceStatusReason", "") for e in events_of(cfn, name))
    assert "AWS::Nope::Thing is not supported by the dsstack emulator" in reasons
    recorded = run_change_set(cfn, unique("meta"), {"Resources": {"M": {"Type": "AWS::CDK::Metadata"}}})
    resources = cfn.list_stack_resources(StackName=recorded["StackName"])["StackResourceSummaries"]
    assert [(r["LogicalResourceId"], r["ResourceType"]) for r in resources] == [("M", "AWS::CDK::Metadata")]


def test_cfn_stack_resources(aws: Callable[[str], Any]) -> None:
    cfn, name = aws("cloudformation"), unique("lazy")
    run_change_set(cfn, name, {"Resources": {"B": {"Type": "AWS::S3::Bucket"}, "X": {"Type": "AWS::Nope::Thing"}}})
    # Listing a rolled-back stack must not re-run the failing resource (that was a 500).
    for _ in range(2):
        assert cfn.list_stack_resources(StackName=name)["StackResourceSummaries"] is not None
        assert cfn.describe_stack_resources(StackName=name)["StackResources"] is not None


# --- resource types --------------------------------------------------------------------------------------

def test_cfn_skipped_types(aws: Callable[[str], Any]) -> None:
    cfn, name = aws("cloudformation"), unique("types")
    template = {"Resources": {
        "Bucket": {"Type": "AWS::S3::Bucket"},
        "BucketPolicy": {"Type": "AWS::S3::BucketPolicy", "Properties": {"Bucket": {"Ref": "Bucket"}, "PolicyDocument": {
            "Version": "2012-10-17", "Statement": [{"Sid": "reads", "Effect": "Allow", "Principal": {"AWS": "*"},
                                                    "Action": "s3:GetObject", "Resource": "*"}]}}},
        "Topic": {"Type": "AWS::SNS::Topic"},
        "TopicPolicy": {"Type": "AWS::SNS::TopicPolicy", "Properties": {"Topics": [{"Ref": "Topic"}], "PolicyDocument": {
            "Version": "2012-10-17", "Statement": [{"Sid": "pub", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
                                                    "Action": "sns:Publish", "Resource": "*"}]}}},
        "Queue": {"Type": "AWS::SQS::Queue"},
        "QueuePolicy": {"Type": "AWS::SQS::QueuePolicy", "Properties": {"Queues": [{"Ref": "Queue"}], "PolicyDocument": {
            "Version": "2012-10-17", "Statement": [{"Sid": "send", "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"},
                                                    "Action": "sqs:SendMessage", "Resource": "*"}]}}},
        "Subscription": {"Type": "AWS::SNS::Subscription", "Properties": {
            "TopicArn": {"Ref": "Topic"}, "Protocol": "sqs", "Endpoint": {"Fn::GetAtt": ["Queue", "Arn"]},
            "RawMessageDelivery": True}},
        "Secret": {"Type": "AWS::SecretsManager::Secret", "Properties": {"GenerateSecretString": {
            "SecretStringTemplate": '{"user": "admin"}', "GenerateStringKey": "password", "PasswordLength": 24}}},
        "Alarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {
            "MetricName": "Errors", "Namespace": "AWS/Lambda", "Statistic": "Sum", "Period": 60, "EvaluationPeriods": 1,
            "Threshold": 1, "ComparisonOperator": "GreaterThanOrEqualToThreshold", "AlarmActions": [{"Ref": "Topic"}]}},
        "Global": {"Type": "AWS::DynamoDB::GlobalTable", "Properties": {
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}], "BillingMode": "PAY_PER_REQUEST",
            "TimeToLiveSpecification": {"AttributeName": "ttl", "Enabled": True},
            "Replicas": [{"Region": REGION, "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                          "DeletionProtectionEnabled": True}]}},
    }, "Outputs": {
        "Bucket": {"Value": {"Ref": "Bucket"}}, "Topic": {"Value": {"Ref": "Topic"}},
        "Queue": {"Value": {"Ref": "Queue"}}, "Secret": {"Value": {"Ref": "Secret"}},
        "Alarm": {"Value": {"Ref": "Alarm"}}, "Table": {"Value": {"Ref": "Global"}},
        "Sub": {"Value": {"Ref": "Subscription"}}}}
    stack = run_change_set(cfn, name, template)
    assert stack["StackStatus"] == "CREATE_COMPLETE", events_of(cfn, name)[:3]
    out = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert "reads" in aws("s3").get_bucket_policy(Bucket=out["Bucket"])["Policy"]
    assert "events.amazonaws.com" in aws("sns").get_topic_attributes(TopicArn=out["Topic"])["Attributes"]["Policy"]
    queue_url = aws("sqs").get_queue_url(QueueName=out["Queue"].rsplit("/", 1)[-1])["QueueUrl"]
    assert "sqs:SendMessage" in aws("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["Policy"])[
        "Attributes"]["Policy"]
    subscription = aws("sns").get_subscription_attributes(SubscriptionArn=out["Sub"])["Attributes"]
    assert subscription["RawMessageDelivery"] == "true" and subscription["Protocol"] == "sqs"
    secret = json.loads(aws("secretsmanager").get_secret_value(SecretId=out["Secret"])["SecretString"])
    assert secret["user"] == "admin" and len(secret["password"]) == 24
    assert aws("cloudwatch").describe_alarms(AlarmNames=[out["Alarm"]])["MetricAlarms"][0]["MetricName"] == "Errors"
    ddb = aws("dynamodb")
    assert ddb.describe_table(TableName=out["Table"])["Table"]["DeletionProtectionEnabled"] is True
    assert ddb.describe_continuous_backups(TableName=out["Table"])["ContinuousBackupsDescription"][
        "PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"


def test_cfn_dynamodb_table(aws: Callable[[str], Any]) -> None:
    cfn, ddb, name = aws("cloudformation"), aws("dynamodb"), unique("table")
    table = {"Type": "AWS::DynamoDB::Table", "Properties": {
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}], "BillingMode": "PAY_PER_REQUEST",
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "TimeToLiveSpecification": {"AttributeName": "ttl", "Enabled": True},
        "Tags": [{"Key": "team", "Value": "a"}]}}
    stack = run_change_set(cfn, name, {"Resources": {"T": table}, "Outputs": {"T": {"Value": {"Ref": "T"}}}})
    table_name = stack["Outputs"][0]["OutputValue"]
    assert ddb.describe_continuous_backups(TableName=table_name)["ContinuousBackupsDescription"][
        "PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    assert ddb.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED"
    ddb.put_item(TableName=table_name, Item={"pk": {"S": "kept"}})
    table["Properties"]["Tags"] = [{"Key": "team", "Value": "b"}]  # an in-place update keeps table and items
    assert run_change_set(cfn, name, {"Resources": {"T": table}, "Outputs": {"T": {"Value": {"Ref": "T"}}}})[
        "StackStatus"] == "UPDATE_COMPLETE"
    assert ddb.get_item(TableName=table_name, Key={"pk": {"S": "kept"}})["Item"]
    assert [r["LogicalResourceId"] for r in cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]] == ["T"]


def test_cfn_kms_key(aws: Callable[[str], Any]) -> None:
    cfn, name = aws("cloudformation"), unique("kms")
    stack = run_change_set(cfn, name, {"Resources": {"K": {"Type": "AWS::KMS::Key", "Properties": {
        "EnableKeyRotation": True, "Tags": [{"Key": "team", "Value": "a"}],
        "KeyPolicy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"},
                                                              "Action": "kms:*", "Resource": "*"}]}}}},
        "Outputs": {"K": {"Value": {"Ref": "K"}}}})
    key = stack["Outputs"][0]["OutputValue"]
    kms = aws("kms")
    assert kms.list_resource_tags(KeyId=key)["Tags"] == [{"TagKey": "team", "TagValue": "a"}]
    assert kms.get_key_rotation_status(KeyId=key)["KeyRotationEnabled"] is True
    assert json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])["Statement"]


def test_cfn_ssm_parameter(aws: Callable[[str], Any]) -> None:
    cfn, name = aws("cloudformation"), unique("param")
    run_change_set(cfn, name, {"Resources": {"P": {"Type": "AWS::SSM::Parameter", "Properties": {
        "Name": f"/{name}/p", "Type": "String", "Value": "v", "Tags": {"team": "a"}}}}})
    ssm = aws("ssm")
    assert ssm.get_parameter(Name=f"/{name}/p")["Parameter"]["Value"] == "v"
    assert ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=f"/{name}/p")["TagList"] == [
        {"Key": "team", "Value": "a"}]


# --- S3 ---------------------------------------------------------------------------------------------------

TLS_ONLY = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "s3:*", "Resource": "*",
    "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}


def _datastore_template(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"Resources": {
        "B": {"Type": "AWS::S3::Bucket", "Properties": {
            "VersioningConfiguration": {"Status": "Enabled"},
            "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                               "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
            "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
            "LifecycleConfiguration": {"Rules": [
                {"Id": "abort", "Status": "Enabled", "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}},
                {"Id": "old", "Status": "Enabled", "NoncurrentVersionExpiration": {"NoncurrentDays": 30}}]},
            "NotificationConfiguration": {"EventBridgeConfiguration": {"EventBridgeEnabled": True}},
            "Tags": [{"Key": "team", "Value": "a"}]}},
        "P": {"Type": "AWS::S3::BucketPolicy", "Properties": {"Bucket": {"Ref": "B"}, "PolicyDocument": TLS_ONLY}},
        **(extra or {})}, "Outputs": {"B": {"Value": {"Ref": "B"}}}}


def test_s3_bucket_properties(aws: Callable[[str], Any]) -> None:
    cfn, s3, name = aws("cloudformation"), aws("s3"), unique("bucket")
    stack = run_change_set(cfn, name, _datastore_template())
    bucket = stack["Outputs"][0]["OutputValue"]
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]["BlockPublicAcls"] is True
    assert s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"][0][
        "ObjectOwnership"] == "BucketOwnerEnforced"
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    assert rules["old"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    # EventBridge notifications: proven by delivery in test_s3_eventbridge_events (moto's GET drops the
    # empty <EventBridgeConfiguration/> element).
    # An in-place update of a bucket with a generated name (moto read Properties.BucketName: KeyError).
    template = _datastore_template()
    template["Resources"]["B"]["Properties"]["Tags"] = [{"Key": "team", "Value": "b"}]
    assert run_change_set(cfn, name, template)["StackStatus"] == "UPDATE_COMPLETE"
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "team", "Value": "b"}]


def test_s3_policy_conditions(aws: Callable[[str], Any]) -> None:
    s3 = aws("s3")
    bucket = unique("tls")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(TLS_ONLY))
    s3.put_object(Bucket=bucket, Key="k", Body=b"allowed: the emulator stands in for the TLS endpoint")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read().startswith(b"allowed")
    # An unconditional deny is still enforced.
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
    with pytest.raises(ClientError, match=r"403|Forbidden|AccessDenied"):
        s3.get_object(Bucket=bucket, Key="k")


def test_s3_eventbridge_events(aws: Callable[[str], Any]) -> None:
    cfn, s3, sqs, events = aws("cloudformation"), aws("s3"), aws("sqs"), aws("events")
    bucket = run_change_set(cfn, unique("ebs3"), _datastore_template())["Outputs"][0]["OutputValue"]
    queue_url = sqs.create_queue(QueueName=unique("q"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = unique("rule")
    events.put_rule(Name=rule, EventPattern=json.dumps({"source": ["aws.s3"], "detail-type": ["Object Created"],
                                                        "detail": {"bucket": {"name": [bucket]}}}))
    events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": queue_arn}])
    s3.put_object(Bucket=bucket, Key="models/a.bin", Body=b"1")
    s3.put_object(Bucket=bucket, Key="models/a.bin", Body=b"2")
    messages = wait_for(lambda: sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages"))
    event = json.loads(messages[0]["Body"])
    assert event["account"] == "123456789012" and event["time"].endswith("Z")
    assert event["detail"]["object"]["key"] == "models/a.bin" and event["detail"]["object"]["version-id"]
    assert event["detail"]["reason"] == "PutObject"
    more = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    ids = {json.loads(m["Body"])["id"] for m in [*messages, *more]}
    assert len(ids) == 2, "each event has its own id"


# --- EC2 ---------------------------------------------------------------------------------------------------

def test_ec2_flow_log_s3_prefix_and_route_table_association(aws: Callable[[str], Any]) -> None:
    cfn, ec2, name = aws("cloudformation"), aws("ec2"), unique("net")
    stack = run_change_set(cfn, name, {"Resources": {
        "Logs": {"Type": "AWS::S3::Bucket"},
        "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.9.0.0/16"}},
        "Subnet": {"Type": "AWS::EC2::Subnet", "Properties": {"VpcId": {"Ref": "Vpc"}, "CidrBlock": "10.9.0.0/24"}},
        "Table": {"Type": "AWS::EC2::RouteTable", "Properties": {"VpcId": {"Ref": "Vpc"}}},
        "Assoc": {"Type": "AWS::EC2::SubnetRouteTableAssociation", "Properties": {
            "RouteTableId": {"Ref": "Table"}, "SubnetId": {"Ref": "Subnet"}}},
        "Flow": {"Type": "AWS::EC2::FlowLog", "Properties": {
            "ResourceId": {"Ref": "Vpc"}, "ResourceType": "VPC", "TrafficType": "ALL", "LogDestinationType": "s3",
            "LogDestination": {"Fn::Join": ["", [{"Fn::GetAtt": ["Logs", "Arn"]}, "/vpc-flow-logs/"]]}}}},
        "Outputs": {"Vpc": {"Value": {"Ref": "Vpc"}}, "Table": {"Value": {"Ref": "Table"}},
                    "Subnet": {"Value": {"Ref": "Subnet"}}}})
    assert stack["StackStatus"] == "CREATE_COMPLETE", events_of(cfn, name)[:3]
    out = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    flows = ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [out["Vpc"]]}])["FlowLogs"]
    assert flows[0]["LogDestination"].endswith("/vpc-flow-logs/")
    table = ec2.describe_route_tables(RouteTableIds=[out["Table"]])["RouteTables"][0]
    assert [a["SubnetId"] for a in table["Associations"]] == [out["Subnet"]]
    physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in
                cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]}
    assert physical["Assoc"].startswith("rtbassoc-")


def test_ec2_network_deletes(aws: Callable[[str], Any]) -> None:
    cfn, ec2, name = aws("cloudformation"), aws("ec2"), unique("vpcdel")
    stack = run_change_set(cfn, name, {"Resources": {
        "Logs": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain"},
        "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.7.0.0/16"}},
        "Subnet": {"Type": "AWS::EC2::Subnet", "Properties": {"VpcId": {"Ref": "Vpc"}, "CidrBlock": "10.7.0.0/24"}},
        "Table": {"Type": "AWS::EC2::RouteTable", "Properties": {"VpcId": {"Ref": "Vpc"}}},
        "Assoc": {"Type": "AWS::EC2::SubnetRouteTableAssociation", "Properties": {
            "RouteTableId": {"Ref": "Table"}, "SubnetId": {"Ref": "Subnet"}}},
        "Igw": {"Type": "AWS::EC2::InternetGateway"},
        "Attach": {"Type": "AWS::EC2::VPCGatewayAttachment", "Properties": {
            "VpcId": {"Ref": "Vpc"}, "InternetGatewayId": {"Ref": "Igw"}}},
        "Default": {"Type": "AWS::EC2::Route", "DependsOn": ["Attach"], "Properties": {
            "RouteTableId": {"Ref": "Table"}, "DestinationCidrBlock": "0.0.0.0/0", "GatewayId": {"Ref": "Igw"}}},
        "S3Endpoint": {"Type": "AWS::EC2::VPCEndpoint", "Properties": {
            "VpcId": {"Ref": "Vpc"}, "ServiceName": "com.amazonaws.us-east-1.s3", "VpcEndpointType": "Gateway",
            "RouteTableIds": [{"Ref": "Table"}]}},
        "Flow": {"Type": "AWS::EC2::FlowLog", "Properties": {
            "ResourceId": {"Ref": "Vpc"}, "ResourceType": "VPC", "TrafficType": "ALL", "LogDestinationType": "s3",
            "LogDestination": {"Fn::GetAtt": ["Logs", "Arn"]}}}},
        "Outputs": {"Vpc": {"Value": {"Ref": "Vpc"}}}})
    assert stack["StackStatus"] == "CREATE_COMPLETE", events_of(cfn, name)[:3]
    vpc = stack["Outputs"][0]["OutputValue"]
    cfn.delete_stack(StackName=name)
    assert not [s for s in cfn.describe_stacks()["Stacks"] if s["StackName"] == name], events_of(cfn, name)[:3]
    assert not [v for v in ec2.describe_vpcs()["Vpcs"] if v["VpcId"] == vpc]


def test_ec2_flow_log_s3_prefix(aws: Callable[[str], Any]) -> None:
    ec2, s3 = aws("ec2"), aws("s3")
    bucket = unique("flows")
    s3.create_bucket(Bucket=bucket)
    vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    result = ec2.create_flow_logs(ResourceIds=[vpc], ResourceType="VPC", TrafficType="ALL", LogDestinationType="s3",
                                  LogDestination=f"arn:aws:s3:::{bucket}/prefix/")
    assert result["FlowLogIds"] and not result["Unsuccessful"]


def test_ec2_subnet_route_table_association(aws: Callable[[str], Any]) -> None:
    test_ec2_flow_log_s3_prefix_and_route_table_association(aws)


# --- Lambda ------------------------------------------------------------------------------------------------

WRITER = """
import json, os, boto3
def handler(event, context):
    boto3.client("dynamodb").put_item(TableName=os.environ["TABLE"], Item={
        "pk": {"S": event.get("detail", {}).get("object", {}).get("key", event.get("key", "direct"))},
        "account": {"S": str(event.get("account"))}, "fn": {"S": context.function_name}})
    return {"ok": True, "remaining": context.get_remaining_time_in_millis() > 0}
"""


def _table(aws: Callable[[str], Any]) -> str:
    name = unique("items")
    aws("dynamodb").create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                                 AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                                 KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    return name


def test_lambda_invoke_local(aws: Callable[[str], Any]) -> None:
    table = _table(aws)
    fn = make_function(aws, WRITER, {"TABLE": table})
    reply = aws("lambda").invoke(FunctionName=fn, Payload=json.dumps({"key": "k1"}))
    assert "FunctionError" not in reply, reply["Payload"].read()
    assert json.loads(reply["Payload"].read()) == {"ok": True, "remaining": True}
    assert aws("dynamodb").get_item(TableName=table, Key={"pk": {"S": "k1"}})["Item"]["fn"]["S"] == fn
    failing = make_function(aws, "def handler(event, context):\n    raise ValueError('bad event')\n")
    reply = aws("lambda").invoke(FunctionName=failing, Payload=b"{}")
    assert reply["FunctionError"]
    assert json.loads(reply["Payload"].read())["errorMessage"] == "bad event"


def test_lambda_cfn_properties(aws: Callable[[str], Any]) -> None:
    cfn, name = aws("cloudformation"), unique("fnstack")
    layer = aws("lambda").publish_layer_version(LayerName=unique("shared"), Content={"ZipFile": zip_code(
        {"python/shared_helpers.py": "def greet():\n    return 'hello from the layer'\n"})})["LayerVersionArn"]
    code = ("import shared_helpers\nfrom aws_lambda_powertools import Logger\n"
            "def handler(event, context):\n    Logger().info('powertools from the venv')\n"
            "    return shared_helpers.greet()\n")
    stack = run_change_set(cfn, name, {"Resources": {
        "Dlq": {"Type": "AWS::SQS::Queue"},
        "Fn": {"Type": "AWS::Lambda::Function", "Properties": {
            "Runtime": "python3.12", "Handler": "index.handler", "Role": ROLE, "Layers": [POWERTOOLS_LAYER, layer],
            "Architectures": ["arm64"], "DeadLetterConfig": {"TargetArn": {"Fn::GetAtt": ["Dlq", "Arn"]}},
            "Code": {"ZipFile": code.replace("import shared_helpers", "import shared_helpers  # noqa")}}}},
        "Outputs": {"Fn": {"Value": {"Ref": "Fn"}}}})
    assert stack["StackStatus"] == "CREATE_COMPLETE", events_of(cfn, name)[:3]
    fn = stack["Outputs"][0]["OutputValue"]
    config = aws("lambda").get_function_configuration(FunctionName=fn)
    assert [layer_["Arn"] for layer_ in config["Layers"]] == [POWERTOOLS_LAYER, layer]
    assert config["Architectures"] == ["arm64"]
    assert config["DeadLetterConfig"]["TargetArn"].endswith(":" + cfn.describe_stack_resource(
        StackName=name, LogicalResourceId="Dlq")["StackResourceDetail"]["PhysicalResourceId"].rsplit("/", 1)[1])
    reply = aws("lambda").invoke(FunctionName=fn, Payload=b"{}")
    assert json.loads(reply["Payload"].read()) == "hello from the layer"


def test_lambda_async_invoke(aws: Callable[[str], Any]) -> None:
    sqs = aws("sqs")
    dlq = sqs.create_queue(QueueName=unique("dlq"))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    fn = make_function(aws, "def handler(event, context):\n    raise RuntimeError('always')\n",
                       DeadLetterConfig={"TargetArn": dlq_arn})
    aws("lambda").put_function_event_invoke_config(FunctionName=fn, MaximumRetryAttempts=0)
    started = time.monotonic()
    reply = aws("lambda").invoke(FunctionName=fn, InvocationType="Event", Payload=json.dumps({"n": 1}))
    assert reply["StatusCode"] == 202 and time.monotonic() - started < 2
    message = wait_for(lambda: sqs.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"]).get("Messages"))[0]
    assert json.loads(message["Body"]) == {"n": 1}
    assert "always" in message["MessageAttributes"]["ErrorMessage"]["StringValue"]


# --- EventBridge -------------------------------------------------------------------------------------------

def test_events_targets(aws: Callable[[str], Any]) -> None:
    """S3 -> EventBridge -> Lambda -> DynamoDB, EventBridge -> SNS -> SQS, and a disabled rule."""
    cfn, s3, sqs, sns, events = aws("cloudformation"), aws("s3"), aws("sqs"), aws("sns"), aws("events")
    table = _table(aws)
    fn = make_function(aws, WRITER, {"TABLE": table})
    fn_arn = aws("lambda").get_function(FunctionName=fn)["Configuration"]["FunctionArn"]
    bucket = run_change_set(cfn, unique("flow"), _datastore_template())["Outputs"][0]["OutputValue"]
    rule = unique("objects")
    events.put_rule(Name=rule, EventPattern=json.dumps({"source": ["aws.s3"], "detail": {"bucket": {"name": [bucket]}}}))
    events.put_targets(Rule=rule, Targets=[{"Id": "fn", "Arn": fn_arn}])
    s3.put_object(Bucket=bucket, Key="runs/1.json", Body=b"{}")
    item = wait_for(lambda: aws("dynamodb").get_item(TableName=table, Key={"pk": {"S": "runs/1.json"}}).get("Item"))
    assert item["account"]["S"] == "123456789012"

    topic = sns.create_topic(Name=unique("alerts"))["TopicArn"]
    queue = sqs.create_queue(QueueName=unique("inbox"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    alert_rule, off_rule = unique("alert"), unique("off")
    events.put_rule(Name=alert_rule, EventPattern=json.dumps({"source": ["dsstack.test"]}))
    events.put_targets(Rule=alert_rule, Targets=[{"Id": "t", "Arn": topic, "Input": json.dumps({"msg": "constant"})}])
    events.put_rule(Name=off_rule, EventPattern=json.dumps({"source": ["dsstack.test"]}), State="DISABLED")
    events.put_targets(Rule=off_rule, Targets=[{"Id": "t", "Arn": topic}])
    reply = events.put_events(Entries=[{"Source": "dsstack.test", "DetailType": "x", "Detail": "{}"}])
    assert reply["FailedEntryCount"] == 0
    messages = wait_for(lambda: sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"))
    time.sleep(0.5)
    messages += sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    assert [json.loads(m["Body"]) for m in messages] == [{"msg": "constant"}], "the disabled rule must not deliver"


# --- API Gateway -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def api_id(aws: Callable[[str], Any]) -> str:
    """A CDK-shaped REST API: {proxy+} ANY -> Lambda (AWS_PROXY), stage, API key, usage plan."""
    cfn, name = aws("cloudformation"), unique("api")
    handler = ("import json\ndef handler(event, context):\n    return {'statusCode': 200, 'headers': "
               "{'Content-Type': 'application/json'}, 'body': json.dumps({'path': event['path'], "
               "'proxy': event['pathParameters']['proxy'], 'q': event['queryStringParameters'], "
               "'key': event['requestContext']['identity']['apiKey']})}\n")
    fn_arn = {"Fn::GetAtt": ["Fn", "Arn"]}
    uri = {"Fn::Join": ["", ["arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/", fn_arn,
                             "/invocations"]]}
    stack = run_change_set(cfn, name, {"Resources": {
        "Fn": {"Type": "AWS::Lambda::Function", "Properties": {"Runtime": "python3.12", "Handler": "index.handler",
                                                               "Role": ROLE, "Code": {"ZipFile": handler}}},
        "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": name}},
        "Proxy": {"Type": "AWS::ApiGateway::Resource", "Properties": {
            "RestApiId": {"Ref": "Api"}, "ParentId": {"Fn::GetAtt": ["Api", "RootResourceId"]}, "PathPart": "{proxy+}"}},
        "Any": {"Type": "AWS::ApiGateway::Method", "Properties": {
            "RestApiId": {"Ref": "Api"}, "ResourceId": {"Ref": "Proxy"}, "HttpMethod": "ANY",
            "AuthorizationType": "NONE", "ApiKeyRequired": True,
            "Integration": {"Type": "AWS_PROXY", "IntegrationHttpMethod": "POST", "Uri": uri}}},
        "Deployment": {"Type": "AWS::ApiGateway::Deployment", "DependsOn": ["Any"],
                       "Properties": {"RestApiId": {"Ref": "Api"}}},
        "Stage": {"Type": "AWS::ApiGateway::Stage", "Properties": {
            "RestApiId": {"Ref": "Api"}, "DeploymentId": {"Ref": "Deployment"}, "StageName": "prod"}},
        "Key": {"Type": "AWS::ApiGateway::ApiKey", "Properties": {"Enabled": True, "Value": "k" * 24}},
        "Plan": {"Type": "AWS::ApiGateway::UsagePlan", "DependsOn": ["Stage"], "Properties": {
            "ApiStages": [{"ApiId": {"Ref": "Api"}, "Stage": "prod"}], "Throttle": {"RateLimit": 10, "BurstLimit": 5}}},
        "PlanKey": {"Type": "AWS::ApiGateway::UsagePlanKey", "Properties": {
            "KeyId": {"Ref": "Key"}, "KeyType": "API_KEY", "UsagePlanId": {"Ref": "Plan"}}},
        "Account": {"Type": "AWS::ApiGateway::Account", "Properties": {}}},
        "Outputs": {"Api": {"Value": {"Ref": "Api"}}}})
    assert stack["StackStatus"] == "CREATE_COMPLETE", events_of(cfn, name)[:3]
    return stack["Outputs"][0]["OutputValue"]


def test_apigateway_cfn_types(aws: Callable[[str], Any], api_id: str) -> None:
    apigw = aws("apigateway")
    assert [s["stageName"] for s in apigw.get_stages(restApiId=api_id)["item"]] == ["prod"]
    plans = apigw.get_usage_plans()["items"]
    assert any(p["apiStages"] == [{"apiId": api_id, "stage": "prod"}] for p in plans)
    assert any(k["value"] == "k" * 24 for k in apigw.get_api_keys(includeValues=True)["items"])


def test_apigateway_lambda_proxy(emu: emulator.Emulator, api_id: str) -> None:
    from dsstack.local.patches.apigateway import execute_api_url

    url = execute_api_url(emu.endpoint, api_id, "prod") + "/runs/42?x=1"
    with pytest.raises(urllib.error.HTTPError) as forbidden:
        urllib.request.urlopen(url, timeout=30)
    assert forbidden.value.code == 403
    request = urllib.request.Request(url, headers={"x-api-key": "k" * 24})
    with urllib.request.urlopen(request, timeout=30) as reply:
        assert reply.status == 200
        body = json.loads(reply.read())
    assert body == {"path": "/runs/42", "proxy": "runs/42", "q": {"x": "1"}, "key": "k" * 24}


# --- AWS Batch -------------------------------------------------------------------------------------------------

def test_batch_cfn_attributes_and_delete(aws: Callable[[str], Any]) -> None:
    cfn, name = aws("cloudformation"), unique("batch")
    assume = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                      "Principal": {"Service": "batch.amazonaws.com"}}]}
    template = {"Resources": {
        "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.9.0.0/16"}},
        "Subnet": {"Type": "AWS::EC2::Subnet", "Properties": {"VpcId": {"Ref": "Vpc"}, "CidrBlock": "10.9.0.0/20"}},
        "Sg": {"Type": "AWS::EC2::SecurityGroup", "Properties": {"GroupDescription": "batch",
                                                                  "VpcId": {"Ref": "Vpc"}}},
        "ServiceRole": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": assume}},
        "InstanceRole": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": assume}},
        "Profile": {"Type": "AWS::IAM::InstanceProfile", "Properties": {"Roles": [{"Ref": "InstanceRole"}]}},
        "Env": {"Type": "AWS::Batch::ComputeEnvironment", "Properties": {
            "Type": "MANAGED", "ServiceRole": {"Fn::GetAtt": ["ServiceRole", "Arn"]},
            "ComputeResources": {"Type": "EC2", "MinvCpus": 0, "MaxvCpus": 16, "InstanceTypes": ["m5"],
                                 "Subnets": [{"Ref": "Subnet"}], "SecurityGroupIds": [{"Ref": "Sg"}],
                                 "InstanceRole": {"Fn::GetAtt": ["Profile", "Arn"]}}}},
        "Queue": {"Type": "AWS::Batch::JobQueue", "Properties": {
            "JobQueueName": name, "Priority": 1,
            "ComputeEnvironmentOrder": [{"Order": 1, "ComputeEnvironment": {"Fn::GetAtt": ["Env", "ComputeEnvironmentArn"]}}]}},
    }, "Outputs": {"QueueArn": {"Value": {"Fn::GetAtt": ["Queue", "JobQueueArn"]}}}}
    stack = run_change_set(cfn, name, template)
    assert stack["StackStatus"] == "CREATE_COMPLETE", events_of(cfn, name)[:3]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["QueueArn"].endswith(f":job-queue/{name}")
    batch = aws("batch")
    assert [q["jobQueueName"] for q in batch.describe_job_queues(jobQueues=[name])["jobQueues"]] == [name]
    cfn.delete_stack(StackName=name)
    assert batch.describe_job_queues(jobQueues=[name])["jobQueues"] == []


def test_cfn_invoke_config_budget_and_alarm_dimensions(aws: Callable[[str], Any]) -> None:
    """Types added to cfn-skipped-types for the operations stack: EventInvokeConfig, Budget, alarm dimensions."""
    function = make_function(aws, "def handler(event, context):\n    return 1\n")
    cfn, name = aws("cloudformation"), unique("ops")
    template = {"Resources": {
        "Invoke": {"Type": "AWS::Lambda::EventInvokeConfig", "Properties": {
            "FunctionName": function, "Qualifier": "$LATEST", "MaximumRetryAttempts": 1}},
        "Budget": {"Type": "AWS::Budgets::Budget", "Properties": {"Budget": {
            "BudgetName": name, "BudgetType": "COST", "TimeUnit": "MONTHLY",
            "BudgetLimit": {"Amount": 500, "Unit": "USD"}}}},
        "Alarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {
            "MetricName": "Errors", "Namespace": "AWS/Lambda", "Statistic": "Sum", "Period": 300,
            "EvaluationPeriods": 1, "Threshold": 1, "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Dimensions": [{"Name": "FunctionName", "Value": function}]}},
    }}
    stack = run_change_set(cfn, name, template)
    assert stack["StackStatus"] == "CREATE_COMPLETE", events_of(cfn, name)[:3]
    config = aws("lambda").get_function_event_invoke_config(FunctionName=function)
    assert config["MaximumRetryAttempts"] == 1
    budget = aws("budgets").describe_budget(AccountId="123456789012", BudgetName=name)["Budget"]
    assert float(budget["BudgetLimit"]["Amount"]) == 500
    (alarm,) = [a for a in aws("cloudwatch").describe_alarms()["MetricAlarms"]
                if a["Dimensions"] == [{"Name": "FunctionName", "Value": function}]]
    assert alarm["MetricName"] == "Errors"


def test_cfn_update_depends_on(aws: Callable[[str], Any]) -> None:
    """A Deployment listed before its Method in the template is created after it (DependsOn)."""
    cfn, name = aws("cloudformation"), unique("deps")
    template = {"Resources": {
        "Validator": {"Type": "AWS::ApiGateway::RequestValidator", "Properties": {
            "RestApiId": {"Ref": "Api"}, "Name": "params", "ValidateRequestParameters": True}},
        "Deployment": {"Type": "AWS::ApiGateway::Deployment", "DependsOn": ["Method", "Validator"],
                       "Properties": {"RestApiId": {"Ref": "Api"}}},
        "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": name}},
        "Proxy": {"Type": "AWS::ApiGateway::Resource", "Properties": {
            "RestApiId": {"Ref": "Api"}, "ParentId": {"Fn::GetAtt": ["Api", "RootResourceId"]}, "PathPart": "{proxy+}"}},
        "Method": {"Type": "AWS::ApiGateway::Method", "Properties": {
            "RestApiId": {"Ref": "Api"}, "ResourceId": {"Ref": "Proxy"}, "HttpMethod": "ANY",
            "AuthorizationType": "NONE", "Integration": {"Type": "MOCK", "IntegrationHttpMethod": "POST",
                                                         "Uri": "arn:aws:apigateway:us-east-1:mock"}}},
    }}
    stack = run_change_set(cfn, name, template)
    assert stack["StackStatus"] == "CREATE_COMPLETE", events_of(cfn, name)[:3]
    api = next(r["PhysicalResourceId"] for r in cfn.describe_stack_resources(StackName=name)["StackResources"]
               if r["LogicalResourceId"] == "Api")
    validators = aws("apigateway").get_request_validators(restApiId=api)["items"]
    assert [(v["name"], v["validateRequestParameters"]) for v in validators] == [("params", True)]


def test_cfn_application_autoscaling_target_and_policy(aws: Callable[[str], Any]) -> None:
    """AWS::ApplicationAutoScaling::ScalableTarget/ScalingPolicy (part of cfn-skipped-types) reach the API."""
    cfn, name = aws("cloudformation"), unique("scaling")
    resource_id = f"table/{name}"
    template = {"Resources": {
        "Target": {"Type": "AWS::ApplicationAutoScaling::ScalableTarget", "Properties": {
            "ServiceNamespace": "dynamodb", "ResourceId": resource_id,
            "ScalableDimension": "dynamodb:table:ReadCapacityUnits", "MinCapacity": 1, "MaxCapacity": 5,
            "RoleARN": ROLE}},
        "Policy": {"Type": "AWS::ApplicationAutoScaling::ScalingPolicy", "Properties": {
            "PolicyName": "reads", "PolicyType": "TargetTrackingScaling", "ScalingTargetId": {"Ref": "Target"},
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": 70, "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "DynamoDBReadCapacityUtilization"}}}},
    }}
    stack = run_change_set(cfn, name, template)
    assert stack["StackStatus"] == "CREATE_COMPLETE", events_of(cfn, name)[:3]
    scaling = aws("application-autoscaling")
    targets = scaling.describe_scalable_targets(ServiceNamespace="dynamodb", ResourceIds=[resource_id])
    assert [(t["MinCapacity"], t["MaxCapacity"]) for t in targets["ScalableTargets"]] == [(1, 5)]
    policies = scaling.describe_scaling_policies(ServiceNamespace="dynamodb", ResourceId=resource_id)
    assert [p["PolicyName"] for p in policies["ScalingPolicies"]] == ["reads"]
    cfn.delete_stack(StackName=name)
    assert scaling.describe_scalable_targets(ServiceNamespace="dynamodb", ResourceIds=[resource_id])[
        "ScalableTargets"] == []


def test_cfn_security_group_egress(aws: Callable[[str], Any]) -> None:
    """AWS::EC2::SecurityGroupEgress (part of cfn-skipped-types): a group-to-group egress rule is applied."""
    cfn, name = aws("cloudformation"), unique("egress")
    template = {"Resources": {
        "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.8.0.0/16"}},
        "From": {"Type": "AWS::EC2::SecurityGroup", "Properties": {"GroupDescription": "lb", "VpcId": {"Ref": "Vpc"}}},
        "To": {"Type": "AWS::EC2::SecurityGroup", "Properties": {"GroupDescription": "svc", "VpcId": {"Ref": "Vpc"}}},
        "Egress": {"Type": "AWS::EC2::SecurityGroupEgress", "Properties": {
            "GroupId": {"Fn::GetAtt": ["From", "GroupId"]}, "IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
            "DestinationSecurityGroupId": {"Fn::GetAtt": ["To", "GroupId"]}}},
    }, "Outputs": {"From": {"Value": {"Fn::GetAtt": ["From", "GroupId"]}}}}
    stack = run_change_set(cfn, name, template)
    assert stack["StackStatus"] == "CREATE_COMPLETE", events_of(cfn, name)[:3]
    group_id = stack["Outputs"][0]["OutputValue"]
    (group,) = aws("ec2").describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    assert any(rule.get("FromPort") == 8080 for rule in group["IpPermissionsEgress"])


def test_iam_managed_policy_deletes(aws: Callable[[str], Any]) -> None:
    cfn, name = aws("cloudformation"), unique("iam")
    assume = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                      "Principal": {"Service": "ec2.amazonaws.com"}}]}
    template = {"Resources": {
        "Role": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": name, "AssumeRolePolicyDocument": assume}},
        "Policy": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {
            "ManagedPolicyName": name, "Roles": [{"Ref": "Role"}], "PolicyDocument": {
                "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                        "Resource": "arn:aws:s3:::b/*"}]}}},
    }}
    assert run_change_set(cfn, name, template)["StackStatus"] == "CREATE_COMPLETE"
    cfn.delete_stack(StackName=name)
    stacks = cfn.list_stacks()["StackSummaries"]
    assert next(s["StackStatus"] for s in stacks if s["StackName"] == name) == "DELETE_COMPLETE"
    iam = aws("iam")
    assert name not in [r["RoleName"] for r in iam.list_roles()["Roles"]]
    assert name not in [p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"]]


def test_concurrent_cloudformation_requests_do_not_race(aws: Callable[[str], Any]) -> None:
    """`cdk deploy --concurrency 4` creates stacks in parallel; the emulator serialises CloudFormation calls."""
    from concurrent.futures import ThreadPoolExecutor

    cfn = aws("cloudformation")
    names = [unique("parallel") for _ in range(8)]

    def create(name: str) -> str:
        return run_change_set(cfn, name, {"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}})["StackStatus"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(create, names))
    assert statuses == ["CREATE_COMPLETE"] * len(names)


def test_ec2_volume_and_instance_updates(aws: Callable[[str], Any]) -> None:
    cfn, name = aws("cloudformation"), unique("ws")

    def template(instance_type: str) -> dict[str, Any]:
        return {"Resources": {
            "Home": {"Type": "AWS::EC2::Volume", "DeletionPolicy": "Retain", "Properties": {
                "AvailabilityZone": "us-east-1a", "Size": 20, "Encrypted": True, "VolumeType": "gp3"}},
            "Box": {"Type": "AWS::EC2::Instance", "Properties": {"ImageId": "ami-12c6146b",
                                                                "InstanceType": instance_type}},
        }, "Outputs": {"Box": {"Value": {"Ref": "Box"}}, "Home": {"Value": {"Ref": "Home"}}}}

    first = {o["OutputKey"]: o["OutputValue"] for o in run_change_set(cfn, name, template("t3.large"))["Outputs"]}
    ec2 = aws("ec2")
    (volume,) = ec2.describe_volumes(VolumeIds=[first["Home"]])["Volumes"]
    assert volume["Encrypted"] is True and volume["VolumeType"] == "gp3"
    second = {o["OutputKey"]: o["OutputValue"] for o in run_change_set(cfn, name, template("t3.xlarge"))["Outputs"]}
    assert second == first  # same instance, same volume
    (reservation,) = ec2.describe_instances(InstanceIds=[first["Box"]])["Reservations"]
    assert reservation["Instances"][0]["InstanceType"] == "t3.xlarge"


def test_cfn_deleted_stack_outputs(aws: Callable[[str], Any]) -> None:
    """DescribeStacks of a deleted stack whose outputs reference deleted resources answers, no 500."""
    cfn, name = aws("cloudformation"), unique("gone")
    stack = run_change_set(cfn, name, {
        "Resources": {"Q": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {"Url": {"Value": {"Ref": "Q"}, "Export": {"Name": f"{name}-url"}}}})
    stack_id = stack["StackId"]
    cfn.delete_stack(StackName=name)
    (deleted,) = cfn.describe_stacks(StackName=stack_id)["Stacks"]
    assert deleted["StackStatus"] == "DELETE_COMPLETE" and "Outputs" not in deleted
    assert f"{name}-url" not in [e["Name"] for e in cfn.list_exports()["Exports"]]


def test_cfn_lower_case_generated_names(aws: Callable[[str], Any]) -> None:
    cfn, name = aws("cloudformation"), unique("Repos")
    stack = run_change_set(cfn, name, {"Resources": {"Repository": {"Type": "AWS::ECR::Repository"}},
                                       "Outputs": {"Name": {"Value": {"Ref": "Repository"}}}})
    assert stack["StackStatus"] == "CREATE_COMPLETE", events_of(cfn, name)[:3]
    repository = stack["Outputs"][0]["OutputValue"]
    assert repository == repository.lower() and repository.startswith(name.lower())
    assert aws("ecr").describe_repositories(repositoryNames=[repository])["repositories"]


# --- SageMaker -----------------------------------------------------------------------------------------------

def test_sagemaker_endpoint_names_and_update(aws: Callable[[str], Any]) -> None:
    cfn, sm, name = aws("cloudformation"), aws("sagemaker"), unique("sm")
    role = "arn:aws:iam::123456789012:role/lambda-role"
    image = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
    template = {"Resources": {
        "Model": {"Type": "AWS::SageMaker::Model", "Properties": {
            "ModelName": f"{name}-model", "ExecutionRoleArn": role, "PrimaryContainer": {"Image": image}}},
        "Config": {"Type": "AWS::SageMaker::EndpointConfig", "Properties": {
            "EndpointConfigName": f"{name}-config", "ProductionVariants": [{
                "VariantName": "live", "ModelName": {"Fn::GetAtt": ["Model", "ModelName"]},
                "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}]}},
        "Endpoint": {"Type": "AWS::SageMaker::Endpoint", "Properties": {
            "EndpointName": name, "EndpointConfigName": {"Fn::GetAtt": ["Config", "EndpointConfigName"]}}},
    }}
    stack = run_change_set(cfn, name, template)
    assert stack["StackStatus"] == "CREATE_COMPLETE", events_of(cfn, name)[:3]
    # The template's names are the real names (moto alone generates `<stack>-Endpoint-<random>`).
    assert sm.describe_endpoint(EndpointName=name)["EndpointConfigName"] == f"{name}-config"
    assert sm.describe_model(ModelName=f"{name}-model")["ModelName"] == f"{name}-model"

    sm.create_endpoint_config(EndpointConfigName=f"{name}-v2", ProductionVariants=[{
        "VariantName": "live", "ModelName": f"{name}-model",
        "ServerlessConfig": {"MemorySizeInMB": 4096, "MaxConcurrency": 2}}])
    policy = {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}},
              "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": f"{name}-5xx"}]}}
    arn = sm.update_endpoint(EndpointName=name, EndpointConfigName=f"{name}-v2", DeploymentConfig=policy)["EndpointArn"]
    described = sm.describe_endpoint(EndpointName=name)
    assert arn == described["EndpointArn"] and described["EndpointConfigName"] == f"{name}-v2"
    assert described["ProductionVariants"][0]["CurrentServerlessConfig"] == {"MemorySizeInMB": 4096, "MaxConcurrency": 2}
    assert described["LastDeploymentConfig"]["AutoRollbackConfiguration"] == policy["AutoRollbackConfiguration"]

    for endpoint, config in ((name, f"{name}-missing"), (f"{name}-missing", f"{name}-v2")):
        with pytest.raises(ClientError) as error:
            sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=config)
        assert error.value.response["Error"]["Code"] == "ValidationException"
        assert "-missing" in error.value.response["Error"]["Message"]
    assert sm.describe_endpoint(EndpointName=name)["EndpointConfigName"] == f"{name}-v2"  # a failed update changes nothing
    cfn.delete_stack(StackName=name)
    assert name not in [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]]


# --- ECS -----------------------------------------------------------------------------------------------------

def _fargate_service_template(name: str, *, image: str, desired: int) -> dict[str, Any]:
    assume = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                      "Principal": {"Service": "ecs-tasks.amazonaws.com"}}]}
    return {"Resources": {
        "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.8.0.0/16"}},
        "Subnet": {"Type": "AWS::EC2::Subnet", "Properties": {"VpcId": {"Ref": "Vpc"}, "CidrBlock": "10.8.0.0/20"}},
        "Sg": {"Type": "AWS::EC2::SecurityGroup", "Properties": {"GroupDescription": "svc", "VpcId": {"Ref": "Vpc"}}},
        "TaskRole": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": assume}},
        "Cluster": {"Type": "AWS::ECS::Cluster", "Properties": {"ClusterName": name}},
        "Task": {"Type": "AWS::ECS::TaskDefinition", "Properties": {
            "Family": name, "Cpu": "256", "Memory": "512", "NetworkMode": "awsvpc",
            "RequiresCompatibilities": ["FARGATE"], "TaskRoleArn": {"Fn::GetAtt": ["TaskRole", "Arn"]},
            "Tags": [{"Key": "dsstack:team", "Value": "vision"}],
            "ContainerDefinitions": [{"Name": "model", "Image": image, "Essential": True,
                                      "PortMappings": [{"ContainerPort": 8080}],
                                      "Environment": [{"Name": "DSSTACK_MODEL_VERSION", "Value": "1"}]}]}},
        "Service": {"Type": "AWS::ECS::Service", "Properties": {
            "Cluster": {"Ref": "Cluster"}, "TaskDefinition": {"Ref": "Task"}, "DesiredCount": desired,
            "LaunchType": "FARGATE", "HealthCheckGracePeriodSeconds": 60,
            "DeploymentConfiguration": {"DeploymentCircuitBreaker": {"Enable": True, "Rollback": True},
                                        "MaximumPercent": 200, "MinimumHealthyPercent": 100},
            "NetworkConfiguration": {"AwsvpcConfiguration": {
                "AssignPublicIp": "DISABLED", "Subnets": [{"Ref": "Subnet"}],
                "SecurityGroups": [{"Fn::GetAtt": ["Sg", "GroupId"]}]}}}},
    }, "Outputs": {"Service": {"Value": {"Fn::GetAtt": ["Service", "Name"]}}}}


def test_ecs_cfn_properties(aws: Callable[[str], Any]) -> None:
    cfn, ecs, name = aws("cloudformation"), aws("ecs"), unique("ecs")
    stack = run_change_set(cfn, name, _fargate_service_template(name, image="repo:v1", desired=0))
    assert stack["StackStatus"] == "CREATE_COMPLETE", events_of(cfn, name)[:3]
    service_name = stack["Outputs"][0]["OutputValue"]
    (service,) = ecs.describe_services(cluster=name, services=[service_name])["services"]
    assert service["launchType"] == "FARGATE" and service["desiredCount"] == 0
    assert service["deploymentConfiguration"]["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert service["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] == "DISABLED"
    first = ecs.describe_task_definition(taskDefinition=service["taskDefinition"], include=["TAGS"])
    task = first["taskDefinition"]
    assert (task["cpu"], task["memory"], task["networkMode"]) == ("256", "512", "awsvpc")
    assert task["requiresCompatibilities"] == ["FARGATE"] and task["taskRoleArn"].startswith("arn:aws:iam::")
    assert first["tags"] == [{"key": "dsstack:team", "value": "vision"}]

    # An image change replaces the task definition: a new revision, the old one deregistered, the service moved.
    stack = run_change_set(cfn, name, _fargate_service_template(name, image="repo:v2", desired=1))
    assert stack["StackStatus"] == "UPDATE_COMPLETE", events_of(cfn, name)[:3]
    (service,) = ecs.describe_services(cluster=name, services=[service_name])["services"]
    task = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    assert task["revision"] == 2 and task["containerDefinitions"][0]["image"] == "repo:v2"
    assert task["taskRoleArn"].startswith("arn:aws:iam::") and service["desiredCount"] == 1
    old = ecs.describe_task_definition(taskDefinition=f"{name}:1")["taskDefinition"]
    assert old["status"] == "INACTIVE"
    assert service["deploymentConfiguration"]["minimumHealthyPercent"] == 100
