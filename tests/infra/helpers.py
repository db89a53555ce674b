"""Small readers over synthesized CloudFormation templates (plain dicts)."""

from __future__ import annotations

from typing import Any


def resources(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_}


def only(template: dict[str, Any], type_: str) -> tuple[str, dict[str, Any]]:
    found = resources(template, type_)
    assert len(found) == 1, f"expected exactly one {type_}, found {sorted(found)}"
    return next(iter(found.items()))


def props(resource: dict[str, Any]) -> dict[str, Any]:
    return resource.get("Properties", {})


def tags(resource: dict[str, Any]) -> dict[str, str]:
    raw = props(resource).get("Tags", [])
    if isinstance(raw, dict):
        return raw
    return {t["Key"]: t["Value"] for t in raw if isinstance(t, dict) and "Key" in t}
