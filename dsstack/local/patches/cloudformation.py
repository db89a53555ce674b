"""Fixes to moto's CloudFormation engine so the real CDK CLI can deploy, update and destroy stacks."""

from __future__ import annotations

import json
import logging
from typing import Any

from moto.cloudformation import models as cfn_models
from moto.cloudformation import parsing
from moto.cloudformation import responses as cfn_responses
from moto.cloudformation.exceptions import MissingParameterError, ValidationError
from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult, EmptyResult

from dsstack.local.patches import Patch, property_getter, set_method, set_property

log = logging.getLogger("dsstack.emulator")

Backend = cfn_models.CloudFormationBackend
Stack = cfn_models.Stack


class ChangeSetNotFound(ServiceException):
    # The shape name; moto's serializer turns it into the query error code `ChangeSetNotFound` (404)
    # that the CDK CLI waits for after deleting a change set.
    code = "ChangeSetNotFoundException"


class ResourceFailed(Exception):
    """A resource of a stack could not be created/updated: carries the logical id for the stack event."""

    def __init__(self, logical_id: str, resource_type: str, cause: BaseException):
        super().__init__(f"{logical_id} ({resource_type}): {cause}")
        self.logical_id = logical_id
        self.resource_type = resource_type


# --- termination protection -------------------------------------------------------------------------

def _update_termination_protection(self: Any) -> ActionResult:
    stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
    stack.enable_termination_protection = self._get_bool_param("EnableTerminationProtection", False)
    return ActionResult({"StackId": stack.stack_id})


def patch_termination_protection() -> None:
    set_method(cfn_responses.CloudFormationResponse, "update_termination_protection", _update_termination_protection)


# --- change sets scoped to their stack ---------------------------------------------------------------

def find_change_set(backend: Backend, name_or_arn: str, stack_name: str | None) -> Any:
    if name_or_arn in backend.change_sets:
        return backend.change_sets[name_or_arn]
    matches = [cs for cs in backend.change_sets.values()
               if cs.change_set_name == name_or_arn
               and (not stack_name or stack_name in (cs.stack_name, cs.stack_id))]
    if not matches:
        raise ChangeSetNotFound(f"ChangeSet [{name_or_arn}] does not exist")
    return matches[-1]  # the newest one: names are reused from one deploy to the next


def _describe_change_set(self: Backend, change_set_name: str, stack_name: str | None = None) -> Any:
    return find_change_set(self, change_set_name, stack_name)


def _delete_change_set(self: Backend, change_set_name: str, stack_name: str | None = None) -> None:
    try:
        change_set = find_change_set(self, change_set_name, stack_name)
    except ChangeSetNotFound:
        return  # AWS answers 200 for a change set that is already gone; the CLI deletes "if it exists"
    del self.change_sets[change_set.change_set_id]


def _response_describe_change_set(self: Any) -> ActionResult:
    change_set = self.cloudformation_backend.describe_change_set(
        self._get_param("ChangeSetName"), self._get_param("StackName"))
    return ActionResult(change_set)


def _response_delete_change_set(self: Any) -> ActionResult:
    self.cloudformation_backend.delete_change_set(self._get_param("ChangeSetName"), self._get_param("StackName"))
    return EmptyResult()


def patch_change_set_scope() -> None:
    set_method(Backend, "describe_change_set", _describe_change_set)
    set_method(Backend, "delete_change_set", _delete_change_set)
    set_method(cfn_responses.CloudFormationResponse, "describe_change_set", _response_describe_change_set)
    set_method(cfn_responses.CloudFormationResponse, "delete_change_set", _response_delete_change_set)


# --- UsePreviousValue ---------------------------------------------------------------------------------

_original_create_change_set_response = cfn_responses.CloudFormationResponse.create_change_set


