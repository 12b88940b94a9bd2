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
    #: Account and region; both empty leaves the stack environment-agnostic.
    account: str | None = None
    region: str | None = None
    #: GPU instance families ("g5") or sized types ("g5.2xlarge") Batch may launch.
    gpu_instance_types: tuple[str, ...] = ("g5", "g6")
    max_vcpus: int = 32
    #: Put a Spot compute environment in front of the on-demand one.
    spot: bool = True
    #: Resources of one generator job; must fit the smallest instance type above.
    job_vcpus: int = 4
    job_memory_mib: int = 14_336
    job_timeout_minutes: int = 30
    #: Attempts per job, counting the first (Batch allows 1..10).
    job_attempts: int = 3
    #: Cancel jobs that wait in RUNNABLE this long for a reason capacity will never fix.
    runnable_timeout_minutes: int = 30
    max_image_bytes: int = MAX_IMAGE_BYTES
    max_image_pixels: int = MAX_IMAGE_PIXELS
    log_retention_days: int = 30
    job_ttl_days: int = 90
    #: Days before replaced object versions expire (overwritten uploads and assets).
    noncurrent_version_days: int = 30
    event_archive_days: int = 30
    ingest_reserved_concurrency: int = 5
    ingest_batch_size: int = 10
    #: Alarm when the oldest ingest message is older than this.
    oldest_message_alarm_minutes: int = 15
    alarm_email: str | None = None
    notification_email: str | None = None
    #: Build argument WEIGHTS_URL of the generator image: an https URL of a weights tarball.
    weights_url: str | None = None
    weights_sha256: str | None = None
    #: Alternative to baked weights: an s3:// prefix the job downloads weights from.
    weights_s3_uri: str | None = None
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
        defaults = cls()
        get = _Reader(raw, defaults)
        settings = cls(
            stack_name=get.string("stack_name", _NAME, "letters, digits and '-', max 64"),
            account=get.optional_string("account", _ACCOUNT, "a 12-digit account id"),
            region=get.optional_string("region", _REGION, "a region name such as eu-west-1"),
            gpu_instance_types=get.instance_types("gpu_instance_types"),
            max_vcpus=get.integer("max_vcpus", 1, 10_000),
            spot=get.boolean("spot"),
            job_vcpus=get.integer("job_vcpus", 1, 192),
            job_memory_mib=get.integer("job_memory_mib", 1024, 2_000_000),
            job_timeout_minutes=get.integer("job_timeout_minutes", 1, 24 * 60),
            job_attempts=get.integer("job_attempts", 1, 10),
            runnable_timeout_minutes=get.integer("runnable_timeout_minutes", 10, 24 * 60),
            max_image_bytes=get.integer("max_image_bytes", 1024, 5 * 1024**3),
            max_image_pixels=get.integer("max_image_pixels", 1024, 1_000_000_000),
            log_retention_days=get.one_of_ints("log_retention_days", LOG_RETENTION_CHOICES),
            job_ttl_days=get.integer("job_ttl_days", 1, 3653),
            noncurrent_version_days=get.integer("noncurrent_version_days", 1, 3653),
            event_archive_days=get.integer("event_archive_days", 0, 3653),
            ingest_reserved_concurrency=get.integer("ingest_reserved_concurrency", 2, 1000),
            ingest_batch_size=get.integer("ingest_batch_size", 1, 10),
            oldest_message_alarm_minutes=get.integer("oldest_message_alarm_minutes", 1, 24 * 60),
            alarm_email=get.optional_string("alarm_email", _EMAIL, "an e-mail address"),
            notification_email=get.optional_string(
                "notification_email", _EMAIL, "an e-mail address"
            ),
            weights_url=get.optional_string(
                "weights_url", re.compile(r"^https://\S+$"), "an https:// URL"
            ),
            weights_sha256=get.optional_string(
                "weights_sha256", re.compile(r"^[0-9a-f]{64}$"), "64 lower-case hex digits"
            ),
            weights_s3_uri=get.optional_string("weights_s3_uri", _S3_URI, "s3://bucket/prefix"),
            removal_policy=get.choice("removal_policy", REMOVAL_POLICIES),
            lambda_architecture=get.choice("lambda_architecture", ("arm64", "x86_64")),
        )
        settings._check_consistency()
        return settings

    def _check_consistency(self) -> None:
        if (self.account is None) != (self.region is None):
            raise SettingsError(
                f"set both {CONTEXT_PREFIX}account and {CONTEXT_PREFIX}region, or neither "
                "(neither keeps the stack environment-agnostic)"
            )
        if self.weights_url and not self.weights_sha256:
            raise SettingsError(
                f"{CONTEXT_PREFIX}weights_url needs {CONTEXT_PREFIX}weights_sha256 so the image "
                "build can verify what it bakes in"
            )
        if self.weights_url and self.weights_s3_uri:
            raise SettingsError(
                f"choose one of {CONTEXT_PREFIX}weights_url (baked into the image) and "
                f"{CONTEXT_PREFIX}weights_s3_uri (downloaded by each job)"
            )
        if self.job_vcpus > self.max_vcpus:
            raise SettingsError(
                f"{CONTEXT_PREFIX}job_vcpus={self.job_vcpus} exceeds "
                f"{CONTEXT_PREFIX}max_vcpus={self.max_vcpus}: no job could ever start"
            )

    @property
    def environment(self) -> dict[str, str] | None:
        """``env`` for the stack, or ``None`` for an environment-agnostic one."""
        if self.account and self.region:
            return {"account": self.account, "region": self.region}
        return None


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
