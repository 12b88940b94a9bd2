"""``meshdrop local replay``: captured AWS deliveries, fed to the real handlers (issue 10, 4).

Fixtures: tests/events/replay/ (README there says where each shape comes from).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshdrop.local.replay import INGEST, STATE, localize_batch_job, replay_files, route

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "tests" / "events" / "replay"
SEED = EVENTS / "seed"
LOCAL_BUCKET = "meshdrop-local-bucket"
MUG_JOB = "cb7b8e13aef151abe46eec5852ca49ba"  # job_id_for(LOCAL_BUCKET, mug key, its ETag)


def _text(name: str) -> str:
    return (EVENTS / name).read_text(encoding="utf-8")


def test_each_shape_goes_to_the_consumer_aws_would_deliver_it_to() -> None:
    s3 = route(_text("s3-put-mug.json"), LOCAL_BUCKET)
    assert (s3.consumer, s3.kind, s3.problem) == (INGEST, "s3", None)
    (body,) = s3.bodies
    bucket = json.loads(body)["Records"][0]["s3"]["bucket"]
    assert bucket["name"] == LOCAL_BUCKET and bucket["arn"] == f"arn:aws:s3:::{LOCAL_BUCKET}"

    sns = route(_text("sns-s3-put-mug.json"), LOCAL_BUCKET)
    assert (sns.consumer, sns.kind) == (INGEST, "sns-envelope")
    inner = json.loads(json.loads(sns.bodies[0])["Message"])
    assert inner["Records"][0]["s3"]["bucket"]["name"] == LOCAL_BUCKET  # inside the envelope

    batch = route(_text("batch-succeeded-mug.json"), LOCAL_BUCKET)
    assert (batch.consumer, batch.kind, batch.problem) == (STATE, "batch-job-state-change", None)

    record = route(_text("lambda-failure-record-batch-succeeded-mug.json"), LOCAL_BUCKET)
    assert record.consumer == STATE
    assert record.kind == "lambda-failure-record/batch-job-state-change"
    assert record.event == batch.event  # the original event, from requestPayload

    unknown = route(_text("meshdrop-unknown-detail-type.json"), LOCAL_BUCKET)
    assert unknown.consumer == STATE and "unknown meshdrop detail-type" in (unknown.problem or "")
    assert (unknown.event or {})["detail"]["bucket"] == LOCAL_BUCKET

    raw = route(_text("not-json.txt"), LOCAL_BUCKET)
    assert (raw.consumer, raw.bodies, raw.problem) == (
        INGEST,
        [_text("not-json.txt")],
        "the body is not JSON",
    )


def test_eventbridge_s3_object_created_goes_to_ingest_with_the_local_bucket() -> None:
    event = {
        "version": "0",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "resources": ["arn:aws:s3:::amzn-s3-demo-bucket"],
        "detail": {"bucket": {"name": "amzn-s3-demo-bucket"}, "object": {"key": "images/a.jpg"}},
    }
    delivery = route(json.dumps(event), LOCAL_BUCKET)
    assert (delivery.consumer, delivery.kind) == (INGEST, "eventbridge-s3")
    body = json.loads(delivery.bodies[0])
    assert body["detail"]["bucket"]["name"] == LOCAL_BUCKET
    assert body["resources"] == [f"arn:aws:s3:::{LOCAL_BUCKET}"]


def test_a_captured_batch_event_is_taken_to_name_the_local_batch_job() -> None:
    event = json.loads(_text("batch-succeeded-mug.json"))
    captured = event["detail"]["jobId"]
    jobs = {f"job#{MUG_JOB}": {"job_id": MUG_JOB, "batch_job_id": "local-batch-job"}}

    local = localize_batch_job(event, jobs)

    assert local["detail"]["jobId"] == "local-batch-job"
    assert local["detail"]["jobArn"].endswith("/local-batch-job")
    assert captured not in json.dumps(local)
    assert localize_batch_job(event, {}) == event  # a job the local stack does not know


@pytest.mark.slow
def test_a_replay_runs_every_file_in_order_on_one_stack(tmp_path: Path) -> None:
    names = [
        "s3-put-mug.json",
        "s3-test-event.json",
        "s3-put-notes-txt.json",
        "batch-running-mug.json",
        "lambda-failure-record-batch-succeeded-mug.json",
        "meshdrop-unknown-detail-type.json",
        "batch-succeeded-mug.json",
        "not-json.txt",
    ]
    entries = replay_files([EVENTS / n for n in names], seed=SEED, work_dir=tmp_path)
    got = [(Path(e.file).name, e.consumer, e.outcome) for e in entries]

    assert got[:7] == [
        ("s3-put-mug.json", "ingest", "accepted"),
        ("s3-test-event.json", "ingest", "ignored"),
        ("s3-put-notes-txt.json", "ingest", "rejected"),
        ("batch-running-mug.json", "state", "applied"),
        ("lambda-failure-record-batch-succeeded-mug.json", "state", "applied"),
        # The state function handles only the contract's detail-types: another is not its own.
        ("meshdrop-unknown-detail-type.json", "state", "ignored"),
        ("batch-succeeded-mug.json", "state", "ignored"),  # already SUCCEEDED: a duplicate
    ]
    # A body that is not JSON is never a job: logged and dropped, not retried into the DLQ.
    assert got[7] == ("not-json.txt", "ingest", "invalid")

    accepted, _, rejected, running, succeeded, *_ = entries
    (job,) = accepted.jobs
    assert (job["job_id"], job["state"], job["bucket"]) == (MUG_JOB, "SUBMITTED", LOCAL_BUCKET)
    assert accepted.notifications == []  # an accepted upload stops at SUBMITTED
    assert "unsupported file extension" in rejected.reason
    ((note),) = rejected.notifications
    assert note["state"] == "REJECTED"
    assert [j["state"] for j in running.jobs] == ["RUNNING"]
    assert [j["state"] for j in succeeded.jobs] == ["SUCCEEDED"]
    (done,) = succeeded.notifications
    assert done["state"] == "SUCCEEDED" and done["job_id"] == MUG_JOB


@pytest.mark.slow
def test_cli_prints_the_json_list_and_exits_0(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "meshdrop.cli", "local", "replay"]
    files = [str(EVENTS / "s3-put-mug.json"), str(EVENTS / "not-json.txt")]
    result = subprocess.run(
        [*command, *files, "--seed", str(SEED), "--run", "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]  # whatever the outcomes
    entries = json.loads(result.stdout)
    assert [set(e) for e in entries] == [
        {"file", "consumer", "outcome", "reason", "jobs", "notifications"}
    ] * 2
    mug = entries[0]
    assert mug["outcome"] == "accepted"
    # --run: the generator ran, so the job is done and its notification was sent.
    assert [j["state"] for j in mug["jobs"]] == ["SUCCEEDED"]
    assert mug["jobs"][0]["asset_key"] == "3d_assets/uploaded/kitchen/mug.glb"
    assert [n["state"] for n in mug["notifications"]] == ["SUCCEEDED"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
#: Shapes that look like what AWS delivers, with arbitrary (often wrong) contents.
aws_like = st.fixed_dictionaries(
    {},
    optional={
        "Records": st.lists(
            st.fixed_dictionaries({"eventSource": st.sampled_from(["aws:s3", "aws:sqs", "x"])}),
            max_size=3,
        ),
        "detail-type": st.sampled_from(
            ["Batch Job State Change", "Job Succeeded", "Object Created"]
        ),
        "source": st.sampled_from(["aws.batch", "meshdrop", "aws.s3", "other"]),
        "detail": json_values,
        "requestPayload": json_values,
        "Type": st.just("Notification"),
        "Message": st.text(max_size=30),
        "bucket": st.text(max_size=10),
    },
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=60), json_values.map(json.dumps), aws_like.map(json.dumps)))
def test_routing_never_raises_and_always_names_a_consumer(text: str) -> None:
    delivery = route(text, LOCAL_BUCKET)
    assert delivery.consumer in {INGEST, STATE}
    if delivery.consumer == INGEST:
        assert delivery.bodies and all(isinstance(b, str) for b in delivery.bodies)
    else:
        assert isinstance(delivery.event, dict)
