"""`<env>-<team>-compute` on the example app (synthesized once per session)."""

from __future__ import annotations

import json

import pytest

from tests.infra.helpers import only, props, resources

VISION, FORECASTING = "demo-vision-compute", "demo-forecasting-compute"


@pytest.fixture(scope="module")
def vision(platform):
    return platform.template(VISION)


@pytest.fixture(scope="module")
def forecasting(platform):
    return platform.template(FORECASTING)


def environments(template):
    return {props(r).get("ComputeResources", {}).get("Type", "") + ":" + logical: r
            for logical, r in resources(template, "AWS::Batch::ComputeEnvironment").items()}


def env_by_id(template, prefix):
    found = [r for k, r in resources(template, "AWS::Batch::ComputeEnvironment").items() if k.startswith(prefix)]
    assert len(found) == 1, prefix
    return props(found[0])


def test_compute_stack_exists_per_team(platform):
    assert {VISION, FORECASTING} <= set(platform.templates)


def test_environments_scale_to_zero_with_expected_families_and_images(vision):
    cpu, spot, gpu = (env_by_id(vision, p)["ComputeResources"] for p in
                      ("BatchCpuEnvironment", "BatchCpuSpotEnvironment", "BatchGpuEnvironment"))
    for resource in (cpu, spot, gpu):
        assert resource["MinvCpus"] == 0
        assert resource["Subnets"], "must run in the network's workload subnets"
    assert cpu["Type"] == "EC2" and cpu["AllocationStrategy"] == "BEST_FIT_PROGRESSIVE"
    assert spot["Type"] == "SPOT" and spot["AllocationStrategy"] == "SPOT_PRICE_CAPACITY_OPTIMIZED"
    assert cpu["InstanceTypes"] == spot["InstanceTypes"] == ["m7i", "c7i", "r7i"]
    assert gpu["InstanceTypes"] == ["g6", "g5"] and gpu["MaxvCpus"] == 64
    assert [c["ImageType"] for c in gpu["Ec2Configuration"]] == ["ECS_AL2023_NVIDIA"]
    assert [c["ImageType"] for c in cpu["Ec2Configuration"]] == ["ECS_AL2023"]


def test_no_environment_keeps_vcpus_unless_configured(platform, synth_variant):
    for name, template in platform.templates.items():
        for resource in resources(template, "AWS::Batch::ComputeEnvironment").values():
            assert props(resource)["ComputeResources"].get("MinvCpus", 0) == 0, name
    variant = synth_variant("compute-warm", {
        "environment": "warm", "teams": [{"name": "alpha", "compute": {
            "cpu": {"min_vcpus": 4}, "fargate": {"enabled": True},
            "extra_queues": [{"name": "highmem", "instance_types": ["r7i.8xlarge"], "max_vcpus": 64}]}}]})
    template = variant.template("warm-alpha-compute")
    mins = {k: props(r)["ComputeResources"].get("MinvCpus") for k, r in
            resources(template, "AWS::Batch::ComputeEnvironment").items()}
    assert [v for k, v in mins.items() if k.startswith("BatchCpuEnvironment")] == [4]
    assert all(v in (0, None) for k, v in mins.items() if not k.startswith("BatchCpuEnvironment")), mins
    queues = {props(q)["JobQueueName"] for q in resources(template, "AWS::Batch::JobQueue").values()}
    assert queues == {f"dsstack-warm-alpha-{q}" for q in ("cpu", "gpu", "fargate", "highmem")}
    assert env_by_id(template, "BatchFargateEnvironment")["ComputeResources"]["Type"] == "FARGATE"
    assert variant.violations == [], "\n".join(map(str, variant.violations))


def test_gpu_disabled_team_has_no_gpu_queue(forecasting):
    queues = {props(q)["JobQueueName"] for q in resources(forecasting, "AWS::Batch::JobQueue").values()}
    assert queues == {"dsstack-demo-forecasting-cpu"}


