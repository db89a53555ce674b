"""Runs one Lambda invocation in a fresh Python process (started by dsstack.local.patches.lambdas).

Protocol: argv[1] is a JSON file {"handler", "event", "paths", "context", "result"}; the runner imports
the handler from the function's code (first on sys.path, then its layers, then this virtualenv, which
stands in for the runtime's bundled boto3 and the AWS-managed Powertools layer), calls it, and writes
{"ok": true, "result": ...} or {"ok": false, "error": {...}} to the "result" file. Anything the handler
prints is the function's log output.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
import traceback
from typing import Any


class LambdaContext:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.function_name = spec["function_name"]
        self.function_version = spec.get("function_version", "$LATEST")
        self.invoked_function_arn = spec["invoked_function_arn"]
        self.memory_limit_in_mb = int(spec.get("memory_limit_in_mb", 128))
        self.aws_request_id = spec["aws_request_id"]
        self.log_group_name = spec.get("log_group_name", f"/aws/lambda/{self.function_name}")
        self.log_stream_name = spec.get("log_stream_name", "local")
        self._deadline = time.monotonic() + float(spec.get("timeout", 3))

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main(spec_path: str) -> int:
    # The runner's own folder must not shadow the function's modules.
    sys.path[:] = [p for p in sys.path if not p.endswith(("dsstack/local", "dsstack\\local"))]
    with open(spec_path, encoding="utf-8") as handle:
        spec = json.load(handle)
    sys.path[:0] = spec["paths"]
    result_path = spec["result"]
    try:
        module_name, _, function_name = spec["handler"].rpartition(".")
        module = importlib.import_module(module_name.replace("/", "."))
        handler = getattr(module, function_name)
        result = handler(spec["event"], LambdaContext(spec["context"]))
        outcome = {"ok": True, "result": result}
        with open(result_path, "w", encoding="utf-8") as handle:
            json.dump(outcome, handle, default=str)
        return 0
    except Exception as error:  # reported to the caller as the function error, as Lambda does
        traceback.print_exc()
        outcome = {"ok": False, "error": {"errorMessage": str(error), "errorType": type(error).__name__,
                                          "stackTrace": traceback.format_tb(error.__traceback__)}}
        with open(result_path, "w", encoding="utf-8") as handle:
            json.dump(outcome, handle, default=str)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
