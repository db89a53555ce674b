"""The one checked-in config file that describes an environment and its teams.

`load_config(path)` reads YAML, validates it with pydantic and returns a frozen `PlatformConfig`.
Anything wrong raises `ConfigError`, whose message names the file, the field path (`teams[1].name`)
and what is allowed; callers print it and exit, never a traceback. `docs/config.md` documents every
field, its default and what it costs.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

DEFAULT_CONFIG_PATH = Path("config/example.yaml")

# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
                      2557, 2922, 3288, 3653)

# Names end up in stack names, IAM role names, state machine prefixes, SSM paths and S3 prefixes:
# lower-case letters, digits and single hyphens, starting with a letter, ending with a letter/digit.
_NAME_PATTERN = re.compile(r"^[a-z](?:[a-z0-9]|-(?=[a-z0-9]))*$")
NAME_RULE = "lower-case letters, digits and single hyphens, starting with a letter (e.g. 'team-a')"


class ConfigError(Exception):
    """A config file that cannot be used. `str(error)` is a complete, user-facing message."""

    def __init__(self, path: Path | str, problems: Sequence[str]):
        self.path = Path(path)
        self.problems = list(problems)
        lines = [f"{self.path}: invalid dsstack config ({len(self.problems)} problem(s))"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


def _check_name(max_len: int) -> Any:
    def check(value: str) -> str:
        if not 2 <= len(value) <= max_len:
            raise ValueError(f"must be 2 to {max_len} characters long, got {len(value)}")
        if not _NAME_PATTERN.match(value):
            raise ValueError(f"must be {NAME_RULE}")
        return value

    return AfterValidator(check)


EnvironmentName = Annotated[str, _check_name(16)]
TeamName = Annotated[str, _check_name(16)]
ResourceName = Annotated[str, _check_name(24)]


def _check_retention(value: int) -> int:
    if value not in LOG_RETENTION_DAYS:
        raise ValueError(f"must be one of the CloudWatch Logs retention periods {list(LOG_RETENTION_DAYS)}")
    return value


LogRetentionDays = Annotated[int, AfterValidator(_check_retention)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False, validate_default=True)


# --------------------------------------------------------------------------------------------- network
class NetworkConfig(_Model):
    """The shared VPC of an environment."""

    egress: Literal["public", "nat", "private"] = Field(
        "public",
        description="How instances reach the internet. public: public subnets, no inbound rules, $0 idle. "
        "nat: private subnets + one NAT gateway (~$33/month + data). private: isolated subnets + "
        "interface endpoints (~$7.3/month per endpoint per AZ), no internet at all.",
    )
    cidr: str = Field("10.42.0.0/16", description="IPv4 CIDR of the VPC, /16 to /24.")
    max_azs: int = Field(2, ge=2, le=3, description="Availability zones to span (2 or 3).")

    @field_validator("cidr")
    @classmethod
    def _valid_cidr(cls, value: str) -> str:
        try:
            net = ipaddress.ip_network(value, strict=True)
        except ValueError as exc:
            raise ValueError(f"is not a valid IPv4 network in CIDR notation like '10.42.0.0/16' ({exc})") from None
        if net.version != 4:
            raise ValueError("must be an IPv4 CIDR like '10.42.0.0/16'")
        if not 16 <= net.prefixlen <= 24:
            raise ValueError(f"prefix length must be between /16 and /24, got /{net.prefixlen}")
        if not net.is_private:
            raise ValueError("must be a private range (10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16)")
        return value


# ------------------------------------------------------------------------------------------------ data
class DataConfig(_Model):
    """A team's S3 datastore and DynamoDB tables."""

    noncurrent_version_expiration_days: int = Field(
        90, ge=1, le=3650,
        description="Days after which overwritten/deleted object versions are removed (storage cost).",
    )