def test_cpu_queue_tries_spot_first_and_all_queues_cancel_stuck_jobs(vision):
    queues = {props(q)["JobQueueName"]: props(q) for q in resources(vision, "AWS::Batch::JobQueue").values()}
    assert set(queues) == {"dsstack-demo-vision-cpu", "dsstack-demo-vision-gpu"}
    order = sorted(queues["dsstack-demo-vision-cpu"]["ComputeEnvironmentOrder"], key=lambda o: o["Order"])
    assert [o["ComputeEnvironment"]["Fn::GetAtt"][0][:len("BatchCpuSpot")] for o in order] == [
        "BatchCpuSpot", "BatchCpuEnvi"]
    for queue in queues.values():
        limits = {a["Reason"].split(":")[-1]: a for a in queue["JobStateTimeLimitActions"]}
        assert limits["INSUFFICIENT_INSTANCE_CAPACITY"]["MaxTimeSeconds"] == 60 * 60  # runnable_timeout_minutes
        assert limits["JOB_RESOURCE_REQUIREMENT"]["MaxTimeSeconds"] == 600  # can never start: cancel early
        assert {a["Action"] for a in limits.values()} == {"CANCEL"} and {a["State"] for a in limits.values()} == {
            "RUNNABLE"}
        assert set(limits) == {"INSUFFICIENT_INSTANCE_CAPACITY", "COMPUTE_ENVIRONMENT_MAX_RESOURCE",
                               "JOB_RESOURCE_REQUIREMENT"}


