"""Property: no malformed event makes the state function raise (issue 10, "Done when").

Hypothesis takes the documented shapes (tests/events) and breaks them: fields dropped, replaced
by values of any JSON type, attempts and containers scrambled, whole events made of noise. On
the mocked stack with one real job, every event must come back as applied, ignored or invalid
(a permanent problem is never an exception, so it never loops through Lambda's retries), and no
record may be poisoned: no ``job#None``, every record in a known state with well-typed fields.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshdrop_contract import JobState
from tests.helpers.photos import image_bytes
from tests.integration.conftest import Stack, load_event

MESHDROP = [
    "meshdrop-job-accepted.json",
    "meshdrop-job-progress.json",
    "meshdrop-job-succeeded.json",
    "meshdrop-job-failed.json",
    "meshdrop-job-rejected.json",
]
BATCH = [
    "batch-runnable.json",
    "batch-running.json",
    "batch-running-retry-oom.json",
    "batch-succeeded.json",
    "batch-failed-bad-input.json",
    "batch-failed-oom.json",
    "batch-failed-spot-reclaim.json",
    "batch-failed-transient-retrying.json",
    "batch-failed-runnable-capacity.json",
    "batch-failed-superseded.json",
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def broken(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """``base`` with some fields dropped or replaced, at the top and one level down."""
    detail = copy.deepcopy(base)
    for key in draw(st.lists(st.sampled_from(sorted(detail)), max_size=4, unique=True)):
        if draw(st.booleans()):
            detail.pop(key)
        else:
            detail[key] = draw(json_values)
    nested = [k for k, v in detail.items() if isinstance(v, dict) and v]
    if nested and draw(st.booleans()):
        inner = detail[draw(st.sampled_from(sorted(nested)))]
        inner[draw(st.sampled_from(sorted(inner)))] = draw(json_values)
    return detail


@st.composite
def events(draw: st.DrawFn, job_id: str, batch_job_id: str) -> Any:
    kind = draw(st.sampled_from(["meshdrop", "batch", "noise"]))
    if kind == "noise":
        return draw(
            json_values
            | st.dictionaries(st.sampled_from(["source", "detail-type", "detail"]), json_values)
        )
    name = draw(st.sampled_from(MESHDROP if kind == "meshdrop" else BATCH))
    event = load_event(name)
    detail = event["detail"]
    if kind == "meshdrop":
        detail["job_id"] = draw(st.sampled_from([job_id, "f" * 32, detail["job_id"]]))
        detail["batch_job_id"] = draw(st.sampled_from([batch_job_id, "other"]))
    else:
        detail["jobName"] = f"meshdrop-{job_id}"
        detail["jobId"] = draw(st.sampled_from([batch_job_id, detail["jobId"]]))
        if detail.get("attempts") and draw(st.booleans()):
            detail["attempts"][0] = draw(broken(detail["attempts"][0]))
    event["detail"] = draw(broken(detail))
    if draw(st.integers(0, 9)) == 0:
        event = draw(broken(event))
    return event


def assert_sound(stack: Stack) -> None:
    for item in stack.all_items():
        assert item["pk"] != "job#None"
        if not item["pk"].startswith("job#"):
            continue
        JobState(item["state"])  # a known state
        for name in ("faces", "vertices", "bytes", "attempt", "progress"):
            if name in item:  # numbers, as the schemas say (DynamoDB hands back Decimals)
                assert isinstance(item[name], Decimal), (name, item[name])
        if "progress" in item:
            assert 0 <= float(item["progress"]) <= 1


@pytest.fixture
def job(stack: Stack) -> tuple[str, str]:
    job_id, _ = stack.upload("images/uploaded/kitchen/mug.jpg", image_bytes())
    stack.drain_events()
    return job_id, str((stack.job(job_id) or {})["batch_job_id"])


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_malformed_event_raises(stack: Stack, job: tuple[str, str], data: st.DataObject) -> None:
    job_id, batch_job_id = job
    event = data.draw(events(job_id, batch_job_id))
    result = stack.state(event)
    assert result["outcome"] in {"applied", "ignored", "invalid"}
    if result["outcome"] == "invalid":
        assert result["reason"]
    assert_sound(stack)
