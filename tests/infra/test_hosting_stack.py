"""The hosting stack: SageMaker and ECS endpoints, ECR repository, alarms, SSM coordinates."""

from __future__ import annotations

import json

import pytest

from tests.infra.helpers import only, props, resources

HOSTING = "demo-vision-hosting"
CERT = "arn:aws:acm:us-east-1:111122223333:certificate/0123abcd-0000-0000-0000-000000000000"
# Every other kind and option in one variant, synthesized once per session.
VARIANT = {
    "environment": "hvar", "network": {"egress": "nat", "cidr": "10.60.0.0/16"},
    "teams": [{"name": "alpha", "models": [
        # Like the example's ECS model: min_tasks 0 (only the internal load balancer costs).
        {"name": "dashboard", "kind": "ecs", "image": "ecr:v1", "min_tasks": 0, "max_tasks": 2},
        {"name": "fraud", "kind": "sagemaker-realtime", "image": "ecr:v2", "instance_type": "ml.c5.large",
         "min_instances": 2, "max_instances": 6, "target_invocations_per_instance": 300, "data_capture_percent": 20},
        {"name": "app", "kind": "ecs", "image": "public.ecr.aws/nginx/nginx:1.27", "internet_facing": True,
         "allowed_cidrs": ["203.0.113.0/24", "198.51.100.0/24"], "certificate_arn": CERT,
         "cpu": 512, "memory_mib": 1024, "port": 8000, "health_check_path": "/ping", "min_tasks": 1, "max_tasks": 4},
    ]}],
}


@pytest.fixture(scope="module")
def variant(synth_variant):
    return synth_variant("hosting", VARIANT)


@pytest.fixture(scope="module")
def hosting(platform):
    return platform.template(HOSTING)


def _by_suffix(template, type_, prefix):
    found = {k: v for k, v in resources(template, type_).items() if k.startswith(prefix)}
    assert len(found) == 1, f"{type_} under {prefix}: {sorted(found)}"
    return next(iter(found.values()))


def _statements(template, prefix):
    return [s for k, p in resources(template, "AWS::IAM::Policy").items() if k.startswith(prefix)
            for s in props(p)["PolicyDocument"]["Statement"]]


def test_hosting_stack_only_for_teams_with_models(platform, example_config):
    names = {s.stack_name for s in platform.platform.stacks()}
    assert HOSTING in names and "demo-forecasting-hosting" not in names
    assert not example_config.team("forecasting").models


def test_team_ecr_repository(hosting):
    _, repo = only(hosting, "AWS::ECR::Repository")
    p = props(repo)
    assert "RepositoryName" not in p, "a retained repository must not have a fixed name (redeploy after destroy)"
    assert p["ImageScanningConfiguration"] == {"ScanOnPush": True}
    assert p["ImageTagMutability"] == "IMMUTABLE"
    assert p["EncryptionConfiguration"]["EncryptionType"] == "KMS"
    rules = json.loads(p["LifecyclePolicy"]["LifecyclePolicyText"])["rules"]
    assert rules[0]["selection"] == {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 20}
    assert repo["DeletionPolicy"] == "Retain"


