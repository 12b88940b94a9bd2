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
    ENV_BUCKET_NAME,
    ENV_DELETE_ASSETS_WITH_SOURCE,
    ENV_ERROR_FILES,
    ENV_EVENT_BUS_NAME,
    ENV_INGEST_TIMEOUT_SECONDS,
    ENV_INGEST_VISIBILITY_SECONDS,
    ENV_JOB_DEFINITION,
    ENV_JOB_QUEUE,
    ENV_JOB_TTL_DAYS,
    ENV_MAX_IMAGE_BYTES,
    ENV_MAX_IMAGE_PIXELS,
    ENV_PACK_SIZE,
    ENV_SUBMIT_LEASE_SECONDS,
    ENV_TABLE_NAME,
    ENV_TOPIC_ARN,
)

DEFAULT_JOB_TTL_DAYS = 90
#: What infra/ingest.py deploys: a 60 s function behind a queue with 6 x 60 s visibility.
DEFAULT_INGEST_TIMEOUT_SECONDS = 60
DEFAULT_INGEST_VISIBILITY_SECONDS = 360


class ConfigurationError(RuntimeError):
    """The function's environment is incomplete or malformed; the message names the variable."""


def required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"environment variable {name} is not set")
    return value


def positive_int(env: Mapping[str, str], name: str, default: int) -> int:
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


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigurationError(f"environment variable {name}={raw!r} is not true or false")


def submit_lease_seconds(env: Mapping[str, str]) -> int:
    """The submit lease: longer than the function may run, shorter than the queue hides a message.

    Longer than the function timeout, so a live holder is never overtaken while it may still
    call SubmitJob; shorter than the visibility timeout, so a holder that died without releasing
    it (a timeout, an out-of-memory kill) has lost it by the time SQS delivers the message again.
    Default: twice the function timeout, if that fits.
    """
    timeout = positive_int(env, ENV_INGEST_TIMEOUT_SECONDS, DEFAULT_INGEST_TIMEOUT_SECONDS)
    visibility = positive_int(env, ENV_INGEST_VISIBILITY_SECONDS, DEFAULT_INGEST_VISIBILITY_SECONDS)
    if visibility <= timeout + 1:
        raise ConfigurationError(
            f"{ENV_INGEST_VISIBILITY_SECONDS}={visibility} leaves no room for a submit lease "
            f"longer than {ENV_INGEST_TIMEOUT_SECONDS}={timeout}"
        )
    default = min(2 * timeout, visibility - 1)
    lease = positive_int(env, ENV_SUBMIT_LEASE_SECONDS, default)
    if not timeout < lease < visibility:
        raise ConfigurationError(
            f"{ENV_SUBMIT_LEASE_SECONDS}={lease} must be longer than the function timeout "
            f"({timeout} s) and shorter than the queue's visibility timeout ({visibility} s)"
        )
    return lease


@dataclass(frozen=True, slots=True)
class IngestSettings:
    table_name: str
    event_bus_name: str
    job_queue: str
    job_definition: str
    max_image_bytes: int = MAX_IMAGE_BYTES
    max_image_pixels: int = MAX_IMAGE_PIXELS
    job_ttl_days: int = DEFAULT_JOB_TTL_DAYS
    #: See :func:`submit_lease_seconds`.
    submit_lease_seconds: int = 2 * DEFAULT_INGEST_TIMEOUT_SECONDS
    #: Deleting a photo deletes its asset, thumbnail and error file too.
    delete_assets_with_source: bool = False
    #: A REJECTED (or FAILED) job leaves ``<name>.error.json`` beside its asset key.
    error_files: bool = True
    #: Photos per Batch job: the new photos of one invocation go in packs of at most this many.
    pack_size: int = 1

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> IngestSettings:
        """Validate ``env``; :class:`ConfigurationError` names the first bad variable."""
        return cls(
            table_name=required(env, ENV_TABLE_NAME),
            event_bus_name=required(env, ENV_EVENT_BUS_NAME),
            job_queue=required(env, ENV_JOB_QUEUE),
            job_definition=required(env, ENV_JOB_DEFINITION),
            max_image_bytes=positive_int(env, ENV_MAX_IMAGE_BYTES, MAX_IMAGE_BYTES),
            max_image_pixels=positive_int(env, ENV_MAX_IMAGE_PIXELS, MAX_IMAGE_PIXELS),
            job_ttl_days=positive_int(env, ENV_JOB_TTL_DAYS, DEFAULT_JOB_TTL_DAYS),
            submit_lease_seconds=submit_lease_seconds(env),
            delete_assets_with_source=_flag(env, ENV_DELETE_ASSETS_WITH_SOURCE, False),
            error_files=error_files_enabled(env),
            pack_size=positive_int(env, ENV_PACK_SIZE, 1),
        )


def error_files_enabled(env: Mapping[str, str]) -> bool:
    """Whether failed and rejected jobs leave an error file (state function may ask it too)."""
    return _flag(env, ENV_ERROR_FILES, True)


@dataclass(frozen=True, slots=True)
class StateSettings:
    table_name: str
    topic_arn: str
    job_ttl_days: int = DEFAULT_JOB_TTL_DAYS
    #: A FAILED job leaves ``<name>.error.json`` beside its asset; a success removes it.
    error_files: bool = True
    #: The stack's photo bucket; events naming another are not believed. ``None``: unchecked.
    bucket_name: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> StateSettings:
        """Validate ``env``; :class:`ConfigurationError` names the first bad variable."""
        return cls(
            table_name=required(env, ENV_TABLE_NAME),
            topic_arn=required(env, ENV_TOPIC_ARN),
            job_ttl_days=positive_int(env, ENV_JOB_TTL_DAYS, DEFAULT_JOB_TTL_DAYS),
            error_files=error_files_enabled(env),
            bucket_name=env.get(ENV_BUCKET_NAME, "").strip() or None,
        )


@cache
def ingest_settings() -> IngestSettings:
    """Settings of the ingest function, validated on first use and then kept."""
    return IngestSettings.from_env(os.environ)


@cache
def state_settings() -> StateSettings:
    """Settings of the state function, validated on first use and then kept."""
    return StateSettings.from_env(os.environ)
