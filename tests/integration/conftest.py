"""Moto fixtures for the Lambda functions: the stack's resources in a mocked account.

Resources come from :func:`meshdrop.local.resources.create_resources` (the same ones the local
pipeline runs on), so these tests exercise the handlers against the stack's real wiring: the
ingest function's events reach the state queue through the bus rule, and SNS notifications land
in an SQS inbox where they can be counted.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import boto3
import jsonschema
import pytest
from moto import mock_aws
from moto.server import ThreadedMotoServer

from lambdas.common import clients, settings
from meshdrop.local.resources import LocalResources, ResourceNames, create_resources
from meshdrop_contract import DetailType, job_id_for, schema
from meshdrop_contract.wiring import CLI_ENV_BUCKET, CLI_ENV_STACK, CLI_ENV_TABLE

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"
REGION = "us-east-1"


def load_event(name: str) -> dict[str, Any]:
    """A sample event from ``tests/events``."""
    return json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))


@dataclass
class FakeContext:
    """What Powertools reads from the Lambda context."""

    function_name: str = "meshdrop-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:meshdrop-test"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


# -- images ------------------------------------------------------------------------------------


# -- the mocked stack --------------------------------------------------------------------------


def validate_detail(detail_type: str, detail: dict[str, Any]) -> None:
    """Raise if ``detail`` does not validate against the contract's schema for its type."""
    spec = schema(DetailType(detail_type))
    jsonschema.validators.validator_for(spec)(spec).validate(detail)


