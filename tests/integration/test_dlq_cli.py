"""``meshdrop dlq ls|show|redrive`` against a moto server laid out like the deployed stack.

The stack's outputs name the three dead-letter queues (ingest, EventBridge targets, the state
function's failure destination) and the state function; the messages in them are the shapes
AWS puts there (tests/events/replay/ says where each comes from).
"""

from __future__ import annotations

import io
import json
import socket
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto.server import ThreadedMotoServer
from typer.testing import CliRunner

from meshdrop.cli.remote import app
from meshdrop.remote import dlq
from meshdrop_contract.wiring import (
    CLI_ENV_BUCKET,
    CLI_ENV_STACK,
    CLI_ENV_TABLE,
    STACK_OUTPUT_EVENTS_DLQ,
    STACK_OUTPUT_INGEST_DLQ,
    STACK_OUTPUT_INGEST_QUEUE,
    STACK_OUTPUT_STATE_FAILURES,
    STACK_OUTPUT_STATE_FUNCTION,
)

REGION = "us-east-1"
EVENTS = Path(__file__).resolve().parents[1] / "events" / "replay"
runner = CliRunner()


def _text(name: str) -> str:
    return (EVENTS / name).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    # Lambda without Docker: an invocation is accepted and not run.
    request = urllib.request.Request(
        f"{url}/moto-api/config",
        data=json.dumps({"lambda": {"use_docker": False}}).encode(),
        method="POST",
    )
    urllib.request.urlopen(request).read()
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture
def aws(endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    for name in (CLI_ENV_BUCKET, CLI_ENV_TABLE, CLI_ENV_STACK, "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
    }.items():
        monkeypatch.setenv(name, value)
    return endpoint


@dataclass
class Deployed:
    stack: str
    sqs: Any
    urls: dict[str, str]
    function: str

    def depth(self, name: str) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.urls[name],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(
            attrs["ApproximateNumberOfMessagesNotVisible"]
        )


def _function(name: str) -> None:
    iam = boto3.client("iam")
    role = iam.create_role(
        RoleName=f"{name}-role",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("handler.py", "def lambda_handler(event, context):\n    return event\n")
    boto3.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="handler.lambda_handler",
        Code={"ZipFile": archive.getvalue()},
    )


@pytest.fixture
def deployed(aws: str) -> Deployed:
    """Queues, the state function and a stack whose outputs name them, with failures queued."""
    tag = uuid.uuid4().hex[:8]
    sqs = boto3.client("sqs")
    urls = {
        name: sqs.create_queue(QueueName=f"md-{tag}-{name}")["QueueUrl"]
        for name in ("ingest-queue", dlq.INGEST, dlq.EVENTS, dlq.STATE)
    }
    function = f"md-{tag}-state"
    _function(function)
    outputs = {
        STACK_OUTPUT_INGEST_QUEUE: urls["ingest-queue"],
        STACK_OUTPUT_INGEST_DLQ: urls[dlq.INGEST],
        STACK_OUTPUT_EVENTS_DLQ: urls[dlq.EVENTS],
        STACK_OUTPUT_STATE_FAILURES: urls[dlq.STATE],
        STACK_OUTPUT_STATE_FUNCTION: function,
    }
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {k: {"Value": v} for k, v in outputs.items()},
    }
    stack = f"md-{tag}"
    boto3.client("cloudformation").create_stack(StackName=stack, TemplateBody=json.dumps(template))
    sqs.send_message(QueueUrl=urls[dlq.INGEST], MessageBody=_text("s3-put-mug.json"))
    sqs.send_message(QueueUrl=urls[dlq.EVENTS], MessageBody=_text("batch-succeeded-mug.json"))
    record = _text("lambda-failure-record-batch-succeeded-mug.json")
    sqs.send_message(QueueUrl=urls[dlq.STATE], MessageBody=record)
    sqs.send_message(QueueUrl=urls[dlq.STATE], MessageBody="not an invocation record")
    return Deployed(stack, sqs, urls, function)


