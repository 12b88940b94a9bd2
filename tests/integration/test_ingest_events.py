"""Ingest fed S3's real deliveries on a mocked account: envelopes, removals, folders, stale events.

The fixtures in ``tests/events`` used here are AWS-documented shapes, retargeted at the mocked
bucket, key and object version before delivery:

* ``s3-put-in-sqs.json``, ``s3-folder-placeholder-in-sqs.json``, ``s3-delete-marker-in-sqs.json``:
  "Event message structure" (Amazon S3 User Guide, notification-content-structure); the folder
  placeholder is what the console's "Create folder" writes (a 0-byte ``<prefix>/`` object), the
  delete marker is ``ObjectRemoved:DeleteMarkerCreated`` (no size, no eTag).
* ``s3-put-via-sns-in-sqs.json``: the SQS body SNS delivers without raw message delivery,
  "Fanout to Amazon SQS queues" (Amazon SNS Developer Guide, SendMessageToSQS), around the S3
  notification above.
* ``s3-object-created-eventbridge-in-sqs.json``, ``s3-object-deleted-eventbridge-in-sqs.json``:
  "EventBridge event message structure" (Amazon S3 User Guide, ev-events), "Object created" and
  "Object deleted (using DeleteObject)", delivered by an EventBridge rule to SQS (the event is
  the body).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote_plus

import pytest

from lambdas.common.settings import ingest_settings
from lambdas.ingest.service import Outcome
from meshdrop_contract import JobState
from tests.helpers.photos import image_bytes
from tests.integration.conftest import Stack, load_event, sqs_record

KEY = "images/uploaded/kitchen/café mug.jpg"
ASSET = "3d_assets/uploaded/kitchen/café mug.glb"
THUMB = "3d_assets/uploaded/kitchen/café mug.thumb.png"


def _retarget(body: dict[str, Any], stack: Stack, key: str, put: dict[str, Any] | None) -> None:
    """Point a documented S3 shape (notification or EventBridge) at the mocked object."""
    encoded = quote_plus(key, safe="/")
    for record in body.get("Records", []):
        record["s3"]["bucket"]["name"] = stack.res.bucket
        obj = record["s3"]["object"]
        obj["key"] = encoded
        if put is not None:
            obj["eTag"] = put["ETag"].strip('"')
            obj["versionId"] = put["VersionId"]
    if "detail" in body:
        body["detail"]["bucket"]["name"] = stack.res.bucket
        obj = body["detail"]["object"]
        obj["key"] = encoded
        if put is not None:
            obj["etag"] = put["ETag"].strip('"')
            obj["version-id"] = put["VersionId"]


def delivery(name: str, stack: Stack, key: str, put: dict[str, Any] | None) -> dict[str, Any]:
    """The SQS record of fixture ``name`` about ``key`` (and ``put``'s version, if given)."""
    body = json.loads(load_event(name)["Records"][0]["body"])
    if body.get("Type") == "Notification":
        inner = json.loads(body["Message"])
        _retarget(inner, stack, key, put)
        body["Message"] = json.dumps(inner)
    else:
        _retarget(body, stack, key, put)
    return sqs_record(json.dumps(body), stack.res.ingest_queue_arn)


def _events(stack: Stack, detail_type: str) -> list[dict[str, Any]]:
    return [e for e in stack.drain_events() if e["detail-type"] == detail_type]


def _jobs(stack: Stack) -> list[dict[str, Any]]:
    return [i for i in stack.all_items() if str(i["pk"]).startswith("job#")]


# -- envelopes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fixture",
    [
        "s3-put-in-sqs.json",
        "s3-put-via-sns-in-sqs.json",
        "s3-object-created-eventbridge-in-sqs.json",
    ],
)
def test_every_envelope_of_an_upload_makes_the_same_job(stack: Stack, fixture: str) -> None:
    put = stack.put(KEY, image_bytes())
    assert stack.ingest(delivery(fixture, stack, KEY, put)) == {"batchItemFailures": []}

    job = stack.job(stack.job_id(KEY, put)) or {}
    assert job["state"] == JobState.SUBMITTED
    assert job["source_key"] == KEY
    assert job["source_version"] == put["VersionId"]
    assert job["batch_job_id"]
    assert len(stack.submit_calls) == 1


