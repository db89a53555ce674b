"""`make deploy`: the real CDK CLI against the embedded emulator (or AWS), then verify and summarize.

    deploy(config_path, target="auto")   # auto: AWS when credentials are configured, else the emulator
    destroy(config_path, target="auto")
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dsstack import naming
from dsstack.local import emulator as emulator_mod
from dsstack.local.verify import Report, VerificationError, verify_deployment
from dsstack.toolchain import PROJECT_ROOT, tool_env

CDK_QUALIFIER = "hnb659fds"
CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
                        "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")


class DeployError(RuntimeError):
    """A deploy/destroy failed; the message says what happened and what to do (printed without traceback)."""


@dataclass
class DeployResult:
    target: str
    config_path: Path
    assembly_dir: Path
    outputs_file: Path
    endpoint: str | None = None
    env: dict[str, str] = field(default_factory=dict)  # client environment (emulator target)
    report: Report | None = None
    timings: dict[str, float] = field(default_factory=dict)
    summary: str = ""


def has_aws_credentials(environ: dict[str, str] | None = None) -> bool:
    """Credentials configured for real AWS: environment variables or the shared files."""
    environ = dict(os.environ if environ is None else environ)
    if any(environ.get(name) for name in CREDENTIAL_VARIABLES):
        return True
    home = Path(environ.get("HOME", "~")).expanduser()
    files = [environ.get("AWS_SHARED_CREDENTIALS_FILE", str(home / ".aws" / "credentials")),
             environ.get("AWS_CONFIG_FILE", str(home / ".aws" / "config"))]
    return any(Path(f).is_file() and Path(f).stat().st_size > 0 for f in files)


def resolve_target(target: str) -> str:
    target = (target or "auto").lower()
    if target not in ("auto", "local", "aws"):
        raise DeployError(f"unknown TARGET={target!r}: use local (the embedded emulator), aws, or leave it unset")
    if target == "auto":
        return "aws" if has_aws_credentials() else "local"
    return target


def _config(config_path: str | Path) -> Any:
    from dsstack.config import ConfigError, load_config

    try:
        return load_config(config_path)
    except ConfigError as error:
        raise DeployError(str(error)) from None


def _assembly_dir(config_path: Path, target: str) -> Path:
    # A private cloud assembly per config and target: others may synthesize into cdk.out meanwhile.
    return PROJECT_ROOT / ".dsstack" / "cdk.out" / f"{config_path.stem}-{target}"


def _run_cdk(args: list[str], env: dict[str, str], log_path: Path, echo: Callable[[str], None],
             cwd: Path = PROJECT_ROOT) -> tuple[int, str]:
    """Run the CDK CLI, echo its output, keep a copy in `log_path`; (exit code, last lines)."""
    command = [str(Path(sys.executable)), "-m", "dsstack.toolchain", "cdk", *args]
    tail: list[str] = []
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"\n$ cdk {' '.join(args)}\n")
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, errors="replace")
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            echo(line.rstrip("\n"))
            tail = [*tail[-39:], line.rstrip("\n")]
        return process.wait(), "\n".join(tail)


def _emulator_env(emu: emulator_mod.Emulator, region: str) -> dict[str, str]:
    env = tool_env({k: v for k, v in os.environ.items() if not k.startswith("AWS_")})
    env.update(emu.client_env(region))
    env["CDK_HOME"] = str(PROJECT_ROOT / ".cdk-home")
    # The CLI would wait minutes on retries against a dead endpoint: fail fast instead.
    env.setdefault("AWS_MAX_ATTEMPTS", "3")
    return env


def _session(env: dict[str, str]) -> Any:
    import boto3

    return boto3.session.Session(aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                                 aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                                 aws_session_token=env.get("AWS_SESSION_TOKEN"), region_name=env["AWS_REGION"])


def client_session(emu: emulator_mod.Emulator, region: str = emulator_mod.REGION) -> Any:
    """A boto3 session whose clients talk to the emulator."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    aws_session_token="testing", region_name=region)
    config = Config(retries={"max_attempts": 2, "mode": "standard"})
    original = session.client

    def client(service: str, **kwargs: Any) -> Any:
        kwargs.setdefault("endpoint_url", emu.endpoint)
        kwargs.setdefault("config", config)
        return original(service, **kwargs)

    original_resource = session.resource

    def resource(service: str, **kwargs: Any) -> Any:
        kwargs.setdefault("endpoint_url", emu.endpoint)
        kwargs.setdefault("config", config)
        return original_resource(service, **kwargs)

    session.client = client  # type: ignore[method-assign]
    session.resource = resource  # type: ignore[method-assign]
    return session


