"""After a deploy: prove that every resource of every synthesized template really exists.

1. Each stack of the cloud assembly is CREATE_COMPLETE/UPDATE_COMPLETE.
2. Each resource of its template is in the deployed stack with the same type (types listed in
   `UNVERIFIABLE_TYPES` are exempt, with the reason).
3. One describe/list call per resource type (`PROBES`) finds each resource by its physical id in the
   service itself, and checks the settings the emulator used to drop silently (bucket versioning,
   table point-in-time recovery). A type without a probe is a failure: add a probe.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Types the emulator records but no AWS API can show: exempt from checks 2 and 3.
UNVERIFIABLE_TYPES = {
    "AWS::CDK::Metadata": "CDK's version analytics: stored by CloudFormation only, no service API lists it",
    "AWS::ApiGateway::Account": "a region-wide setting (CloudWatch role ARN) the emulator records but does not model",
}


class VerificationError(RuntimeError):
    pass


@dataclass
class Deployed:
    logical_id: str
    type: str
    physical_id: str
    properties: dict[str, Any]
    stack: str


@dataclass
class Report:
    stacks: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {status, outputs, resources}
    checked: dict[str, int] = field(default_factory=dict)  # type -> resources proven
    exempt: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def assembly_stacks(assembly_dir: Path) -> dict[str, dict[str, Any]]:
    """Stack name -> template, from the cloud assembly's manifest (what `cdk deploy --all` deployed)."""
    manifest = json.loads((assembly_dir / "manifest.json").read_text())
    stacks = {}
    for artifact in manifest["artifacts"].values():
        if artifact.get("type") == "aws:cloudformation:stack":
            props = artifact["properties"]
            template = json.loads((assembly_dir / props["templateFile"]).read_text())
            stacks[props.get("stackName") or artifact["displayName"]] = template
    return stacks


def _ref(value: Any, resource: Deployed, stacks: dict[str, dict[str, Deployed]]) -> Any:
    """A template value with a plain Ref (or a GetAtt, e.g. a function's Arn, which APIs that take a name
    also accept as the physical id) resolved to the physical id in the resource's own stack."""
    by_logical = stacks.get(resource.stack, {})
    if isinstance(value, dict) and "Ref" in value and value["Ref"] in by_logical:
        return by_logical[value["Ref"]].physical_id
    if isinstance(value, dict) and "Fn::GetAtt" in value and value["Fn::GetAtt"][0] in by_logical:
        return by_logical[value["Fn::GetAtt"][0]].physical_id
    return value


# --- probes: one list/describe call per type -> the physical ids that exist ---------------------------

Key = tuple[str, str]  # (stack, logical id)
Stacks = dict[str, dict[str, Deployed]]  # stack -> logical id -> resource, to resolve Refs
Probe = Callable[[Any, list[Deployed], Stacks], tuple[set[Key], list[str]]]


def _found(existing: set[str], resources: list[Deployed], key: Callable[[Deployed], str] | None = None) -> set[Key]:
    return {(r.stack, r.logical_id) for r in resources if (key(r) if key else r.physical_id) in existing}


def _paginate(client: Any, method: str, key: str, **kwargs: Any) -> list[Any]:
    if client.can_paginate(method):
        return [item for page in client.get_paginator(method).paginate(**kwargs) for item in page.get(key, [])]
    return getattr(client, method)(**kwargs).get(key, [])


def probe_buckets(session: Any, resources: list[Deployed], _: Stacks) -> tuple[set[Key], list[str]]:
    s3 = session.client("s3")
    names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    problems = []
    for r in resources:
        wanted = (r.properties.get("VersioningConfiguration") or {}).get("Status")
        if wanted and r.physical_id in names:
            actual = s3.get_bucket_versioning(Bucket=r.physical_id).get("Status")
            if actual != wanted:
                problems.append(f"{r.stack}/{r.logical_id}: bucket versioning is {actual}, template says {wanted}")
    return _found(names, resources), problems


def probe_tables(session: Any, resources: list[Deployed], _: Stacks) -> tuple[set[Key], list[str]]:
    ddb = session.client("dynamodb")
    names = set(_paginate(ddb, "list_tables", "TableNames"))
    problems = []
    for r in resources:
        spec = r.properties.get("PointInTimeRecoverySpecification")
        if spec is None:  # GlobalTable: per replica
            spec = next((rep.get("PointInTimeRecoverySpecification") for rep in r.properties.get("Replicas", [])
                         if rep.get("PointInTimeRecoverySpecification")), None)
        if spec and spec.get("PointInTimeRecoveryEnabled") and r.physical_id in names:
            status = ddb.describe_continuous_backups(TableName=r.physical_id)["ContinuousBackupsDescription"][
                "PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"]
            if status != "ENABLED":
                problems.append(f"{r.stack}/{r.logical_id}: point-in-time recovery is {status}")
    return _found(names, resources), problems