def _response_create_change_set(self: Any) -> ActionResult:
    parameters = self._get_param("Parameters", [])
    if any(p.get("UsePreviousValue") for p in parameters):
        stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
        previous = {**stack.parameters, **stack.resource_map.input_parameters}
        resolved = []
        for parameter in parameters:
            key = parameter["ParameterKey"]
            if parameter.get("UsePreviousValue"):
                if key in previous:
                    resolved.append({"ParameterKey": key, "ParameterValue": previous[key]})
                elif "Default" in stack.template_dict.get("Parameters", {}).get(key, {}):
                    continue  # never passed before: CloudFormation keeps using the template default
                else:
                    raise MissingParameterError(key)
            else:
                resolved.append(parameter)
        # The original reads the parameters through _get_param: hand it the resolved list.
        original_get_param = self._get_param

        def _get_param(name: str, default: Any = None) -> Any:
            return resolved if name == "Parameters" else original_get_param(name, default)

        self._get_param = _get_param
    return _original_create_change_set_response(self)


def patch_use_previous_value() -> None:
    set_method(cfn_responses.CloudFormationResponse, "create_change_set", _response_create_change_set)


# --- executing change sets: outputs, exports, failures ------------------------------------------------

def _add_resource_event(stack: Stack, logical_id: str, resource_type: str, status: str, reason: str) -> None:
    event = cfn_models.Event(
        stack_id=stack.stack_id, stack_name=stack.name, logical_resource_id=logical_id,
        physical_resource_id="", resource_type=resource_type, resource_status=status,
        resource_status_reason=reason, resource_properties=None)
    stack.events.append(event)


def _refresh_stack(backend: Backend, stack: Stack, change_set: Any) -> None:
    """What CloudFormation does after a change set ran: the stack takes on its template and parameters."""
    stack.template = change_set.template
    stack._parse_template()
    stack.description = stack.template_dict.get("Description")
    stack.parameters = dict(change_set.parameters)
    stack.output_map = stack._create_output_map()
    for name in [name for name, export in backend.exports.items() if export.exporting_stack_id == stack.stack_id]:
        del backend.exports[name]
    for export in stack.exports:
        if export.name in backend.exports:
            raise ValidationError(stack.stack_id, message=f"Export {export.name} is already exported by "
                                  f"{backend.exports[export.name].exporting_stack_id}")
        backend.exports[export.name] = export


def _execute_change_set(self: Backend, change_set_name: str, stack_name: str | None = None) -> None:
    change_set = find_change_set(self, change_set_name, stack_name)
    stack = self.stacks[change_set.stack_id]
    creating = change_set.change_set_type == "CREATE"
    # Stacks born from a change set were built without the region's exports: Fn::ImportValue failed.
    stack.cross_stack_resources = self.exports
    stack.resource_map.cross_stack_resources = self.exports
    stack.status = "CREATE_IN_PROGRESS" if creating else "UPDATE_IN_PROGRESS"
    stack._add_stack_event(stack.status, resource_status_reason="User Initiated")
    try:
        change_set.apply()
        _refresh_stack(self, stack, change_set)
    except Exception as error:  # a failed deployment must be a FAILED stack, not an HTTP 500 the SDK retries
        log.exception("stack %s: change set %s failed", stack.name, change_set.change_set_name)
        logical_id, resource_type = getattr(error, "logical_id", stack.name), getattr(
            error, "resource_type", "AWS::CloudFormation::Stack")
        _add_resource_event(stack, logical_id, resource_type, "CREATE_FAILED" if creating else "UPDATE_FAILED",
                            str(error))
        change_set.execution_status = "EXECUTE_FAILED"
        if creating:
            stack._add_stack_event("ROLLBACK_IN_PROGRESS", resource_status_reason=f"Resource creation failed: {error}")
            try:
                stack.resource_map.delete()
            except Exception:  # the rollback is best effort, as in CloudFormation (ROLLBACK_FAILED aside)
                log.exception("stack %s: rollback left resources behind", stack.name)
            stack.status = "ROLLBACK_COMPLETE"
        else:
            stack._add_stack_event("UPDATE_ROLLBACK_IN_PROGRESS", resource_status_reason=str(error))
            stack.status = "UPDATE_ROLLBACK_COMPLETE"
        stack._add_stack_event(stack.status)
        return
    change_set.execution_status = "EXECUTE_COMPLETE"
    stack.status = "CREATE_COMPLETE" if creating else "UPDATE_COMPLETE"
    stack._add_stack_event(stack.status)


