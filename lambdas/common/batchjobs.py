"""Batch calls shared by the functions that submit or look for generator jobs.

The SubmitJob call here is the one ingest makes (same job name, parameters, environment and
tags), so a job the reconciler resubmits is indistinguishable from one ingest submitted. The
look-up by the job's deterministic name (``meshdrop-<job_id>``) is what closes the
double-submit window: look before submitting again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshdrop_contract import JobSpec, batch_job_name

#: Statuses of a Batch job that is still on its way (Batch will report again).
ACTIVE_STATUSES = frozenset({"SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING"})
_DESCRIBE_CHUNK = 100


def submit_arguments(job_queue: str, job_definition: str, spec: JobSpec) -> dict[str, Any]:
    """The SubmitJob arguments of one photo's job, whoever submits it."""
    environment = [{"name": k, "value": v} for k, v in sorted(spec.to_env().items())]
    return {
        "jobName": batch_job_name(spec.job_id),
        "jobQueue": job_queue,
        "jobDefinition": job_definition,
        "parameters": {"job_id": spec.job_id},
        "containerOverrides": {"environment": environment},
        "tags": {"meshdrop:job-id": spec.job_id, "meshdrop:preset": spec.options.preset.value},
        "propagateTags": True,
    }


def submit_job(batch: Any, job_queue: str, job_definition: str, spec: JobSpec) -> str:
    """SubmitJob for ``spec``; the Batch job id."""
    arguments = submit_arguments(job_queue, job_definition, spec)
    response: Mapping[str, Any] = batch.submit_job(**arguments)
    return str(response["jobId"])


def describe_jobs(batch: Any, job_ids: list[str]) -> list[dict[str, Any]]:
    """DescribeJobs for ``job_ids`` (any number); unknown ids are simply absent."""
    found: list[dict[str, Any]] = []
    for start in range(0, len(job_ids), _DESCRIBE_CHUNK):
        chunk = job_ids[start : start + _DESCRIBE_CHUNK]
        response: Mapping[str, Any] = batch.describe_jobs(jobs=chunk)
        found.extend(dict(job) for job in response.get("jobs", []))
    return found


def find_jobs(batch: Any, job_queue: str, job_id: str) -> list[dict[str, Any]]:
    """Every Batch job of ``job_queue`` named for ``job_id``, described, oldest first.

    ListJobs with a JOB_NAME filter returns jobs in every status (the status parameter is
    ignored with filters), for as long as Batch keeps them.
    """
    return find_named(batch, job_queue, batch_job_name(job_id))


def find_named(batch: Any, job_queue: str, name: str) -> list[dict[str, Any]]:
    """Every Batch job of ``job_queue`` named ``name`` (a pack's), described, oldest first."""
    ids: list[str] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {
            "jobQueue": job_queue,
            "filters": [{"name": "JOB_NAME", "values": [name]}],
        }
        if token:
            kwargs["nextToken"] = token
        page: Mapping[str, Any] = batch.list_jobs(**kwargs)
        ids.extend(str(j["jobId"]) for j in page.get("jobSummaryList", []))
        token = page.get("nextToken")
        if not token:
            break
    jobs = describe_jobs(batch, list(dict.fromkeys(ids)))
    return sorted(jobs, key=lambda j: int(j.get("createdAt") or 0))


def oldest_runnable_created_ms(batch: Any, job_queue: str) -> int | None:
    """``createdAt`` (epoch ms) of the oldest job waiting in RUNNABLE, ``None`` if none."""
    oldest: int | None = None
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"jobQueue": job_queue, "jobStatus": "RUNNABLE"}
        if token:
            kwargs["nextToken"] = token
        page: Mapping[str, Any] = batch.list_jobs(**kwargs)
        for summary in page.get("jobSummaryList", []):
            created = int(summary.get("createdAt") or 0)
            if created and (oldest is None or created < oldest):
                oldest = created
        token = page.get("nextToken")
        if not token:
            return oldest