def test_launch_template_imdsv2_encrypted_gp3_team_key(vision):
    _, template = only(vision, "AWS::EC2::LaunchTemplate")
    data = props(template)["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    (device,) = data["BlockDeviceMappings"]
    assert device["DeviceName"] == "/dev/xvda"
    ebs = device["Ebs"]
    assert ebs["Encrypted"] is True and ebs["VolumeType"] == "gp3" and ebs["VolumeSize"] == 100
    assert "demo-vision-data" in json.dumps(ebs["KmsKeyId"])
    for environment in resources(vision, "AWS::Batch::ComputeEnvironment").values():
        compute = props(environment)["ComputeResources"]
        if compute["Type"] != "FARGATE":
            assert "LaunchTemplateId" in compute["LaunchTemplate"]


def test_security_group_has_no_inbound_rules(vision):
    for group in resources(vision, "AWS::EC2::SecurityGroup").values():
        assert not props(group).get("SecurityGroupIngress")
    assert not resources(vision, "AWS::EC2::SecurityGroupIngress")


def _statements(template, role_prefix):
    roles = [k for k in resources(template, "AWS::IAM::Role") if k.startswith(role_prefix)]
    assert len(roles) == 1, (role_prefix, roles)
    out = []
    for policy in resources(template, "AWS::IAM::ManagedPolicy").values():
        if {"Ref": roles[0]} in props(policy).get("Roles", []):
            out += props(policy)["PolicyDocument"]["Statement"]
    assert out, role_prefix
    return out


def _actions(statement):
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else actions


def test_no_wildcard_actions_and_no_inline_policies(platform):
    for name, template in platform.templates.items():
        if not name.endswith("-compute"):
            continue
        assert not resources(template, "AWS::IAM::Policy"), name
        for policy in resources(template, "AWS::IAM::ManagedPolicy").values():
            for statement in props(policy)["PolicyDocument"]["Statement"]:
                assert all(not a.endswith(":*") and a != "*" for a in _actions(statement)), statement


def test_job_role_reaches_only_team_prefixes_tables_and_key(vision):
    statements = {s["Sid"]: s for s in _statements(vision, "BatchJobRole")}
    objects = json.dumps(statements["TeamPrefixesReadWrite"]["Resource"])
    for prefix in ("metaflow/*", "data/*", "models/*"):
        assert prefix in objects
    assert "demo-vision-data-bucket-arn" in objects
    assert set(_actions(statements["TeamPrefixesReadWrite"])) == {"s3:GetObject", "s3:PutObject",
                                                                  "s3:AbortMultipartUpload"}
    assert "s3:prefix" in json.dumps(statements["TeamPrefixesList"]["Condition"])
    assert "kms:ViaService" in json.dumps(statements["TeamKeyViaS3AndDynamoDB"]["Condition"])
    assert "StepFunctionsStateTable" in json.dumps(statements["StepFunctionsStateTable"]["Resource"])


def test_step_functions_role_submits_only_to_team_queues(vision):
    statements = {s["Sid"]: s for s in _statements(vision, "OrchestrationStepFunctionsRole")}
    submit = statements["SubmitToTeamQueues"]
    queue_refs = [r["Fn::GetAtt"][0] for r in submit["Resource"] if "Fn::GetAtt" in r]
    assert sorted(r[:len("BatchGpuQueue")] for r in queue_refs) == ["BatchCpuQueue", "BatchGpuQueue"]
    assert len(submit["Resource"]) == 3  # the two queues and Metaflow's job definitions, nothing else
    assert "job-definition/metaflow_*" in json.dumps(submit["Resource"])
    assert "batch:TagResource" in _actions(statements["TagAndStopJobs"])
    assert "rule/StepFunctionsGetEventsForBatchJobsRule" in json.dumps(statements["BatchSyncRule"]["Resource"])
    assert _actions(statements["StateTable"]) == ["dynamodb:GetItem"]
    assert "logs:CreateLogDelivery" in _actions(statements["ExecutionLogDelivery"])
    role = next(r for k, r in resources(vision, "AWS::IAM::Role").items() if k.startswith("OrchestrationStepFunctions"))
    trust = json.dumps(props(role)["AssumeRolePolicyDocument"])
    assert "states.amazonaws.com" in trust and "stateMachine:dsstack-demo-vision_*" in trust


def test_events_role_starts_only_team_state_machines(vision):
    (statement,) = _statements(vision, "OrchestrationEventsRole")
    assert _actions(statement) == ["states:StartExecution"]
    assert json.dumps(statement["Resource"]).endswith(':stateMachine:dsstack-demo-vision_*"]]}')


def test_team_a_roles_never_name_team_b(vision, forecasting):
    text_a, text_b = json.dumps(vision), json.dumps(forecasting)
    assert "forecasting" not in text_a and "demo-forecasting" not in text_a
    assert "vision" not in text_b


def test_execution_log_group_uses_team_key_and_retention(vision):
    _, group = only(vision, "AWS::Logs::LogGroup")
    assert props(group)["RetentionInDays"] == 90
    assert "demo-vision-data" in json.dumps(props(group)["KmsKeyId"])
    assert props(group)["LogGroupName"] == "/aws/vendedlogs/states/dsstack-demo-vision-executions"


def test_metaflow_config_is_published_as_ssm_and_output(vision):
    parameters = [props(p) for p in resources(vision, "AWS::SSM::Parameter").values()]
    (parameter,) = [p for p in parameters if p["Name"] == "/dsstack/demo/vision/metaflow/config"]
    value = json.dumps(parameter["Value"])
    for key in ("METAFLOW_DEFAULT_DATASTORE", "METAFLOW_DATASTORE_SYSROOT_S3", "METAFLOW_DATATOOLS_S3ROOT",
                "METAFLOW_BATCH_JOB_QUEUE", "METAFLOW_ECS_S3_ACCESS_IAM_ROLE", "METAFLOW_ECS_FARGATE_EXECUTION_ROLE",
                "METAFLOW_SFN_IAM_ROLE", "METAFLOW_SFN_DYNAMO_DB_TABLE", "METAFLOW_SFN_STATE_MACHINE_PREFIX",
                "METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE", "METAFLOW_SFN_EXECUTION_LOG_GROUP_ARN",
                "DSSTACK_BATCH_JOB_QUEUE_GPU", '"METAFLOW_SFN_STATE_MACHINE_PREFIX\\":\\"dsstack-demo-vision\\"'):
        assert key in value, key
    outputs = vision["Outputs"]
    assert {"JobRoleArn", "ExecutionRoleArn", "StepFunctionsRoleArn", "EventsRoleArn", "ExecutionLogGroupArn",
            "StateMachinePrefix", "JobQueueCpu", "JobQueueGpu"} <= set(outputs)
    assert outputs["StateMachinePrefix"]["Value"] == "dsstack-demo-vision"  # Metaflow adds "_<flow>"
    assert "METAFLOW_SFN_IAM_ROLE" in outputs["StepFunctionsRoleArn"]["Description"]


def test_compute_stack_is_stateless(vision):
    for logical, resource in vision["Resources"].items():
        assert resource.get("DeletionPolicy", "Delete") == "Delete", logical