def probe_instances(session: Any, resources: list[Deployed], _: Stacks) -> tuple[set[Key], list[str]]:
    reservations = _paginate(session.client("ec2"), "describe_instances", "Reservations")
    ids = {instance["InstanceId"] for reservation in reservations for instance in reservation["Instances"]}
    return _found(ids, resources), []


def probe_layer_versions(session: Any, resources: list[Deployed], _: Stacks) -> tuple[set[Key], list[str]]:
    client = session.client("lambda")
    arns = {version["LayerVersionArn"]
            for layer in _paginate(client, "list_layers", "Layers")
            for version in _paginate(client, "list_layer_versions", "LayerVersions", LayerName=layer["LayerName"])}
    return _found(arns, resources), []


def _per_parent(service: str, method: str, key: str, id_field: str, parent_property: str, parent_param: str
                ) -> Probe:
    """Children listed per parent (e.g. an API's resources): one call per parent the stack references."""
    def probe(session: Any, resources: list[Deployed], by: Stacks) -> tuple[set[Key], list[str]]:
        client = session.client(service)
        found: set[Key] = set()
        for r in resources:
            try:
                items = client.__getattribute__(method)(**{parent_param: _ref(r.properties[parent_property], r, by)})
            except client.exceptions.ClientError:
                continue
            if r.physical_id in {str(item.get(id_field)) for item in items.get(key, [])}:
                found.add((r.stack, r.logical_id))
        return found, []
    return probe


def _exists_when(service: str, check: Callable[[Any, Deployed, Stacks], Any]) -> Probe:
    """Per-resource probe: the resource exists when `check` (one API call) answers truthy without a ClientError."""
    def probe(session: Any, resources: list[Deployed], by: Stacks) -> tuple[set[Key], list[str]]:
        client = session.client(service)
        found: set[Key] = set()
        for r in resources:
            try:
                if check(client, r, by):
                    found.add((r.stack, r.logical_id))
            except client.exceptions.ClientError:
                pass
        return found, []
    return probe


probe_bucket_policies = _exists_when(
    "s3", lambda c, r, by: c.get_bucket_policy(Bucket=_ref(r.properties["Bucket"], r, by)))
probe_api_methods = _exists_when("apigateway", lambda c, r, by: c.get_method(
    restApiId=_ref(r.properties["RestApiId"], r, by), resourceId=_ref(r.properties["ResourceId"], r, by),
    httpMethod=r.properties["HttpMethod"]))
probe_event_invoke_configs = _exists_when(
    "lambda", lambda c, r, by: c.get_function_event_invoke_config(FunctionName=_ref(r.properties["FunctionName"], r, by)))
probe_lambda_permissions = _exists_when("lambda", lambda c, r, by: json.loads(
    c.get_policy(FunctionName=_ref(r.properties["FunctionName"], r, by))["Policy"]).get("Statement"))


def probe_usage_plan_keys(session: Any, resources: list[Deployed], by: Stacks) -> tuple[set[Key], list[str]]:
    """A usage plan key's physical id is `<key id>:<plan id>`; the plan lists the key by the key's id."""
    client = session.client("apigateway")
    found: set[Key] = set()
    for r in resources:
        try:
            keys = client.get_usage_plan_keys(usagePlanId=_ref(r.properties["UsagePlanId"], r, by)).get("items", [])
        except client.exceptions.ClientError:
            continue
        if _ref(r.properties["KeyId"], r, by) in {k["id"] for k in keys}:
            found.add((r.stack, r.logical_id))
    return found, []


def probe_volume_attachments(session: Any, resources: list[Deployed], by: Stacks) -> tuple[set[Key], list[str]]:
    volumes = _paginate(session.client("ec2"), "describe_volumes", "Volumes")
    attached = {(a["VolumeId"], a["InstanceId"], a["Device"]) for v in volumes for a in v.get("Attachments", [])}
    found = {(r.stack, r.logical_id) for r in resources
             if (_ref(r.properties["VolumeId"], r, by), _ref(r.properties["InstanceId"], r, by),
                 r.properties["Device"]) in attached}
    return found, []


