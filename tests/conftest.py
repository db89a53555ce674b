"""Shared fixtures. The example app is synthesized ONCE per test session (synth is slow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsstack.toolchain import use_bundled_node

use_bundled_node()

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_CONFIG = ROOT / "config" / "example.yaml"


@pytest.fixture(scope="session")
def example_config():
    from dsstack.config import load_config

    return load_config(EXAMPLE_CONFIG)


@pytest.fixture(scope="session")
def platform(example_config, tmp_path_factory):
    """The example environment synthesized with all four cdk-nag packs."""
    from dsstack.synth import synthesize

    return synthesize(example_config, tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="session")
def synth_variant(tmp_path_factory):
    """Synthesize another config once per session and cache it by key (egress modes, sandbox...)."""
    from dsstack.config import parse_config
    from dsstack.synth import synthesize

    cache = {}

    def get(key: str, data: dict):
        if key not in cache:
            cache[key] = synthesize(parse_config(data, source=key), tmp_path_factory.mktemp(f"cdk.out.{key}"))
        return cache[key]

    return get