def _json(*args: str) -> Any:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_ls_lists_every_queue_with_its_depth(deployed: Deployed) -> None:
    rows = {r["queue"]: r for r in _json("dlq", "ls", "--stack", deployed.stack)}
    assert {q: r["depth"] for q, r in rows.items()} == {"ingest": 1, "events": 1, "state": 2}
    assert all(r["oldest_age_s"] is not None and r["oldest_age_s"] >= 0 for r in rows.values())
    assert rows["state"]["url"] == deployed.urls["state"]


def test_show_peeks_without_deleting(deployed: Deployed, tmp_path: Path) -> None:
    saved = tmp_path / "saved"
    shown = _json("dlq", "show", "state", "--stack", deployed.stack, "--save", str(saved))
    bodies = [m["body"] for m in shown]
    assert "not an invocation record" in bodies
    (record,) = [b for b in bodies if isinstance(b, dict)]
    assert record["requestPayload"]["detail-type"] == "Batch Job State Change"
    assert deployed.depth("state") == 2  # still there
    assert len(list(saved.iterdir())) == 2  # files `meshdrop local replay` takes


def test_redrive_ingest_by_hand_moves_messages_back(deployed: Deployed) -> None:
    result = _json("dlq", "redrive", "ingest", "--by-hand", "--stack", deployed.stack)
    assert (result["method"], result["moved"]) == ("moved", 1)
    assert deployed.depth("ingest") == 0
    (message,) = deployed.sqs.receive_message(QueueUrl=deployed.urls["ingest-queue"])["Messages"]
    assert json.loads(message["Body"]) == json.loads(_text("s3-put-mug.json"))


@pytest.mark.parametrize("queue", ["events", "state"])
def test_redrive_invokes_the_state_function_with_the_original_event(
    deployed: Deployed, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    handed: list[tuple[str, dict[str, Any]]] = []
    real = dlq.invoke_async

    def recording(client: Any, function: str, event: Any) -> None:
        real(client, function, event)  # moto's Lambda answers 202 as AWS does
        handed.append((function, event))

    monkeypatch.setattr(dlq, "invoke_async", recording)
    result = _json("dlq", "redrive", queue, "--stack", deployed.stack)

    expected = json.loads(_text("batch-succeeded-mug.json"))
    assert handed == [(deployed.function, expected)]
    assert result["moved"] == 1
    if queue == "state":  # the message without an event stays, and says why
        assert deployed.depth("state") == 1
        (skipped,) = result["skipped"]
        assert "requestPayload" in skipped
    else:
        assert deployed.depth("events") == 0


def test_redrive_ingest_starts_an_sqs_message_move_task() -> None:
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url="https://sqs.invalid")
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/md-ingest-dlq"
    arn = "arn:aws:sqs:us-east-1:123456789012:md-ingest-dlq"
    queue = dlq.DeadLetterQueue(dlq.INGEST, url, dlq.DESCRIPTIONS[dlq.INGEST])
    with Stubber(sqs) as stub:
        stub.add_response(
            "get_queue_attributes",
            {"Attributes": {"QueueArn": arn}},
            {"QueueUrl": url, "AttributeNames": ["QueueArn"]},
        )
        stub.add_response("start_message_move_task", {"TaskHandle": "task-1"}, {"SourceArn": arn})
        stub.add_response(
            "get_queue_attributes",
            {"Attributes": {"ApproximateNumberOfMessages": "0"}},
        )
        result = dlq.redrive_sqs(sqs, dlq.DlqStack({dlq.INGEST: queue}), queue, limit=10)
    assert (result.method, result.task_handle) == ("message-move-task", "task-1")


def test_an_old_stack_without_dlq_outputs_says_so(aws: str) -> None:
    stack = f"old-{uuid.uuid4().hex[:8]}"
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}, "Outputs": {}}
    boto3.client("cloudformation").create_stack(StackName=stack, TemplateBody=json.dumps(template))
    result = runner.invoke(app, ["dlq", "show", "ingest", "--stack", stack])
    assert result.exit_code == 1
    assert "No dead-letter queue 'ingest'" in result.output