def test_sns_raw_delivery_and_the_envelope_are_one_upload(stack: Stack) -> None:
    put = stack.put(KEY, image_bytes())
    wrapped = delivery("s3-put-via-sns-in-sqs.json", stack, KEY, put)
    # Raw message delivery hands on the published message itself: the S3 notification.
    raw = sqs_record(json.loads(wrapped["body"])["Message"], stack.res.ingest_queue_arn)
    assert stack.ingest(wrapped, raw) == {"batchItemFailures": []}
    assert len(_jobs(stack)) == 1
    assert len(stack.submit_calls) == 1


# -- what starts no work ---------------------------------------------------------------------------


def test_a_folder_placeholder_is_ignored_silently(stack: Stack) -> None:
    stack.put("images/uploaded/kitchen/", b"")
    record = delivery("s3-folder-placeholder-in-sqs.json", stack, "images/uploaded/kitchen/", None)
    assert stack.ingest(record) == {"batchItemFailures": []}
    assert stack.all_items() == []
    assert stack.drain_events() == []
    assert stack.notifications() == []
    assert stack.submit_calls == []


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("not json at all", "not JSON"),
        ("[1, 2, 3]", "not an object"),
        ('{"hello": "world"}', "not an S3 notification"),
        ('{"Records": []}', "malformed"),
        ('{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}]}', "malformed"),
        (
            '{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": '
            '{"bucket": {"name": "b"}, "object": {"key": "images/uploaded/a.jpg"}}}]}',
            "malformed",  # a bucket name too short to exist
        ),
        (
            '{"Type": "Notification", "MessageId": "m", "TopicArn": "x", "Message": "{}"}',
            "malformed",
        ),
        ('{"source": "aws.s3", "detail-type": "Object Created", "detail": {}}', "malformed"),
    ],
)
def test_invalid_bodies_are_counted_and_dropped(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, body: str, why: str
) -> None:
    from lambdas.common.observability import metrics

    counted: list[str] = []
    monkeypatch.setattr(metrics, "add_metric", lambda name, *a, **k: counted.append(name))
    warnings: list[str] = []
    from lambdas.common.observability import logger

    real_warning = logger.warning

    def capture(msg: object, *args: Any, **kwargs: Any) -> None:
        warnings.append(str((kwargs.get("extra") or {}).get("reason", "")))
        real_warning(msg, *args, **kwargs)

    monkeypatch.setattr(logger, "warning", capture)

    assert stack.ingest(sqs_record(body, stack.res.ingest_queue_arn)) == {"batchItemFailures": []}
    assert "InvalidEvents" in counted
    assert any(why in reason for reason in warnings), warnings
    assert stack.all_items() == []
    assert stack.submit_calls == []


def test_a_created_event_without_etag_or_version_is_invalid(stack: Stack) -> None:
    body = json.loads(load_event("s3-put-in-sqs.json")["Records"][0]["body"])
    obj = body["Records"][0]["s3"]["object"]
    del obj["eTag"], obj["versionId"]
    record = sqs_record(json.dumps(body), stack.res.ingest_queue_arn)
    assert stack.ingest(record) == {"batchItemFailures": []}
    assert stack.all_items() == []


def test_other_s3_events_start_nothing(stack: Stack) -> None:
    put = stack.put(KEY, image_bytes())
    record = delivery("s3-put-in-sqs.json", stack, KEY, put)
    body = json.loads(record["body"])
    body["Records"][0]["eventName"] = "ObjectTagging:Put"
    record["body"] = json.dumps(body)
    assert stack.ingest(record) == {"batchItemFailures": []}
    assert stack.all_items() == []


# -- removals ------------------------------------------------------------------------------------