def _response_execute_change_set(self: Any) -> ActionResult:
    self.cloudformation_backend.execute_change_set(self._get_param("ChangeSetName"), self._get_param("StackName"))
    return EmptyResult()


def patch_execute_change_set() -> None:
    set_method(Backend, "execute_change_set", _execute_change_set)
    set_method(cfn_responses.CloudFormationResponse, "execute_change_set", _response_execute_change_set)


# --- deleting stacks --------------------------------------------------------------------------------

def _delete_stack(self: Backend, name_or_stack_id: str) -> None:
    stack = next((s for s in self.stacks.values() if name_or_stack_id in (s.stack_id, s.name)), None)
    if stack is None:
        return  # deleting a stack that does not exist (any more) succeeds in CloudFormation
    if stack.enable_termination_protection:
        raise ValidationError(stack.stack_id, message=f"Stack [{stack.name}] cannot be deleted while "
                              "TerminationProtection is enabled")
    importers = [other.name for other in self.stacks.values() if other is not stack
                 and _imports(other, [e.name for e in stack.exports])]
    if importers:
        raise ValidationError(stack.stack_id, message=f"Export(s) of {stack.name} are in use by {', '.join(importers)}")
    stack._add_stack_event("DELETE_IN_PROGRESS", resource_status_reason="User Initiated")
    try:
        stack.resource_map.delete()
    except Exception as error:
        log.exception("stack %s: delete failed", stack.name)
        _add_resource_event(stack, getattr(error, "logical_id", stack.name), "AWS::CloudFormation::Stack",
                            "DELETE_FAILED", str(error))
        stack.status = "DELETE_FAILED"
        stack._add_stack_event("DELETE_FAILED", resource_status_reason=str(error))
        return
    stack._add_stack_event("DELETE_COMPLETE")
    stack.status = "DELETE_COMPLETE"
    for name in [name for name, export in self.exports.items() if export.exporting_stack_id == stack.stack_id]:
        del self.exports[name]
    self.stacks.pop(stack.stack_id)
    self.deleted_stacks[stack.stack_id] = stack
    for change_set_id in [k for k, cs in self.change_sets.items() if cs.stack_id == stack.stack_id]:
        del self.change_sets[change_set_id]


def _imports(stack: Stack, export_names: list[str]) -> bool:
    if not export_names or not stack.template_dict:
        return False
    text = json.dumps(stack.template_dict.get("Resources", {}))
    return any(json.dumps(name) in text for name in export_names)


def patch_delete_stack() -> None:
    set_method(Backend, "delete_stack", _delete_stack)


# --- resource types moto does not know ------------------------------------------------------------------

# Types with no AWS service behind them: recorded in the stack so that it is complete, nothing else.
INERT_TYPES = {
    "AWS::CDK::Metadata": "CDK's version analytics; CloudFormation stores it, no service owns it",
}

_original_resource_class_from_type = parsing.resource_class_from_type
_original_parse_and_create_resource = parsing.parse_and_create_resource
_original_parse_and_update_resource = parsing.parse_and_update_resource


def _resource_class_from_type(resource_type: str) -> Any:
    from dsstack.local.patches.resources import EMULATED_TYPES, RecordedResource

    if resource_type in EMULATED_TYPES:
        return EMULATED_TYPES[resource_type]
    if resource_type in INERT_TYPES:
        return RecordedResource
    resource_class = _original_resource_class_from_type(resource_type)
    if resource_class is None and resource_type not in parsing.NULL_MODELS:
        raise ValidationError(message=f"Resource type {resource_type} is not supported by the dsstack emulator "
                              "(moto 5.2.5): add it to dsstack/local/patches/resources.py or deploy to AWS")
    return resource_class