def _is_bootstrapped(session: Any) -> bool:
    try:
        session.client("ssm").get_parameter(Name=f"/cdk-bootstrap/{CDK_QUALIFIER}/version")
        return session.client("cloudformation").describe_stacks(StackName="CDKToolkit")["Stacks"][0][
            "StackStatus"].endswith("_COMPLETE")
    except Exception:  # any answer but "yes" means: bootstrap (it is idempotent)
        return False


def _failure(what: str, emu: emulator_mod.Emulator | None, tail: str, log_path: Path) -> DeployError:
    if emu is not None and emulator_mod.status(emu.state_dir) is None:
        return DeployError(
            f"{what} failed: the emulator (pid {emu.pid}) stopped during the operation, and its state with it.\n"
            f"Run `make deploy` again: it starts a fresh emulator and deploys from scratch. "
            f"Emulator log: {emu.log_file}; CDK output: {log_path}")
    last = "\n".join(line for line in tail.splitlines() if line.strip())[-3000:]
    hint = f"Emulator log: {emu.log_file}; " if emu else ""
    return DeployError(f"{what} failed (full CDK output: {log_path}; {hint.strip()})\n{last}")


def deploy(config_path: str | Path = "config/example.yaml", target: str = "auto", *,
           state_dir: Path | None = None, echo: Callable[[str], None] = print, verify: bool = True) -> DeployResult:
    """Deploy every stack of `config_path`. target: auto | local | aws. Raises DeployError."""
    config_path = Path(config_path)
    if not config_path.is_absolute():
        config_path = (PROJECT_ROOT / config_path).resolve() if not config_path.exists() else config_path.resolve()
    config = _config(config_path)
    target = resolve_target(target)
    assembly = _assembly_dir(config_path, target)
    outputs_file = PROJECT_ROOT / ".dsstack" / "outputs" / f"{config_path.stem}-{target}.json"
    log_path = PROJECT_ROOT / ".dsstack" / "logs" / f"deploy-{config_path.stem}-{target}.log"
    result = DeployResult(target=target, config_path=config_path, assembly_dir=assembly, outputs_file=outputs_file)
    common = ["-c", f"config={config_path}", "-o", str(assembly)]
    started = time.monotonic()
    if target == "aws":
        env = tool_env()
        code, tail = _run_cdk(["deploy", "--all", "--require-approval", "never", "--outputs-file",
                               str(outputs_file), *common], env, log_path, echo)
        if code != 0:
            raise _failure("cdk deploy (AWS)", None, tail, log_path)
        result.timings["deployed"] = time.monotonic() - started
        result.summary = summary(result, config)
        return result

    emu = emulator_mod.up(state_dir or emulator_mod.DEFAULT_STATE_DIR)
    result.timings["emulator"] = time.monotonic() - started
    region = config.region or emulator_mod.REGION
    env = _emulator_env(emu, region)
    result.endpoint, result.env = emu.endpoint, emu.client_env(region)
    session = client_session(emu, region)
    account = config.account or emulator_mod.ACCOUNT_ID
    if account != emulator_mod.ACCOUNT_ID:
        raise DeployError(f"{config_path}: account {account} cannot be emulated: the emulator is account "
                          f"{emulator_mod.ACCOUNT_ID}. Remove `account` for local deploys, or use TARGET=aws.")
    if not _is_bootstrapped(session):
        # Outside the project: bootstrapping needs no app, so it must not wait for (or fail on) a synth.
        scratch = emu.state_dir / "bootstrap"
        scratch.mkdir(exist_ok=True)
        code, tail = _run_cdk(["bootstrap", f"aws://{account}/{region}"], env, log_path, echo, cwd=scratch)
        if code != 0:
            raise _failure("cdk bootstrap", emu, tail, log_path)
    result.timings["bootstrapped"] = time.monotonic() - started
    code, tail = _run_cdk(["deploy", "--all", "--require-approval", "never", "--concurrency", "4",
                           "--outputs-file", str(outputs_file), *common], env, log_path, echo)
    if code != 0:
        raise _failure("cdk deploy", emu, tail, log_path)
    result.timings["deployed"] = time.monotonic() - started
    if verify:
        try:
            result.report = verify_deployment(assembly, session)
        except VerificationError as error:
            raise DeployError(f"cdk deploy reported success, but {error}\nThe emulator is missing resources: "
                              "see docs/emulator.md (patches, allow-list) and the emulator log "
                              f"{emu.log_file}") from None
        except Exception as error:
            if emulator_mod.status(emu.state_dir) is None:
                raise _failure("verification", emu, "", log_path) from None
            raise DeployError(f"verification could not run: {error}") from None
        result.timings["verified"] = time.monotonic() - started
    result.summary = summary(result, config, session)
    return result