# --------------------------------------------------------------------------------------------- compute
# EC2 families AWS Batch may launch for a team: family -> (vCPUs of its smallest size, GPU?, architecture).
# A name outside this table is almost always a typo (e.g. 'm7' for 'm7i') that Batch would only reject
# at deploy time, so it is refused here. Add a family to this table to allow it.
INSTANCE_FAMILIES: dict[str, tuple[int, bool, str]] = {
    **{f: (2, False, "x86_64") for f in (
        "m5", "m5a", "m5n", "m6i", "m6a", "m6in", "m7i", "m7i-flex", "m7a", "m8i",
        "c5", "c5a", "c5n", "c6i", "c6a", "c6in", "c7i", "c7i-flex", "c7a", "c8i",
        "r5", "r5a", "r5n", "r6i", "r6a", "r6in", "r7i", "r7a", "r8i", "z1d", "i4i")},
    **{f: (1, False, "arm64") for f in ("m6g", "m7g", "m8g", "c6g", "c7g", "c8g", "r6g", "r7g", "r8g")},
    "x2idn": (64, False, "x86_64"), "x2iedn": (4, False, "x86_64"),
    # NVIDIA GPUs on x86 only: the ECS GPU-optimized AL2023 AMI supports neither Graviton (g5g) nor p3/g3.
    **{f: (4, True, "x86_64") for f in ("g4dn", "g5", "g6", "g6e")},
    "gr6": (16, True, "x86_64"), "p4d": (96, True, "x86_64"), "p4de": (96, True, "x86_64"),
    "p5": (192, True, "x86_64"), "p5e": (192, True, "x86_64"), "p5en": (192, True, "x86_64"),
}
# Current-generation defaults when an environment lists no instance_types.
DEFAULT_CPU_INSTANCE_TYPES = ("m7i", "c7i", "r7i")
DEFAULT_GPU_INSTANCE_TYPES = ("g6", "g5")
_SIZE = re.compile(r"^(?:(?P<n>\d+)?xlarge|large|medium|metal(?:-\d+xl)?)$")


def instance_vcpus(instance_type: str) -> int | None:
    """vCPUs of a type ('g6.2xlarge' -> 8) or of a family's smallest size ('g6' -> 4); None if unknown."""
    family, _, size = instance_type.partition(".")
    if family not in INSTANCE_FAMILIES:
        return None
    if not size:
        return INSTANCE_FAMILIES[family][0]
    if size == "medium":
        return 1
    if size == "large":
        return 2
    if size.endswith("xlarge") and not size.startswith("metal"):
        return 4 * int(size.removesuffix("xlarge") or 1)
    return None  # metal sizes differ by family; Batch checks them


def _check_instance_type(value: str) -> str:
    family, dot, size = value.partition(".")
    if family not in INSTANCE_FAMILIES:
        raise ValueError(f"unknown instance family {family!r}; use one of {', '.join(sorted(INSTANCE_FAMILIES))} "
                         "(a family like 'm7i' or a type like 'm7i.2xlarge')")
    if dot and not _SIZE.match(size):
        raise ValueError(f"{value!r}: unknown size {size!r}; use e.g. 'large', 'xlarge', '4xlarge' or 'metal'")
    return value


InstanceType = Annotated[str, AfterValidator(_check_instance_type)]


def _check_environment(*, gpu: bool, enabled: bool, min_vcpus: int, max_vcpus: int,
                       instance_types: tuple[str, ...]) -> None:
    """Checks shared by the cpu/cpu-spot/gpu environments and extra queues (raised at the environment's path)."""
    if min_vcpus > max_vcpus:
        raise ValueError(f"min_vcpus ({min_vcpus}) is above max_vcpus ({max_vcpus})")
    if enabled and max_vcpus < 1:
        raise ValueError("max_vcpus must be at least 1 for an enabled environment (or set enabled: false)")
    types = instance_types or (DEFAULT_GPU_INSTANCE_TYPES if gpu else DEFAULT_CPU_INSTANCE_TYPES)
    wrong = [t for t in types if INSTANCE_FAMILIES[t.partition(".")[0]][1] != gpu]
    if wrong:
        kind = "GPU" if gpu else "CPU (non-GPU)"
        raise ValueError(f"instance_types {wrong} are not {kind} families; a GPU environment needs NVIDIA GPU "
                         f"families ({', '.join(f for f, v in INSTANCE_FAMILIES.items() if v[1])}), "
                         "the others need CPU families")
    archs = {INSTANCE_FAMILIES[t.partition(".")[0]][2] for t in types}
    if len(archs) > 1:
        raise ValueError(f"instance_types {list(types)} mix architectures {sorted(archs)}; one environment runs "
                         "one architecture (declare an extra queue for Graviton)")
    sizes = [v for v in (instance_vcpus(t) for t in types) if v is not None]
    if enabled and sizes and max_vcpus < min(sizes):
        smallest = min(sizes)
        raise ValueError(f"max_vcpus ({max_vcpus}) is below the {smallest} vCPUs of the smallest instance in "
                         f"{list(types)}; Batch could never launch one. Raise max_vcpus to at least {smallest}")