def test_serverless_endpoint(hosting):
    model = props(_by_suffix(hosting, "AWS::SageMaker::Model", "ChurnEndpoint"))
    env = model["PrimaryContainer"]["Environment"]
    assert env == {"DSSTACK_MODEL_NAME": "churn", "DSSTACK_MODEL_VERSION": "1"}  # no credentials at synth: config
    assert model["PrimaryContainer"]["Image"].endswith("sagemaker-scikit-learn:1.2-1-cpu-py3")
    assert "VpcConfig" not in model  # serverless endpoints cannot run in a VPC
    config = props(_by_suffix(hosting, "AWS::SageMaker::EndpointConfig", "ChurnEndpoint"))
    (variant,) = config["ProductionVariants"]
    assert variant["VariantName"] == "AllTraffic"
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    assert "InstanceType" not in variant and "KmsKeyId" not in config
    endpoint = props(_by_suffix(hosting, "AWS::SageMaker::Endpoint", "ChurnEndpoint"))
    assert endpoint["EndpointName"] == "dsstack-demo-vision-churn"
    deployment = endpoint["DeploymentConfig"]
    assert deployment["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"] == {
        "Type": "CANARY", "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}, "WaitIntervalInSeconds": 300}
    assert deployment["AutoRollbackConfiguration"]["Alarms"] == [
        {"AlarmName": "dsstack-demo-vision-churn-5xx"}, {"AlarmName": "dsstack-demo-vision-churn-latency"}]
    assert not [k for k in resources(hosting, "AWS::ApplicationAutoScaling::ScalableTarget") if "Churn" in k]


def test_sagemaker_role_reads_only_its_model_prefix_and_the_team_key(hosting):
    statements = _statements(hosting, "ChurnEndpointExecutionRole")
    s3 = [s for s in statements if any(a.startswith("s3:") for a in _list(s["Action"]))]
    assert len(s3) == 1 and sorted(_list(s3[0]["Action"])) == ["s3:GetObject", "s3:GetObjectVersion"]
    assert json.dumps(s3[0]["Resource"]).endswith('{"Ref": "TeamBucketName"}, "/models/churn/*"]]}')
    kms = [s for s in statements if any(a.startswith("kms:") for a in _list(s["Action"]))]
    assert len(kms) == 1 and _list(kms[0]["Action"]) == ["kms:Decrypt"]
    assert "TeamKey" in json.dumps(kms[0]["Resource"])
    ecr = [s for s in statements if "ecr:BatchGetImage" in _list(s["Action"])]
    assert ecr[0]["Resource"] == {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"},
                                                    ":ecr:us-east-1:683313688378:repository/sagemaker-scikit-learn"]]}
    assert not any(a in ("s3:*", "s3:PutObject", "kms:*") for s in statements for a in _list(s["Action"]))


def test_alarms_notify_the_team_alert_topic(hosting, variant):
    for template, count in ((hosting, 4), (variant.template("hvar-alpha-hosting"), 6)):
        alarms = resources(template, "AWS::CloudWatch::Alarm")
        assert len(alarms) == count
        for alarm in alarms.values():
            actions = json.dumps(props(alarm)["AlarmActions"])
            assert "operations" in actions and "AlertTopic" in actions
    metrics = {props(a)["MetricName"] for k, a in resources(hosting, "AWS::CloudWatch::Alarm").items()
               if k.startswith("Churn")}
    assert metrics == {"Invocation5XXErrors", "ModelLatency"}
    metrics = {props(a)["MetricName"] for k, a in resources(variant.template("hvar-alpha-hosting"),
                                                             "AWS::CloudWatch::Alarm").items() if k.startswith("App")}
    assert metrics == {"HTTPCode_Target_5XX_Count", "TargetResponseTime"}


