"""Runtime fixes applied to moto 5.2.5 inside the embedded emulator process.

Every fix is a `Patch`: what is wrong in moto, what the fix does, and a function that applies it.
`docs/emulator.md` lists them and `tests/unit/test_emulator_patches.py` proves each one against a
patched server. They are monkey-patches on purpose: the emulator pins moto (see `MOTO_VERSION`) and
refuses to start on another version, because the patched functions are copied from that version.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import MethodType
from typing import Any

MOTO_VERSION = "5.2.5"


@dataclass(frozen=True)
class Patch:
    name: str
    problem: str  # what moto 5.2.5 gets wrong
    fix: str  # what the patch does about it
    apply: Callable[[], None]


_applied = False


# --- replacing moto's attributes --------------------------------------------------------------------------
# mypy rightly refuses assignments to methods, and to attributes a class does not declare. The patches make
# them on purpose, with functions written against moto's signatures (`self: Any`/`cls: Any`: they run as
# moto's methods), so they go through these helpers: one place that says "replaced at runtime".

def set_method(cls: type, name: str, function: Callable[..., Any]) -> None:
    """Make `function` the method `cls.<name>` (replacing moto's, or adding one moto lacks)."""
    setattr(cls, name, function)


def set_classmethod(cls: type, name: str, function: Callable[..., Any]) -> None:
    """Make `function` (whose first parameter is the class) the classmethod `cls.<name>`."""
    setattr(cls, name, classmethod(function))


def set_property(cls: type, name: str, getter: Callable[[Any], Any]) -> None:
    """Make `getter` the read-only property `cls.<name>`."""
    setattr(cls, name, property(getter))


def classmethod_function(cls: type, name: str) -> Callable[..., Any]:
    """The function behind the classmethod `cls.<name>`: a replacement calls it as `function(cls, ...)`."""
    method = getattr(cls, name)  # a classmethod read on its class: a method bound to the class
    if not isinstance(method, MethodType):
        raise TypeError(f"{cls.__name__}.{name} is not a classmethod")
    return method.__func__


def property_getter(cls: type, name: str) -> Callable[[Any], Any]:
    """The getter of the property `cls.<name>`, for a replacement that wraps it."""
    prop = getattr(cls, name)
    if not isinstance(prop, property) or prop.fget is None:
        raise TypeError(f"{cls.__name__}.{name} is not a readable property")
    return prop.fget


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
