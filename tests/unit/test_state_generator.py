"""Whether the state function believes a generator's success about its asset
(``lambdas.state.generator.asset_problem``), with S3 answering as AWS does."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from lambdas.state.generator import asset_problem

JOB = "a" * 32
KEY = "3d_assets/kitchen/mug.glb"


class FakeS3:
    """``head_object`` answering with the given error code, or with the job's metadata."""

    def __init__(self, code: str | None = None, owner: str = JOB) -> None:
        self.code, self.owner = code, owner
        self.calls: list[tuple[str, str]] = []

    def head_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803 (boto3)
        self.calls.append((Bucket, Key))
        if self.code is not None:
            raise ClientError({"Error": {"Code": self.code, "Message": "x"}}, "HeadObject")
        return {"Metadata": {"meshdrop-job-id": self.owner}}


def _record(bucket: str = "photos") -> dict[str, Any]:
    return {"bucket": bucket, "asset_key": KEY}


@pytest.mark.parametrize("code", ["404", "NoSuchKey", "NoSuchBucket"])
def test_an_asset_that_is_not_there_is_a_reason_not_an_error(code: str) -> None:
    problem = asset_problem(FakeS3(code), _record(), {"asset_key": KEY}, JOB)
    assert problem is not None and "does not exist" in problem


@pytest.mark.parametrize("code", ["SlowDown", "InternalError", "AccessDenied"])
def test_other_s3_errors_raise_so_the_event_is_retried(code: str) -> None:
    with pytest.raises(ClientError):
        asset_problem(FakeS3(code), _record(), {"asset_key": KEY}, JOB)


def test_an_event_naming_another_bucket_than_the_record_is_not_looked_up() -> None:
    s3 = FakeS3()
    problem = asset_problem(s3, _record(), {"asset_key": KEY, "bucket": "elsewhere"}, JOB)
    assert problem is not None and "elsewhere" in problem
    assert s3.calls == []


def test_the_asset_of_this_job_in_the_records_bucket_is_believed() -> None:
    s3 = FakeS3()
    assert asset_problem(s3, _record(), {"asset_key": KEY, "bucket": "photos"}, JOB) is None
    assert s3.calls == [("photos", KEY)]
    other = asset_problem(FakeS3(owner="b" * 32), _record(), {"asset_key": KEY}, JOB)
    assert other is not None and "written by job" in other