def test_ecs_service_internal_by_default(variant):
    hosting = variant.template("hvar-alpha-hosting")
    cluster = _by_suffix(hosting, "AWS::ECS::Cluster", "DashboardService")
    assert {"Name": "containerInsights", "Value": "enabled"} in props(cluster)["ClusterSettings"]
    service = props(_by_suffix(hosting, "AWS::ECS::Service", "DashboardService"))
    assert service["DesiredCount"] == 0
    assert service["DeploymentConfiguration"]["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
    assert service["DeploymentConfiguration"]["MinimumHealthyPercent"] == 100
    lb = props(_by_suffix(hosting, "AWS::ElasticLoadBalancingV2::LoadBalancer", "DashboardService"))
    assert lb["Scheme"] == "internal"
    listener = props(_by_suffix(hosting, "AWS::ElasticLoadBalancingV2::Listener", "DashboardService"))
    assert (listener["Port"], listener["Protocol"]) == (80, "HTTP")
    groups = [props(g) for g in resources(hosting, "AWS::EC2::SecurityGroup").values()
              if "load balancer" in props(g)["GroupDescription"]]
    assert [r["CidrIp"] for g in groups for r in g.get("SecurityGroupIngress", [])
            if r["FromPort"] == 80] == ["10.60.0.0/16"]
    target = props(_by_suffix(hosting, "AWS::ElasticLoadBalancingV2::TargetGroup", "DashboardService"))
    assert (target["HealthCheckPath"], target["Matcher"], target["Port"]) == ("/health", {"HttpCode": "200"}, 8080)
    scaling = props(_by_suffix(hosting, "AWS::ApplicationAutoScaling::ScalableTarget", "DashboardService"))
    assert (scaling["MinCapacity"], scaling["MaxCapacity"]) == (0, 2)
    task = props(_by_suffix(hosting, "AWS::ECS::TaskDefinition", "DashboardService"))
    (container,) = task["ContainerDefinitions"]
    assert container["Name"] == "model"
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"
    assert {"Name": "DSSTACK_MODEL_VERSION", "Value": "1"} in container["Environment"]
    logs = [props(g) for k, g in resources(hosting, "AWS::Logs::LogGroup").items() if k.startswith("DashboardService")]
    assert logs[0]["RetentionInDays"] == 90 and "KmsKeyId" in logs[0]


def test_ecs_task_role_reads_only_its_model_prefix(variant):
    hosting = variant.template("hvar-alpha-hosting")
    statements = _statements(hosting, "DashboardServiceTaskDefinitionTaskRole")
    actions = sorted(a for s in statements for a in _list(s["Action"]))
    assert actions == ["kms:Decrypt", "s3:GetObject", "s3:GetObjectVersion"]
    assert any(json.dumps(s["Resource"]).endswith('{"Ref": "TeamBucketName"}, "/models/dashboard/*"]]}')
               for s in statements)


def test_internet_facing_ecs_is_https_only_with_allow_list(variant):
    template = variant.template("hvar-alpha-hosting")
    lb = props(_by_suffix(template, "AWS::ElasticLoadBalancingV2::LoadBalancer", "AppService"))
    assert lb["Scheme"] == "internet-facing"
    listeners = [props(v) for k, v in resources(template, "AWS::ElasticLoadBalancingV2::Listener").items()
                 if k.startswith("AppService")]
    assert [(x["Port"], x["Protocol"]) for x in listeners] == [(443, "HTTPS")]
    assert listeners[0]["Certificates"] == [{"CertificateArn": CERT}]
    group = props(_by_suffix(template, "AWS::EC2::SecurityGroup", "AppServiceLoadBalancerSecurityGroup"))
    assert sorted((r["CidrIp"], r["FromPort"]) for r in group["SecurityGroupIngress"]) == [
        ("198.51.100.0/24", 443), ("203.0.113.0/24", 443)]
    target = props(_by_suffix(template, "AWS::ElasticLoadBalancingV2::TargetGroup", "AppService"))
    assert (target["HealthCheckPath"], target["Port"]) == ("/ping", 8000)
    task = props(_by_suffix(template, "AWS::ECS::TaskDefinition", "AppService"))
    assert (task["Cpu"], task["Memory"]) == ("512", "1024")


def test_realtime_endpoint_autoscaling_capture_and_vpc(variant):
    template = variant.template("hvar-alpha-hosting")
    config = props(_by_suffix(template, "AWS::SageMaker::EndpointConfig", "FraudEndpoint"))
    (v,) = config["ProductionVariants"]
    assert (v["InstanceType"], v["InitialInstanceCount"]) == ("ml.c5.large", 2)
    assert "KmsKeyId" in config
    capture = config["DataCaptureConfig"]
    assert capture["InitialSamplingPercentage"] == 20 and capture["EnableCapture"] is True
    assert json.dumps(capture["DestinationS3Uri"]).endswith('/model-captures/fraud"]]}')
    model = props(_by_suffix(template, "AWS::SageMaker::Model", "FraudEndpoint"))
    assert model["EnableNetworkIsolation"] is True and len(model["VpcConfig"]["Subnets"]) == 2
    target = props(_by_suffix(template, "AWS::ApplicationAutoScaling::ScalableTarget", "FraudEndpoint"))
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 6)
    assert target["ResourceId"] == "endpoint/dsstack-hvar-alpha-fraud/variant/AllTraffic"
    policy = props(_by_suffix(template, "AWS::ApplicationAutoScaling::ScalingPolicy", "FraudEndpoint"))
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == 300
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"
    # Data capture may write only its own prefix.
    writes = [s for s in _statements(template, "FraudEndpointExecutionRole") if "s3:PutObject" in _list(s["Action"])]
    assert len(writes) == 1 and json.dumps(writes[0]["Resource"]).endswith('/model-captures/fraud/*"]]}')


