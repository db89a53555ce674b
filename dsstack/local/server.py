"""The emulator process: moto's server (pinned 5.2.5) with dsstack's patches, on 127.0.0.1.

    python -m dsstack.local.server --state-dir .dsstack/emulator [--port 0]

It binds the port itself (0 = a free one, no race), then writes `<state-dir>/emulator.json`
({pid, port, endpoint}) so the launcher knows it is up. Started and stopped by dsstack.local.emulator.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
STATE_FILE = "emulator.json"
ACCOUNT_ID = "123456789012"  # moto's default account: what fake credentials map to


def make_app() -> Any:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from dsstack.local.patches import apigateway

    moto_app = DomainDispatcherApplication(create_backend_app)
    # moto's CloudFormation engine is not thread-safe: `cdk deploy --concurrency N` runs stack operations in
    # parallel and they race on shared state ("OrderedDict mutated during iteration"). One CloudFormation
    # request at a time; everything else (asset uploads, describes, data plane) stays concurrent.
    cloudformation_lock = threading.Lock()

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if "/cloudformation/aws4_request" in environ.get("HTTP_AUTHORIZATION", ""):
            with cloudformation_lock:
                return list(moto_app(environ, start_response))
        if environ.get("PATH_INFO", "").startswith(apigateway.PREFIX):
            return apigateway.serve(environ, start_response, ACCOUNT_ID)
        if environ.get("PATH_INFO") == "/_dsstack/health":
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps({"status": "ok", "pid": os.getpid()}).encode()]
        return moto_app(environ, start_response)

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    state_dir = Path(args.state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    os.environ["DSSTACK_EMULATOR_DIR"] = str(state_dir)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # moto logs one warning per unsupported feature it meets; keep the log about our problems.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    from dsstack.local.patches import apply_all, lambdas

    patches = apply_all()
    server = make_server(HOST, args.port, make_app(), threaded=True, request_handler=MotoRequestHandler)
    port = server.server_address[1]
    # Clients use `localhost`, not 127.0.0.1: moto parses the CLI's S3 TemplateURL path-style only then.
    endpoint = f"http://localhost:{port}"
    lambdas.ENDPOINT["url"] = endpoint
    state = {"pid": os.getpid(), "port": port, "endpoint": endpoint, "host": HOST,
             "patches": [p.name for p in patches]}
    tmp = state_dir / f".{STATE_FILE}.{os.getpid()}"
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(state_dir / STATE_FILE)
    logging.getLogger("dsstack.emulator").info("serving on %s (pid %s), %d patches", endpoint, os.getpid(),
                                                 len(patches))

    def stop(signum: int, _frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    def watch_state() -> None:
        # An emulator whose state dir was removed (a finished pytest tmp dir) or taken over by another
        # emulator can never be stopped with `down`: it stops itself instead of lingering.
        while True:
            time.sleep(5)
            try:
                owner = json.loads((state_dir / STATE_FILE).read_text()).get("pid")
            except FileNotFoundError:
                owner = None if not state_dir.exists() else os.getpid()
            except (OSError, ValueError):
                continue
            if owner != os.getpid():
                logging.getLogger("dsstack.emulator").warning("state dir %s gone or taken over: stopping", state_dir)
                stop(signal.SIGTERM, None)
                return

    threading.Thread(target=watch_state, daemon=True, name="state-watch").start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever()
    finally:
        state_file = state_dir / STATE_FILE
        try:
            if json.loads(state_file.read_text()).get("pid") == os.getpid():
                state_file.unlink()
        except (OSError, ValueError):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
