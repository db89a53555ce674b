"""Runtime fixes applied to moto 5.2.5 inside the embedded emulator process.

Every fix is a `Patch`: what is wrong in moto, what the fix does, and a function that applies it.
`docs/emulator.md` lists them and `tests/unit/test_emulator_patches.py` proves each one against a
patched server. They are monkey-patches on purpose: the emulator pins moto (see `MOTO_VERSION`) and
refuses to start on another version, because the patched functions are copied from that version.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

MOTO_VERSION = "5.2.5"


@dataclass(frozen=True)
class Patch:
    name: str
    problem: str  # what moto 5.2.5 gets wrong
    fix: str  # what the patch does about it
    apply: Callable[[], None]


_applied = False


def all_patches() -> list[Patch]:
    from dsstack.local.patches import (
        apigateway,
        batch,
        cloudformation,
        ec2,
        ecs,
        events,
        iam,
        lambdas,
        resources,
        s3,
        sagemaker,
    )

    return [*cloudformation.PATCHES, *resources.PATCHES, *s3.PATCHES, *ec2.PATCHES, *lambdas.PATCHES, *events.PATCHES,
            *apigateway.PATCHES, *batch.PATCHES, *iam.PATCHES, *ecs.PATCHES, *sagemaker.PATCHES]


def check_moto_version() -> None:
    from importlib.metadata import version

    installed = version("moto")
    if installed != MOTO_VERSION:
        raise RuntimeError(
            f"the dsstack emulator patches moto {MOTO_VERSION} but moto {installed} is installed: "
            f"run `make setup` (pyproject.toml pins moto=={MOTO_VERSION})")


def apply_all() -> list[Patch]:
    """Apply every patch once (idempotent) and return them."""
    global _applied
    patches = all_patches()
    if not _applied:
        check_moto_version()
        for patch in patches:
            patch.apply()
        _applied = True
    return patches
