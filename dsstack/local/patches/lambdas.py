"""Python Lambdas without Docker: moto runs functions in a container; the emulator runs them in a local
Python process (dsstack/local/lambda_runner.py) against the emulator itself."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from moto.awslambda import models as lambda_models

from dsstack.local.patches import Patch, classmethod_function, set_classmethod, set_method, set_property

log = logging.getLogger("dsstack.emulator")

# Set by dsstack.local.server once the port is known: what functions use as AWS_ENDPOINT_URL.
ENDPOINT = {"url": os.environ.get("DSSTACK_EMULATOR_ENDPOINT", "")}
# AWS-managed layers whose content this virtualenv already provides (pinned in pyproject.toml).
MANAGED_LAYER_ACCOUNTS = {"017000801446": "AWS Lambda Powertools for Python (aws-lambda-powertools in the venv)"}
RUNNER = Path(__file__).resolve().parent.parent / "lambda_runner.py"
# Every Python runtime runs on this interpreter (the project's Python): a python3.12 function runs on 3.11.
PYTHON = sys.executable
_extract_lock = threading.Lock()
_async_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="lambda-async")


def cache_dir() -> Path:
    root = os.environ.get("DSSTACK_EMULATOR_DIR") or tempfile.gettempdir()
    path = Path(root) / "lambda-code"
    path.mkdir(parents=True, exist_ok=True)
    return path


def extract_zip(code: bytes) -> Path:
    """Unpack a code/layer zip once per content hash."""
    digest = hashlib.sha256(code).hexdigest()
    target = cache_dir() / digest
    with _extract_lock:
        if not target.exists():
            staging = target.with_name(f"{digest}.tmp-{uuid.uuid4().hex}")
            with zipfile.ZipFile(io.BytesIO(code)) as archive:
                archive.extractall(staging)
            staging.rename(target)
    return target


def _layer_paths(fn: Any) -> list[str]:
    paths: list[str] = []
    backend = lambda_models.get_backend(fn.account_id, fn.region)
    for layer in fn.layers:
        arn = layer["Arn"]
        if arn.split(":")[4] in MANAGED_LAYER_ACCOUNTS:
            continue  # provided by the virtualenv's site-packages
        version = backend.layers_versions_by_arn(arn)
        if version is None:  # deleted since the function was created (AWS keeps a copy; moto does not)
            from moto.awslambda.exceptions import UnknownLayerVersionException

            raise UnknownLayerVersionException([arn])
        root = extract_zip(version.code_bytes)
        # The layout Lambda puts on the path for Python: /opt/python and /opt/python/lib/pythonX/site-packages.
        paths.append(str(root / "python"))
        paths.extend(str(p) for p in sorted((root / "python" / "lib").glob("python3*/site-packages")))
    return paths


def function_environment(fn: Any, request_id: str) -> dict[str, str]:
    env = {key: os.environ[key] for key in ("PATH", "LANG", "LC_ALL", "TZ", "SYSTEMROOT") if key in os.environ}
    env.update({
        "AWS_ENDPOINT_URL": ENDPOINT["url"],
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": fn.region, "AWS_DEFAULT_REGION": fn.region,
        "AWS_LAMBDA_FUNCTION_NAME": fn.function_name, "AWS_LAMBDA_FUNCTION_VERSION": str(fn.version),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
        "AWS_LAMBDA_LOG_GROUP_NAME": fn.logs_group_name, "AWS_LAMBDA_LOG_STREAM_NAME": request_id,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.run_time}", "_HANDLER": fn.handler or "",
        "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1",
    })
    env.update({key: str(value) for key, value in (fn.environment_vars or {}).items()})
    return env


def run_python_function(fn: Any, event: Any) -> tuple[str, bool, str]:
    """Invoke `fn` with `event` in a subprocess: (response payload, errored, log output)."""
    if not (fn.run_time or "").startswith("python"):
        message = f"the dsstack emulator runs Python functions only; {fn.function_name} uses {fn.run_time}"
        return json.dumps({"errorMessage": message, "errorType": "Runtime.InvalidRuntime"}), True, message
    request_id = str(uuid.uuid4())
    task_root = extract_zip(fn.code_bytes)
    with tempfile.TemporaryDirectory(prefix="dsstack-invoke-") as scratch:
        spec_path, result_path = Path(scratch) / "spec.json", Path(scratch) / "result.json"
        spec_path.write_text(json.dumps({
            "handler": fn.handler, "event": event, "result": str(result_path),
            "paths": [str(task_root), *_layer_paths(fn)],
            "context": {"function_name": fn.function_name, "function_version": str(fn.version),
                        "invoked_function_arn": fn.function_arn, "memory_limit_in_mb": fn.memory_size,
                        "aws_request_id": request_id, "log_group_name": fn.logs_group_name,
                        "timeout": fn.timeout},
        }), encoding="utf-8")
        env = function_environment(fn, request_id)
        env["LAMBDA_TASK_ROOT"] = str(task_root)
        started = time.monotonic()
        try:
            # Interpreter start-up is not part of the function's timeout budget: 5 s on top.
            done = subprocess.run([PYTHON, "-I", str(RUNNER), str(spec_path)], cwd=task_root, env=env,
                                  capture_output=True, text=True, timeout=float(fn.timeout) + 5)
            output = done.stdout + done.stderr
        except subprocess.TimeoutExpired as expired:
            output = (expired.stdout or b"").decode() if isinstance(expired.stdout, bytes) else (expired.stdout or "")
            message = f"Task timed out after {fn.timeout:.2f} seconds" if isinstance(fn.timeout, float) \
                else f"Task timed out after {fn.timeout} seconds"
            return json.dumps({"errorMessage": message, "errorType": "Sandbox.Timedout"}), True, output + message
        duration = (time.monotonic() - started) * 1000
        report = f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\tMemory Size: {fn.memory_size} MB"
        output = f"START RequestId: {request_id}\n{output}END RequestId: {request_id}\n{report}\n"
        if not result_path.exists():
            message = f"the function process exited with code {done.returncode} before returning"
            return json.dumps({"errorMessage": message, "errorType": "Runtime.ExitError"}), True, output
        outcome = json.loads(result_path.read_text(encoding="utf-8"))
    if outcome["ok"]:
        return json.dumps(outcome["result"]), False, output
    return json.dumps(outcome["error"]), True, output


def invoke_locally(self: Any, event: Any = None) -> tuple[str, bool, str]:
    """LambdaFunction._invoke_lambda: `event` is the JSON value the handler receives (moto passes the parsed
    request body, though its signature says `str`). Returns (response payload, errored, log output)."""
    self.logs_backend.ensure_log_group(self.logs_group_name)
    response, errored, output = run_python_function(self, {} if event is None else event)
    self.save_logs(output)
    log.info("lambda %s: %s", self.function_name, "error " + response[:500] if errored else "ok")
    return response, errored, output


def patch_invoke_locally() -> None:
    set_method(lambda_models.LambdaFunction, "_invoke_lambda", invoke_locally)


# --- asynchronous invocations ---------------------------------------------------------------------------

def _failure_destination(fn: Any) -> tuple[str | None, int]:
    retries, destination = 2, getattr(fn, "dead_letter_target_arn", None)
    for config in fn.event_invoke_config:
        retries = int(config.config.get("MaximumRetryAttempts", retries))
        destination = config.config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination") or destination
    return destination, retries


def send_to_failure_destination(fn: Any, event: Any, error: str) -> None:
    destination, _ = _failure_destination(fn)
    if not destination:
        log.warning("lambda %s: async event dropped after retries (no DLQ/on-failure destination): %s",
                    fn.function_name, error[:300])
        return
    service = destination.split(":")[2]
    body = json.dumps(event)
    if service == "sqs":
        from moto.sqs.models import sqs_backends

        sqs_backends[fn.account_id][fn.region].send_message(
            queue_name=destination.split(":")[-1], message_body=body,
            message_attributes={"ErrorMessage": {"DataType": "String", "StringValue": error[:1000]},
                                "RequestID": {"DataType": "String", "StringValue": str(uuid.uuid4())}})
    elif service == "sns":
        from moto.sns.models import sns_backends

        sns_backends[fn.account_id][fn.region].publish(message=body, arn=destination)
    else:
        log.warning("lambda %s: unsupported failure destination %s", fn.function_name, destination)


def invoke_async(fn: Any, event: Any) -> None:
    """An `Event` invocation: returns at once; retried as Lambda does, then the DLQ/on-failure target."""

    def run() -> None:
        _, retries = _failure_destination(fn)
        response = ""
        for _attempt in range(retries + 1):
            try:
                response, errored, _ = fn._invoke_lambda(event=event)
            except Exception as error:  # the emulator must keep serving whatever the function does
                log.exception("lambda %s: async invoke crashed", fn.function_name)
                response, errored = str(error), True
            if not errored:
                return
        send_to_failure_destination(fn, event, response)

    _async_pool.submit(run)


def patch_async_invoke() -> None:
    backend_class = lambda_models.LambdaBackend
    original_invoke = backend_class.invoke

    def invoke(self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any,
               response_headers: Any) -> Any:
        if (headers or {}).get("x-amz-invocation-type") == "Event":
            fn = self.get_function(function_name, qualifier)
            invoke_async(fn, json.loads(body) if body else {})
            return b""
        return original_invoke(self, function_name, qualifier, body, headers, response_headers)

    set_method(backend_class, "invoke", invoke)


# --- function properties from CloudFormation -----------------------------------------------------------

def patch_function_properties() -> None:
    LambdaFunction = lambda_models.LambdaFunction
    original_init = LambdaFunction.__init__
    original_create = classmethod_function(LambdaFunction, "create_from_cloudformation_json")
    original_get_layers = LambdaFunction._get_layers_data

    def __init__(self: Any, account_id: str, spec: dict[str, Any], region: str, version: Any = 1) -> None:
        original_init(self, account_id, spec, region, version)
        self.dead_letter_target_arn = (spec.get("DeadLetterConfig") or {}).get("TargetArn")

    def _get_layers_data(self: Any, layers_versions_arns: list[Any]) -> list[dict[str, Any]]:
        # A `Ref` to a layer of the same template reaches here as moto's LayerVersion object, not its ARN.
        layers_versions_arns = [getattr(layer, "arn", layer) for layer in layers_versions_arns]
        managed = [arn for arn in layers_versions_arns if arn.split(":")[4] in MANAGED_LAYER_ACCOUNTS]
        own = [arn for arn in layers_versions_arns if arn not in managed]
        data = {d["Arn"]: d for d in original_get_layers(self, own)} if own else {}
        return [data.get(arn, {"Arn": arn, "CodeSize": 0}) for arn in layers_versions_arns]

    def create_from_cloudformation_json(cls: Any, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> Any:
        props = cloudformation_json["Properties"]
        fn = original_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        # moto's CloudFormation code passes only a few properties on: apply the rest.
        if props.get("Layers"):
            fn.layers = fn._get_layers_data(props["Layers"])
        if props.get("Architectures"):
            fn.architectures = props["Architectures"]
        if props.get("DeadLetterConfig"):
            fn.dead_letter_target_arn = props["DeadLetterConfig"].get("TargetArn")
        if props.get("Tags"):
            backend = lambda_models.get_backend(account_id, region_name)
            backend.tag_resource(fn.function_arn, {t["Key"]: t["Value"] for t in props["Tags"]})
        if props.get("LoggingConfig", {}).get("LogGroup"):
            fn.logs_group_name = props["LoggingConfig"]["LogGroup"]
        return fn

    original_get_configuration = LambdaFunction.get_configuration

    def get_configuration(self: Any, on_create: bool = False) -> dict[str, Any]:
        config = original_get_configuration(self, on_create)
        if getattr(self, "dead_letter_target_arn", None):  # GetFunctionConfiguration answers it in AWS
            config["DeadLetterConfig"] = {"TargetArn": self.dead_letter_target_arn}
        return config

    set_method(LambdaFunction, "get_configuration", get_configuration)
    # CloudFormation's Ref/physical id of a layer version is its ARN; moto's model has none.
    set_property(lambda_models.LayerVersion, "physical_resource_id", lambda self: self.arn)
    set_method(LambdaFunction, "__init__", __init__)
    set_method(LambdaFunction, "_get_layers_data", _get_layers_data)
    set_classmethod(LambdaFunction, "create_from_cloudformation_json", create_from_cloudformation_json)


PATCHES = [
    Patch("lambda-cfn-properties",
          "AWS::Lambda::Function from CloudFormation drops Layers, Architectures, DeadLetterConfig, Tags and "
          "LoggingConfig (and GetFunctionConfiguration never answers DeadLetterConfig); AWS-managed layer ARNs (Powertools, account 017000801446) are unknown layers; a layer "
          "version has no physical id (its Ref is the model object, not its ARN)",
          "applies them; the Powertools layer maps to the virtualenv's aws-lambda-powertools; a layer version's "
          "physical id is its ARN",
          patch_function_properties),
    Patch("lambda-invoke-local",
          "invoking a function needs Docker (moto starts a container per invocation)",
          "runs Python handlers from the deployed zip in a subprocess of the project's interpreter, with the "
          "function's env, AWS_ENDPOINT_URL pointing at the emulator, fake credentials and its layers on "
          "sys.path; logs go to the function's log group",
          patch_invoke_locally),
    Patch("lambda-async-invoke",
          "InvocationType=Event runs synchronously and a failure is simply lost",
          "runs the invocation in the background with Lambda's retries (MaximumRetryAttempts, default 2), "
          "then sends the event to the DeadLetterConfig or on-failure destination (SQS/SNS)",
          patch_async_invoke),
]