def probe_budgets(session: Any, resources: list[Deployed], _: Stacks) -> tuple[set[Key], list[str]]:
    account = session.client("sts").get_caller_identity()["Account"]
    names = {b["BudgetName"] for b in session.client("budgets").describe_budgets(AccountId=account).get("Budgets", [])}
    return _found(names, resources), []


def probe_ecs_services(session: Any, resources: list[Deployed], by: Stacks) -> tuple[set[Key], list[str]]:
    client = session.client("ecs")
    found: set[Key] = set()
    for r in resources:
        cluster = _ref(r.properties.get("Cluster", "default"), r, by)
        services = client.describe_services(cluster=cluster, services=[r.physical_id]).get("services", [])
        if any(s.get("status") == "ACTIVE" for s in services):
            found.add((r.stack, r.logical_id))
    return found, []


def _security_group_rules(direction: str) -> Probe:
    """A standalone ingress/egress rule exists when its group has a rule with the same from-port."""
    permissions = "IpPermissions" if direction == "ingress" else "IpPermissionsEgress"

    def probe(session: Any, resources: list[Deployed], by: Stacks) -> tuple[set[Key], list[str]]:
        ec2 = session.client("ec2")
        found: set[Key] = set()
        for r in resources:
            group_id = _ref(r.properties["GroupId"], r, by)
            groups = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"] \
                if isinstance(group_id, str) else []
            if any(rule.get("FromPort") == r.properties.get("FromPort")
                   for group in groups for rule in group.get(permissions, [])):
                found.add((r.stack, r.logical_id))
        return found, []
    return probe


def probe_scalable_targets(session: Any, resources: list[Deployed], _: Stacks) -> tuple[set[Key], list[str]]:
    client = session.client("application-autoscaling")
    ids = set()
    for namespace in {r.physical_id.split("|")[-1] for r in resources}:
        for target in client.describe_scalable_targets(ServiceNamespace=namespace)["ScalableTargets"]:
            ids.add(f"{target['ResourceId']}|{target['ScalableDimension']}|{target['ServiceNamespace']}")
    return _found(ids, resources), []


def probe_scaling_policies(session: Any, resources: list[Deployed], _: Stacks) -> tuple[set[Key], list[str]]:
    client = session.client("application-autoscaling")
    arns = {p["PolicyARN"] for namespace in ("ecs", "sagemaker")
            for p in client.describe_scaling_policies(ServiceNamespace=namespace)["ScalingPolicies"]}
    return _found(arns, resources), []


def _simple(service: str, method: str, key: str, field_name: str | None = None,
            physical: Callable[[Deployed], str] | None = None, transform: Callable[[str], str] | None = None,
            **kwargs: Any) -> Probe:
    """One list/describe call; `transform` maps listed ids and physical ids to a comparable form."""
    def probe(session: Any, resources: list[Deployed], _: Stacks) -> tuple[set[Key], list[str]]:
        items = _paginate(session.client(service), method, key, **kwargs)
        existing = {item[field_name] if field_name else item for item in items}
        if transform:
            existing = {transform(item) for item in existing}
            return _found(existing, resources, lambda r: transform((physical or (lambda d: d.physical_id))(r))), []
        return _found(existing, resources, physical), []
    return probe


def probe_ssm(session: Any, resources: list[Deployed], _: Stacks) -> tuple[set[Key], list[str]]:
    ssm = session.client("ssm")
    names: set[str] = set()
    physical = [r.physical_id for r in resources]
    for i in range(0, len(physical), 10):
        names |= {p["Name"] for p in ssm.get_parameters(Names=physical[i:i + 10])["Parameters"]}
    return _found(names, resources), []


def probe_routes(session: Any, resources: list[Deployed], by: Stacks) -> tuple[set[Key], list[str]]:
    tables = session.client("ec2").describe_route_tables()["RouteTables"]
    routes = {(t["RouteTableId"], route.get("DestinationCidrBlock") or route.get("DestinationPrefixListId"))
              for t in tables for route in t.get("Routes", [])}
    return _found({f"{a}|{b}" for a, b in routes}, resources, lambda r: "{}|{}".format(
        _ref(r.properties.get("RouteTableId"), r, by), r.properties.get("DestinationCidrBlock")
        or r.properties.get("DestinationPrefixListId"))), []