def _parse_and_create_resource(logical_id: str, resource_json: dict[str, Any], resources_map: Any,
                               account_id: str, region_name: str) -> Any:
    try:
        return _original_parse_and_create_resource(logical_id, resource_json, resources_map, account_id, region_name)
    except ResourceFailed:
        raise
    except Exception as error:
        raise ResourceFailed(logical_id, resource_json.get("Type", "?"), error) from error


def _parse_and_update_resource(logical_id: str, resource_json: dict[str, Any], resources_map: Any,
                               account_id: str, region_name: str) -> Any:
    try:
        resource = _original_parse_and_update_resource(logical_id, resource_json, resources_map, account_id,
                                                       region_name)
    except ResourceFailed:
        raise
    except Exception as error:
        raise ResourceFailed(logical_id, resource_json.get("Type", "?"), error) from error
    if resource is None:
        # moto returns None for types without an update implementation, and update() then stores None
        # in place of the resource: the resource vanished from the stack. Keep the existing one.
        resource = resources_map._parsed_resources.get(logical_id)
    return resource


def patch_unsupported_types() -> None:
    parsing.resource_class_from_type = _resource_class_from_type
    parsing.parse_and_create_resource = _parse_and_create_resource
    parsing.parse_and_update_resource = _parse_and_update_resource


# --- listing a stack's resources ------------------------------------------------------------------------

def _stack_resources(self: Stack) -> list[Any]:
    # moto's resource map is lazy: listing it *creates* any resource not created yet, so describing a
    # rolled-back stack re-ran the failing resource (a 500). List what exists, in template order.
    resource_map = self.resource_map
    return [resource for logical_id in resource_map._resource_json_map
            if (resource := resource_map._parsed_resources.get(logical_id)) is not None
            and not isinstance(resource, str | int | float | list | dict)]


def patch_stack_resources() -> None:
    set_property(Stack, "stack_resources", _stack_resources)


def _in_depends_on_order(names: list[str], resources: dict[str, Any]) -> list[str]:
    """`names` reordered so that each comes after the names it lists in DependsOn (stable otherwise)."""
    pending, ordered, seen = list(names), [], set()

    def visit(name: str) -> None:
        if name in seen or name not in pending:
            return
        seen.add(name)
        depends = resources.get(name, {}).get("DependsOn", [])
        for dependency in [depends] if isinstance(depends, str) else depends:
            visit(dependency)
        ordered.append(name)

    for name in names:
        visit(name)
    return ordered


def patch_update_dependency_order() -> None:
    original = parsing.ResourceMap.build_resource_diff

    def build_resource_diff(self: Any, other_template: dict[str, Any], parameters: Any = None) -> dict[str, Any]:
        diff = original(self, other_template, parameters)
        diff["Add"] = _in_depends_on_order(diff["Add"], other_template.get("Resources", {}))
        return diff

    set_method(parsing.ResourceMap, "build_resource_diff", build_resource_diff)


def patch_deleted_stack_outputs() -> None:
    original_outputs = property_getter(cfn_models.Stack, "outputs")
    original_exports = property_getter(cfn_models.Stack, "exports")

    def deleting(stack: Any) -> bool:
        return str(stack.status).startswith("DELETE")

    set_property(cfn_models.Stack, "outputs", lambda self: None if deleting(self) else original_outputs(self))
    set_property(cfn_models.Stack, "exports", lambda self: [] if deleting(self) else original_exports(self))


# Types whose names AWS only accepts in lower case; CloudFormation lower-cases the names it generates for them.
LOWER_CASE_NAMED_TYPES = {"AWS::ECR::Repository"}