def test_variant_is_nag_and_cfn_lint_clean(variant):
    import subprocess
    import sys
    from pathlib import Path

    assert variant.error is None and variant.violations == [], "\n".join(map(str, variant.violations))
    files = [str(variant.outdir / s.template_file) for s in variant.platform.stacks() if "hosting" in s.stack_name]
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    proc = subprocess.run([str(cfn_lint), "--format", "parseable", *files], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "", proc.stdout + proc.stderr


def test_each_endpoint_is_published(hosting):
    parameters = {props(p)["Name"]: props(p)["Value"] for p in resources(hosting, "AWS::SSM::Parameter").values()}
    root = "/dsstack/demo/vision/models"
    assert parameters[f"{root}/churn/kind"] == "sagemaker-serverless"
    endpoint_id = next(k for k in resources(hosting, "AWS::SageMaker::Endpoint") if k.startswith("ChurnEndpoint"))
    assert parameters[f"{root}/churn/endpoint-name"] == {"Fn::GetAtt": [endpoint_id, "EndpointName"]}
    assert "runtime.sagemaker" in json.dumps(parameters[f"{root}/churn/url"])
    assert parameters[f"{root}/churn/alarms"] == "dsstack-demo-vision-churn-5xx,dsstack-demo-vision-churn-latency"
    assert "/dsstack/demo/vision/hosting/ecr-repository" in parameters
    outputs = hosting["Outputs"]
    assert {"ModelsChurnUrl", "ModelsChurnKind", "ModelsChurnEndpointName", "HostingEcrRepository"} <= set(outputs)


def test_each_ecs_service_is_published(variant):
    template = variant.template("hvar-alpha-hosting")
    parameters = {props(p)["Name"]: props(p)["Value"] for p in resources(template, "AWS::SSM::Parameter").values()}
    root = "/dsstack/hvar/alpha/models"
    assert parameters[f"{root}/dashboard/kind"] == "ecs"
    assert {f"{root}/dashboard/{f}" for f in ("endpoint-name", "url", "arn", "cluster", "alarms")} <= set(parameters)
    assert {"ModelsDashboardUrl", "ModelsDashboardCluster", "ModelsAppUrl"} <= set(template["Outputs"])


def test_invalid_internet_facing_in_private_network_is_a_clear_error(tmp_path):
    from dsstack.config import parse_config
    from dsstack.synth import synthesize

    data = {"environment": "hpriv", "network": {"egress": "private", "cidr": "10.61.0.0/16"},
            "teams": [{"name": "alpha", "models": [
        # Like the example's ECS model: min_tasks 0 (only the internal load balancer costs).
        {"name": "dashboard", "kind": "ecs", "image": "ecr:v1", "min_tasks": 0, "max_tasks": 2},
                {"name": "app", "kind": "ecs", "image": "ecr:v1", "internet_facing": True,
                 "allowed_cidrs": ["203.0.113.0/24"], "certificate_arn": CERT}]}]}
    with pytest.raises(ValueError, match="internet_facing needs public subnets"):
        synthesize(parse_config(data), tmp_path, nag=False)


def _list(value):
    return value if isinstance(value, list) else [value]