def destroy(config_path: str | Path = "config/example.yaml", target: str = "auto", *,
            state_dir: Path | None = None, echo: Callable[[str], None] = print) -> None:
    """`cdk destroy --all --force`. RETAIN resources (buckets, tables, keys) stay, as in AWS."""
    config_path = Path(config_path).resolve()
    config = _config(config_path)
    target = resolve_target(target)
    log_path = PROJECT_ROOT / ".dsstack" / "logs" / f"destroy-{config_path.stem}-{target}.log"
    common = ["-c", f"config={config_path}", "-o", str(_assembly_dir(config_path, target))]
    emu = None
    if target == "aws":
        env = tool_env()
    else:
        emu = emulator_mod.status(state_dir or emulator_mod.DEFAULT_STATE_DIR)
        if emu is None:
            raise DeployError("no emulator is running, so there is nothing to destroy (its state lives in memory)")
        env = _emulator_env(emu, config.region or emulator_mod.REGION)
    code, tail = _run_cdk(["destroy", "--all", "--force", *common], env, log_path, echo)
    if code != 0:
        raise _failure("cdk destroy", emu, tail, log_path)


def summary(result: DeployResult, config: Any, session: Any | None = None) -> str:
    outputs = json.loads(result.outputs_file.read_text()) if result.outputs_file.exists() else {}
    lines = [f"dsstack {config.environment}: {len(outputs)} stack(s) deployed to "
             f"{'the embedded emulator at ' + (result.endpoint or '') if result.target == 'local' else 'AWS'}"]
    for stack, _values in sorted(outputs.items()):
        lines.append(f"  {stack}")
    for team in config.teams:
        data = outputs.get(naming.team_stack_name(config.environment, team.name, "data"), {})
        lines.append(f"team {team.name}:")
        lines.append(f"  datastore  s3://{data.get('BucketName', '?')}/{naming.METAFLOW_PREFIX}")
        for key, label in (("TablesCatalog", "catalog"), ("TablesMetadata", "metadata"),
                           ("TablesStepFunctionsState", "sfn state")):
            if key in data:
                lines.append(f"  table      {label:<9} {data[key]}")
        lines.append(f"  SSM        {naming.ssm_prefix(config.environment, team.name)}/")
    if result.report:
        checked = sum(result.report.checked.values())
        lines.append(f"verified: {checked} resources of {len(result.report.checked)} types exist "
                     f"({', '.join(f'{t}: {n}' for t, n in sorted(result.report.exempt.items()))} exempt, "
                     "see docs/emulator.md)")
    if result.target == "local":
        first = config.teams[0].name if config.teams else "<team>"
        bucket = outputs.get(naming.team_stack_name(config.environment, first, "data"), {}).get("BucketName", "?")
        lines += ["point boto3 / the AWS CLI at it:",
                  *(f"  export {k}={v}" for k, v in result.env.items() if k != "METAFLOW_S3_ENDPOINT_URL"),
                  f"Metaflow (team {first}):",
                  "  export METAFLOW_DEFAULT_DATASTORE=s3",
                  f"  export METAFLOW_DATASTORE_SYSROOT_S3=s3://{bucket}/{naming.METAFLOW_PREFIX}",
                  f"  export METAFLOW_DATATOOLS_S3ROOT=s3://{bucket}/{naming.DATATOOLS_PREFIX}",
                  f"  export METAFLOW_S3_ENDPOINT_URL={result.endpoint}",
                  "stop it with `make down` (its state is in memory: stopping it forgets the deployment)"]
    return "\n".join(lines)
