"""S3 fixes: bucket properties from CloudFormation, bucket-policy conditions, EventBridge object events."""

from __future__ import annotations

import copy
import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from moto.events.utils import EventMessageType
from moto.s3 import models as s3_models
from moto.s3 import notifications
from moto.utilities.utils import get_partition

from dsstack.local.patches import Patch, classmethod_function, set_classmethod, set_method

log = logging.getLogger("dsstack.emulator")

# --- AWS::S3::Bucket properties ---------------------------------------------------------------------------


def _cfn_lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's LifecycleConfiguration.Rules[] -> the API shape moto's set_lifecycle reads."""
    api: dict[str, Any] = {"ID": rule.get("Id"), "Status": rule.get("Status", "Enabled")}
    api["Filter"] = {"Prefix": rule.get("Prefix", "")}
    if "ExpirationInDays" in rule or "ExpirationDate" in rule or "ExpiredObjectDeleteMarker" in rule:
        api["Expiration"] = {k: v for k, v in {
            "Days": rule.get("ExpirationInDays"), "Date": rule.get("ExpirationDate"),
            "ExpiredObjectDeleteMarker": rule.get("ExpiredObjectDeleteMarker")}.items() if v is not None}
    if "AbortIncompleteMultipartUpload" in rule:
        api["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
    if "NoncurrentVersionExpiration" in rule:
        api["NoncurrentVersionExpiration"] = rule["NoncurrentVersionExpiration"]
    elif "NoncurrentVersionExpirationInDays" in rule:
        api["NoncurrentVersionExpiration"] = {"NoncurrentDays": rule["NoncurrentVersionExpirationInDays"]}
    if "Transitions" in rule:
        api["Transition"] = [{"Days": t.get("TransitionInDays"), "Date": t.get("TransitionDate"),
                              "StorageClass": t["StorageClass"]} for t in rule["Transitions"]]
    if "NoncurrentVersionTransitions" in rule:
        api["NoncurrentVersionTransition"] = [
            {"NoncurrentDays": t["TransitionInDays"], "StorageClass": t["StorageClass"]}
            for t in rule["NoncurrentVersionTransitions"]]
    return api


def apply_bucket_properties(bucket_name: str, properties: dict[str, Any], account_id: str, region_name: str) -> None:
    """Everything moto's Bucket CloudFormation code leaves out (it only applies encryption and tags)."""
    from moto.s3.cloud_formation import cfn_to_api_encryption
    from moto.utilities.tagging_service import TaggingService

    backend = s3_models.s3_backends[account_id][get_partition(region_name)]
    bucket = backend.get_bucket(bucket_name)
    if "BucketEncryption" in properties:
        backend.put_bucket_encryption(bucket_name, cfn_to_api_encryption(properties["BucketEncryption"]))
    if "Tags" in properties:
        tags = TaggingService().flatten_tag_list(properties["Tags"])
        # A tag without Value (CloudFormation requires one) is an empty value, not None, for the S3 API.
        backend.put_bucket_tagging(bucket_name, {key: "" if value is None else value for key, value in tags.items()})
    versioning = properties.get("VersioningConfiguration")
    if versioning:
        backend.put_bucket_versioning(bucket_name, versioning["Status"])
    if "PublicAccessBlockConfiguration" in properties:
        backend.put_public_access_block(bucket_name, properties["PublicAccessBlockConfiguration"])
    ownership = properties.get("OwnershipControls")
    if ownership:
        backend.put_bucket_ownership_controls(bucket_name, ownership["Rules"][0]["ObjectOwnership"])
    lifecycle = properties.get("LifecycleConfiguration")
    if lifecycle:
        backend.put_bucket_lifecycle(bucket_name, [_cfn_lifecycle_rule(r) for r in lifecycle["Rules"]])
    logging_config = properties.get("LoggingConfiguration")
    if logging_config and logging_config.get("DestinationBucketName"):
        # Set directly: moto checks the *target's* policy for the log-delivery grant, which CloudFormation
        # does not require (and which the access-log bucket grants through a condition moto cannot read).
        bucket.logging = {"TargetBucket": logging_config["DestinationBucketName"],
                          "TargetPrefix": logging_config.get("LogFilePrefix", "")}
    notification = properties.get("NotificationConfiguration")
    if notification is not None:
        config: dict[str, Any] = {}
        if (notification.get("EventBridgeConfiguration") or {}).get("EventBridgeEnabled"):
            config["EventBridgeConfiguration"] = {}
        for cfn_key, api_key, arn_key in (("QueueConfigurations", "QueueConfiguration", "Queue"),
                                          ("TopicConfigurations", "TopicConfiguration", "Topic"),
                                          ("LambdaConfigurations", "CloudFunctionConfiguration", "Function")):
            if notification.get(cfn_key):
                config[api_key] = [{arn_key: c[arn_key], "Event": [c["Event"]], "Filter": c.get("Filter")}
                                   for c in notification[cfn_key]]
        bucket.set_notification_configuration(config or None)


