"""Ingest cold start: the clients are made in Lambda's init phase, not during the first record."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lambdas.common import clients, settings
from lambdas.ingest import handler

INGEST_ENV = {
    "TABLE_NAME": "jobs",
    "EVENT_BUS_NAME": "bus",
    "JOB_QUEUE": "queue",
    "JOB_DEFINITION": "def",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}


@pytest.fixture
def fresh_caches() -> Iterator[None]:
    clients.reset_clients()
    settings.ingest_settings.cache_clear()
    yield
    clients.reset_clients()
    settings.ingest_settings.cache_clear()


def test_warm_up_creates_every_client_the_first_record_needs(
    monkeypatch: pytest.MonkeyPatch, fresh_caches: None
) -> None:
    for name, value in INGEST_ENV.items():
        monkeypatch.setenv(name, value)
    handler.warm_up()
    assert clients.client.cache_info().currsize == 3  # s3, batch, events
    assert clients.dynamodb_table.cache_info().currsize == 1
    # The record's own lookups are cache hits from here on.
    hits = clients.client.cache_info().hits
    clients.client("s3")
    assert clients.client.cache_info().hits == hits + 1


def test_warm_up_leaves_a_broken_configuration_to_the_handler(
    monkeypatch: pytest.MonkeyPatch, fresh_caches: None
) -> None:
    for name, value in INGEST_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("JOB_QUEUE")
    handler.warm_up()  # no exception at import time: the batch fails with the reason instead
    assert clients.client.cache_info().currsize == 0
    with pytest.raises(settings.ConfigurationError, match="JOB_QUEUE"):
        settings.ingest_settings()