def _generated(stack: Stack) -> tuple[str, dict[str, Any]]:
    """An upload processed to SUBMITTED, with its asset and thumbnail in place."""
    put = stack.put(KEY, image_bytes())
    assert stack.ingest(delivery("s3-put-in-sqs.json", stack, KEY, put)) == {
        "batchItemFailures": []
    }
    for key in (ASSET, THUMB):
        stack.s3.put_object(Bucket=stack.res.bucket, Key=key, Body=b"x")
    return stack.job_id(KEY, put), put


def _exists(stack: Stack, key: str) -> bool:
    listed = stack.s3.list_objects_v2(Bucket=stack.res.bucket, Prefix=key).get("Contents", [])
    return any(o.get("Key") == key for o in listed)


@pytest.mark.parametrize(
    "fixture", ["s3-delete-marker-in-sqs.json", "s3-object-deleted-eventbridge-in-sqs.json"]
)
def test_deleting_a_photo_keeps_its_asset_and_notes_it_on_the_job(
    stack: Stack, fixture: str
) -> None:
    job_id, _ = _generated(stack)
    stack.s3.delete_object(Bucket=stack.res.bucket, Key=KEY)  # a delete marker

    assert stack.ingest(delivery(fixture, stack, KEY, None)) == {"batchItemFailures": []}
    job = stack.job(job_id) or {}
    assert job["source_deleted"] is True
    assert job["state"] == JobState.SUBMITTED
    assert _exists(stack, ASSET) and _exists(stack, THUMB)
    assert stack.notifications() == []


