"""In-process synthesis of a whole environment, with the cdk-nag packs, for tests and benchmarks.

`cdk synth` runs app.py in a subprocess; tests and `bench/synth.py` call `synthesize()` instead so
they can read templates, the nag report and the acknowledgements from one synthesis.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dsstack.toolchain import use_bundled_node

use_bundled_node()

import aws_cdk as cdk  # noqa: E402

from dsstack.config import PlatformConfig  # noqa: E402
from dsstack.nag import Acknowledgement, acknowledgements, add_rule_packs  # noqa: E402
from dsstack.stacks.platform import Platform, build_platform  # noqa: E402


@dataclass
class Violation:
    pack: str
    rule: str
    path: str
    description: str

    def __str__(self) -> str:
        return f"{self.rule} at {self.path}: {self.description}"


@dataclass
class SynthResult:
    config: PlatformConfig
    outdir: Path
    platform: Platform
    templates: dict[str, dict[str, Any]]
    violations: list[Violation] = field(default_factory=list)
    acknowledgements: list[Acknowledgement] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    def template(self, stack_name: str) -> dict[str, Any]:
        return self.templates[stack_name]


def synthesize(config: PlatformConfig, outdir: Path, *, nag_packs: list[str] | None = None,
               nag: bool = True) -> SynthResult:
    started = time.perf_counter()
    app = cdk.App(outdir=str(outdir), context=_cdk_json_context())
    platform = build_platform(app, config)
    if nag:
        add_rule_packs(app, nag_packs)
    error = None
    try:
        app.synth()
    except RuntimeError as exc:  # cdk-nag violations surface as ValidationFailed
        error = str(exc)
    seconds = time.perf_counter() - started
    templates = {
        stack.stack_name: json.loads((outdir / stack.template_file).read_text())
        for stack in platform.stacks()
        if (outdir / stack.template_file).exists()
    }
    return SynthResult(
        config=config, outdir=outdir, platform=platform, templates=templates,
        violations=_read_violations(outdir / "validation-report.json"),
        acknowledgements=acknowledgements(app), seconds=seconds, error=error,
    )


def _cdk_json_context() -> dict[str, Any]:
    """The feature flags from cdk.json, so in-process synthesis matches `cdk synth`."""
    path = Path(__file__).resolve().parent.parent / "cdk.json"
    context = dict(json.loads(path.read_text()).get("context", {}))
    context.pop("config", None)
    return context


def _read_violations(report: Path) -> list[Violation]:
    if not report.exists():
        return []
    data = json.loads(report.read_text())
    found = []
    for plugin in data.get("pluginReports", []):
        for violation in plugin.get("violations", []):
            if violation.get("severity") != "error":
                continue
            for construct in violation.get("violatingConstructs", []):
                found.append(Violation(plugin.get("pluginName", "?"), violation["ruleName"],
                                       construct.get("constructPath", "?"), violation.get("description", "")))
    return found