@dataclass
class Stack:
    """The mocked account plus helpers to drive the two functions."""

    res: LocalResources
    submit_calls: list[dict[str, Any]]

    def __post_init__(self) -> None:
        self.s3 = boto3.client("s3", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.batch = boto3.client("batch", region_name=REGION)
        self.table = boto3.resource("dynamodb", region_name=REGION).Table(self.res.table)
        self.events: list[dict[str, Any]] = []

    # S3 and the ingest function

    def put(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> dict[str, Any]:
        return self.s3.put_object(
            Bucket=self.res.bucket, Key=key, Body=data, Metadata=metadata or {}
        )

    def s3_record(self, key: str, put: dict[str, Any] | None = None) -> dict[str, Any]:
        """An SQS record carrying S3's notification for ``key`` (key URL-encoded, as S3 does)."""
        obj: dict[str, Any] = {"key": quote_plus(key, safe="/"), "size": 1, "sequencer": "0A"}
        if put is not None:
            obj["eTag"] = put["ETag"].strip('"')
            if put.get("VersionId"):
                obj["versionId"] = put["VersionId"]
        else:
            obj["eTag"] = "0" * 32
        body = {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "awsRegion": REGION,
                    "eventTime": "2025-11-25T12:00:00.000Z",
                    "eventName": "ObjectCreated:Put",
                    "s3": {
                        "s3SchemaVersion": "1.0",
                        "bucket": {
                            "name": self.res.bucket,
                            "arn": f"arn:aws:s3:::{self.res.bucket}",
                        },
                        "object": obj,
                    },
                }
            ]
        }
        return sqs_record(json.dumps(body), self.res.ingest_queue_arn)

    def job_id(self, key: str, put: dict[str, Any]) -> str:
        return job_id_for(self.res.bucket, key, put.get("VersionId") or put["ETag"].strip('"'))

    def ingest(self, *records: dict[str, Any]) -> dict[str, Any]:
        from lambdas.ingest.handler import lambda_handler

        return lambda_handler({"Records": list(records)}, FakeContext("meshdrop-ingest"))

    def upload(
        self, key: str, data: bytes, metadata: dict[str, str] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Put an object and deliver its notification once; the job id and handler response."""
        put = self.put(key, data, metadata)
        response = self.ingest(self.s3_record(key, put))
        return self.job_id(key, put), response

    # DynamoDB

    def job(self, job_id: str) -> dict[str, Any] | None:
        from meshdrop_contract import job_pk
        from meshdrop_contract.jobs import from_dynamo

        item = self.table.get_item(Key={"pk": job_pk(job_id)}, ConsistentRead=True).get("Item")
        return from_dynamo(item) if item else None

    def all_items(self) -> list[dict[str, Any]]:
        return self.table.scan(ConsistentRead=True)["Items"]

    # Events, notifications, the state function

    def drain_events(self) -> list[dict[str, Any]]:
        """New events the rules routed to the state queue (all validated against the schemas)."""
        fresh: list[dict[str, Any]] = []
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.res.state_queue_url, MaxNumberOfMessages=10
            ).get("Messages", [])
            if not messages:
                break
            for message in messages:
                event = json.loads(message["Body"])
                if event.get("source") == "meshdrop":
                    validate_detail(event["detail-type"], event["detail"])
                fresh.append(event)
                self.sqs.delete_message(
                    QueueUrl=self.res.state_queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
        self.events.extend(fresh)
        return fresh

    def notifications(self) -> list[tuple[dict[str, Any], dict[str, str]]]:
        """SNS notifications delivered so far: (message, message attributes)."""
        out = []
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.res.notification_queue_url,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                return out
            for message in messages:
                attributes = {
                    k: v["StringValue"] for k, v in message.get("MessageAttributes", {}).items()
                }
                out.append((json.loads(message["Body"]), attributes))
                self.sqs.delete_message(
                    QueueUrl=self.res.notification_queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                )

    def state(self, event: dict[str, Any]) -> dict[str, Any]:
        from lambdas.state.handler import lambda_handler

        return lambda_handler(event, FakeContext("meshdrop-state"))

    def batch_event(self, name: str, job_id: str, **detail: Any) -> dict[str, Any]:
        """A sample Batch event retargeted to ``job_id`` on this stack's queue."""
        event = load_event(name)
        event["detail"]["jobName"] = f"meshdrop-{job_id}"
        event["detail"]["jobQueue"] = self.res.job_queue_arn
        # The Batch job the record names: the state function ignores events of other Batch jobs.
        recorded = (self.job(job_id) or {}).get("batch_job_id")
        if recorded:
            event["detail"]["jobId"] = recorded
        event["detail"].update(detail)
        return event


def sqs_record(body: str, queue_arn: str) -> dict[str, Any]:
    message_id = str(uuid.uuid4())
    return {
        "messageId": message_id,
        "receiptHandle": f"rh-{message_id}",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1764072000000",
            "SenderId": "s3.amazonaws.com",
            "ApproximateFirstReceiveTimestamp": "1764072000000",
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def _linearized(method: Callable[..., Any], lock: threading.Lock) -> Callable[..., Any]:
    @wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return method(*args, **kwargs)

    return locked


@pytest.fixture(scope="module")
def _mocked_stack() -> Iterator[Stack]:
    """One mocked account per test module: creating the resources is the slow part."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }.items():
            mp.setenv(name, value)
        mp.delenv("AWS_ENDPOINT_URL", raising=False)
        mp.delenv("AWS_PROFILE", raising=False)
        # Real DynamoDB applies a conditional write atomically; moto's in-memory backend does
        # not under threads, so serialise its writes as the service would.
        from moto.dynamodb.models import DynamoDBBackend

        lock = threading.Lock()
        for method in ("put_item", "update_item", "delete_item"):
            mp.setattr(DynamoDBBackend, method, _linearized(getattr(DynamoDBBackend, method), lock))
        with mock_aws(config={"batch": {"use_docker": False}}):
            res = create_resources(ResourceNames(prefix=f"t{uuid.uuid4().hex[:8]}"))
            for name, value in res.lambda_env(job_ttl_days=7).items():
                mp.setenv(name, value)
            _reset_lambda_caches()
            try:
                yield Stack(res=res, submit_calls=[])
            finally:
                _reset_lambda_caches()


@pytest.fixture
def stack(_mocked_stack: Stack) -> Iterator[Stack]:
    """The module's mocked stack, emptied: no jobs, no queued events, no counted submits."""
    stack = _mocked_stack
    with stack.table.batch_writer() as batch:
        for item in stack.all_items():
            batch.delete_item(Key={"pk": item["pk"]})
    # Objects too: an asset or error file one test left must not answer another's question;
    # first, so the removal notifications are drained below.
    # (Delete markers, not version deletes: moto cannot list versions behind delete markers.)
    listed = stack.s3.list_objects_v2(Bucket=stack.res.bucket)
    for entry in listed.get("Contents", []):
        stack.s3.delete_object(Bucket=stack.res.bucket, Key=entry["Key"])
    # PurgeQueue is allowed once a minute; receiving and deleting is not limited.
    for url in (
        stack.res.state_queue_url,
        stack.res.notification_queue_url,
        stack.res.ingest_queue_url,
    ):
        while messages := stack.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for message in messages:
                stack.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    stack.submit_calls.clear()
    stack.events.clear()

    def count_submit(params: dict[str, Any], **_: Any) -> None:
        stack.submit_calls.append(params)

    # On the default session, so every client created from now on counts, whichever copy of
    # the lambdas modules created it (the local pipeline re-imports them under its own env).
    events = boto3.DEFAULT_SESSION.events if boto3.DEFAULT_SESSION else None
    if events is None:
        boto3.setup_default_session()
        events = boto3.DEFAULT_SESSION.events  # type: ignore[union-attr]
    events.register("provide-client-params.batch.SubmitJob", count_submit)
    _reset_lambda_caches()
    try:
        yield stack
    finally:
        events.unregister("provide-client-params.batch.SubmitJob", count_submit)
        _reset_lambda_caches()


def _reset_lambda_caches() -> None:
    """Forget cached settings and clients in every loaded copy of the lambdas modules."""
    modules = {id(m): m for m in (clients, settings)}
    for name in ("lambdas.common.clients", "lambdas.common.settings"):
        if (module := sys.modules.get(name)) is not None:
            modules[id(module)] = module
    for module in modules.values():
        if hasattr(module, "reset_clients"):
            module.reset_clients()
        else:
            module.ingest_settings.cache_clear()
            module.state_settings.cache_clear()


# -- a moto server for the command-line tools, which talk to AWS over HTTP --------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Point boto3 (and so the CLI) at the moto server with fake credentials only."""
    for name in (CLI_ENV_BUCKET, CLI_ENV_TABLE, CLI_ENV_STACK, "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    return moto_endpoint