class ComputeEnvironmentConfig(_Model):
    """One AWS Batch EC2 compute environment (cpu, cpu_spot)."""

    enabled: bool = True
    min_vcpus: int = Field(0, ge=0, description="vCPUs kept running while idle. Anything above 0 costs money.")
    max_vcpus: int = Field(256, ge=0, le=10_000, description="Upper bound of vCPUs running at once (cost cap).")
    instance_types: tuple[InstanceType, ...] = Field(
        (), description="EC2 instance families or types (e.g. 'm7i', 'g6.xlarge'). Empty = the default set "
        "(cpu: m7i, c7i, r7i; gpu: g6, g5)."
    )

    def is_gpu(self) -> bool:
        return False

    def resolved_instance_types(self) -> tuple[str, ...]:
        if self.instance_types:
            return self.instance_types
        return DEFAULT_GPU_INSTANCE_TYPES if self.is_gpu() else DEFAULT_CPU_INSTANCE_TYPES

    @model_validator(mode="after")
    def _consistent(self) -> ComputeEnvironmentConfig:
        _check_environment(gpu=self.is_gpu(), enabled=self.enabled, min_vcpus=self.min_vcpus,
                           max_vcpus=self.max_vcpus, instance_types=self.instance_types)
        return self


class GpuEnvironmentConfig(ComputeEnvironmentConfig):
    """The GPU environment: NVIDIA families only, ECS GPU-optimized Amazon Linux 2023 AMI."""

    max_vcpus: int = Field(64, ge=0, le=10_000, description="Upper bound of vCPUs running at once (cost cap).")

    def is_gpu(self) -> bool:
        return True


class FargateEnvironmentConfig(_Model):
    """Optional Fargate environment (no instances to manage; no GPUs; billed per task)."""

    enabled: bool = False
    # Fargate keeps nothing running: the field exists so every environment answers `min_vcpus` alike.
    min_vcpus: int = Field(0, ge=0, le=0, description="Always 0: Fargate has no idle capacity.")
    max_vcpus: int = Field(64, ge=1, le=10_000, description="Upper bound of vCPUs running at once (cost cap).")


class ExtraQueueConfig(_Model):
    """An additional compute environment with its own job queue, e.g. a high-memory queue."""

    name: ResourceName
    kind: Literal["on-demand", "spot", "gpu"] = "on-demand"
    min_vcpus: int = Field(0, ge=0)
    max_vcpus: int = Field(256, ge=1, le=10_000)
    instance_types: tuple[InstanceType, ...] = Field(..., min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> ExtraQueueConfig:
        _check_environment(gpu=self.kind == "gpu", enabled=True, min_vcpus=self.min_vcpus,
                           max_vcpus=self.max_vcpus, instance_types=self.instance_types)
        return self


class ComputeConfig(_Model):
    """A team's AWS Batch compute: CPU on-demand + Spot, GPU, optional Fargate, extra queues."""

    cpu: ComputeEnvironmentConfig = ComputeEnvironmentConfig()
    cpu_spot: ComputeEnvironmentConfig = ComputeEnvironmentConfig()
    gpu: GpuEnvironmentConfig = GpuEnvironmentConfig()
    fargate: FargateEnvironmentConfig = FargateEnvironmentConfig()
    extra_queues: tuple[ExtraQueueConfig, ...] = ()
    root_volume_gb: int = Field(100, ge=30, le=16_384, description="Encrypted gp3 root volume per instance.")
    runnable_timeout_minutes: int = Field(
        60, ge=10, le=1440,  # the limits AWS Batch accepts for a job-state time limit action
        description="Jobs stuck RUNNABLE longer than this are cancelled (job-state time limit).",
    )

    @model_validator(mode="after")
    def _unique_queue_names(self) -> ComputeConfig:
        names = [q.name for q in self.extra_queues]
        reserved = {"cpu", "gpu", "cpu-spot", "fargate"}
        for i, name in enumerate(names):
            if name in reserved:
                raise ValueError(f"extra_queues[{i}].name: {name!r} is reserved (used by {sorted(reserved)})")
            if names.index(name) != i:
                raise ValueError(f"extra_queues[{i}].name: {name!r} is used twice; queue names must be unique")
        if not (self.cpu.enabled or self.cpu_spot.enabled):
            raise ValueError("cpu.enabled: the cpu queue needs cpu or cpu_spot enabled (it is the default "
                             "METAFLOW_BATCH_JOB_QUEUE)")
        return self


# ---------------------------------------------------------------------------------------------- alerts
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _check_email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError("must be an e-mail address like 'ml-team@example.com'")
    return value


class AlertsConfig(_Model):
    """Where a team's failure alerts and budget notifications go."""

    emails: tuple[Annotated[str, AfterValidator(_check_email)], ...] = Field(
        (), description="E-mail subscribers of the team's alert topic (each confirms by mail)."
    )
    chat_webhook_secret_name: str | None = Field(
        None,
        description="Name of a Secrets Manager secret holding a chat webhook URL (Slack/Teams). "
        "The URL itself never appears in the config or the templates.",
    )
    monthly_budget_usd: float | None = Field(
        None, gt=0, description="Monthly AWS Budget for the team (tag dsstack:team); alerts at 80% forecast, 100% actual."
    )


# -------------------------------------------------------------------------------------------- metadata
class MetadataServiceConfig(_Model):
    """The team's serverless Metaflow metadata service (API Gateway + Lambda + DynamoDB)."""

    enabled: bool = True
    throttle_rate_per_second: int = Field(200, ge=1, le=10_000)
    throttle_burst: int = Field(400, ge=1, le=5_000)


# --------------------------------------------------------------------------------------------- hosting
ModelKind = Literal["sagemaker-serverless", "sagemaker-realtime", "ecs"]
SAGEMAKER_KINDS = ("sagemaker-serverless", "sagemaker-realtime")
SERVERLESS_MEMORY_MB = (1024, 2048, 3072, 4096, 5120, 6144)
# Fargate's valid task sizes: CPU units -> allowed memory (MiB).
FARGATE_MEMORY_MIB = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4097, 1024)),
    1024: tuple(range(2048, 8193, 1024)),
    2048: tuple(range(4096, 16385, 1024)),
    4096: tuple(range(8192, 30721, 1024)),
}
# `image: ecr:<tag>` means the team's own ECR repository (created by the hosting stack) at <tag>.
TEAM_ECR_IMAGE_PREFIX = "ecr:"

