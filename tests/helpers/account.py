"""A mocked account for the generator's container entrypoint: a bucket, a meshdrop event bus,
and a queue its events land on so a test can read what was emitted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

REGION = "us-east-1"


@dataclass
class Account:
    s3: Any
    events: Any
    sqs: Any
    queue_url: str

    def received(self) -> list[dict[str, Any]]:
        """Every meshdrop event the bus delivered since the last call, in order."""
        out: list[dict[str, Any]] = []
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10
            ).get("Messages", [])
            if not messages:
                return out
            for m in messages:
                out.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])


@contextmanager
def mocked_account(
    monkeypatch: pytest.MonkeyPatch, *, bucket: str, bus: str, versioned: bool = True
) -> Iterator[Account]:
    """Fake credentials only, then moto: ``bucket`` (versioned or not) and ``bus`` routing
    every meshdrop event to a queue."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        events = boto3.client("events", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        s3.create_bucket(Bucket=bucket)
        if versioned:
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        events.create_event_bus(Name=bus)
        url = sqs.create_queue(QueueName="events")["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        pattern = json.dumps({"source": ["meshdrop"]})
        events.put_rule(Name="all", EventBusName=bus, EventPattern=pattern)
        events.put_targets(
            Rule="all",
            EventBusName=bus,
            Targets=[{"Id": "q", "Arn": attributes["Attributes"]["QueueArn"]}],
        )
        yield Account(s3, events, sqs, url)
