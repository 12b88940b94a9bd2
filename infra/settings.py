"""Deployment settings: every knob of the stack, read once from the CDK context (cdk.json).

``cdk.json`` holds the defaults; override any of them per deployment with
``npx cdk deploy -c meshdrop:max_vcpus=64`` or a ``cdk.context.json``. Every value is validated
here, so a typo fails synth with a message naming the key instead of failing a deployment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from constructs import Node

from meshdrop_contract import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS
from meshdrop_contract.wiring import DEFAULT_STACK_NAME

#: Every meshdrop context key is ``meshdrop:<field name>``.
CONTEXT_PREFIX = "meshdrop:"

_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\d[a-z0-9-]*(\.[0-9]*[a-z]+)?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
_S3_URI = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,63}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_GIT_REVISION = re.compile(r"^[0-9a-f]{40}$")
_AMI = re.compile(r"^ami-[0-9a-f]{8,17}$")
_SSM_NAME = re.compile(r"^/[A-Za-z0-9_./-]{1,1010}$")

#: Where the ECS-optimized AMIs Batch uses are published, per compute kind. AL2023 with the
#: NVIDIA driver for GPUs; docs/deploy.md says how to read the driver a given AMI ships.
DEFAULT_AMI_PARAMETERS = {
    "gpu": "/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id",
    "cpu": "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id",
}
#: What runs the generator: GPU instances with the CUDA image and baked weights (the default),
#: or CPU instances with the slim image and the weight-free backend.
COMPUTE_KINDS = ("gpu", "cpu")
#: Where the generator image is built: by `cdk deploy` on this machine (needs Docker), or by a
#: CodeBuild project the stack owns (no local Docker).
IMAGE_BUILDS = ("local", "codebuild")

#: Retention periods CloudWatch Logs accepts, in days.
LOG_RETENTION_CHOICES = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096)
LOG_RETENTION_CHOICES += (1827, 2192, 2557, 2922, 3288, 3653)

#: Removal policies a deployment may choose for the data it keeps (bucket, table, logs).
REMOVAL_POLICIES = ("retain", "destroy")

T = TypeVar("T")


class SettingsError(ValueError):
    """A context value is missing or invalid; the message names the key and what it accepts."""


@dataclass(frozen=True, slots=True)
class MeshdropSettings:
    """All deployment settings, validated. Field ``x`` comes from context key ``meshdrop:x``."""

    stack_name: str = DEFAULT_STACK_NAME
    #: Account and region; both empty falls back to CDK_DEFAULT_ACCOUNT/REGION (the CLI's
    #: credentials) and, without those, an environment-agnostic stack limited to 2 AZs.
    account: str | None = None
    region: str | None = None
    #: "gpu" (default) or "cpu": see COMPUTE_KINDS.
    compute: str = "gpu"
    #: Sized GPU instance types Batch may launch (families such as "g5" are accepted, but let
    #: Batch pick a g5.8xlarge that takes all of max_vcpus for one job).
    gpu_instance_types: tuple[str, ...] = ("g5.xlarge", "g6.xlarge", "g4dn.xlarge")
    #: Sized instance types of the CPU compute environment (compute="cpu").
    cpu_instance_types: tuple[str, ...] = ("m7i.xlarge", "m6i.xlarge")
    #: Hard cap on the vCPUs all compute environments together may run: the spend ceiling.
    max_vcpus: int = 32
    #: Put a Spot compute environment in front of the on-demand one.
    spot: bool = True
    #: A fixed AMI id for the instances; empty reads ami_ssm_parameter (see ami_source()).
    ami_id: str | None = None
    #: SSM parameter naming the AMI; empty means DEFAULT_AMI_PARAMETERS[compute].
    ami_ssm_parameter: str | None = None
    #: Encrypted gp3 root volume: the image (~11 GB unpacked twice while pulling) plus weights.
    root_volume_gib: int = 100
    #: Resources of one generator job; must fit the smallest instance type above.
    job_vcpus: int = 4
    job_memory_mib: int = 14_336
    job_timeout_minutes: int = 30
    #: Attempts per job, counting the first (Batch allows 1..10).
    job_attempts: int = 3
    #: Cancel jobs that wait in RUNNABLE this long for a reason capacity or configuration will
    #: not fix by itself; the RUNNABLE-age alarm fires at the same age.
    runnable_timeout_minutes: int = 30
    #: The reconciler runs this often; a job untouched for the runnable timeout plus
    #: reconcile_margin_minutes (ACCEPTED, SUBMITTED) or for every attempt's timeout plus that
    #: (RUNNING) is looked up in Batch and repaired. Longer than the runnable timeout, so the
    #: queue cancels a job it cannot place before the reconciler looks at it.
    reconcile_every_minutes: int = 10
    reconcile_margin_minutes: int = 15
    #: Deleting a photo also deletes its asset, thumbnail and error file (default: keep them;
    #: the job record notes that the source is gone).
    delete_assets_with_source: bool = False
    #: A REJECTED or FAILED job leaves 3d_assets/<category>/<name>.error.json; a success
    #: removes it.
    error_files: bool = True
    max_image_bytes: int = MAX_IMAGE_BYTES
    max_image_pixels: int = MAX_IMAGE_PIXELS
    log_retention_days: int = 30
    job_ttl_days: int = 90
    #: Days before replaced object versions expire (overwritten uploads and assets).
    noncurrent_version_days: int = 30
    event_archive_days: int = 30
    ingest_reserved_concurrency: int = 5
    ingest_batch_size: int = 10
    #: Photos per Batch job (a pack): the new photos of one ingest invocation go to Batch in
    #: packs of at most this many, each loading the model once (docs/pipeline.md). 1: one Batch
    #: job per photo. At most 20: a pack's job specs travel in the container overrides, which
    #: ECS caps at 8 KiB. 10 photos of about a second of GPU work each, plus one start-up and
    #: model load, make a job of well under a few minutes (docs/cost.md).
    pack_size: int = 10
    #: With ``pack_size`` > 1: the ingest queue's maximum batching window, so a pack is
    #: submitted when full or when its oldest photo waited this long.
    pack_wait_seconds: int = 5
    #: Alarm when the oldest ingest message is older than this.
    oldest_message_alarm_minutes: int = 15
    alarm_email: str | None = None
    notification_email: str | None = None
    #: Monthly AWS Budgets limit in USD, alerting at 80 % actual and 100 % forecast; 0: none.
    monthly_budget_usd: int = 50
    #: Hugging Face revision (commit sha) of stabilityai/TripoSR baked into the GPU image, and
    #: the sha256 of each file fetched. No defaults: they are not made up here (docs/deploy.md).
    weights_revision: str | None = None
    weights_config_sha256: str | None = None
    weights_model_sha256: str | None = None
    #: sha256 of rembg's u2net.onnx, baked under U2NET_HOME.
    u2net_sha256: str | None = None
    #: Alternative to baked weights: an s3:// prefix each instance downloads once, plus the
    #: sha256 of the SHA256SUMS manifest stored with them (every file is checked against it).
    weights_s3_uri: str | None = None
    weights_s3_sha256: str | None = None
    #: "local" (cdk deploy builds with Docker) or "codebuild" (built in AWS).
    image_build: str = "local"
    #: Generator images kept in the stack's ECR repository (image_build="codebuild").
    ecr_keep_images: int = 5
    removal_policy: str = "retain"
    #: Lambda CPU architecture: "arm64" (cheaper) or "x86_64".
    lambda_architecture: str = "arm64"

    @classmethod
    def from_context(cls, node: Node) -> MeshdropSettings:
        """Read every field from ``node``'s context (``meshdrop:<field>``), defaults for the rest.

        Raises
        ------
        SettingsError
            Naming the first invalid key, the value found and what is accepted.
        """
        raw: dict[str, Any] = {}
        for f in fields(cls):
            value = node.try_get_context(CONTEXT_PREFIX + f.name)
            if value is not None:
                raw[f.name] = value
        return cls.from_mapping(raw)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> MeshdropSettings:
        """Validate plain values (as JSON or ``-c key=value`` strings give them)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise SettingsError(
                f"unknown setting(s) {', '.join(CONTEXT_PREFIX + u for u in unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        get = _Reader(raw, cls())
        settings = cls(**_read_all(get))
        settings._check_consistency()
        return settings

    def _check_consistency(self) -> None:
        if (self.account is None) != (self.region is None):
            raise SettingsError(
                f"set both {CONTEXT_PREFIX}account and {CONTEXT_PREFIX}region, or neither "
                "(neither uses CDK_DEFAULT_ACCOUNT/CDK_DEFAULT_REGION when the CLI has them)"
            )
        if self.weights_s3_uri and not self.weights_s3_sha256:
            raise SettingsError(
                f"{CONTEXT_PREFIX}weights_s3_uri needs {CONTEXT_PREFIX}weights_s3_sha256 (the "
                "sha256 of the SHA256SUMS file next to the weights) so each download is verified"
            )
        if self.weights_s3_uri and self.compute == "cpu":
            raise SettingsError(
                f"{CONTEXT_PREFIX}compute=cpu runs the weight-free backend; "
                f"{CONTEXT_PREFIX}weights_s3_uri needs compute=gpu"
            )
        if self.pack_size > 10 and self.pack_wait_seconds < 1:
            raise SettingsError(
                f"{CONTEXT_PREFIX}pack_size={self.pack_size} needs {CONTEXT_PREFIX}"
                "pack_wait_seconds >= 1 (SQS batches above 10 messages need a batching window)"
            )
        if self.job_vcpus > self.max_vcpus:
            raise SettingsError(
                f"{CONTEXT_PREFIX}job_vcpus={self.job_vcpus} exceeds "
                f"{CONTEXT_PREFIX}max_vcpus={self.max_vcpus}: no job could ever start"
            )

        if self.spot and self.max_vcpus // 2 < self.job_vcpus:
            raise SettingsError(
                f"{CONTEXT_PREFIX}max_vcpus={self.max_vcpus}: with {CONTEXT_PREFIX}spot, Spot and "
                f"on-demand each get half, and {self.max_vcpus // 2} vCPUs cannot run a "
                f"{self.job_vcpus}-vCPU job"
            )

    @property
    def reconcile_stuck_after_s(self) -> int:
        """Seconds an ACCEPTED or SUBMITTED job may go unchanged before the reconciler acts."""
        return (self.runnable_timeout_minutes + self.reconcile_margin_minutes) * 60

    @property
    def reconcile_running_after_s(self) -> int:
        """The same for a RUNNING job: every attempt may run to the job timeout."""
        attempts_s = self.job_timeout_minutes * self.job_attempts * 60
        return attempts_s + self.reconcile_stuck_after_s

    @property
    def instance_types(self) -> tuple[str, ...]:
        """The instance types of the configured compute kind."""
        return self.gpu_instance_types if self.compute == "gpu" else self.cpu_instance_types

    @property
    def ami_parameter(self) -> str:
        """The SSM parameter that names the instances' AMI (when no ami_id pins it)."""
        return self.ami_ssm_parameter or DEFAULT_AMI_PARAMETERS[self.compute]

    @property
    def weights_mode(self) -> str:
        """ "baked" (GPU image with TripoSR + u2net), "s3" (fetched per instance) or "none"."""
        if self.compute == "cpu":
            return "none"
        return "s3" if self.weights_s3_uri else "baked"

    @property
    def missing_weight_pins(self) -> list[str]:
        """Settings the baked-weights image build needs but that are still empty."""
        if self.weights_mode != "baked":
            return []
        pins = ("weights_revision", "weights_config_sha256", "weights_model_sha256")
        return [CONTEXT_PREFIX + p for p in (*pins, "u2net_sha256") if not getattr(self, p)]

    def environment(
        self, defaults: Mapping[str, str | None] | None = None
    ) -> dict[str, str] | None:
        """``env`` for the stack: the settings' account/region, else CDK_DEFAULT_ACCOUNT/REGION
        from ``defaults`` (the CLI sets them from its credentials), else ``None``.

        A named environment lets CDK see every AZ of the region (3 subnets instead of 2) and
        pin the AMI through a context lookup.
        """
        if self.account and self.region:
            return {"account": self.account, "region": self.region}
        defaults = defaults or {}
        account, region = defaults.get("CDK_DEFAULT_ACCOUNT"), defaults.get("CDK_DEFAULT_REGION")
        if account and region:
            return {"account": account, "region": region}
        return None


def _read_all(get: _Reader) -> dict[str, Any]:
    """Every field, validated; one line per setting so each names what it accepts."""
    email = (_EMAIL, "an e-mail address")
    sha = (_SHA256, "64 lower-case hex digits")
    return {
        "stack_name": get.string("stack_name", _NAME, "letters, digits and '-', max 64"),
        "account": get.optional_string("account", _ACCOUNT, "a 12-digit account id"),
        "region": get.optional_string("region", _REGION, "a region name such as eu-west-1"),
        "compute": get.choice("compute", COMPUTE_KINDS),
        "gpu_instance_types": get.instance_types("gpu_instance_types"),
        "cpu_instance_types": get.instance_types("cpu_instance_types"),
        "max_vcpus": get.integer("max_vcpus", 1, 10_000),
        "spot": get.boolean("spot"),
        "ami_id": get.optional_string("ami_id", _AMI, "an AMI id such as ami-0123456789abcdef0"),
        "ami_ssm_parameter": get.optional_string(
            "ami_ssm_parameter", _SSM_NAME, "an SSM parameter name starting with /"
        ),
        "root_volume_gib": get.integer("root_volume_gib", 30, 16_384),
        "job_vcpus": get.integer("job_vcpus", 1, 192),
        "job_memory_mib": get.integer("job_memory_mib", 1024, 2_000_000),
        "job_timeout_minutes": get.integer("job_timeout_minutes", 1, 24 * 60),
        "job_attempts": get.integer("job_attempts", 1, 10),
        "runnable_timeout_minutes": get.integer("runnable_timeout_minutes", 10, 24 * 60),
        "reconcile_every_minutes": get.integer("reconcile_every_minutes", 1, 24 * 60),
        "reconcile_margin_minutes": get.integer("reconcile_margin_minutes", 1, 24 * 60),
        "delete_assets_with_source": get.boolean("delete_assets_with_source"),
        "error_files": get.boolean("error_files"),
        "max_image_bytes": get.integer("max_image_bytes", 1024, 5 * 1024**3),
        "max_image_pixels": get.integer("max_image_pixels", 1024, 1_000_000_000),
        "log_retention_days": get.one_of_ints("log_retention_days", LOG_RETENTION_CHOICES),
        "job_ttl_days": get.integer("job_ttl_days", 1, 3653),
        "noncurrent_version_days": get.integer("noncurrent_version_days", 1, 3653),
        "event_archive_days": get.integer("event_archive_days", 0, 3653),
        "ingest_reserved_concurrency": get.integer("ingest_reserved_concurrency", 2, 1000),
        "ingest_batch_size": get.integer("ingest_batch_size", 1, 10),
        "pack_size": get.integer("pack_size", 1, 20),
        "pack_wait_seconds": get.integer("pack_wait_seconds", 0, 300),
        "oldest_message_alarm_minutes": get.integer("oldest_message_alarm_minutes", 1, 24 * 60),
        "alarm_email": get.optional_string("alarm_email", *email),
        "notification_email": get.optional_string("notification_email", *email),
        "monthly_budget_usd": get.integer("monthly_budget_usd", 0, 1_000_000),
        "weights_revision": get.optional_string(
            "weights_revision", _GIT_REVISION, "a 40-hex-digit Hub commit"
        ),
        "weights_config_sha256": get.optional_string("weights_config_sha256", *sha),
        "weights_model_sha256": get.optional_string("weights_model_sha256", *sha),
        "u2net_sha256": get.optional_string("u2net_sha256", *sha),
        "weights_s3_uri": get.optional_string("weights_s3_uri", _S3_URI, "s3://bucket/prefix"),
        "weights_s3_sha256": get.optional_string("weights_s3_sha256", *sha),
        "image_build": get.choice("image_build", IMAGE_BUILDS),
        "ecr_keep_images": get.integer("ecr_keep_images", 1, 1000),
        "removal_policy": get.choice("removal_policy", REMOVAL_POLICIES),
        "lambda_architecture": get.choice("lambda_architecture", ("arm64", "x86_64")),
    }


class _Reader:
    """Typed access to raw context values with errors that name the key."""

    def __init__(self, raw: Mapping[str, Any], defaults: MeshdropSettings) -> None:
        self._raw = raw
        self._defaults = defaults

    def _get(self, name: str, convert: Callable[[Any], T]) -> T:
        if name not in self._raw:
            return getattr(self._defaults, name)
        value = self._raw[name]
        try:
            return convert(value)
        except SettingsError:
            raise
        except (TypeError, ValueError) as err:
            raise SettingsError(f"{CONTEXT_PREFIX}{name}={value!r}: {err}") from None

    def string(self, name: str, pattern: re.Pattern[str], accepts: str) -> str:
        def convert(value: Any) -> str:
            if not isinstance(value, str) or not pattern.match(value):
                raise ValueError(f"expected {accepts}")
            return value

        return self._get(name, convert)

    def optional_string(self, name: str, pattern: re.Pattern[str], accepts: str) -> str | None:
        def convert(value: Any) -> str | None:
            # Empty strings and JSON null both mean "not set", so cdk.json can list every key.
            if value in ("", None):
                return None
            if not isinstance(value, str) or not pattern.match(value):
                raise ValueError(f"expected {accepts} or an empty string")
            return value

        return self._get(name, convert)

    def integer(self, name: str, low: int, high: int) -> int:
        def convert(value: Any) -> int:
            # bool is an int subclass; "true" for a count is a mistake, not 1.
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise ValueError("expected an integer")
            number = int(value)
            if not low <= number <= high:
                raise ValueError(f"expected an integer in [{low}, {high}]")
            return number

        return self._get(name, convert)

    def one_of_ints(self, name: str, allowed: tuple[int, ...]) -> int:
        def convert(value: Any) -> int:
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise ValueError("expected an integer")
            number = int(value)
            if number not in allowed:
                raise ValueError(f"expected one of {', '.join(map(str, allowed))}")
            return number

        return self._get(name, convert)

    def boolean(self, name: str) -> bool:
        def convert(value: Any) -> bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in {"true", "false"}:
                return value.lower() == "true"
            raise ValueError("expected true or false")

        return self._get(name, convert)

    def choice(self, name: str, allowed: tuple[str, ...]) -> str:
        def convert(value: Any) -> str:
            if value not in allowed:
                raise ValueError(f"expected one of {', '.join(allowed)}")
            return value

        return self._get(name, convert)

    def instance_types(self, name: str) -> tuple[str, ...]:
        def convert(value: Any) -> tuple[str, ...]:
            # `-c key=value` gives a string: accept JSON or a comma-separated list.
            if isinstance(value, str):
                text = value.strip()
                items = json.loads(text) if text.startswith("[") else text.split(",")
            else:
                items = value
            if not isinstance(items, list | tuple) or not items:
                raise ValueError("expected a non-empty list of instance families or types")
            cleaned = tuple(str(i).strip().lower() for i in items)
            bad = [i for i in cleaned if not _INSTANCE_TYPE.match(i)]
            if bad:
                raise ValueError(f"not instance families or types: {', '.join(bad)}")
            if len(set(cleaned)) != len(cleaned):
                raise ValueError("duplicate instance types")
            return cleaned

        return self._get(name, convert)
