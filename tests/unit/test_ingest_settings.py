"""Ingest's settings: the submit lease must fit between function and visibility timeouts."""

from __future__ import annotations

import pytest

from lambdas.common.settings import ConfigurationError, IngestSettings

BASE = {
    "TABLE_NAME": "jobs",
    "EVENT_BUS_NAME": "bus",
    "JOB_QUEUE": "queue",
    "JOB_DEFINITION": "def",
}


def test_defaults_fit_the_deployed_clock() -> None:
    settings = IngestSettings.from_env(BASE)
    # infra/ingest.py: 60 s function, 360 s visibility timeout.
    assert 60 < settings.submit_lease_seconds < 360
    assert settings.submit_lease_seconds == 120
    assert settings.delete_assets_with_source is False
    assert settings.error_files is True


def test_the_default_lease_follows_the_function_timeout() -> None:
    env = BASE | {
        "MESHDROP_INGEST_TIMEOUT_SECONDS": "300",
        "MESHDROP_INGEST_VISIBILITY_SECONDS": "1800",
    }
    assert IngestSettings.from_env(env).submit_lease_seconds == 600


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"MESHDROP_SUBMIT_LEASE_SECONDS": "960"}, "shorter than the queue's visibility"),
        ({"MESHDROP_SUBMIT_LEASE_SECONDS": "30"}, "longer than the function timeout"),
        ({"MESHDROP_INGEST_VISIBILITY_SECONDS": "60"}, "leaves no room"),
        ({"MESHDROP_SUBMIT_LEASE_SECONDS": "soon"}, "not an integer"),
        ({"MESHDROP_DELETE_ASSETS_WITH_SOURCE": "maybe"}, "not true or false"),
        ({"MESHDROP_ERROR_FILES": "2"}, "MESHDROP_ERROR_FILES"),
    ],
)
def test_a_lease_or_flag_that_does_not_fit_is_a_configuration_error(
    extra: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        IngestSettings.from_env(BASE | extra)


def test_flags_read_the_usual_spellings() -> None:
    env = BASE | {"MESHDROP_DELETE_ASSETS_WITH_SOURCE": "Yes", "MESHDROP_ERROR_FILES": "off"}
    settings = IngestSettings.from_env(env)
    assert settings.delete_assets_with_source is True
    assert settings.error_files is False
