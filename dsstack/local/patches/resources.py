"""CloudFormation resource types that moto 5.2.5 skips or half-applies, made real in its backends.

Each class turns the CloudFormation properties into calls on the same moto backends the service APIs
use, so the resource is visible to boto3 afterwards (and the deploy verification can describe it).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any, TypedDict

from moto.core.common_models import CloudFormationModel
from moto.utilities.utils import get_partition

from dsstack.local.patches import Patch, classmethod_function, set_classmethod


def _policy_text(document: Any) -> str:
    return document if isinstance(document, str) else json.dumps(document)


def _queue_name(url_or_arn: str) -> str:
    return url_or_arn.rstrip("/").replace(":", "/").split("/")[-1]


class EmulatedResource(CloudFormationModel):
    """Base: a resource held by the CloudFormation stack, backed by a moto backend."""

    TYPE = ""
    ATTRIBUTES: tuple[str, ...] = ()

    def __init__(self, physical_id: str, attributes: dict[str, Any] | None = None, **state: Any) -> None:
        self.physical_id = physical_id
        self.attributes = attributes or {}
        self.state = state

    @property
    def physical_resource_id(self) -> str:
        return self.physical_id

    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.TYPE

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.ATTRIBUTES

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute_name not in self.attributes:
            raise UnformattedGetAttTemplateException()
        return self.attributes[attribute_name]

    @classmethod
    def update_from_cloudformation_json(cls, original_resource: Any, new_resource_name: str,
                                        cloudformation_json: dict[str, Any], account_id: str, region_name: str) -> Any:
        # Default: replace in place (delete, then create with the new properties).
        original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str) -> None:
        pass

    def delete(self, account_id: str, region_name: str) -> None:
        pass


class RecordedResource(EmulatedResource):
    """An inert type (see cloudformation.INERT_TYPES): in the stack, no backend."""

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> RecordedResource:
        return cls(resource_name)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource: Any, new_resource_name: str,
                                        cloudformation_json: dict[str, Any], account_id: str, region_name: str) -> Any:
        return original_resource


class BucketPolicy(EmulatedResource):
    TYPE = "AWS::S3::BucketPolicy"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> BucketPolicy:
        from moto.s3.models import s3_backends

        props = cloudformation_json["Properties"]
        backend = s3_backends[account_id][get_partition(region_name)]
        backend.put_bucket_policy(props["Bucket"], _policy_text(props["PolicyDocument"]).encode())
        return cls(props["Bucket"], bucket=props["Bucket"])  # CloudFormation's physical id: the bucket name

    def delete(self, account_id: str, region_name: str) -> None:
        from moto.s3.models import s3_backends

        backend = s3_backends[account_id][get_partition(region_name)]
        if self.state["bucket"] in backend.buckets:
            backend.delete_bucket_policy(self.state["bucket"])


class TopicPolicy(EmulatedResource):
    TYPE = "AWS::SNS::TopicPolicy"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> TopicPolicy:
        from moto.sns.models import sns_backends

        props = cloudformation_json["Properties"]
        for topic in props["Topics"]:
            sns_backends[account_id][region_name].set_topic_attribute(
                topic, "policy", _policy_text(props["PolicyDocument"]))
        return cls(resource_name, topics=props["Topics"])


class TopicSubscription(EmulatedResource):
    TYPE = "AWS::SNS::Subscription"
    ATTRIBUTES = ("Arn",)

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> TopicSubscription:
        from moto.sns.models import sns_backends

        props = cloudformation_json["Properties"]
        backend = sns_backends[account_id][region_name]
        subscription = backend.subscribe(props["TopicArn"], props["Endpoint"], props["Protocol"])
        for key in ("RawMessageDelivery", "FilterPolicy", "FilterPolicyScope", "RedrivePolicy", "DeliveryPolicy"):
            if key in props:
                value = props[key]
                value = json.dumps(value) if isinstance(value, dict) else str(value).lower() \
                    if isinstance(value, bool) else value
                backend.set_subscription_attributes(subscription.arn, key, value)
        return cls(subscription.arn, {"Arn": subscription.arn})

    def delete(self, account_id: str, region_name: str) -> None:
        from moto.sns.models import sns_backends

        sns_backends[account_id][region_name].unsubscribe(self.physical_id)


class QueuePolicy(EmulatedResource):
    TYPE = "AWS::SQS::QueuePolicy"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> QueuePolicy:
        from moto.sqs.models import sqs_backends

        props = cloudformation_json["Properties"]
        for queue in props["Queues"]:
            sqs_backends[account_id][region_name].set_queue_attributes(
                _queue_name(queue), {"Policy": _policy_text(props["PolicyDocument"])})
        return cls(resource_name, queues=props["Queues"])


class Secret(EmulatedResource):
    TYPE = "AWS::SecretsManager::Secret"
    ATTRIBUTES = ("Id",)

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> Secret:
        import secrets

        from moto.secretsmanager.models import secretsmanager_backends

        props = cloudformation_json["Properties"]
        secret_string = props.get("SecretString")
        generate = props.get("GenerateSecretString")
        if secret_string is None and generate is not None:
            # What CloudFormation does with GenerateSecretString: a random password, optionally in a template.
            password = secrets.token_urlsafe(int(generate.get("PasswordLength", 32)))[: int(
                generate.get("PasswordLength", 32))]
            if "SecretStringTemplate" in generate:
                document = json.loads(generate["SecretStringTemplate"])
                document[generate["GenerateStringKey"]] = password
                secret_string = json.dumps(document)
            else:
                secret_string = password
        backend = secretsmanager_backends[account_id][region_name]
        result = json.loads(backend.create_secret(
            name=props.get("Name", resource_name), secret_string=secret_string, secret_binary=None,
            description=props.get("Description"), tags=props.get("Tags"), kms_key_id=props.get("KmsKeyId"),
            client_request_token=None, replica_regions=[], force_overwrite=False))
        return cls(result["ARN"], {"Id": result["ARN"]}, name=result["Name"])

    def delete(self, account_id: str, region_name: str) -> None:
        from moto.secretsmanager.models import secretsmanager_backends

        secretsmanager_backends[account_id][region_name].delete_secret(
            self.physical_id, recovery_window_in_days=None, force_delete_without_recovery=True)


class Alarm(EmulatedResource):
    TYPE = "AWS::CloudWatch::Alarm"
    ATTRIBUTES = ("Arn",)

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> Alarm:
        from moto.cloudwatch.models import cloudwatch_backends

        props = cloudformation_json["Properties"]
        name = props.get("AlarmName", resource_name)
        alarm = cloudwatch_backends[account_id][region_name].put_metric_alarm(
            name=name, namespace=props.get("Namespace"), metric_name=props.get("MetricName"),
            comparison_operator=props["ComparisonOperator"], evaluation_periods=int(props["EvaluationPeriods"]),
            period=int(props.get("Period", 60)), threshold=float(props.get("Threshold", 0)),
            statistic=props.get("Statistic"), description=props.get("AlarmDescription"),
            # moto's alarm model expects the API's capitalised keys; accept either case from the parser.
            dimensions=[{"Name": d.get("Name", d.get("name")), "Value": d.get("Value", d.get("value"))}
                        for d in props.get("Dimensions", [])],
            alarm_actions=props.get("AlarmActions", []), ok_actions=props.get("OKActions", []),
            insufficient_data_actions=props.get("InsufficientDataActions", []),
            datapoints_to_alarm=props.get("DatapointsToAlarm"), extended_statistic=props.get("ExtendedStatistic"),
            unit=props.get("Unit"), actions_enabled=props.get("ActionsEnabled", True),
            treat_missing_data=props.get("TreatMissingData"), tags=props.get("Tags"))
        return cls(name, {"Arn": alarm.alarm_arn})

    def delete(self, account_id: str, region_name: str) -> None:
        from moto.cloudwatch.models import cloudwatch_backends

        cloudwatch_backends[account_id][region_name].delete_alarms([self.physical_id])


def _apply_table_extras(table_name: str, props: dict[str, Any], account_id: str, region_name: str) -> None:
    """Properties moto's Table/GlobalTable CloudFormation code ignores: TTL and point-in-time recovery."""
    from moto.dynamodb.models import dynamodb_backends

    backend = dynamodb_backends[account_id][region_name]
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        backend.update_time_to_live(table_name, {"Enabled": True, "AttributeName": ttl["AttributeName"]})
    pitr = props.get("PointInTimeRecoverySpecification")
    if pitr is not None:
        backend.update_continuous_backups(
            table_name, {"PointInTimeRecoveryEnabled": bool(pitr.get("PointInTimeRecoveryEnabled"))})