# Which kinds each kind-specific field applies to, and its default for those kinds. A field set on a
# model of another kind is an error (it would be silently ignored otherwise).
_KIND_FIELDS: dict[str, tuple[tuple[str, ...], Any]] = {
    "memory_mb": (("sagemaker-serverless",), 2048),
    "max_concurrency": (("sagemaker-serverless",), 5),
    "instance_type": (("sagemaker-realtime",), "ml.m5.large"),
    "min_instances": (("sagemaker-realtime",), 1),
    "max_instances": (("sagemaker-realtime",), 2),
    "target_invocations_per_instance": (("sagemaker-realtime",), 100),
    "data_capture_percent": (("sagemaker-realtime",), None),
    "cpu": (("ecs",), 256),
    "memory_mib": (("ecs",), 512),
    "port": (("ecs",), 8080),
    "health_check_path": (("ecs",), "/health"),
    "min_tasks": (("ecs",), 1),
    "max_tasks": (("ecs",), 2),
    "target_cpu_percent": (("ecs",), 60),
    "internet_facing": (("ecs",), False),
    "allowed_cidrs": (("ecs",), ()),
    "certificate_arn": (("ecs",), None),
}


class ModelConfig(_Model):
    """One model endpoint. `kind` picks the hosting style; only that style's fields apply (others are
    errors), and each unset field of that style gets the default listed in docs/config.md."""

    name: ResourceName
    kind: ModelKind = Field(
        "sagemaker-serverless",
        description="sagemaker-serverless ($0 idle), sagemaker-realtime (instances, billed per hour) or ecs "
        "(Fargate behind a load balancer).",
    )
    image: str = Field(
        ..., description="Container image URI (a SageMaker framework image for sagemaker-*), or 'ecr:<tag>' "
        "for the team's own ECR repository.",
    )
    initial_version: int = Field(1, ge=1, description="Catalog model version the endpoint starts with.")
    # sagemaker-serverless
    memory_mb: int | None = Field(None, description="Serverless memory: 1024 to 6144 in 1024 steps (default 2048).")
    max_concurrency: int | None = Field(None, ge=1, le=200, description="Serverless max concurrency (default 5).")
    # sagemaker-realtime
    instance_type: str | None = Field(None, description="ml.* instance type (default ml.m5.large).")
    min_instances: int | None = Field(None, ge=1, description="Instances kept running (default 1).")
    max_instances: int | None = Field(None, ge=1, description="Autoscaling ceiling (default 2).")
    target_invocations_per_instance: int | None = Field(
        None, ge=1, description="Autoscaling target, invocations per instance per minute (default 100).")
    data_capture_percent: int | None = Field(
        None, ge=1, le=100, description="Capture this share of requests/responses to the team bucket (off by default).")
    # ecs
    cpu: int | None = Field(None, description="Fargate CPU units: 256, 512, 1024, 2048, 4096 (default 256).")
    memory_mib: int | None = Field(None, description="Fargate memory, valid for the CPU size (default 512).")
    port: int | None = Field(None, ge=1, le=65535, description="Container port (default 8080).")
    health_check_path: str | None = Field(None, description="Load balancer health check path (default /health).")
    min_tasks: int | None = Field(None, ge=0, description="Tasks kept running (default 1; 0 = only the ALB costs).")
    max_tasks: int | None = Field(None, ge=1, description="Autoscaling ceiling (default 2).")
    target_cpu_percent: int | None = Field(None, ge=10, le=90, description="Autoscaling CPU target (default 60).")
    internet_facing: bool | None = Field(
        None, description="Public load balancer (HTTPS only, needs allowed_cidrs and certificate_arn). Default: "
        "internal, reachable from the VPC and workstations.")
    allowed_cidrs: tuple[str, ...] | None = Field(None, description="Who may call an internet-facing load balancer.")
    certificate_arn: str | None = Field(None, description="ACM certificate for HTTPS (internet-facing only).")

    @field_validator("image")
    @classmethod
    def _valid_image(cls, value: str) -> str:
        if value.startswith(TEAM_ECR_IMAGE_PREFIX):
            if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", value[len(TEAM_ECR_IMAGE_PREFIX):]):
                raise ValueError("'ecr:<tag>' needs a valid image tag after 'ecr:', e.g. 'ecr:v1'")
        elif not re.fullmatch(r"[a-z0-9.-]+(:\d+)?/[a-z0-9._/-]+(:[A-Za-z0-9_.-]+|@sha256:[0-9a-f]{64})", value):
            raise ValueError("must be an image URI with a tag or digest like "
                             "'683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3', "
                             "or 'ecr:<tag>' for the team's ECR repository")
        return value

    @field_validator(*_KIND_FIELDS)
    @classmethod
    def _kind_specific(cls, value: Any, info: ValidationInfo) -> Any:
        kind = info.data.get("kind")
        if kind is None:  # the kind itself is invalid; that error is reported instead
            return value
        assert info.field_name is not None  # always set for a field validator
        kinds, default = _KIND_FIELDS[info.field_name]
        if kind not in kinds:
            if value is not None:
                raise ValueError(f"applies only to kind {' or '.join(map(repr, kinds))}, but this model is kind "
                                 f"{kind!r}: remove it or change kind")
            return None
        return default if value is None else value

    @field_validator("memory_mb")
    @classmethod
    def _serverless_memory(cls, value: int | None) -> int | None:
        if value is not None and value not in SERVERLESS_MEMORY_MB:
            raise ValueError(f"must be one of {list(SERVERLESS_MEMORY_MB)} (1024 to 6144 in 1024 steps), got {value}")
        return value

    @field_validator("instance_type")
    @classmethod
    def _ml_instance(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"ml\.[a-z0-9]+\.[a-z0-9]+", value):
            raise ValueError(f"must be a SageMaker instance type like 'ml.m5.large', got {value!r}")
        return value

    @field_validator("max_instances")
    @classmethod
    def _instances_order(cls, value: int | None, info: ValidationInfo) -> int | None:
        low = info.data.get("min_instances")
        if value is not None and low is not None and value < low:
            raise ValueError(f"must be at least min_instances ({low}), got {value}")
        return value

    @field_validator("cpu")
    @classmethod
    def _fargate_cpu(cls, value: int | None) -> int | None:
        if value is not None and value not in FARGATE_MEMORY_MIB:
            raise ValueError(f"must be a Fargate CPU size {list(FARGATE_MEMORY_MIB)}, got {value}")
        return value

    @field_validator("memory_mib")
    @classmethod
    def _fargate_memory(cls, value: int | None, info: ValidationInfo) -> int | None:
        cpu = info.data.get("cpu")
        if value is not None and cpu in FARGATE_MEMORY_MIB and value not in FARGATE_MEMORY_MIB[cpu]:
            allowed = FARGATE_MEMORY_MIB[cpu]
            raise ValueError(f"Fargate with cpu {cpu} takes {allowed[0]} to {allowed[-1]} MiB "
                             f"({', '.join(map(str, allowed))}), got {value}")
        return value

    @field_validator("health_check_path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"/[A-Za-z0-9._~/-]*", value):
            raise ValueError(f"must be a URL path starting with '/', e.g. '/health', got {value!r}")
        return value

    @field_validator("max_tasks")
    @classmethod
    def _tasks_order(cls, value: int | None, info: ValidationInfo) -> int | None:
        low = info.data.get("min_tasks")
        if value is not None and low is not None and value < low:
            raise ValueError(f"must be at least min_tasks ({low}), got {value}")
        return value

    @field_validator("allowed_cidrs")
    @classmethod
    def _cidrs(cls, value: tuple[str, ...] | None, info: ValidationInfo) -> tuple[str, ...] | None:
        for cidr in value or ():
            try:
                ipaddress.ip_network(cidr, strict=True)
            except ValueError:
                raise ValueError(f"{cidr!r} is not a network in CIDR notation like '203.0.113.0/24'") from None
        if value and not info.data.get("internet_facing"):
            raise ValueError("applies only with internet_facing: true (an internal load balancer admits the VPC)")
        if info.data.get("internet_facing") and not value:
            raise ValueError("internet_facing: true needs the CIDR ranges allowed to call the endpoint, "
                             "e.g. ['203.0.113.0/24']; 0.0.0.0/0 must be listed explicitly")
        return value

    @field_validator("certificate_arn")
    @classmethod
    def _certificate(cls, value: str | None, info: ValidationInfo) -> str | None:
        facing = info.data.get("internet_facing")
        if value is not None and not re.fullmatch(r"arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]+", value):
            raise ValueError(f"must be an ACM certificate ARN like "
                             f"'arn:aws:acm:us-east-1:111122223333:certificate/<id>', got {value!r}")
        if facing and value is None:
            raise ValueError("internet_facing: true needs an ACM certificate ARN: internet-facing endpoints are "
                             "HTTPS only")
        if value is not None and facing is False:
            raise ValueError("applies only with internet_facing: true (internal load balancers serve HTTP in the VPC)")
        return value

    @property
    def is_sagemaker(self) -> bool:
        return self.kind in SAGEMAKER_KINDS

    @property
    def team_ecr_tag(self) -> str | None:
        """The tag in the team's ECR repository when `image` is 'ecr:<tag>'."""
        return self.image[len(TEAM_ECR_IMAGE_PREFIX):] if self.image.startswith(TEAM_ECR_IMAGE_PREFIX) else None


# ---------------------------------------------------------------------------------------- workstations
# `<family>.<size>`, e.g. t3.large, m7i-flex.xlarge, g6e.2xlarge, p4d.24xlarge.
_INSTANCE_TYPE = re.compile(r"^(?P<family>(?P<letters>[a-z]+)(?P<gen>\d+)(?P<attrs>[a-z]*)(?:-[a-z0-9]+)?)\."
                            r"(?P<size>nano|micro|small|medium|large|xlarge|\d+xlarge|metal(?:-\d+xl)?)$")
# NVIDIA GPU families the Deep Learning Base OSS NVIDIA Driver GPU AMI (Amazon Linux 2023) supports.
# Older or non-NVIDIA accelerators (p3, g4ad AMD, inf/trn Neuron, dl1 Gaudi) need other drivers.
GPU_FAMILIES = frozenset({"g4dn", "g5", "g5g", "g6", "g6e", "g6f", "gr6", "gr6f", "g7", "g7e", "p4d", "p4de",
                          "p5", "p5e", "p5en", "p6-b200", "p6-b300"})
_ACCELERATOR_LETTERS = frozenset({"g", "gr", "p", "inf", "trn", "dl", "f", "vt"})
_UNSUPPORTED_LETTERS = {"mac": "Mac instances need a dedicated host", "u": "High-memory instances need a dedicated host"}
GPU_MIN_ROOT_VOLUME_GB = 100  # the GPU AMI ships the NVIDIA driver and several CUDA toolkits
# pip requirement names (PEP 508 name, optional extras and version specifier); no URLs, paths or options
# because the boot script passes them to pip as-is.
_PACKAGE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?(?:\[[A-Za-z0-9._,-]+\])?"
                      r"(?:(?:===|==|~=|!=|<=|>=|<|>)[A-Za-z0-9.*+!-]+(?:,(?:===|==|~=|!=|<=|>=|<|>)[A-Za-z0-9.*+!-]+)*)?$")