def patch_bucket_properties() -> None:
    FakeBucket = s3_models.FakeBucket
    original_create = classmethod_function(FakeBucket, "create_from_cloudformation_json")
    original_update = classmethod_function(FakeBucket, "update_from_cloudformation_json")

    def create_from_cloudformation_json(cls: Any, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> Any:
        bucket = original_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        apply_bucket_properties(bucket.name, cloudformation_json.get("Properties", {}), account_id, region_name)
        return bucket

    def update_from_cloudformation_json(cls: Any, original_resource: Any, new_resource_name: str,
                                        cloudformation_json: dict[str, Any], account_id: str, region_name: str) -> Any:
        properties = cloudformation_json.get("Properties", {})
        if "BucketName" in properties and properties["BucketName"] != original_resource.name:
            bucket = original_update(cls, original_resource, new_resource_name, cloudformation_json, account_id,
                                     region_name)
        else:
            # moto's in-place branch reads properties["BucketName"] (KeyError for generated names).
            bucket = original_resource
        apply_bucket_properties(bucket.name, properties, account_id, region_name)
        return bucket

    set_classmethod(FakeBucket, "create_from_cloudformation_json", create_from_cloudformation_json)
    set_classmethod(FakeBucket, "update_from_cloudformation_json", update_from_cloudformation_json)


def patch_bucket_delete() -> None:
    def delete_from_cloudformation_json(cls: Any, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str) -> None:
        backend = s3_models.s3_backends[account_id][get_partition(region_name)]
        if resource_name in backend.buckets and backend.buckets[resource_name].keys:
            raise ValueError(f"The bucket you tried to delete is not empty ({resource_name})")
        backend.delete_bucket(resource_name)

    set_classmethod(s3_models.FakeBucket, "delete_from_cloudformation_json", delete_from_cloudformation_json)


# --- bucket policy conditions ---------------------------------------------------------------------------

# The request context the emulator evaluates bucket-policy conditions in. The emulator speaks plain HTTP
# on the loopback interface; it stands in for the TLS endpoint of S3, so aws:SecureTransport is true.
REQUEST_CONTEXT = {"aws:securetransport": "true", "s3:tlsversion": "1.3"}


def _condition_matches(operator: str, key: str, expected: Any) -> bool | None:
    """True/False when the emulator can evaluate the condition, None when it cannot."""
    actual = REQUEST_CONTEXT.get(key.lower())
    if actual is None:
        return None
    values = [str(v).lower() for v in (expected if isinstance(expected, list) else [expected])]
    op = operator.removesuffix("IfExists")
    if op in ("Bool", "StringEquals", "StringEqualsIgnoreCase"):
        return actual.lower() in values
    if op in ("StringNotEquals", "StringNotEqualsIgnoreCase"):
        return actual.lower() not in values
    if op.startswith("Numeric"):
        number, limits = float(actual), [float(v) for v in values]
        compare = {"NumericEquals": number.__eq__, "NumericNotEquals": number.__ne__,
                   "NumericLessThan": number.__lt__, "NumericLessThanEquals": number.__le__,
                   "NumericGreaterThan": number.__gt__, "NumericGreaterThanEquals": number.__ge__}.get(op)
        return None if compare is None else any(compare(limit) for limit in limits)
    return None


def effective_policy(policy: dict[str, Any]) -> dict[str, Any]:
    """The statements that apply to a request in REQUEST_CONTEXT, with their conditions resolved.

    moto treats any condition it cannot match as an explicit DENY, so the "deny unless TLS" statement
    of every CDK bucket (`enforceSSL`) denied every request. A statement whose conditions evaluate to
    false, or cannot be evaluated here, does not apply (IAM semantics: conditions narrow a statement).
    """
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    kept = []
    for statement in statements:
        conditions = statement.get("Condition") or {}
        results = [_condition_matches(operator, key, expected)
                   for operator, entries in conditions.items() for key, expected in entries.items()]
        if all(result is True for result in results):
            kept.append({k: v for k, v in statement.items() if k != "Condition"})
    return {**policy, "Statement": kept}


def patch_bucket_policy_conditions() -> None:
    from moto.iam.access_control import IAMPolicy, PermissionResult

    def get_permission(self: Any, action: str, resource: str) -> Any:
        if self.policy is None:
            return PermissionResult.NEUTRAL
        policy = effective_policy(json.loads(self.policy.decode() if isinstance(self.policy, bytes) else self.policy))
        if not policy["Statement"]:
            return PermissionResult.NEUTRAL
        return IAMPolicy(json.dumps(policy)).is_action_permitted(action, resource)

    set_method(s3_models.FakeBucket, "get_permission", get_permission)


# --- S3 -> EventBridge ----------------------------------------------------------------------------------

def s3_eventbridge_event(account_id: str, bucket: s3_models.FakeBucket, event_name: str, key: Any) -> EventMessageType:
    """The event S3 sends to EventBridge (https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": notifications._detail_type(event_name),
        "source": "aws.s3",
        "account": account_id,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": bucket.region_name,
        "resources": [bucket.arn],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket.name},
            "object": {"key": key.name, "size": key.size, "etag": key.etag.replace('"', ""),
                       **({"version-id": key.version_id} if key.version_id and key.version_id != "null" else {}),
                       "sequencer": f"{int(datetime.now(UTC).timestamp() * 1e6):016X}"},
            "request-id": uuid.uuid4().hex[:16].upper(),
            "requester": account_id,
            "source-ip-address": "127.0.0.1",
            "reason": {"Object Created": "PutObject", "Object Deleted": "DeleteObject"}.get(
                notifications._detail_type(event_name), event_name.split(":")[1]),
            **({"deletion-type": "Delete Marker Created" if "DeleteMarker" in event_name else "Permanently Deleted"}
               if "ObjectRemoved" in event_name else {}),
        },
    }


def _send_event_bridge_message(account_id: str, bucket: s3_models.FakeBucket, event_name: str, key: Any) -> None:
    from moto.events.models import events_backends

    try:
        event = s3_eventbridge_event(account_id, bucket, event_name, key)
        backend = events_backends[account_id][bucket.region_name]
        bus = backend.event_buses.get("default")
        for rule in list(bus.rules.values()) if bus else []:
            if rule.state == "ENABLED":
                rule.send_to_targets(copy.deepcopy(event), transform_input=True)
    except Exception:  # asynchronous in AWS: never fail the S3 request, but leave a trace in the log
        log.exception("S3 -> EventBridge delivery failed for s3://%s/%s", bucket.name, key.name)


def patch_s3_eventbridge() -> None:
    notifications._send_event_bridge_message = _send_event_bridge_message


PATCHES = [
    Patch("s3-bucket-properties",
          "AWS::S3::Bucket only applies BucketEncryption and Tags: versioning, public access block, ownership, "
          "lifecycle, logging and NotificationConfiguration (EventBridge) are ignored; an in-place update "
          "reads Properties.BucketName and fails for generated names",
          "applies all of them on create and update",
          patch_bucket_properties),
    Patch("s3-cfn-delete-nonempty",
          "deleting a stack with a non-empty bucket silently keeps the bucket and reports DELETE_COMPLETE",
          "the delete fails with AWS's 'bucket is not empty' reason (DELETE_FAILED), as in CloudFormation",
          patch_bucket_delete),
    Patch("s3-policy-conditions",
          "bucket-policy statements with a Condition are evaluated as an explicit Deny when the condition "
          "does not match, so CDK's 'deny unless aws:SecureTransport' statement denies every request",
          "evaluates conditions in the emulator's request context (aws:SecureTransport=true: it stands in "
          "for the TLS endpoint); a statement whose condition is false or unknown does not apply",
          patch_bucket_policy_conditions),
    Patch("s3-eventbridge-events",
          "S3 -> EventBridge events go to rules of every bus, carry a fixed id, a float `time`, no "
          "request-specific fields, and rules ignore their state and input transformers",
          "sends a documented-shape event (unique id, ISO time, version-id, reason) to the default bus's "
          "enabled rules, applying each target's input/transformer",
          patch_s3_eventbridge),
]