class GlobalTable(EmulatedResource):
    """AWS::DynamoDB::GlobalTable (TableV2): one table in the stack's region (the emulator has one)."""

    TYPE = "AWS::DynamoDB::GlobalTable"
    ATTRIBUTES = ("Arn", "StreamArn", "TableId")

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> GlobalTable:
        from moto.dynamodb.models import dynamodb_backends

        props = cloudformation_json["Properties"]
        replica: dict[str, Any] = next((r for r in props.get("Replicas", []) if r.get("Region") == region_name), {})
        name = props.get("TableName", resource_name)
        sse = props.get("SSESpecification") or {}
        replica_sse = replica.get("SSESpecification") or {}
        table = dynamodb_backends[account_id][region_name].create_table(
            name=name, schema=props["KeySchema"], throughput=None, attr=props["AttributeDefinitions"],
            global_indexes=props.get("GlobalSecondaryIndexes", []), indexes=props.get("LocalSecondaryIndexes", []),
            streams=props.get("StreamSpecification"), billing_mode=props.get("BillingMode", "PAY_PER_REQUEST"),
            sse_specification={"Enabled": bool(sse.get("SSEEnabled")), "SSEType": sse.get("SSEType"),
                               "KMSMasterKeyId": replica_sse.get("KMSMasterKeyId")} if sse else None,
            tags=replica.get("Tags", []), deletion_protection_enabled=replica.get("DeletionProtectionEnabled", False),
            warm_throughput=None)
        _apply_table_extras(name, {**props, **replica}, account_id, region_name)
        stream_arn = (f"{table.table_arn}/stream/{table.latest_stream_label}" if table.latest_stream_label else None)
        return cls(name, {"Arn": table.table_arn, "StreamArn": stream_arn, "TableId": name})

    @classmethod
    def update_from_cloudformation_json(cls, original_resource: Any, new_resource_name: str,
                                        cloudformation_json: dict[str, Any], account_id: str, region_name: str) -> Any:
        # Only the settings that can change in place; key schema changes are replacements, not supported.
        props = cloudformation_json["Properties"]
        replica: dict[str, Any] = next((r for r in props.get("Replicas", []) if r.get("Region") == region_name), {})
        _apply_table_extras(original_resource.physical_id, {**props, **replica}, account_id, region_name)
        return original_resource

    def delete(self, account_id: str, region_name: str) -> None:
        from moto.dynamodb.models import dynamodb_backends

        dynamodb_backends[account_id][region_name].delete_table(name=self.physical_id)