def _check_workstation_instance_type(value: str) -> str:
    match = _INSTANCE_TYPE.match(value)
    if not match:
        raise ValueError(f"{value!r} is not an EC2 instance type; use '<family>.<size>' like 't3.large' or 'g6.xlarge'")
    letters, family = match["letters"], match["family"]
    if letters in _UNSUPPORTED_LETTERS:
        raise ValueError(f"{value!r}: {_UNSUPPORTED_LETTERS[letters]}; pick a general-purpose type like 't3.large'")
    if letters in _ACCELERATOR_LETTERS and family not in GPU_FAMILIES:
        raise ValueError(f"{value!r}: accelerator family {family!r} is not supported by the NVIDIA GPU AMI; "
                         f"use one of {', '.join(sorted(GPU_FAMILIES))} (e.g. 'g6.xlarge')")
    return value


def _check_package(value: str) -> str:
    if not _PACKAGE.match(value.replace(" ", "")):
        raise ValueError(f"{value!r} is not a pip requirement; use a package name with an optional version, "
                         "e.g. 'polars' or 'scikit-learn==1.5.2' (no URLs, paths or pip options)")
    return value.replace(" ", "")


def instance_family(instance_type: str) -> str:
    """'g6e.2xlarge' -> 'g6e'."""
    return instance_type.split(".", 1)[0]