def probe_route_associations(session: Any, resources: list[Deployed], by: Stacks) -> tuple[set[Key], list[str]]:
    tables = session.client("ec2").describe_route_tables()["RouteTables"]
    pairs = {f"{a['RouteTableId']}|{a.get('SubnetId')}" for t in tables for a in t.get("Associations", [])}
    return _found(pairs, resources, lambda r: "{}|{}".format(_ref(r.properties.get("RouteTableId"), r, by),
                                                             _ref(r.properties.get("SubnetId"), r, by))), []


def probe_topic_policies(session: Any, resources: list[Deployed], by: Stacks) -> tuple[set[Key], list[str]]:
    sns = session.client("sns")
    found: set[Key] = set()
    for r in resources:
        topics = [_ref(t, r, by) for t in r.properties.get("Topics", [])]
        statements = [json.loads(sns.get_topic_attributes(TopicArn=t)["Attributes"]["Policy"])["Statement"]
                      for t in topics]
        wanted = r.properties["PolicyDocument"].get("Statement", [])
        if topics and all(len(s) >= len(wanted) for s in statements) and all(
                any(st.get("Sid") == w.get("Sid") for st in s) for s in statements for w in wanted if w.get("Sid")):
            found.add((r.stack, r.logical_id))
    return found, []


def probe_queue_policies(session: Any, resources: list[Deployed], by: Stacks) -> tuple[set[Key], list[str]]:
    sqs = session.client("sqs")
    found: set[Key] = set()
    for r in resources:
        policies = []
        for queue in r.properties.get("Queues", []):
            url = sqs.get_queue_url(QueueName=str(_ref(queue, r, by)).rsplit("/", 1)[-1])["QueueUrl"]
            policies.append(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"]).get(
                "Attributes", {}).get("Policy"))
        if policies and all(policies):
            found.add((r.stack, r.logical_id))
    return found, []


def probe_gateway_attachments(session: Any, resources: list[Deployed], by: Stacks) -> tuple[set[Key], list[str]]:
    gateways = session.client("ec2").describe_internet_gateways()["InternetGateways"]
    pairs = {f"{g['InternetGatewayId']}|{a['VpcId']}" for g in gateways for a in g.get("Attachments", [])}
    return _found(pairs, resources, lambda r: "{}|{}".format(_ref(r.properties.get("InternetGatewayId"), r, by),
                                                             _ref(r.properties.get("VpcId"), r, by))), []


def probe_iam_inline_policies(session: Any, resources: list[Deployed], by: Stacks) -> tuple[set[Key], list[str]]:
    iam = session.client("iam")
    found: set[Key] = set()
    for r in resources:
        roles = [_ref(role, r, by) for role in r.properties.get("Roles", [])]
        if roles and all(r.properties["PolicyName"] in iam.list_role_policies(RoleName=role)["PolicyNames"]
                         for role in roles):
            found.add((r.stack, r.logical_id))
    return found, []


def _arn_tail(r: Deployed) -> str:
    return r.physical_id.rsplit("/", 1)[-1].rsplit(":", 1)[-1]


