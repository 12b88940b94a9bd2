"""The ingest function on a mocked account: one job per upload, bad input rejected early."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from boto3.dynamodb.conditions import Key

from lambdas.common import eventbus
from lambdas.common.settings import ingest_settings
from lambdas.ingest.service import Ingestor, LeaseHeldError, Outcome
from meshdrop_contract import JobSpec, JobState
from meshdrop_contract.jobs import GSI_BY_SOURCE, GSI_BY_STATE
from tests.helpers.photos import exif_rotated_jpeg, image_bytes, png_header_only
from tests.integration.conftest import Stack, load_event

KEY = "images/uploaded/kitchen/mug.jpg"


def _events(stack: Stack, detail_type: str) -> list[dict[str, Any]]:
    return [e for e in stack.drain_events() if e["detail-type"] == detail_type]


def test_an_upload_becomes_one_submitted_job(stack: Stack) -> None:
    data = image_bytes()
    job_id, response = stack.upload(KEY, data, {"preset": "fast"})

    assert response == {"batchItemFailures": []}
    job = stack.job(job_id)
    assert job is not None
    assert job["state"] == JobState.SUBMITTED
    assert job["source_key"] == KEY
    assert job["asset_key"] == "3d_assets/uploaded/kitchen/mug.glb"
    assert job["options"] == {"texture": True, "format": "glb", "preset": "fast"}
    assert job["size"] == len(data)
    assert job["source_version"] and job["etag"]
    assert job["created_at"] <= job["updated_at"]
    # TTL: JOB_TTL_DAYS=7 in the test environment.
    import time

    assert abs(job["expires_at"] - (time.time() + 7 * 86400)) < 120

    [call] = stack.submit_calls
    assert call["jobName"] == f"meshdrop-{job_id}"
    assert call["jobQueue"] == stack.res.job_queue_arn
    assert call["parameters"] == {"job_id": job_id}
    env = {e["name"]: e["value"] for e in call["containerOverrides"]["environment"]}
    spec = JobSpec.from_env(env)
    assert (spec.job_id, spec.source_key, spec.options.preset.value) == (job_id, KEY, "fast")
    assert spec.source_sha256 == job["source_sha256"]
    assert (
        job["batch_job_id"]
        == stack.batch.describe_jobs(jobs=[job["batch_job_id"]])["jobs"][0]["jobId"]
    )

    [accepted] = _events(stack, "Job Accepted")
    assert accepted["detail"]["job_id"] == job_id
    assert accepted["detail"]["batch_job_id"] == job["batch_job_id"]
    # The pending event is gone once it is on the bus.
    assert "pending_event" not in (stack.job(job_id) or {})

    by_state = stack.table.query(
        IndexName=GSI_BY_STATE, KeyConditionExpression=Key("state").eq("SUBMITTED")
    )["Items"]
    by_source = stack.table.query(
        IndexName=GSI_BY_SOURCE, KeyConditionExpression=Key("source_key").eq(KEY)
    )["Items"]
    assert [i["job_id"] for i in by_state] == [job_id]
    assert [i["job_id"] for i in by_source] == [job_id]


def test_duplicate_deliveries_make_one_job_and_one_batch_job(stack: Stack) -> None:
    put = stack.put(KEY, image_bytes())
    records = [stack.s3_record(KEY, put) for _ in range(3)]
    assert stack.ingest(*records) == {"batchItemFailures": []}
    assert stack.ingest(stack.s3_record(KEY, put)) == {"batchItemFailures": []}

    assert len(stack.submit_calls) == 1
    jobs = [i for i in stack.all_items() if i["pk"].startswith("job#")]
    assert len(jobs) == 1
    assert len(_events(stack, "Job Accepted")) == 1


def test_concurrent_deliveries_submit_once(stack: Stack) -> None:
    put = stack.put(KEY, image_bytes(size=(256, 256)))
    body = stack.s3_record(KEY, put)["body"]
    settings = ingest_settings()
    workers = 6
    barrier = threading.Barrier(workers)
    outcomes: list[Outcome | str] = []

    def deliver() -> None:
        ingestor = Ingestor(settings)
        barrier.wait()
        try:
            outcomes.extend(ingestor.handle_body(body))
        except LeaseHeldError:
            outcomes.append("retry")

    threads = [threading.Thread(target=deliver) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert outcomes.count(Outcome.SUBMITTED) == 1
    assert set(outcomes) <= {Outcome.SUBMITTED, Outcome.DUPLICATE, "retry"}
    # The losers' messages come back later and are dropped as duplicates.
    assert Ingestor(settings).handle_body(body) == [Outcome.DUPLICATE]
    assert len(stack.submit_calls) == 1


def test_a_held_submit_lease_fails_only_that_record_for_a_retry(stack: Stack) -> None:
    put = stack.put(KEY, image_bytes())
    other = stack.put("images/uploaded/other.png", image_bytes("PNG"))
    record = stack.s3_record(KEY, put)
    job_id = stack.job_id(KEY, put)
    # Another invocation created the record and holds the lease, still working.
    from lambdas.common.jobstore import JobStore

    store = JobStore(stack.res.table, 7)
    store.create(job_id, JobState.ACCEPTED, {"bucket": stack.res.bucket, "source_key": KEY})
    assert store.claim_submit(job_id, "someone-else", 600)

    response = stack.ingest(record, stack.s3_record("images/uploaded/other.png", other))

    assert response == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    assert len(stack.submit_calls) == 1  # the other upload only
    assert (stack.job(job_id) or {})["state"] == JobState.ACCEPTED


def test_s3_test_event_is_ignored(stack: Stack) -> None:
    response = stack.ingest(*load_event("s3-test-event-in-sqs.json")["Records"])
    assert response == {"batchItemFailures": []}
    assert stack.all_items() == []
    assert stack.drain_events() == []


def test_writes_under_the_asset_prefix_start_nothing(stack: Stack) -> None:
    key = "3d_assets/uploaded/kitchen/mug.glb"
    put = stack.put(key, image_bytes())
    assert stack.ingest(stack.s3_record(key, put)) == {"batchItemFailures": []}
    assert stack.all_items() == []
    assert stack.submit_calls == []
    assert stack.drain_events() == []


@pytest.mark.parametrize("key", ["uploads/mug.jpg", "thumbs/mug.png", "mug.jpg"])
def test_keys_outside_images_are_rejected_with_a_reason(stack: Stack, key: str) -> None:
    job_id, response = stack.upload(key, image_bytes())

    assert response == {"batchItemFailures": []}
    job = stack.job(job_id) or {}
    assert job["state"] == JobState.REJECTED
    assert job["error"] == "key must start with images/"
    assert job["source_key"] == key
    assert stack.submit_calls == []
    [rejected] = _events(stack, "Job Rejected")  # the schema takes any source key
    assert rejected["detail"]["source_key"] == key
    assert rejected["detail"]["reason"] == "key must start with images/"


def test_url_encoded_unicode_key_from_the_sample_event(stack: Stack) -> None:
    key = "images/uploaded/kitchen/café mug.jpg"
    put = stack.put(key, image_bytes())
    event = load_event("s3-put-in-sqs.json")
    body = json.loads(event["Records"][0]["body"])
    s3 = body["Records"][0]["s3"]
    assert s3["object"]["key"] == "images/uploaded/kitchen/caf%C3%A9+mug.jpg"
    s3["bucket"]["name"] = stack.res.bucket
    s3["object"]["eTag"] = put["ETag"].strip('"')
    s3["object"]["versionId"] = put["VersionId"]
    event["Records"][0]["body"] = json.dumps(body)

    assert stack.ingest(*event["Records"]) == {"batchItemFailures": []}
    job = stack.job(stack.job_id(key, put))
    assert job is not None
    assert job["state"] == JobState.SUBMITTED
    assert job["source_key"] == key
    assert job["asset_key"] == "3d_assets/uploaded/kitchen/café mug.glb"


REJECTIONS = [
    ("empty file", KEY, b"", None, "file is empty"),
    ("not an image", KEY, b"hello, this is a shopping list\n" * 4, None, "content is text"),
    ("GIF renamed .png", "images/uploaded/anim.png", image_bytes("GIF"), None, "content is GIF"),
    ("truncated PNG", "images/uploaded/cut.png", image_bytes("PNG")[:-30], None, "truncated"),
    ("truncated JPEG", KEY, image_bytes("JPEG", (256, 256))[:400], None, "truncated"),
    ("40000x40000 PNG", "images/uploaded/bomb.png", png_header_only(40000, 40000), None, "mega"),
    ("1x1 image", "images/uploaded/dot.png", image_bytes("PNG", (1, 1)), None, "1x1"),
    ("bad preset", KEY, image_bytes(), {"preset": "qualty"}, "preset='qualty'"),
    ("bad texture", KEY, image_bytes(), {"texture": "maybe"}, "texture='maybe'"),
    ("unknown category", "images/photos/mug.jpg", image_bytes(), None, "unknown category"),
    ("no category", "images/mug.jpg", image_bytes(), None, "images/<category>/"),
    ("dot-dot segment", "images/uploaded/../mug.jpg", image_bytes(), None, "'..'"),
    ("wrong extension", "images/uploaded/mug.gif", image_bytes("GIF"), None, "extension"),
]


@pytest.mark.parametrize(
    ("key", "data", "metadata", "reason"),
    [pytest.param(*r[1:], id=r[0]) for r in REJECTIONS],
)
def test_bad_input_is_rejected_with_a_reason_and_an_event(
    stack: Stack, key: str, data: bytes, metadata: dict[str, str] | None, reason: str
) -> None:
    job_id, response = stack.upload(key, data, metadata)

    assert response == {"batchItemFailures": []}
    job = stack.job(job_id)
    assert job is not None
    assert job["state"] == JobState.REJECTED
    assert reason in job["error"]
    assert job["error_kind"] == "bad_input"
    assert stack.submit_calls == []
    [rejected] = _events(stack, "Job Rejected")  # validated against the schema on the way
    assert rejected["detail"]["job_id"] == job_id
    assert rejected["detail"]["reason"] == job["error"]
    # Redelivery changes nothing and emits nothing.
    stack.ingest(stack.s3_record(key, {"ETag": job["etag"], "VersionId": job["source_version"]}))
    assert _events(stack, "Job Rejected") == []
    assert (stack.job(job_id) or {})["updated_at"] == job["updated_at"]


def test_the_size_limit_comes_from_the_environment(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_IMAGE_BYTES", "1000")
    ingest_settings.cache_clear()
    job_id, _ = stack.upload("images/uploaded/big.bmp", image_bytes("BMP", (200, 200)))
    job = stack.job(job_id) or {}
    assert job["state"] == JobState.REJECTED
    assert job["error"] == "file is 0.1 MB, larger than the limit of 0.0 MB"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(image_bytes("JPEG", mode="L"), id="grayscale JPEG"),
        pytest.param(image_bytes("JPEG", mode="CMYK"), id="CMYK JPEG"),
        pytest.param(exif_rotated_jpeg(), id="EXIF-rotated JPEG"),
        pytest.param(image_bytes("JPEG", (640, 480), progressive=True), id="progressive JPEG"),
        pytest.param(image_bytes("PNG", mode="RGBA"), id="RGBA PNG"),
        pytest.param(image_bytes("WEBP"), id="WEBP"),
        pytest.param(image_bytes("BMP"), id="BMP"),
        pytest.param(image_bytes("TIFF"), id="TIFF"),
    ],
)
def test_unusual_but_valid_images_are_accepted(stack: Stack, data: bytes) -> None:
    job_id, _ = stack.upload("images/generated/sample.jpg", data)
    job = stack.job(job_id) or {}
    assert job.get("state") == JobState.SUBMITTED, job.get("error")


def test_an_object_deleted_before_ingest_is_dropped(stack: Stack) -> None:
    put = stack.put(KEY, image_bytes())
    stack.s3.delete_object(Bucket=stack.res.bucket, Key=KEY, VersionId=put["VersionId"])
    assert stack.ingest(stack.s3_record(KEY, put)) == {"batchItemFailures": []}
    assert stack.all_items() == []
    assert stack.submit_calls == []


def _succeed(stack: Stack, job_id: str, faces: int = 1200) -> str:
    """Play the generator: store the asset and deliver its Job Succeeded event."""
    job = stack.job(job_id) or {}
    # As the generator writes it: the job id in the asset's metadata, the event naming its
    # Batch job (the state function believes nothing less).
    stack.s3.put_object(
        Bucket=stack.res.bucket,
        Key=job["asset_key"],
        Body=b"glTF" + b"\0" * 60,
        Metadata={"meshdrop-job-id": job_id},
    )
    event = load_event("meshdrop-job-succeeded.json")
    event["detail"].update(
        batch_job_id=job["batch_job_id"],
        job_id=job_id,
        bucket=stack.res.bucket,
        source_key=job["source_key"],
        asset_key=job["asset_key"],
        faces=faces,
        vertices=faces // 2,
        bytes=64,
    )
    stack.state(event)
    return str(job["asset_key"])


def test_duplicate_content_reuses_the_asset_without_batch(stack: Stack) -> None:
    data = image_bytes("PNG", (96, 96))
    first, _ = stack.upload("images/uploaded/a.png", data)
    first_asset = _succeed(stack, first)
    stack.drain_events()

    second, _ = stack.upload("images/uploaded/copies/b.png", data)

    assert len(stack.submit_calls) == 1
    job = stack.job(second) or {}
    assert job["state"] == JobState.SUCCEEDED
    assert job["reused"] is True
    assert job["reused_from"] == first
    assert job["faces"] == 1200
    copied = stack.s3.get_object(Bucket=stack.res.bucket, Key="3d_assets/uploaded/copies/b.glb")
    original = stack.s3.get_object(Bucket=stack.res.bucket, Key=first_asset)
    assert copied["Body"].read() == original["Body"].read()
    [succeeded] = _events(stack, "Job Succeeded")
    assert succeeded["detail"]["reused"] is True
    assert succeeded["detail"]["faces"] == 1200
    assert succeeded["detail"]["asset_key"] == "3d_assets/uploaded/copies/b.glb"


def test_reuse_needs_same_options_and_a_surviving_asset(stack: Stack) -> None:
    data = image_bytes("PNG", (96, 96))
    first, _ = stack.upload("images/uploaded/a.png", data)
    asset = _succeed(stack, first)

    other_options, _ = stack.upload("images/uploaded/b.png", data, {"preset": "quality"})
    assert (stack.job(other_options) or {})["state"] == JobState.SUBMITTED

    stack.s3.delete_object(Bucket=stack.res.bucket, Key=asset)
    asset_gone, _ = stack.upload("images/uploaded/c.png", data)
    assert (stack.job(asset_gone) or {})["state"] == JobState.SUBMITTED
    assert len(stack.submit_calls) == 3


def test_an_event_lost_after_the_write_is_sent_by_the_redelivery(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    put = stack.put(KEY, image_bytes())
    record = stack.s3_record(KEY, put)
    test_event = load_event("s3-test-event-in-sqs.json")["Records"][0]
    real_emit = eventbus.emit

    def failing_emit(*args: Any, **kwargs: Any) -> str:
        raise eventbus.EventPublishError("PutEvents refused 'Job Accepted': ThrottlingException")

    monkeypatch.setattr("lambdas.ingest.service.emit", failing_emit)
    response = stack.ingest(record, test_event)
    assert response == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    assert (stack.job(stack.job_id(KEY, put)) or {}).get("pending_event")
    assert stack.drain_events() == []

    monkeypatch.setattr("lambdas.ingest.service.emit", real_emit)
    assert stack.ingest(record) == {"batchItemFailures": []}
    assert len(_events(stack, "Job Accepted")) == 1
    assert len(stack.submit_calls) == 1
    assert "pending_event" not in (stack.job(stack.job_id(KEY, put)) or {})


def _count_aws_calls(stack: Stack) -> tuple[list[str], Any]:
    """Record every AWS call made by clients created from now on (the handler's included)."""
    import boto3

    from tests.integration.conftest import _reset_lambda_caches

    calls: list[str] = []

    def count(model: Any, **_: Any) -> None:
        calls.append(f"{model.service_model.service_name}.{model.name}")

    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register("before-call.*.*", count)
    _reset_lambda_caches()

    def stop() -> None:
        boto3.DEFAULT_SESSION.events.unregister("before-call.*.*", count)  # type: ignore[union-attr]

    return calls, stop


def test_a_new_upload_costs_six_aws_calls(stack: Stack) -> None:
    put = stack.put(KEY, image_bytes())
    record = stack.s3_record(KEY, put)
    calls, stop = _count_aws_calls(stack)
    try:
        assert stack.ingest(record) == {"batchItemFailures": []}
    finally:
        stop()
    assert calls == [
        "s3.GetObject",
        "dynamodb.PutItem",  # creates the record with the submit lease
        "dynamodb.GetItem",  # content reuse
        "batch.SubmitJob",
        "events.PutEvents",
        "dynamodb.UpdateItem",  # SUBMITTED, nothing left pending
    ]
    job = stack.job(stack.job_id(KEY, put)) or {}
    assert job["state"] == JobState.SUBMITTED
    assert "pending_event" not in job


def test_a_duplicate_delivery_learns_the_record_from_the_failed_create(stack: Stack) -> None:
    put = stack.put(KEY, image_bytes())
    record = stack.s3_record(KEY, put)
    assert stack.ingest(record) == {"batchItemFailures": []}
    calls, stop = _count_aws_calls(stack)
    try:
        assert stack.ingest(record) == {"batchItemFailures": []}
    finally:
        stop()
    assert calls == ["s3.GetObject", "dynamodb.PutItem"]
    assert len(stack.submit_calls) == 1


def test_an_oversized_object_is_rejected_without_reading_its_body(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_IMAGE_BYTES", "1000")
    ingest_settings.cache_clear()

    def no_read(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the body of an oversized object was read")

    monkeypatch.setattr("lambdas.ingest.service.read_checked", no_read)
    job_id, response = stack.upload(KEY, image_bytes("JPEG", (200, 200), quality=100))
    assert response == {"batchItemFailures": []}
    job = stack.job(job_id) or {}
    assert job["state"] == JobState.REJECTED
    assert "larger than the limit" in job["error"]
    assert len(_events(stack, "Job Rejected")) == 1


def test_a_delivery_that_died_holding_the_lease_is_taken_over_once_it_expires(
    stack: Stack,
) -> None:
    from lambdas.common.jobstore import JobStore

    put = stack.put(KEY, image_bytes())
    job_id = stack.job_id(KEY, put)
    store = JobStore(stack.res.table, 7)
    # What a delivery that crashed right after its create leaves: ACCEPTED, lease run out.
    created = store.create(
        job_id,
        JobState.ACCEPTED,
        {"bucket": stack.res.bucket, "source_key": KEY},
        lease=("crashed-delivery", -1),
    )
    assert created.applied

    assert stack.ingest(stack.s3_record(KEY, put)) == {"batchItemFailures": []}
    job = stack.job(job_id) or {}
    assert job["state"] == JobState.SUBMITTED
    assert job["submit_owner"] != "crashed-delivery"
    assert len(stack.submit_calls) == 1
    assert len(_events(stack, "Job Accepted")) == 1


def test_a_pending_event_goes_out_even_after_the_object_is_deleted(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    put = stack.put(KEY, image_bytes())
    record = stack.s3_record(KEY, put)
    real_emit = eventbus.emit

    def failing_emit(*args: Any, **kwargs: Any) -> str:
        raise eventbus.EventPublishError("PutEvents refused 'Job Accepted': InternalFailure")

    monkeypatch.setattr("lambdas.ingest.service.emit", failing_emit)
    # Another record in the batch: a batch whose every record fails raises instead.
    test_event = load_event("s3-test-event-in-sqs.json")["Records"][0]
    response = stack.ingest(record, test_event)
    assert response == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    monkeypatch.setattr("lambdas.ingest.service.emit", real_emit)
    stack.s3.delete_object(Bucket=stack.res.bucket, Key=KEY, VersionId=put["VersionId"])

    assert stack.ingest(record) == {"batchItemFailures": []}
    [accepted] = _events(stack, "Job Accepted")
    assert accepted["detail"]["job_id"] == stack.job_id(KEY, put)
    assert "pending_event" not in (stack.job(stack.job_id(KEY, put)) or {})


@pytest.mark.parametrize("publish_fails", [False, True], ids=["published", "publish failed"])
def test_a_job_that_runs_before_its_submission_is_recorded_keeps_its_event(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, publish_fails: bool
) -> None:
    from lambdas.common.jobstore import JobStore

    put = stack.put(KEY, image_bytes())
    record = stack.s3_record(KEY, put)
    job_id = stack.job_id(KEY, put)
    real_emit = eventbus.emit

    def state_function_first(*args: Any, **kwargs: Any) -> str:
        # The generator's first event reached the state function before ingest's write.
        assert JobStore(stack.res.table, 7).transition(job_id, JobState.RUNNING).applied
        if publish_fails:
            raise eventbus.EventPublishError("PutEvents refused 'Job Accepted': InternalFailure")
        return real_emit(*args, **kwargs)

    monkeypatch.setattr("lambdas.ingest.service.emit", state_function_first)
    test_event = load_event("s3-test-event-in-sqs.json")["Records"][0]
    response = stack.ingest(record, test_event)
    monkeypatch.setattr("lambdas.ingest.service.emit", real_emit)

    assert (stack.job(job_id) or {})["state"] == JobState.RUNNING
    if publish_fails:
        assert response == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
        assert (stack.job(job_id) or {}).get("pending_event")
        assert stack.ingest(record) == {"batchItemFailures": []}
    else:
        assert response == {"batchItemFailures": []}
    [accepted] = _events(stack, "Job Accepted")
    assert accepted["detail"]["job_id"] == job_id
    assert "pending_event" not in (stack.job(job_id) or {})
    assert len(stack.submit_calls) == 1