class WorkstationConfig(_Model):
    """One data scientist's cloud workstation (EC2, SSM only). Stopped, it costs only its disks."""

    user: ResourceName = Field(..., description="The data scientist's user name (also the Linux user).")
    instance_type: Annotated[str, AfterValidator(_check_workstation_instance_type)] = Field(
        "t3.large", description="EC2 instance type; NVIDIA GPU types (g4dn, g5, g6, g6e, p4d, p5...) get the "
        "Deep Learning Base GPU AMI on Amazon Linux 2023. Graviton types (t4g, m7g...) get the arm64 image.",
    )
    root_volume_gb: int = Field(40, ge=30, le=1024, description="Encrypted gp3 root volume (reinstallable system).")
    home_volume_gb: int = Field(100, ge=10, le=16_384,
                                description="Encrypted gp3 volume mounted as the user's home; RETAIN, survives "
                                "instance replacement.")
    idle_minutes: int = Field(60, ge=15, le=1440,
                              description="Stopped after this many minutes with CPU below idle_cpu_percent.")
    idle_cpu_percent: float = Field(5.0, gt=0, le=50, description="CPU utilization counted as idle (average).")
    extra_packages: tuple[Annotated[str, AfterValidator(_check_package)], ...] = Field(
        (), description="Extra pip packages installed into the workstation's Python (e.g. 'polars').",
    )

    @property
    def gpu(self) -> bool:
        return instance_family(self.instance_type) in GPU_FAMILIES

    @property
    def arm64(self) -> bool:
        """Graviton families carry a 'g' in their attributes: t4g, m7g, c7gn, r8g, g5g, im4gn."""
        match = _INSTANCE_TYPE.match(self.instance_type)
        return bool(match and "g" in match["attrs"])

    @field_validator("root_volume_gb")
    @classmethod
    def _gpu_root_volume(cls, value: int, info: ValidationInfo) -> int:
        instance_type = info.data.get("instance_type")  # absent when the type itself was invalid
        if instance_type and instance_family(instance_type) in GPU_FAMILIES and value < GPU_MIN_ROOT_VOLUME_GB:
            raise ValueError(f"GPU instance type {instance_type!r} needs at least {GPU_MIN_ROOT_VOLUME_GB} GB for "
                             f"the NVIDIA GPU AMI, got {value}; set root_volume_gb: {GPU_MIN_ROOT_VOLUME_GB}")
        return value