PROBES: dict[str, Probe] = {
    "AWS::S3::Bucket": probe_buckets,
    "AWS::S3::BucketPolicy": probe_bucket_policies,
    "AWS::DynamoDB::Table": probe_tables,
    "AWS::DynamoDB::GlobalTable": probe_tables,
    "AWS::KMS::Key": _simple("kms", "list_keys", "Keys", "KeyId"),
    "AWS::KMS::Alias": _simple("kms", "list_aliases", "Aliases", "AliasName"),
    "AWS::SSM::Parameter": probe_ssm,
    "AWS::EC2::VPC": _simple("ec2", "describe_vpcs", "Vpcs", "VpcId"),
    "AWS::EC2::Subnet": _simple("ec2", "describe_subnets", "Subnets", "SubnetId"),
    "AWS::EC2::RouteTable": _simple("ec2", "describe_route_tables", "RouteTables", "RouteTableId"),
    "AWS::EC2::Route": probe_routes,
    "AWS::EC2::SubnetRouteTableAssociation": probe_route_associations,
    "AWS::EC2::InternetGateway": _simple("ec2", "describe_internet_gateways", "InternetGateways",
                                         "InternetGatewayId"),
    "AWS::EC2::VPCGatewayAttachment": probe_gateway_attachments,
    "AWS::EC2::VPCEndpoint": _simple("ec2", "describe_vpc_endpoints", "VpcEndpoints", "VpcEndpointId"),
    "AWS::EC2::FlowLog": _simple("ec2", "describe_flow_logs", "FlowLogs", "FlowLogId"),
    "AWS::EC2::SecurityGroup": _simple("ec2", "describe_security_groups", "SecurityGroups", "GroupId"),
    "AWS::EC2::NatGateway": _simple("ec2", "describe_nat_gateways", "NatGateways", "NatGatewayId"),
    "AWS::EC2::EIP": _simple("ec2", "describe_addresses", "Addresses", "PublicIp"),
    "AWS::EC2::LaunchTemplate": _simple("ec2", "describe_launch_templates", "LaunchTemplates", "LaunchTemplateId"),
    "AWS::EC2::Instance": probe_instances,
    "AWS::IAM::Role": _simple("iam", "list_roles", "Roles", "RoleName"),
    "AWS::IAM::Policy": probe_iam_inline_policies,
    "AWS::IAM::ManagedPolicy": _simple("iam", "list_policies", "Policies", "Arn", Scope="Local"),
    "AWS::IAM::InstanceProfile": _simple("iam", "list_instance_profiles", "InstanceProfiles", "InstanceProfileName"),
    "AWS::Lambda::Function": _simple("lambda", "list_functions", "Functions", "FunctionName"),
    "AWS::Lambda::LayerVersion": probe_layer_versions,
    "AWS::Lambda::Permission": probe_lambda_permissions,
    "AWS::Logs::LogGroup": _simple("logs", "describe_log_groups", "logGroups", "logGroupName"),
    "AWS::Events::Rule": _simple("events", "list_rules", "Rules", "Name"),  # Ref/physical id = rule name
    "AWS::SNS::Topic": _simple("sns", "list_topics", "Topics", "TopicArn"),
    "AWS::SNS::Subscription": _simple("sns", "list_subscriptions", "Subscriptions", "SubscriptionArn"),
    "AWS::SQS::Queue": _simple("sqs", "list_queues", "QueueUrls", physical=lambda r: r.physical_id,
                               transform=lambda url: url.rsplit("/", 1)[-1]),
    "AWS::SQS::QueuePolicy": probe_queue_policies,
    "AWS::SNS::TopicPolicy": probe_topic_policies,
    "AWS::StepFunctions::StateMachine": _simple("stepfunctions", "list_state_machines", "stateMachines",
                                                "stateMachineArn"),
    "AWS::SecretsManager::Secret": _simple("secretsmanager", "list_secrets", "SecretList", "ARN"),
    "AWS::CloudWatch::Alarm": _simple("cloudwatch", "describe_alarms", "MetricAlarms", "AlarmName"),
    "AWS::ApiGateway::RestApi": _simple("apigateway", "get_rest_apis", "items", "id"),
    "AWS::ApiGateway::Resource": _per_parent("apigateway", "get_resources", "items", "id", "RestApiId", "restApiId"),
    "AWS::ApiGateway::Deployment": _per_parent("apigateway", "get_deployments", "items", "id", "RestApiId",
                                               "restApiId"),
    "AWS::ApiGateway::Stage": _per_parent("apigateway", "get_stages", "item", "stageName", "RestApiId", "restApiId"),
    "AWS::ApiGateway::RequestValidator": _per_parent("apigateway", "get_request_validators", "items", "id",
                                                     "RestApiId", "restApiId"),
    "AWS::ApiGateway::UsagePlanKey": probe_usage_plan_keys,
    "AWS::ApiGateway::Method": probe_api_methods,
    "AWS::EC2::Volume": _simple("ec2", "describe_volumes", "Volumes", "VolumeId"),
    "AWS::EC2::VolumeAttachment": probe_volume_attachments,
    "AWS::Budgets::Budget": probe_budgets,
    "AWS::Lambda::EventInvokeConfig": probe_event_invoke_configs,
    "AWS::ApiGateway::ApiKey": _simple("apigateway", "get_api_keys", "items", "id"),
    "AWS::ApiGateway::UsagePlan": _simple("apigateway", "get_usage_plans", "items", "id"),
    "AWS::ECR::Repository": _simple("ecr", "describe_repositories", "repositories", "repositoryName"),
    "AWS::ECS::Cluster": _simple("ecs", "list_clusters", "clusterArns", transform=lambda v: v.rsplit("/", 1)[-1]),
    "AWS::ECS::Service": probe_ecs_services,
    "AWS::ECS::TaskDefinition": _simple("ecs", "list_task_definitions", "taskDefinitionArns"),
    "AWS::ElasticLoadBalancingV2::LoadBalancer": _simple("elbv2", "describe_load_balancers", "LoadBalancers",
                                                         "LoadBalancerArn"),
    "AWS::ElasticLoadBalancingV2::TargetGroup": _simple("elbv2", "describe_target_groups", "TargetGroups",
                                                        "TargetGroupArn"),
    "AWS::ElasticLoadBalancingV2::Listener": _per_parent("elbv2", "describe_listeners", "Listeners", "ListenerArn",
                                                         "LoadBalancerArn", "LoadBalancerArn"),
    "AWS::EC2::SecurityGroupIngress": _security_group_rules("ingress"),
    "AWS::EC2::SecurityGroupEgress": _security_group_rules("egress"),
    "AWS::ApplicationAutoScaling::ScalableTarget": probe_scalable_targets,
    "AWS::ApplicationAutoScaling::ScalingPolicy": probe_scaling_policies,
    "AWS::Batch::ComputeEnvironment": _simple("batch", "describe_compute_environments", "computeEnvironments",
                                              "computeEnvironmentArn"),
    "AWS::Batch::JobQueue": _simple("batch", "describe_job_queues", "jobQueues", "jobQueueArn"),
    "AWS::SageMaker::Model": _simple("sagemaker", "list_models", "Models", "ModelArn"),
    "AWS::SageMaker::EndpointConfig": _simple("sagemaker", "list_endpoint_configs", "EndpointConfigs",
                                              "EndpointConfigArn"),
    "AWS::SageMaker::Endpoint": _simple("sagemaker", "list_endpoints", "Endpoints", "EndpointArn"),
}


