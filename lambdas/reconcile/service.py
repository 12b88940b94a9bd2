"""Reconciler logic: find jobs stuck before a terminal state, ask Batch, repair the record.

A job is stuck when its record has not changed for longer than it should (ACCEPTED or SUBMITTED:
longer than the job queue's RUNNABLE time limit, so Batch has had its chance to cancel a job it
cannot place; RUNNING: longer than every attempt may take). For each one the reconciler looks
the job up in Batch, by its recorded Batch job id and by its deterministic name
(``meshdrop-<job_id>``), and then:

* **no Batch job**: submits it again, through the same SubmitJob code ingest uses, after
  claiming the record (the submit lease of an ACCEPTED job; a conditional bump of
  ``resubmits`` otherwise) so two reconcilers, or a reconciler and a late ingest delivery,
  never both submit. After ``max_resubmits`` the job is failed with a reason and the user is
  notified: something keeps destroying its Batch jobs.
* **a Batch job, record ACCEPTED** (ingest crashed after SubmitJob): records it as SUBMITTED,
  never submitting a second one.
* **a Batch job that moved on** (its state change event was lost): feeds the job description,
  which has the shape of a "Batch Job State Change" detail, to the state function's own logic
  (:meth:`lambdas.state.service.StateApplier.apply`), which applies and notifies as for the
  event.
* **a Batch job still on its way** (RUNNABLE, STARTING, ...): leaves it to Batch.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from boto3.dynamodb.conditions import Attr, ConditionBase, Key

from meshdrop_contract import (
    BATCH_DETAIL_TYPE,
    BATCH_SOURCE,
    DetailType,
    ErrorKind,
    JobOptions,
    JobSpec,
    JobState,
    base_detail,
    batch_job_name,
)
from meshdrop_contract.events import now_iso
from meshdrop_contract.jobs import (
    GSI_BY_STATE,
    GSI_BY_STATE_PK,
    GSI_BY_STATE_SK,
    RECORD_PACK_NAME,
)

from ..common import batchjobs
from ..common.clients import dynamodb_table
from ..common.eventbus import emit
from ..common.jobstore import (
    NOTIFICATION_PENDING,
    NOTIFICATION_SENT_AT,
    SUBMIT_OWNER,
    JobStore,
    from_dynamo,
)
from ..common.observability import logger
from ..state.service import StateApplier
from ..state.validation import Outcome, check_event
from .settings import ReconcileSettings

#: Submit lease the reconciler takes on an ACCEPTED job: longer than its own timeout.
RECONCILE_LEASE_SECONDS = 300
RESUBMITS = "resubmits"
#: Statuses whose state change the state function applies (the others it ignores).
_APPLIED_STATUSES = frozenset({"RUNNING", "SUCCEEDED", "FAILED"})
_CHECKED_STATES = (JobState.ACCEPTED, JobState.SUBMITTED, JobState.RUNNING)
#: Finished states that notify, and how far back a lost notification is looked for.
_NOTIFIED_STATES = (JobState.SUCCEEDED, JobState.FAILED)
_LOST_NOTIFICATION_WINDOW_S = 86_400.0


class BatchView(Protocol):
    """What the reconciler asks Batch (the local pipeline answers from its job runner)."""

    def find(self, job_id: str) -> list[dict[str, Any]]:
        """Descriptions of every Batch job named for ``job_id``, oldest first."""
        ...

    def find_named(self, name: str) -> list[dict[str, Any]]:
        """Descriptions of every Batch job named ``name`` (a pack), oldest first."""
        ...

    def describe(self, batch_job_ids: list[str]) -> list[dict[str, Any]]: ...

    def submit(self, spec: JobSpec) -> str:
        """Submit ``spec``; the Batch job id."""
        ...

    def oldest_runnable_created_ms(self) -> int | None: ...


class AwsBatch:
    """:class:`BatchView` on the Batch API (the deployed function)."""

    def __init__(self, batch: Any, job_queue: str, job_definition: str) -> None:
        self._batch = batch
        self._queue = job_queue
        self._definition = job_definition

    def find(self, job_id: str) -> list[dict[str, Any]]:
        return batchjobs.find_jobs(self._batch, self._queue, job_id)

    def find_named(self, name: str) -> list[dict[str, Any]]:
        return batchjobs.find_named(self._batch, self._queue, name)

    def describe(self, batch_job_ids: list[str]) -> list[dict[str, Any]]:
        return batchjobs.describe_jobs(self._batch, batch_job_ids)

    def submit(self, spec: JobSpec) -> str:
        return batchjobs.submit_job(self._batch, self._queue, self._definition, spec)

    def oldest_runnable_created_ms(self) -> int | None:
        return batchjobs.oldest_runnable_created_ms(self._batch, self._queue)


@dataclass(frozen=True, slots=True)
class Action:
    """What the reconciler did about one stuck job."""

    job_id: str
    state: str
    action: str  # resubmitted | adopted | applied | waiting | failed | skipped | error
    reason: str
    batch_job_id: str | None = None


@dataclass
class ReconcileReport:
    """One pass: what was stuck, what was done, and the age of the oldest RUNNABLE job."""

    stuck: dict[str, int] = field(default_factory=lambda: {s.value: 0 for s in _CHECKED_STATES})
    actions: list[Action] = field(default_factory=list[Action])
    oldest_runnable_age_s: float = 0.0

    def count(self, action: str) -> int:
        return sum(a.action == action for a in self.actions)

    def to_json(self) -> dict[str, Any]:
        return {
            "stuck": dict(self.stuck),
            "oldest_runnable_age_s": self.oldest_runnable_age_s,
            "actions": [_action_json(a) for a in self.actions],
        }


def _action_json(action: Action) -> dict[str, Any]:
    return {
        "job_id": action.job_id,
        "state": action.state,
        "action": action.action,
        "reason": action.reason,
        "batch_job_id": action.batch_job_id,
    }


def iso_at(epoch_s: float) -> str:
    """``epoch_s`` in the job record's ``updated_at`` format (comparable as strings)."""
    moment = datetime.fromtimestamp(epoch_s, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def spec_from_record(item: Mapping[str, Any]) -> JobSpec:
    """The job the record describes, as ingest submitted (or would have submitted) it."""
    raw: Any = item.get("options")
    options: Mapping[str, Any] = cast("Mapping[str, Any]", raw) if isinstance(raw, Mapping) else {}
    version = item.get("source_version") or item.get("etag")
    return JobSpec(
        job_id=str(item["job_id"]),
        bucket=str(item["bucket"]),
        source_key=str(item["source_key"]),
        options=JobOptions.from_dict(options),
        source_version=str(version) if version else None,
        source_sha256=str(item["source_sha256"]) if item.get("source_sha256") else None,
    )


def batch_detail(job: Mapping[str, Any]) -> dict[str, Any]:
    """A DescribeJobs job as a "Batch Job State Change" detail (the same fields)."""
    detail = dict(job)
    raw: Any = detail.get("container")
    if isinstance(raw, Mapping):
        # The environment may hold what logs should not; the state logic never reads it.
        container = cast("Mapping[str, Any]", raw)
        detail["container"] = {k: v for k, v in container.items() if k != "environment"}
    return detail


class Reconciler:
    """One reconcile pass over the job table (see the module docstring)."""

    def __init__(
        self,
        settings: ReconcileSettings,
        batch: BatchView,
        *,
        store: JobStore | None = None,
        applier: StateApplier | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.batch = batch
        self.store = store or JobStore(settings.table_name, settings.job_ttl_days)
        self.applier = applier or StateApplier(settings.state_settings(), self.store)
        self.clock = clock
        self.owner = f"reconcile-{uuid.uuid4().hex[:12]}"
        self._table = dynamodb_table(settings.table_name)

    def run_once(self) -> ReconcileReport:
        """Look at every stuck job once; never raises for one job's trouble."""
        now = self.clock()
        report = ReconcileReport(oldest_runnable_age_s=self._runnable_age(now))
        seen: set[str] = set()  # a job repaired in this pass waits for the next one
        for state in _CHECKED_STATES:
            after = (
                self.settings.running_after_s
                if state is JobState.RUNNING
                else self.settings.stuck_after_s
            )
            for item in self.stuck(state, now - after):
                if str(item.get("job_id")) in seen:
                    continue
                seen.add(str(item.get("job_id")))
                report.stuck[state.value] += 1
                report.actions.append(self._reconcile_safely(item, state))
        report.actions.extend(self.resend_lost_notifications(now))
        for action in report.actions:
            logger.info("reconciled", extra=_action_json(action))
        return report

    def resend_lost_notifications(self, now: float) -> list[Action]:
        """Finished jobs whose notification was claimed but never sent (the state function died
        between the claim and the publish): send it, once.

        Only the last day of finished jobs is read: a pass every few minutes sees each such job
        many times over before it leaves that window.
        """
        claimed_before = iso_at(now - self.settings.stuck_after_s)
        actions: list[Action] = []
        for state in _NOTIFIED_STATES:
            for item in self.stuck(
                state, now - self.settings.stuck_after_s, since=now - _LOST_NOTIFICATION_WINDOW_S
            ):
                if not item.get(NOTIFICATION_PENDING) or item.get(NOTIFICATION_SENT_AT):
                    continue
                job_id = str(item.get("job_id", ""))
                if self.applier.notifier.resend_lost(job_id, claimed_before):
                    actions.append(Action(job_id, state.value, "notified", "notification lost"))
        return actions

    def stuck(
        self, state: JobState, cutoff_epoch_s: float, *, since: float | None = None
    ) -> Iterator[dict[str, Any]]:
        """Job records in ``state`` not updated since ``cutoff_epoch_s`` (and, with ``since``,
        updated after it), through the by_state GSI."""
        updated = Key(GSI_BY_STATE_SK)
        window = (
            updated.between(iso_at(since), iso_at(cutoff_epoch_s))
            if since is not None
            else updated.lt(iso_at(cutoff_epoch_s))
        )
        condition = Key(GSI_BY_STATE_PK).eq(state.value) & window
        kwargs: dict[str, Any] = {"IndexName": GSI_BY_STATE, "KeyConditionExpression": condition}
        while True:
            page: Mapping[str, Any] = self._table.query(**kwargs)
            for item in page.get("Items", []):
                yield from_dynamo(item)
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last

    def _runnable_age(self, now: float) -> float:
        created_ms = self.batch.oldest_runnable_created_ms()
        return round(max(0.0, now - created_ms / 1000.0), 3) if created_ms else 0.0

    def _reconcile_safely(self, item: Mapping[str, Any], state: JobState) -> Action:
        job_id = str(item.get("job_id", ""))
        try:
            return self.reconcile(item, state)
        except Exception as err:  # one bad job must not stop the pass; the next one retries
            logger.exception("reconciling a job failed", extra={"job_id": job_id})
            return Action(job_id, state.value, "error", f"{type(err).__name__}: {err}")

    def reconcile(self, item: Mapping[str, Any], state: JobState) -> Action:
        """Repair one stuck job record (``state`` is what the record says)."""
        job_id = str(item["job_id"])
        recorded = str(item.get("batch_job_id") or "") or None
        jobs = {j["jobId"]: j for j in self.batch.describe([recorded] if recorded else [])}
        jobs |= {j["jobId"]: j for j in self.batch.find(job_id)}
        if pack_name := str(item.get(RECORD_PACK_NAME) or ""):
            # Noted before its pack's SubmitJob: the pack may exist though the record is ACCEPTED.
            jobs |= {j["jobId"]: j for j in self.batch.find_named(pack_name)}
        if not jobs:
            return self._no_batch_job(item, state, recorded)
        job = _pick(list(jobs.values()), recorded)
        if state is JobState.ACCEPTED:
            adopted = self._adopt(job_id, job)
            if adopted.action != "adopted" or job.get("status") not in _APPLIED_STATUSES:
                return adopted
        return self._apply(job_id, state, job)

    def _apply(self, job_id: str, state: JobState, job: Mapping[str, Any]) -> Action:
        status = str(job.get("status", ""))
        batch_job_id = str(job.get("jobId"))
        if status not in _APPLIED_STATUSES:
            return Action(job_id, state.value, "waiting", f"Batch job is {status}", batch_job_id)
        # Through the state function's own edge check, as the event would have gone.
        checked = check_event(
            {"source": BATCH_SOURCE, "detail-type": BATCH_DETAIL_TYPE, "detail": batch_detail(job)}
        )
        if checked.outcome is not Outcome.VALID:
            why = f"the Batch job description is not usable: {checked.reason}"
            return Action(job_id, state.value, "skipped", why, batch_job_id)
        applied = self.applier.apply(checked.source, checked.detail_type, checked.detail)
        applied = applied.for_job(job_id)  # a pack's Batch job: this photo's own result
        outcome = applied.state.value if applied.state else "unchanged"
        reason = f"Batch job is {status}; the record is now {outcome}"
        action = "applied" if applied.changed else "waiting"
        return Action(job_id, state.value, action, reason, batch_job_id)

    def _adopt(self, job_id: str, job: Mapping[str, Any]) -> Action:
        """An ACCEPTED record whose Batch job exists: record it, never submit another."""
        batch_job_id = str(job.get("jobId"))
        if not self.store.take_lease(job_id, self.owner, RECONCILE_LEASE_SECONDS).applied:
            return Action(job_id, "ACCEPTED", "skipped", "submit lease held", batch_job_id)
        result = self.store.transition(
            job_id,
            JobState.SUBMITTED,
            {"batch_job_id": batch_job_id, "submitted_at": now_iso()},
            require=Attr(SUBMIT_OWNER).eq(self.owner),
        )
        if not result.applied:
            return Action(job_id, "ACCEPTED", "skipped", "the record moved on", batch_job_id)
        reason = f"Batch job {batch_name(job_id)} exists; recorded as SUBMITTED"
        return Action(job_id, "ACCEPTED", "adopted", reason, batch_job_id)

    def _no_batch_job(
        self, item: Mapping[str, Any], state: JobState, recorded: str | None
    ) -> Action:
        job_id = str(item["job_id"])
        resubmits = int(item.get(RESUBMITS) or 0)
        if resubmits >= self.settings.max_resubmits:
            reason = (
                f"the generator job was lost {resubmits + 1} times (no Batch job "
                f"{batch_name(job_id)}); giving up"
            )
            return self._fail(job_id, state, reason)
        try:
            spec = spec_from_record(item)
        except (KeyError, ValueError) as err:
            return self._fail(job_id, state, f"the job record cannot be resubmitted: {err}")
        if not self._claim(job_id, state, recorded, resubmits):
            return Action(job_id, state.value, "skipped", "claimed by another submitter")
        batch_job_id = self.batch.submit(spec)
        self._record_submit(item, state, spec, batch_job_id)
        reason = f"no Batch job {batch_name(job_id)}: submitted again ({resubmits + 1})"
        return Action(job_id, state.value, "resubmitted", reason, batch_job_id)

    def _claim(self, job_id: str, state: JobState, recorded: str | None, resubmits: int) -> bool:
        """Win the right to submit: one conditional write, so only one caller submits."""
        if (
            state is JobState.ACCEPTED
            and not self.store.take_lease(job_id, self.owner, RECONCILE_LEASE_SECONDS).applied
        ):
            return False
        same_count = Attr(RESUBMITS).eq(resubmits) if resubmits else Attr(RESUBMITS).not_exists()
        same_job = (
            Attr("batch_job_id").eq(recorded) if recorded else Attr("batch_job_id").not_exists()
        )
        condition: ConditionBase = Attr("state").eq(state.value) & same_count & same_job
        if state is JobState.ACCEPTED:
            condition = condition & Attr(SUBMIT_OWNER).eq(self.owner)
        claim = {RESUBMITS: resubmits + 1, "resubmitted_at": now_iso()}
        return self.store.update(job_id, claim, condition=condition).applied

    def _record_submit(
        self, item: Mapping[str, Any], state: JobState, spec: JobSpec, batch_job_id: str
    ) -> None:
        job_id = spec.job_id
        attrs = {"batch_job_id": batch_job_id, "submitted_at": now_iso()}
        if state is JobState.ACCEPTED:
            self.store.transition(
                job_id, JobState.SUBMITTED, attrs, require=Attr(SUBMIT_OWNER).eq(self.owner)
            )
            self._announce(item, spec, batch_job_id)
        else:
            # The record keeps its state; Batch's events for the new job move it on.
            self.store.update(job_id, attrs, condition=Attr("state").eq(state.value))

    def _announce(self, item: Mapping[str, Any], spec: JobSpec, batch_job_id: str) -> None:
        """The "Job Accepted" event ingest would have sent after its SubmitJob."""
        detail = base_detail(
            job_id=spec.job_id,
            bucket=spec.bucket,
            source_key=spec.source_key,
            asset_key=str(item.get("asset_key") or "") or None,
            options=spec.options.to_dict(),
        ) | {"source_version": spec.source_version, "batch_job_id": batch_job_id}
        try:
            emit(DetailType.ACCEPTED, detail, self.settings.event_bus_name)
        except Exception:  # the job runs either way; the event is informational
            logger.warning("could not publish Job Accepted", extra={"job_id": spec.job_id})

    def _fail(self, job_id: str, state: JobState, reason: str) -> Action:
        attrs = {"error": reason, "reason": reason, "error_kind": ErrorKind.INTERNAL.value}
        result = self.store.transition(job_id, JobState.FAILED, attrs)
        if not result.applied:
            return Action(job_id, state.value, "skipped", "the record moved on")
        self.applier.notify_once(job_id)
        return Action(job_id, state.value, "failed", reason)


def batch_name(job_id: str) -> str:
    return batch_job_name(job_id)


def _pick(jobs: list[dict[str, Any]], recorded: str | None) -> dict[str, Any]:
    """The Batch job that speaks for the record: the recorded one, else the newest."""
    for job in jobs:
        if recorded and job.get("jobId") == recorded:
            return job
    active = [j for j in jobs if j.get("status") in batchjobs.ACTIVE_STATUSES]
    return max(active or jobs, key=lambda j: int(j.get("createdAt") or 0))