# ------------------------------------------------------------------------------------------------ team
class TeamConfig(_Model):
    """One team: an isolated set of stacks, roles and data."""

    name: TeamName
    data: DataConfig = DataConfig()
    compute: ComputeConfig = ComputeConfig()
    alerts: AlertsConfig = AlertsConfig()
    metadata_service: MetadataServiceConfig = MetadataServiceConfig()
    models: tuple[ModelConfig, ...] = ()
    workstations: tuple[WorkstationConfig, ...] = ()

    @model_validator(mode="after")
    def _unique_children(self) -> TeamConfig:
        _reject_duplicates("models", [m.name for m in self.models], "name")
        _reject_duplicates("workstations", [w.user for w in self.workstations], "user")
        return self


class PlatformConfig(_Model):
    """An environment (e.g. 'dev', 'prod'): one shared network and a set of teams."""

    environment: EnvironmentName = Field(..., description="Environment name, prefix of every stack name.")
    account: str | None = Field(
        None, description="12-digit AWS account id. Optional: synth works without credentials."
    )
    region: str = Field("us-east-1", description="AWS region, e.g. 'eu-west-1'.")
    network: NetworkConfig = NetworkConfig()
    log_retention_days: LogRetentionDays = Field(90, description="Retention of every log group dsstack creates.")
    destroy_data_on_delete: bool = Field(
        False,
        description="Sandbox only: delete buckets, tables and keys with their stacks. Default (false) retains "
        "all data when a stack is deleted.",
    )
    teams: tuple[TeamConfig, ...] = Field(..., min_length=1)

    @field_validator("account")
    @classmethod
    def _valid_account(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"\d{12}", value):
            raise ValueError("must be a 12-digit AWS account id as a quoted string, e.g. '111122223333'")
        return value

    @field_validator("region")
    @classmethod
    def _valid_region(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d", value):
            raise ValueError("must be an AWS region name like 'us-east-1' or 'eu-west-1'")
        return value

    @model_validator(mode="after")
    def _unique_teams(self) -> PlatformConfig:
        names = [t.name for t in self.teams]
        _reject_duplicates("teams", names, "name")
        # Team resources are named `dsstack-<env>-<team>-...` and IAM/EventBridge conditions match that prefix:
        # a team `vision-x` would fall under team `vision`'s `dsstack-<env>-vision-*` permissions.
        for i, name in enumerate(names):
            for j, other in enumerate(names):
                if i != j and name.startswith(f"{other}-"):
                    raise ValueError(f"teams[{i}].name: {name!r} starts with teams[{j}].name {other!r} followed by "
                                     f"'-', so {other!r}'s permissions would match its resources; rename one of them")
        return self

    def team(self, name: str) -> TeamConfig:
        for team in self.teams:
            if team.name == name:
                return team
        raise KeyError(f"no team {name!r} in environment {self.environment!r} "
                       f"(teams: {', '.join(t.name for t in self.teams)})")


def _reject_duplicates(field: str, values: Iterable[str], key: str) -> None:
    seen: dict[str, int] = {}
    for i, value in enumerate(values):
        if value in seen:
            raise ValueError(
                f"{field}[{i}].{key}: {value!r} duplicates {field}[{seen[value]}].{key}; each {key} must be unique"
            )
        seen[value] = i


# ------------------------------------------------------------------------------------------- loading
class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that rejects duplicate keys instead of silently keeping the last one."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=deep)  # type: ignore[no-untyped-call]
    return mapping


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def format_location(loc: Sequence[int | str]) -> str:
    """('teams', 1, 'name') -> 'teams[1].name'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _model_at(loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The pydantic model class that owns the field at `loc` (for listing allowed keys)."""
    model: Any = PlatformConfig
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return None
        annotation = field.annotation
        model = _unwrap_model(annotation)
        if model is None:
            return None
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _unwrap_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _unwrap_model(arg)
        if found is not None:
            return found
    return None


_SUB_PATH = re.compile(r"^[a-z_]+\[\d+\]\.[a-z_]+: ")


def _describe(error: Any) -> str:
    loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    where = format_location(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        owner = _model_at(loc[:-1])
        allowed = ", ".join(owner.model_fields) if owner else "see `dsstack schema`"
        return f"{where}: unknown key {loc[-1]!r}; allowed keys here: {allowed}"
    if kind == "too_short":
        return f"{where}: needs at least {error['ctx']['min_length']} item(s)"
    if kind == "missing":
        return f"{where}: required field is missing"
    message = str(error["msg"])
    message = message.removeprefix("Value error, ")
    if kind == "value_error" and _SUB_PATH.match(message):
        # A model-level check names the exact sub-field itself (e.g. duplicates in a list).
        return f"{where}.{message}" if loc else message
    if kind in {"literal_error"}:
        return f"{where}: {message}, got {error.get('input')!r}"
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return f"{where}: {message}, got {type(error.get('input')).__name__} {error.get('input')!r}"
    return f"{where}: {message}"


def parse_config(data: Any, *, source: Path | str = "<config>") -> PlatformConfig:
    """Validate already-parsed YAML/JSON data."""
    if not isinstance(data, dict):
        raise ConfigError(source, [f"(top level): must be a mapping of keys like 'environment:' and 'teams:', "
                                   f"got {type(data).__name__}"])
    try:
        return PlatformConfig.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        # pydantic also reports a list as "too short" when one of its items is invalid; the item's own
        # error is the useful one.
        nested = {tuple(e["loc"][:i]) for e in errors for i in range(1, len(e["loc"]))}
        errors = [e for e in errors if not (e["type"] == "too_short" and tuple(e["loc"]) in nested)]
        raise ConfigError(source, [_describe(e) for e in errors]) from None


def load_config(path: Path | str = DEFAULT_CONFIG_PATH) -> PlatformConfig:
    """Read and validate a config file. Raises ConfigError with a user-facing message."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, ["file not found; pass an existing file, e.g. -c config=config/example.yaml"]) from None
    except OSError as exc:
        raise ConfigError(path, [f"cannot be read: {exc.strerror}"]) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(path, [f"{where}not valid YAML: {problem}"]) from None
    return parse_config(data, source=path)


def json_schema() -> dict[str, Any]:
    """JSON Schema of the config file, for editors (yaml-language-server) and `dsstack schema`."""
    schema = PlatformConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "dsstack config"
    return schema
