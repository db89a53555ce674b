#!/usr/bin/env python3
"""CDK entry point: `cdk synth -c config=config/example.yaml` (the default)."""

from __future__ import annotations

import sys

from dsstack.toolchain import use_bundled_node

use_bundled_node()

import aws_cdk as cdk  # noqa: E402  (needs the bundled Node on PATH first)

from dsstack.config import ConfigError, load_config  # noqa: E402
from dsstack.nag import add_rule_packs  # noqa: E402
from dsstack.stacks.platform import build_platform  # noqa: E402


def main() -> None:
    app = cdk.App()
    config_path = app.node.try_get_context("config") or "config/example.yaml"
    try:
        config = load_config(config_path)
    except ConfigError as error:
        print(error, file=sys.stderr)
        sys.exit(2)
    build_platform(app, config)
    # All four cdk-nag packs guard every synth; `-c nag=none` skips them for quick local iterations.
    packs = app.node.try_get_context("nag")
    if packs != "none":
        add_rule_packs(app, None if packs in (None, "all") else packs.split(","))
    app.synth()


if __name__ == "__main__":
    main()
