"""Lambda configuration, read from the environment once per container (at cold start).

Names come from :mod:`meshdrop_contract.wiring`. Resource names are required; the limits and the
job TTL have the contract's defaults because a deployment only sometimes overrides them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from meshdrop_contract import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS
from meshdrop_contract.wiring import (
    ENV_EVENT_BUS_NAME,
    ENV_JOB_DEFINITION,
    ENV_JOB_QUEUE,
    ENV_JOB_TTL_DAYS,
    ENV_MAX_IMAGE_BYTES,
    ENV_MAX_IMAGE_PIXELS,
    ENV_TABLE_NAME,
    ENV_TOPIC_ARN,
)

DEFAULT_JOB_TTL_DAYS = 90


class ConfigurationError(RuntimeError):
    """The function's environment is incomplete or malformed; the message names the variable."""


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"environment variable {name} is not set")
    return value


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"environment variable {name}={raw!r} is not an integer") from None
    if value <= 0:
        raise ConfigurationError(f"environment variable {name}={raw!r} must be positive")
    return value


@dataclass(frozen=True, slots=True)
class IngestSettings:
    table_name: str
    event_bus_name: str
    job_queue: str
    job_definition: str
    max_image_bytes: int = MAX_IMAGE_BYTES
    max_image_pixels: int = MAX_IMAGE_PIXELS
    job_ttl_days: int = DEFAULT_JOB_TTL_DAYS

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> IngestSettings:
        """Validate ``env``; :class:`ConfigurationError` names the first bad variable."""
        return cls(
            table_name=_required(env, ENV_TABLE_NAME),
            event_bus_name=_required(env, ENV_EVENT_BUS_NAME),
            job_queue=_required(env, ENV_JOB_QUEUE),
            job_definition=_required(env, ENV_JOB_DEFINITION),
            max_image_bytes=_positive_int(env, ENV_MAX_IMAGE_BYTES, MAX_IMAGE_BYTES),
            max_image_pixels=_positive_int(env, ENV_MAX_IMAGE_PIXELS, MAX_IMAGE_PIXELS),
            job_ttl_days=_positive_int(env, ENV_JOB_TTL_DAYS, DEFAULT_JOB_TTL_DAYS),
        )


@dataclass(frozen=True, slots=True)
class StateSettings:
    table_name: str
    topic_arn: str
    job_ttl_days: int = DEFAULT_JOB_TTL_DAYS

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> StateSettings:
        """Validate ``env``; :class:`ConfigurationError` names the first bad variable."""
        return cls(
            table_name=_required(env, ENV_TABLE_NAME),
            topic_arn=_required(env, ENV_TOPIC_ARN),
            job_ttl_days=_positive_int(env, ENV_JOB_TTL_DAYS, DEFAULT_JOB_TTL_DAYS),
        )


@cache
def ingest_settings() -> IngestSettings:
    """Settings of the ingest function, validated on first use and then kept."""
    return IngestSettings.from_env(os.environ)


@cache
def state_settings() -> StateSettings:
    """Settings of the state function, validated on first use and then kept."""
    return StateSettings.from_env(os.environ)
