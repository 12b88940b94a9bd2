"""The reconciler on the local stack: Batch as the job runner sees it.

moto's Batch (without Docker) marks every job SUCCEEDED the moment it is submitted, so the
reconciler must not believe it: the local :class:`BatchView` answers from the
:class:`~meshdrop.local.runner.BatchRunner`, which runs the jobs and knows their real status;
a job moto has but the runner has not picked up yet is still SUBMITTED.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from meshdrop_contract import JobSpec

if TYPE_CHECKING:
    from lambdas.reconcile.service import ReconcileReport

    from .resources import LocalResources
    from .runner import BatchRunner


class RunnerBatch:
    """:class:`lambdas.reconcile.service.BatchView` over the local runner (and moto)."""

    def __init__(self, batch: Any, runner: BatchRunner, job_queue: str, definition: str) -> None:
        self._batch = batch
        self._runner = runner
        self._queue = job_queue
        self._definition = definition

    def _from_moto(self, job: dict[str, Any]) -> dict[str, Any]:
        run = self._runner.runs.get(str(job.get("jobId")))
        if run is not None:
            return self._runner.describe(run)
        # Submitted, not yet picked up by the runner: what Batch would say at this point.
        return {**job, "status": "SUBMITTED", "attempts": []}

    def find(self, job_id: str) -> list[dict[str, Any]]:
        from lambdas.common import batchjobs

        return [self._from_moto(j) for j in batchjobs.find_jobs(self._batch, self._queue, job_id)]

    def find_named(self, name: str) -> list[dict[str, Any]]:
        from lambdas.common import batchjobs

        return [self._from_moto(j) for j in batchjobs.find_named(self._batch, self._queue, name)]

    def describe(self, batch_job_ids: list[str]) -> list[dict[str, Any]]:
        from lambdas.common import batchjobs

        return [self._from_moto(j) for j in batchjobs.describe_jobs(self._batch, batch_job_ids)]

    def submit(self, spec: JobSpec) -> str:
        from lambdas.common import batchjobs

        return batchjobs.submit_job(self._batch, self._queue, self._definition, spec)

    def oldest_runnable_created_ms(self) -> int | None:
        # The runner starts every job at once; nothing waits for capacity here.
        return None


def reconcile_once(
    batch: Any, runner: BatchRunner, resources: LocalResources, *, now_offset_s: float
) -> ReconcileReport:
    """One reconcile pass on the local stack, as if ``now_offset_s`` had gone by.

    The local pipeline calls it when every queue is idle and jobs are still not terminal:
    nothing else will move them, so "stuck" needs no waiting (the offset makes every record
    old enough).
    """
    from lambdas.reconcile.service import Reconciler
    from lambdas.reconcile.settings import ReconcileSettings

    settings = ReconcileSettings(
        table_name=resources.table,
        topic_arn=resources.topic_arn,
        event_bus_name=resources.event_bus,
        job_queue=resources.job_queue_arn,
        job_definition=resources.job_definition_arn,
    )
    view = RunnerBatch(batch, runner, resources.job_queue_arn, resources.job_definition_arn)
    return Reconciler(settings, view, clock=lambda: time.time() + now_offset_s).run_once()
