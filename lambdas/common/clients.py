"""AWS clients, created once per container and reused across invocations.

``AWS_ENDPOINT_URL`` (moto server in local mode) is honoured by boto3 itself. Tests that start a
fresh mocked account call :func:`reset_clients` so no client outlives its mock.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

# Standard mode retries throttling and 5xx with jittered exponential backoff.
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})


@cache
def client(service: str) -> Any:
    return boto3.client(service, config=_CONFIG)  # type: ignore[call-overload]


@cache
def dynamodb_table(name: str) -> Any:
    resource: Any = boto3.resource("dynamodb", config=_CONFIG)  # type: ignore[call-overload]
    return resource.Table(name)


def reset_clients() -> None:
    client.cache_clear()
    dynamodb_table.cache_clear()