def patch_lower_case_generated_names() -> None:
    original = parsing.generate_resource_name

    def generate_resource_name(resource_type: str, stack_name: str, logical_id: str) -> str:
        name = original(resource_type, stack_name, logical_id)
        return name.lower() if resource_type in LOWER_CASE_NAMED_TYPES else name

    parsing.generate_resource_name = generate_resource_name


PATCHES = [
    Patch("cfn-lower-case-generated-names",
          "a generated name keeps the stack name's and logical id's upper-case letters, which ECR rejects "
          "(InvalidParameterException on repositoryName) for a repository without RepositoryName",
          "lower-cases generated names of the types that require it (AWS::ECR::Repository), as CloudFormation does",
          patch_lower_case_generated_names),
    Patch("cfn-deleted-stack-outputs",
          "describing a stack that is being or has been deleted re-evaluates its Outputs, which lazily re-creates "
          "the resources they reference (e.g. an API Gateway Deployment whose Methods are gone); the error is an "
          "HTTP 500 and `cdk destroy` fails on an XML parse error",
          "a deleting or deleted stack has no outputs and no exports, as in AWS",
          patch_deleted_stack_outputs),
    Patch("cfn-update-depends-on",
          "a stack created or updated through a change set adds its new resources in template order, ignoring "
          "DependsOn (only the plain CreateStack path orders them): e.g. an API Gateway Deployment is created "
          "before its Methods and fails with \"The REST API doesn't contain any methods\"",
          "orders the added resources so that each follows what it lists in DependsOn",
          patch_update_dependency_order),
    Patch("cfn-stack-resources",
          "listing a stack's resources lazily creates the ones that do not exist yet (a failed resource is "
          "retried on every DescribeStackResources and answers 500)",
          "lists only the resources that were created",
          patch_stack_resources),
    Patch("cfn-termination-protection",
          "UpdateTerminationProtection is not implemented (HTTP 500 after every `cdk deploy` of a protected "
          "stack) and DeleteStack ignores termination protection",
          "implements UpdateTerminationProtection and makes DeleteStack refuse a protected stack, as AWS does",
          patch_termination_protection),
    Patch("cfn-change-set-scope",
          "change sets are looked up by name across all stacks (the CLI names every one "
          "`cdk-deploy-change-set`), and DeleteChangeSet of a missing change set is a 500 (UnboundLocalError)",
          "DescribeChangeSet/DeleteChangeSet/ExecuteChangeSet honour StackName; a missing change set is "
          "ChangeSetNotFound on describe and a no-op on delete",
          patch_change_set_scope),
    Patch("cfn-use-previous-value",
          "UsePreviousValue takes the *resolved* value (an SSM parameter's value, not its name), so an "
          "update of a stack with an SSM-typed parameter fails",
          "resolves UsePreviousValue from the values the stack was deployed with",
          patch_use_previous_value),
    Patch("cfn-execute-change-set",
          "stacks created through change sets keep an empty template: no Outputs (empty --outputs-file), "
          "no Exports, Fn::ImportValue fails; a failing resource raises HTTP 500, which the SDK retries into "
          "a false success",
          "after a change set the stack takes its template, parameters, outputs and exports; a failure "
          "becomes a *_FAILED event with the reason and ROLLBACK_COMPLETE/UPDATE_ROLLBACK_COMPLETE",
          patch_execute_change_set),
    Patch("cfn-delete-stack",
          "DeleteStack pops the stack before deleting its resources: a failure is a 500 and the stack "
          "disappears anyway (false success); exports in use by another stack are deleted",
          "a failed delete leaves the stack in DELETE_FAILED with the reason; exports in use block the delete",
          patch_delete_stack),
    Patch("cfn-unsupported-types",
          "resource types moto does not model are skipped with a warning (the stack 'succeeds' without "
          "them); a type without update support turns into None on update",
          "an unknown type fails the stack with a message naming it; emulated types come from "
          "dsstack/local/patches/resources.py; inert types are recorded; failures name the logical id",
          patch_unsupported_types),
]