def patch_dynamodb_table() -> None:
    from moto.dynamodb.models.table import Table

    original_create = classmethod_function(Table, "create_from_cloudformation_json")

    def create_from_cloudformation_json(cls: Any, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> Any:
        table = original_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        _apply_table_extras(table.name, cloudformation_json.get("Properties", {}), account_id, region_name)
        return table

    def update_from_cloudformation_json(cls: Any, original_resource: Any, new_resource_name: str,
                                        cloudformation_json: dict[str, Any], account_id: str, region_name: str) -> Any:
        # moto has no in-place update for tables: apply the mutable settings, keep the table and its items.
        props = cloudformation_json.get("Properties", {})
        if "DeletionProtectionEnabled" in props:
            original_resource.deletion_protection_enabled = bool(props["DeletionProtectionEnabled"])
        _apply_table_extras(original_resource.name, props, account_id, region_name)
        return original_resource

    set_classmethod(Table, "create_from_cloudformation_json", create_from_cloudformation_json)
    set_classmethod(Table, "update_from_cloudformation_json", update_from_cloudformation_json)


def patch_kms_key() -> None:
    from moto.kms.models import Key

    original_create = classmethod_function(Key, "create_from_cloudformation_json")

    def create_from_cloudformation_json(cls: Any, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> Any:
        props = dict(cloudformation_json["Properties"])
        # CloudFormation tags are {Key, Value}; moto's KMS backend wants the API's {TagKey, TagValue}.
        props["Tags"] = [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in props.get("Tags", [])]
        props["KeyPolicy"] = _policy_text(props["KeyPolicy"])
        key = original_create(cls, resource_name, {**cloudformation_json, "Properties": props}, account_id,
                              region_name, **kwargs)
        if props.get("KeySpec"):
            key.key_spec = props["KeySpec"]
        if props.get("KeyUsage"):
            key.key_usage = props["KeyUsage"]
        return key

    set_classmethod(Key, "create_from_cloudformation_json", create_from_cloudformation_json)


def patch_ssm_parameter() -> None:
    from moto.ssm.models import Parameter

    original_create = classmethod_function(Parameter, "create_from_cloudformation_json")

    def create_from_cloudformation_json(cls: Any, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> Any:
        props = dict(cloudformation_json["Properties"])
        # AWS::SSM::Parameter.Tags is a JSON object in CloudFormation, a list of {Key, Value} in the API.
        if isinstance(props.get("Tags"), dict):
            props["Tags"] = [{"Key": k, "Value": v} for k, v in props["Tags"].items()]
        props.setdefault("Name", f"CFN-{resource_name}")  # CloudFormation generates a name when none is given
        return original_create(cls, resource_name, {**cloudformation_json, "Properties": props}, account_id,
                               region_name, **kwargs)

    set_classmethod(Parameter, "create_from_cloudformation_json", create_from_cloudformation_json)


class EventInvokeConfig(EmulatedResource):
    """AWS::Lambda::EventInvokeConfig: retries and on-failure destination of asynchronous invocations.

    Stored on moto's function, where the `lambda-async-invoke` patch reads it."""

    TYPE = "AWS::Lambda::EventInvokeConfig"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> EventInvokeConfig:
        from moto.awslambda.models import lambda_backends

        props = cloudformation_json["Properties"]
        config = {k: props[k] for k in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig")
                  if k in props}
        function_name = props["FunctionName"].split(":")[-1]
        lambda_backends[account_id][region_name].put_function_event_invoke_config(function_name, config)
        return cls(f"{function_name}:{props.get('Qualifier', '$LATEST')}", function_name=function_name)

    def delete(self, account_id: str, region_name: str) -> None:
        from moto.awslambda.models import lambda_backends

        backend = lambda_backends[account_id][region_name]
        with contextlib.suppress(Exception):  # the function may already be gone with the stack
            backend.get_function(self.state["function_name"]).event_invoke_config.clear()


class Budget(EmulatedResource):
    """AWS::Budgets::Budget: moto's budgets backend has the API but no CloudFormation model."""

    TYPE = "AWS::Budgets::Budget"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> Budget:
        from moto.budgets.models import budgets_backends

        props = cloudformation_json["Properties"]
        budget = dict(props["Budget"])
        budget.setdefault("BudgetName", resource_name)
        if "BudgetLimit" in budget:
            budget["BudgetLimit"] = {"Amount": str(budget["BudgetLimit"]["Amount"]),
                                     "Unit": budget["BudgetLimit"]["Unit"]}
        notifications = [{"Notification": n["Notification"], "Subscribers": n.get("Subscribers", [])}
                         for n in props.get("NotificationsWithSubscribers", [])]
        backend = budgets_backends[account_id]["global"]
        backend.create_budget(account_id=account_id, budget=budget, notifications=notifications)
        return cls(budget["BudgetName"], account=account_id)

    def delete(self, account_id: str, region_name: str) -> None:
        from moto.budgets.models import budgets_backends

        budgets_backends[account_id]["global"].delete_budget(account_id=account_id, budget_name=self.physical_id)


class RequestValidator(EmulatedResource):
    """AWS::ApiGateway::RequestValidator: moto's API has validators but no CloudFormation model."""

    TYPE = "AWS::ApiGateway::RequestValidator"
    ATTRIBUTES = ("RequestValidatorId",)

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> RequestValidator:
        from moto.apigateway.models import apigateway_backends

        props = cloudformation_json["Properties"]
        validator = apigateway_backends[account_id][region_name].create_request_validator(
            props["RestApiId"], props.get("Name", resource_name), props.get("ValidateRequestBody", False),
            props.get("ValidateRequestParameters", False))
        return cls(validator.id, {"RequestValidatorId": validator.id}, rest_api_id=props["RestApiId"])

    def delete(self, account_id: str, region_name: str) -> None:
        from moto.apigateway.models import apigateway_backends

        with contextlib.suppress(Exception):  # the API may already be gone with the stack
            apigateway_backends[account_id][region_name].delete_request_validator(
                self.state["rest_api_id"], self.physical_id)


class EgressRule(TypedDict):
    """The keyword arguments of moto's authorize/revoke_security_group_egress for one rule."""

    ip_protocol: str
    from_port: str
    to_port: str
    ip_ranges: list[dict[str, str]]
    source_groups: list[dict[str, str]]


class SecurityGroupEgress(EmulatedResource):
    """AWS::EC2::SecurityGroupEgress (CDK emits one per group-to-group rule): moto models only the ingress type."""

    TYPE = "AWS::EC2::SecurityGroupEgress"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> SecurityGroupEgress:
        from moto.ec2.models import ec2_backends

        props = cloudformation_json["Properties"]
        rule: EgressRule = {
            "ip_protocol": str(props["IpProtocol"]), "from_port": str(props.get("FromPort", -1)),
            "to_port": str(props.get("ToPort", -1)),
            "ip_ranges": [{"CidrIp": props["CidrIp"], "Description": props.get("Description", "")}]
            if props.get("CidrIp") else [],
            "source_groups": [{"GroupId": props["DestinationSecurityGroupId"]}]
            if props.get("DestinationSecurityGroupId") else []}
        ec2_backends[account_id][region_name].authorize_security_group_egress(props["GroupId"], **rule)
        return cls(f"{props['GroupId']}-egress-{resource_name}", group_id=props["GroupId"], rule=rule)

    def delete(self, account_id: str, region_name: str) -> None:
        from moto.ec2.models import ec2_backends

        with contextlib.suppress(Exception):  # the group may already be gone with the stack
            ec2_backends[account_id][region_name].revoke_security_group_egress(
                self.state["group_id"], **self.state["rule"])


def _autoscaling(account_id: str, region_name: str) -> Any:
    from moto.applicationautoscaling.models import applicationautoscaling_backends

    return applicationautoscaling_backends[account_id][region_name]


class ScalableTarget(EmulatedResource):
    """AWS::ApplicationAutoScaling::ScalableTarget: moto has the API but no CloudFormation model.

    Physical id as in AWS: `<resource id>|<scalable dimension>|<service namespace>`."""

    TYPE = "AWS::ApplicationAutoScaling::ScalableTarget"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> ScalableTarget:
        props = cloudformation_json["Properties"]
        namespace, resource_id, dimension = props["ServiceNamespace"], props["ResourceId"], props["ScalableDimension"]
        _autoscaling(account_id, region_name).register_scalable_target(
            namespace, resource_id, dimension, int(props["MinCapacity"]), int(props["MaxCapacity"]),
            props.get("RoleARN", ""), props.get("SuspendedState"))
        return cls(f"{resource_id}|{dimension}|{namespace}")

    def delete(self, account_id: str, region_name: str) -> None:
        resource_id, dimension, namespace = self.physical_id.split("|")
        with contextlib.suppress(Exception):  # already gone with its service
            _autoscaling(account_id, region_name).deregister_scalable_target(namespace, resource_id, dimension)


class ScalingPolicy(EmulatedResource):
    """AWS::ApplicationAutoScaling::ScalingPolicy on a ScalableTarget of the same stack (ScalingTargetId)."""

    TYPE = "AWS::ApplicationAutoScaling::ScalingPolicy"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> ScalingPolicy:
        props = cloudformation_json["Properties"]
        if "ScalingTargetId" in props:
            resource_id, dimension, namespace = props["ScalingTargetId"].split("|")
        else:
            resource_id, dimension, namespace = (props["ResourceId"], props["ScalableDimension"],
                                                 props["ServiceNamespace"])
        body = props.get("TargetTrackingScalingPolicyConfiguration") or props.get("StepScalingPolicyConfiguration")
        policy = _autoscaling(account_id, region_name).put_scaling_policy(
            props["PolicyName"], namespace, resource_id, dimension, body, props["PolicyType"])
        return cls(policy.policy_arn, name=props["PolicyName"], target=(namespace, resource_id, dimension))

    def delete(self, account_id: str, region_name: str) -> None:
        namespace, resource_id, dimension = self.state["target"]
        with contextlib.suppress(Exception):  # already gone with its target
            _autoscaling(account_id, region_name).delete_scaling_policy(
                self.state["name"], namespace, resource_id, dimension)


EMULATED_TYPES: dict[str, type[EmulatedResource]] = {
    cls.TYPE: cls for cls in (BucketPolicy, TopicPolicy, TopicSubscription, QueuePolicy, Secret, Alarm, GlobalTable,
                              EventInvokeConfig, Budget, RequestValidator, ScalableTarget, ScalingPolicy,
                              SecurityGroupEgress)
}


def _register() -> None:
    # Nothing to patch here: cloudformation.patch_unsupported_types consults EMULATED_TYPES.
    pass


PATCHES = [
    Patch("cfn-skipped-types",
          "AWS::S3::BucketPolicy, AWS::SNS::TopicPolicy, AWS::SNS::Subscription, AWS::SQS::QueuePolicy, "
          "AWS::SecretsManager::Secret, AWS::CloudWatch::Alarm and AWS::DynamoDB::GlobalTable are skipped; "
          "AWS::Lambda::EventInvokeConfig, AWS::Budgets::Budget, AWS::ApiGateway::RequestValidator and "
          "AWS::ApplicationAutoScaling::ScalableTarget/ScalingPolicy, AWS::EC2::SecurityGroupEgress have no "
          "CloudFormation model",
          "creates them in the service backends (policy, subscription with its attributes, secret incl. "
          "GenerateSecretString, alarm, table, async-invoke config, budget, request validator, scaling target and "
          "policy) and deletes them "
          "with the stack",
          _register),
    Patch("cfn-dynamodb-table",
          "AWS::DynamoDB::Table ignores PointInTimeRecoverySpecification and TimeToLiveSpecification, and an "
          "update of the table resource is not implemented",
          "applies PITR and TTL on create and update; updates keep the table and its items",
          patch_dynamodb_table),
    Patch("cfn-kms-key",
          "AWS::KMS::Key with Tags fails (KeyError 'TagKey': CloudFormation's tag shape is passed to the API "
          "code) and the key policy is stored as a dict",
          "converts the tags and stores the policy as JSON text",
          patch_kms_key),
    Patch("cfn-ssm-parameter",
          "AWS::SSM::Parameter with Tags fails (CloudFormation's tag map is passed where the API's list is "
          "expected) and a parameter without Name gets the name None",
          "converts the tag map and generates a name as CloudFormation does",
          patch_ssm_parameter),
]