def test_the_delete_setting_takes_the_asset_and_thumbnail_too(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESHDROP_DELETE_ASSETS_WITH_SOURCE", "true")
    ingest_settings.cache_clear()
    job_id, _ = _generated(stack)
    stack.s3.delete_object(Bucket=stack.res.bucket, Key=KEY)

    record = delivery("s3-delete-marker-in-sqs.json", stack, KEY, None)
    assert stack.ingest(record) == {"batchItemFailures": []}
    assert (stack.job(job_id) or {})["source_deleted"] is True
    assert not _exists(stack, ASSET)
    assert not _exists(stack, THUMB)


def test_a_delete_followed_by_a_new_upload_leaves_the_new_photo_its_asset(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESHDROP_DELETE_ASSETS_WITH_SOURCE", "true")
    ingest_settings.cache_clear()
    old_job, _ = _generated(stack)
    stack.s3.delete_object(Bucket=stack.res.bucket, Key=KEY)
    stack.put(KEY, image_bytes("PNG"))  # the key has a photo again before the removal arrives

    record = delivery("s3-delete-marker-in-sqs.json", stack, KEY, None)
    assert stack.ingest(record) == {"batchItemFailures": []}
    assert _exists(stack, ASSET)
    # The marker's version is not the old job's: nothing of the current key is touched.
    assert "source_deleted" not in (stack.job(old_job) or {})


def test_removing_a_key_without_jobs_is_ignored(stack: Stack) -> None:
    record = delivery("s3-delete-marker-in-sqs.json", stack, "images/uploaded/never.jpg", None)
    assert stack.ingest(record) == {"batchItemFailures": []}
    assert stack.all_items() == []


# -- newest photo wins ---------------------------------------------------------------------------


def test_an_old_versions_notification_after_the_new_one_is_never_submitted(stack: Stack) -> None:
    old = stack.put(KEY, image_bytes("JPEG", (200, 200)))
    new = stack.put(KEY, image_bytes("PNG", (120, 120)))
    assert stack.ingest(delivery("s3-put-in-sqs.json", stack, KEY, new)) == {
        "batchItemFailures": []
    }
    assert stack.ingest(delivery("s3-put-in-sqs.json", stack, KEY, old)) == {
        "batchItemFailures": []
    }

    [call] = stack.submit_calls
    assert call["jobName"] == f"meshdrop-{stack.job_id(KEY, new)}"
    stale = stack.job(stack.job_id(KEY, old)) or {}
    assert stale["state"] == JobState.SUPERSEDED
    assert new["VersionId"] in stale["reason"]
    assert (stack.job(stack.job_id(KEY, new)) or {})["state"] == JobState.SUBMITTED
    [superseded] = _events(stack, "Job Superseded")  # validated against its schema on the way
    assert superseded["detail"]["job_id"] == stack.job_id(KEY, old)
    assert stack.notifications() == []
    # Redelivered, the stale notice changes nothing.
    assert stack.ingest(delivery("s3-put-in-sqs.json", stack, KEY, old)) == {
        "batchItemFailures": []
    }
    assert len(stack.submit_calls) == 1
    assert _events(stack, "Job Superseded") == []


# -- records read back ---------------------------------------------------------------------------


def test_a_poisoned_content_record_does_not_stop_a_new_upload(stack: Stack) -> None:
    from lambdas.common.jobstore import JobStore
    from lambdas.ingest.validation import read_checked
    from meshdrop_contract import JobOptions

    data = image_bytes("PNG", (96, 96))
    _, sha256 = read_checked([data], 10**8)
    JobStore(stack.res.table, 7).put_content(
        sha256,
        JobOptions(),
        {"asset_key": "3d_assets/uploaded/a.glb", "faces": "many", "bytes": 64, "job_id": "x"},
    )
    stack.s3.put_object(Bucket=stack.res.bucket, Key="3d_assets/uploaded/a.glb", Body=b"glTF")

    job_id, response = stack.upload("images/uploaded/b.png", data)
    assert response == {"batchItemFailures": []}
    assert (stack.job(job_id) or {})["state"] == JobState.SUBMITTED
    assert len(stack.submit_calls) == 1


def test_a_job_record_with_a_broken_pending_event_is_dropped_not_crashed(stack: Stack) -> None:
    put = stack.put(KEY, image_bytes())
    record = delivery("s3-put-in-sqs.json", stack, KEY, put)
    assert stack.ingest(record) == {"batchItemFailures": []}
    job_id = stack.job_id(KEY, put)
    stack.table.update_item(
        Key={"pk": f"job#{job_id}"},
        UpdateExpression="SET pending_event = :p",
        ExpressionAttributeValues={":p": '{"detail_type": "Job Exploded"}'},
    )
    assert stack.ingest(record) == {"batchItemFailures": []}
    assert "pending_event" not in (stack.job(job_id) or {})
    assert len(stack.submit_calls) == 1


# -- error files ---------------------------------------------------------------------------------


def test_a_rejected_upload_leaves_an_error_file_where_the_asset_would_be(stack: Stack) -> None:
    key = "images/uploaded/kitchen/list.jpg"
    job_id, _ = stack.upload(key, b"hello, this is a shopping list\n" * 4)

    body = stack.s3.get_object(
        Bucket=stack.res.bucket, Key="3d_assets/uploaded/kitchen/list.error.json"
    )
    error = json.loads(body["Body"].read())
    job = stack.job(job_id) or {}
    assert error["job_id"] == job_id
    assert error["reason"] == job["error"]
    assert error["error_kind"] == "bad_input"
    assert error["state"] == "REJECTED"
    assert error["source_key"] == key
    assert error["time"].endswith("Z")


def test_error_files_can_be_turned_off(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESHDROP_ERROR_FILES", "false")
    ingest_settings.cache_clear()
    stack.upload("images/uploaded/kitchen/off.jpg", b"plain text, not a photo\n" * 4)
    assert not _exists(stack, "3d_assets/uploaded/kitchen/off.error.json")


def test_outcomes_name_what_happened(stack: Stack) -> None:
    from lambdas.ingest.service import Ingestor

    put = stack.put(KEY, image_bytes())
    record = delivery("s3-put-in-sqs.json", stack, KEY, put)
    ingestor = Ingestor(ingest_settings())
    assert ingestor.handle_body(record["body"]) == [Outcome.SUBMITTED]
    assert Ingestor(ingest_settings()).handle_body("garbage") == [Outcome.INVALID]
