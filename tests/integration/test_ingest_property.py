"""Property: malformed SQS records never crash ingest; only transient faults are retried.

Hypothesis builds real-shaped SQS events (the Lambda event source's envelope) whose bodies are
anything from random text to documented S3 deliveries (direct, SNS, EventBridge) with fields
removed, retyped or replaced. Each batch also carries one valid upload whose SubmitJob may be
made to fail transiently. The handler, on the mocked account, must never raise, and must report
exactly that one record as a batch item failure when (and only when) its fault was injected:
a permanent problem is dropped, never retried into the dead-letter queue.
"""

from __future__ import annotations

import copy
import itertools
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lambdas.ingest.access import BatchGateway, SubmitThrottledError
from tests.helpers.photos import image_bytes
from tests.integration.conftest import Stack, load_event, sqs_record

_json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=30),
)
json_values = st.recursive(
    _json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)

_EVENT_NAMES = st.sampled_from(
    [
        "ObjectCreated:Put",
        "ObjectCreated:CompleteMultipartUpload",
        "s3:ObjectCreated:Copy",
        "ObjectRemoved:Delete",
        "ObjectRemoved:DeleteMarkerCreated",
        "LifecycleExpiration:Delete",
        "ObjectRestore:Completed",
        "ObjectTagging:Put",
        "",
        "Bogus",
    ]
)
_KEYS = st.one_of(
    st.sampled_from(
        [
            "images/uploaded/kitchen/",
            "images/uploaded/a.jpg",
            "images/uploaded/a%ZZ.jpg",
            "images/uploaded/..%2Fx.jpg",
            "3d_assets/uploaded/a.glb",
            "images/photos/a.jpg",
            "images/uploaded/" + "x" * 1100 + ".jpg",
            "images/uploaded/\ud800.jpg",
        ]
    ),
    st.text(max_size=40),
)


def _documented() -> list[dict[str, Any]]:
    names = [
        "s3-put-in-sqs.json",
        "s3-delete-marker-in-sqs.json",
        "s3-folder-placeholder-in-sqs.json",
        "s3-object-created-eventbridge-in-sqs.json",
        "s3-object-deleted-eventbridge-in-sqs.json",
        "s3-put-via-sns-in-sqs.json",
        "s3-test-event-in-sqs.json",
    ]
    return [json.loads(load_event(n)["Records"][0]["body"]) for n in names]


DOCUMENTED = _documented()


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A documented delivery with a few fields removed or replaced (keys and names included)."""
    body = copy.deepcopy(draw(st.sampled_from(DOCUMENTED)))
    if body.get("Type") == "Notification" and draw(st.booleans()):
        inner = json.loads(body["Message"])
        body["Message"] = json.dumps(_mutate(draw, inner))
        return json.dumps(body)
    return json.dumps(_mutate(draw, body))


def _mutate(draw: st.DrawFn, body: dict[str, Any]) -> dict[str, Any]:
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = _paths(body)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = body
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        choice = draw(st.sampled_from(["delete", "json", "key", "event"]))
        if choice == "delete" and isinstance(parent, dict):
            del parent[last]
        elif choice == "key":
            parent[last] = draw(_KEYS)
        elif choice == "event":
            parent[last] = draw(_EVENT_NAMES)
        else:
            parent[last] = draw(json_values)
    return body


bodies = st.one_of(
    st.text(max_size=60),
    json_values.map(json.dumps),
    mutated(),
    mutated(),
    mutated(),
)

_counter = itertools.count()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    malformed=st.lists(st.one_of(bodies, st.none(), st.integers()), min_size=1, max_size=3),
    transient=st.booleans(),
)
def test_malformed_records_never_raise_and_only_transient_ones_are_retried(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, malformed: list[Any], transient: bool
) -> None:
    key = f"images/uploaded/prop/{next(_counter)}.jpg"
    put = stack.put(key, image_bytes(size=(64, 64)))
    good = stack.s3_record(key, put)
    records = []
    for body in malformed:
        record = sqs_record("", stack.res.ingest_queue_arn)
        if body is None:
            del record["body"]
        else:
            record["body"] = body
        records.append(record)

    real = BatchGateway.submit

    def submit(self: BatchGateway, **kwargs: Any) -> str:
        if transient and kwargs["jobName"] == f"meshdrop-{stack.job_id(key, put)}":
            raise SubmitThrottledError("Batch throttled SubmitJob")
        return real(self, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(BatchGateway, "submit", submit)
        response = stack.ingest(*records, good)

    expected = [{"itemIdentifier": good["messageId"]}] if transient else []
    assert response == {"batchItemFailures": expected}