def verify_deployment(assembly_dir: Path, session: Any) -> Report:
    """Check the deployed stacks against the templates in `assembly_dir`; raise VerificationError on gaps."""
    cfn = session.client("cloudformation")
    report = Report()
    by_type: dict[str, list[Deployed]] = defaultdict(list)
    by_stack: dict[str, dict[str, Deployed]] = {}
    for stack_name, template in assembly_stacks(Path(assembly_dir)).items():
        try:
            stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
        except cfn.exceptions.ClientError:
            report.problems.append(f"{stack_name}: not deployed")
            continue
        if stack["StackStatus"] not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
            report.problems.append(f"{stack_name}: status {stack['StackStatus']}")
        deployed = {r["LogicalResourceId"]: r for r in _paginate(
            cfn, "list_stack_resources", "StackResourceSummaries", StackName=stack_name)}
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        missing_outputs = sorted(set(template.get("Outputs", {})) - set(outputs))
        if missing_outputs:
            report.problems.append(f"{stack_name}: outputs missing: {', '.join(missing_outputs)}")
        report.stacks[stack_name] = {"status": stack["StackStatus"], "outputs": outputs,
                                     "resources": len(template.get("Resources", {}))}
        by_logical: dict[str, Deployed] = {}
        for logical_id, resource in template.get("Resources", {}).items():
            rtype = resource["Type"]
            if rtype in UNVERIFIABLE_TYPES:
                report.exempt[rtype] = report.exempt.get(rtype, 0) + 1
                continue
            found = deployed.get(logical_id)
            if found is None:
                report.problems.append(f"{stack_name}/{logical_id} ({rtype}): missing from the deployed stack")
                continue
            if found["ResourceType"] != rtype:
                report.problems.append(f"{stack_name}/{logical_id}: deployed as {found['ResourceType']}, "
                                       f"template says {rtype}")
                continue
            item = Deployed(logical_id, rtype, found.get("PhysicalResourceId") or "",
                            resource.get("Properties", {}), stack_name)
            by_logical[logical_id] = item
            by_type[rtype].append(item)
        by_stack[stack_name] = by_logical
    for rtype, resources in sorted(by_type.items()):
        probe = PROBES.get(rtype)
        if probe is None:
            report.problems.append(f"{rtype}: no existence probe: add one to PROBES in dsstack/local/verify.py "
                                   f"({len(resources)} resource(s) unverified)")
            continue
        found, problems = probe(session, resources, by_stack)
        report.problems.extend(problems)
        for r in resources:
            if (r.stack, r.logical_id) not in found:
                report.problems.append(f"{r.stack}/{r.logical_id} ({rtype}, {r.physical_id}): in the stack but "
                                       "not found by the service API")
        report.checked[rtype] = len(found)
    if report.problems:
        raise VerificationError("deployment verification failed:\n  - " + "\n  - ".join(report.problems))
    return report
