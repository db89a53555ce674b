"""Compute config: defaults, and bad sizes/families rejected with the field path."""

from __future__ import annotations

import pytest

from dsstack.config import (
    DEFAULT_CPU_INSTANCE_TYPES,
    DEFAULT_GPU_INSTANCE_TYPES,
    ConfigError,
    instance_vcpus,
    parse_config,
)


def team_with(compute: dict) -> dict:
    return {"environment": "dev", "teams": [{"name": "alpha", "compute": compute}]}


def problems(compute: dict) -> list[str]:
    with pytest.raises(ConfigError) as error:
        parse_config(team_with(compute))
    return error.value.problems


def test_defaults_scale_to_zero_with_current_generation_families():
    compute = parse_config(team_with({})).teams[0].compute
    for env in (compute.cpu, compute.cpu_spot, compute.gpu):
        assert env.enabled and env.min_vcpus == 0
    assert compute.cpu.resolved_instance_types() == DEFAULT_CPU_INSTANCE_TYPES == ("m7i", "c7i", "r7i")
    assert compute.gpu.resolved_instance_types() == DEFAULT_GPU_INSTANCE_TYPES == ("g6", "g5")
    assert compute.fargate.enabled is False


@pytest.mark.parametrize(("compute", "where", "words"), [
    ({"gpu": {"max_vcpus": 2}}, "teams[0].compute.gpu", ["max_vcpus (2)", "4 vCPUs", "at least 4"]),
    ({"gpu": {"instance_types": ["p5"], "max_vcpus": 64}}, "teams[0].compute.gpu", ["192 vCPUs"]),
    ({"extra_queues": [{"name": "big-gpu", "kind": "gpu", "instance_types": ["g6.12xlarge"], "max_vcpus": 16}]},
     "teams[0].compute.extra_queues[0]", ["48 vCPUs"]),
    ({"cpu": {"instance_types": ["m7i", "m99"]}}, "teams[0].compute.cpu.instance_types[1]",
     ["unknown instance family 'm99'"]),
    ({"cpu": {"instance_types": ["m7i.huge"]}}, "teams[0].compute.cpu.instance_types[0]", ["unknown size 'huge'"]),
    ({"gpu": {"instance_types": ["m7i"]}}, "teams[0].compute.gpu", ["not GPU families"]),
    ({"cpu": {"instance_types": ["g6"]}}, "teams[0].compute.cpu", ["not CPU (non-GPU) families"]),
    ({"cpu_spot": {"instance_types": ["m7i", "m7g"]}}, "teams[0].compute.cpu_spot", ["mix architectures"]),
    ({"cpu": {"min_vcpus": -1}}, "teams[0].compute.cpu.min_vcpus", ["greater than or equal to 0"]),
    ({"gpu": {"max_vcpus": -8}}, "teams[0].compute.gpu.max_vcpus", ["greater than or equal to 0"]),
    ({"root_volume_gb": -100}, "teams[0].compute.root_volume_gb", ["greater than or equal to 30"]),
    ({"cpu": {"min_vcpus": 64, "max_vcpus": 32}}, "teams[0].compute.cpu", ["min_vcpus (64) is above max_vcpus"]),
    ({"runnable_timeout_minutes": 2000}, "teams[0].compute.runnable_timeout_minutes", ["1440"]),
    ({"fargate": {"enabled": True, "min_vcpus": 4}}, "teams[0].compute.fargate.min_vcpus", ["less than or equal to 0"]),
    ({"extra_queues": [{"name": "gpu", "instance_types": ["g6"], "kind": "gpu"}]}, "teams[0].compute",
     ["reserved"]),
])
def test_bad_compute_config_names_the_field(compute, where, words):
    found = problems(compute)
    assert len(found) == 1, found
    assert found[0].startswith(f"{where}:") or found[0].startswith(f"{where}."), found
    for word in words:
        assert word in found[0], found


def test_disabled_gpu_may_keep_a_small_max():
    gpu = parse_config(team_with({"gpu": {"enabled": False, "max_vcpus": 0}})).teams[0].compute.gpu
    assert not gpu.enabled


def test_a_default_queue_must_remain():
    assert "cpu_spot enabled" in problems({"cpu": {"enabled": False}, "cpu_spot": {"enabled": False}})[0]


@pytest.mark.parametrize(("name", "vcpus"), [("g6", 4), ("g6.xlarge", 4), ("g6.12xlarge", 48), ("m7i.large", 2),
                                             ("m7g.medium", 1), ("p5", 192), ("g6.metal", None), ("zz9", None)])
def test_instance_vcpus(name, vcpus):
    assert instance_vcpus(name) == vcpus
