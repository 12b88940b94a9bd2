"""Ingest's reading of SQS bodies: every documented S3 delivery becomes the same notice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lambdas.ingest.notices import Action, InvalidEventError, parse_body

EVENTS = Path(__file__).resolve().parent.parent / "events"


def _body(name: str) -> str:
    return json.loads((EVENTS / name).read_text())["Records"][0]["body"]


@pytest.mark.parametrize(
    "name",
    [
        "s3-put-in-sqs.json",
        "s3-put-via-sns-in-sqs.json",
        "s3-object-created-eventbridge-in-sqs.json",
    ],
)
def test_an_upload_reads_the_same_in_every_envelope(name: str) -> None:
    [notice] = parse_body(_body(name))
    assert notice.action is Action.CREATED
    assert notice.bucket == "meshdrop-photos"
    assert notice.key == "images/uploaded/kitchen/café mug.jpg"
    assert notice.etag == "d41d8cd98f00b204e9800998ecf8427e"
    assert notice.version_id == "096fKKXTRTtl3on89fVO.nfljtsv6qko"


def test_sns_raw_delivery_is_the_notification_itself() -> None:
    message = json.loads(_body("s3-put-via-sns-in-sqs.json"))["Message"]
    assert parse_body(message) == parse_body(_body("s3-put-in-sqs.json"))


@pytest.mark.parametrize(
    ("name", "event"),
    [
        ("s3-delete-marker-in-sqs.json", "ObjectRemoved:DeleteMarkerCreated"),
        ("s3-object-deleted-eventbridge-in-sqs.json", "Object Deleted"),
    ],
)
def test_removals(name: str, event: str) -> None:
    [notice] = parse_body(_body(name))
    assert notice.action is Action.REMOVED
    assert notice.event_name == event
    assert notice.size is None


def test_the_test_event_has_no_notices() -> None:
    assert parse_body(_body("s3-test-event-in-sqs.json")) == []


def test_an_unversioned_bucket_says_null() -> None:
    body = json.loads(_body("s3-put-in-sqs.json"))
    body["Records"][0]["s3"]["object"]["versionId"] = None
    [notice] = parse_body(json.dumps(body))
    assert notice.version_id is None
    assert notice.version == "d41d8cd98f00b204e9800998ecf8427e"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (None, "no text body"),
        ("{", "not JSON"),
        ('"text"', "not an object"),
        ('{"Records": [{"eventSource": "aws:sqs"}]}', "malformed"),
        (
            '{"Type": "Notification", "MessageId": "m", "TopicArn": "arn:x", "Message": "hi"}',
            "not JSON",
        ),
        (
            '{"Type": "Notification", "MessageId": "m", "TopicArn": "arn:x", "Message": '
            '"{\\"Type\\": \\"Notification\\"}"}',
            "not an S3 notification",  # SNS inside SNS is no delivery S3 makes
        ),
        ("x" * 300_000, "longer than"),
    ],
)
def test_invalid_bodies_say_why(body: object, reason: str) -> None:
    with pytest.raises(InvalidEventError, match=reason):
        parse_body(body)


def test_keys_s3_cannot_hold_are_invalid() -> None:
    body = json.loads(_body("s3-put-in-sqs.json"))
    body["Records"][0]["s3"]["object"]["key"] = "images/uploaded/" + "x" * 1100 + ".jpg"
    with pytest.raises(InvalidEventError, match="longer than S3 allows"):
        parse_body(json.dumps(body))
    body["Records"][0]["s3"]["object"]["key"] = "images/uploaded/\ud800.jpg"
    with pytest.raises(InvalidEventError, match="not valid Unicode"):
        parse_body(json.dumps(body))
