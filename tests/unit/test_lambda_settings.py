"""Lambda settings: validated once, a missing or malformed variable is a clear error."""

from __future__ import annotations

import pytest

from lambdas.common.settings import ConfigurationError, IngestSettings, StateSettings
from meshdrop_contract import MAX_IMAGE_BYTES

INGEST_ENV = {
    "TABLE_NAME": "jobs",
    "EVENT_BUS_NAME": "bus",
    "JOB_QUEUE": "queue",
    "JOB_DEFINITION": "def",
}


def test_ingest_settings_with_defaults_for_limits() -> None:
    settings = IngestSettings.from_env(INGEST_ENV)
    assert settings.table_name == "jobs"
    assert settings.max_image_bytes == MAX_IMAGE_BYTES
    assert IngestSettings.from_env(INGEST_ENV | {"MAX_IMAGE_PIXELS": "1000"}).max_image_pixels == (
        1000
    )


@pytest.mark.parametrize("missing", sorted(INGEST_ENV))
def test_a_missing_variable_is_named(missing: str) -> None:
    env = {k: v for k, v in INGEST_ENV.items() if k != missing}
    with pytest.raises(ConfigurationError, match=f"environment variable {missing} is not set"):
        IngestSettings.from_env(env)


@pytest.mark.parametrize("value", ["lots", "0", "-5", "1.5"])
def test_a_malformed_number_is_named(value: str) -> None:
    with pytest.raises(ConfigurationError, match="JOB_TTL_DAYS"):
        IngestSettings.from_env(INGEST_ENV | {"JOB_TTL_DAYS": value})


def test_state_settings_need_the_topic() -> None:
    with pytest.raises(ConfigurationError, match="TOPIC_ARN"):
        StateSettings.from_env({"TABLE_NAME": "jobs"})
    settings = StateSettings.from_env({"TABLE_NAME": "jobs", "TOPIC_ARN": "arn:t"})
    with pytest.raises(AttributeError):
        settings.topic_arn = "other"  # type: ignore[misc]
    assert settings.bucket_name is None  # events' buckets unchecked, as before the setting
    env = {"TABLE_NAME": "jobs", "TOPIC_ARN": "arn:t", "BUCKET_NAME": " photos "}
    assert StateSettings.from_env(env).bucket_name == "photos"


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_the_ingest_handler_fails_loudly_without_its_configuration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lambdas.common import settings
    from lambdas.ingest.handler import lambda_handler
    from tests.integration.conftest import FakeContext

    for name in INGEST_ENV:
        monkeypatch.delenv(name, raising=False)
    settings.ingest_settings.cache_clear()
    try:
        with pytest.raises(ConfigurationError, match="TABLE_NAME"):
            lambda_handler({"Records": []}, FakeContext())
    finally:
        settings.ingest_settings.cache_clear()
