"""The one notification of a terminal job, and the error file beside its asset.

At most once: :meth:`JobStore.claim_notification` marks the record (``notified_at``) before
the publish, so concurrent or repeated deliveries of terminal events cannot both send. At least
once: a publish that fails gives the claim back and raises, so the invocation fails and Lambda's
retries of the EventBridge invocation (then the failure queue) deliver the event again, which
finds the job terminal and unclaimed and notifies. The claim also sets the outbox mark
``notification_pending``, replaced by ``notification_sent_at`` once SNS accepted the message: a
mark older than a function timeout is a notification lost in a crash between claim and publish,
which the reconciler resends with :meth:`Notifier.resend_lost` (still at most once: the resend
takes the claim over with a conditional write).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from meshdrop_contract import InvalidKeyError, JobOptions, JobState, parse_source_key

from ..common.errorfile import remove_error_file, write_error_file
from ..common.jobstore import STATE, JobStore
from ..common.observability import MetricName, logger, metrics
from ..common.settings import StateSettings

_SUBJECT_UNSAFE = re.compile(r"[^\x20-\x7e]")
#: Terminal states whose job tells nobody: the newer upload's job notifies.
SILENT_STATES = frozenset({JobState.SUPERSEDED})


class Notifier:
    def __init__(self, settings: StateSettings, store: JobStore, sns: Any, s3: Any) -> None:
        self.settings = settings
        self.store = store
        self.sns = sns
        self.s3 = s3

    def notify_once(self, job_id: str) -> bool:
        """Publish the job's final notification unless some delivery already did."""
        return self._send(job_id, self.store.claim_notification_outbox(job_id))

    def resend_lost(self, job_id: str, claimed_before: str) -> bool:
        """For the reconciler: publish a notification claimed before ``claimed_before`` and
        never marked sent (the function died between claim and publish)."""
        return self._send(job_id, self.store.reclaim_lost_notification(job_id, claimed_before))

    def _send(self, job_id: str, item: Mapping[str, Any] | None) -> bool:
        if item is None:
            return False
        state = JobState(str(item[STATE]))
        if state in SILENT_STATES:
            self.store.release_notification_outbox(job_id)
            return False
        message = notification_message(item)
        try:
            self._error_file(item, state)
            self._publish(item, message)
        except Exception:
            # Give the claim back so the retry of this event can notify.
            self.store.release_notification_outbox(job_id)
            raise
        self.store.mark_notification_sent(job_id)
        self._count(item, state, message)
        return True

    def _publish(self, item: Mapping[str, Any], message: Mapping[str, Any]) -> None:
        self.sns.publish(
            TopicArn=self.settings.topic_arn,
            Subject=notification_subject(item),
            Message=json.dumps(message, ensure_ascii=False, default=str),
            MessageAttributes={
                "state": {"DataType": "String", "StringValue": str(message["state"])},
                "category": {"DataType": "String", "StringValue": _category(item)},
            },
        )

    def _error_file(self, item: Mapping[str, Any], state: JobState) -> None:
        """Best effort: the record and the notification are the truth, the file a courtesy."""
        bucket, source_key = item.get("bucket"), item.get("source_key")
        if not self.settings.error_files or not isinstance(bucket, str) or not bucket:
            return
        try:
            source = parse_source_key(str(source_key))
        except InvalidKeyError:
            return
        if state is JobState.FAILED:
            write_error_file(
                bucket,
                source,
                job_id=str(item.get("job_id")),
                reason=str(item.get("error") or "the job failed"),
                error_kind=str(item.get("error_kind") or "internal"),
                state=JobState.FAILED.value,
                s3=self.s3,
            )
        elif state is JobState.SUCCEEDED:
            remove_error_file(bucket, source, s3=self.s3)

    def _count(self, item: Mapping[str, Any], state: JobState, message: Mapping[str, Any]) -> None:
        metrics.add_metric(name=MetricName.NOTIFICATIONS_SENT, unit="Count", value=1)
        if state is JobState.SUCCEEDED:
            metrics.add_metric(name=MetricName.JOBS_SUCCEEDED, unit="Count", value=1)
            seconds = message.get("seconds")
            if isinstance(seconds, int | float) and not item.get("reused"):
                metrics.add_metric(name=MetricName.JOB_SECONDS, unit="Seconds", value=seconds)
        elif state is JobState.FAILED:
            metrics.add_metric(name=MetricName.JOBS_FAILED, unit="Count", value=1)
        logger.info("notification sent", extra={"job_id": item.get("job_id"), "state": state})


def _category(item: Mapping[str, Any]) -> str:
    try:
        return parse_source_key(str(item.get("source_key", ""))).category.value
    except InvalidKeyError:
        return "unknown"


def derived_keys(item: Mapping[str, Any]) -> dict[str, str]:
    """Asset and thumbnail keys a record lacks, derived from its source key and options.

    Records written before 1.1, or completed by Batch's SUCCEEDED before the generator's event,
    may lack them; the keys are a function of the source key, so the notification never does.
    """
    try:
        source = parse_source_key(str(item.get("source_key", "")))
        options = JobOptions.from_dict(item.get("options") or {})
    except (InvalidKeyError, ValueError, TypeError, AttributeError):
        return {}
    keys = {
        "asset_key": source.asset_key(options.format.value),
        "thumbnail_key": source.thumbnail_key(),
    }
    return {k: v for k, v in keys.items() if not item.get(k)}


def notification_message(item: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body of the SNS notification for a terminal job record."""
    state = str(item.get(STATE))
    succeeded = state == JobState.SUCCEEDED.value
    if succeeded:
        item = {**item, **derived_keys(item)}
    seconds = item.get("seconds", item.get("batch_seconds"))
    return {
        "job_id": item.get("job_id"),
        "state": state,
        "bucket": item.get("bucket"),
        "source_key": item.get("source_key"),
        "asset_key": item.get("asset_key") if succeeded else None,
        "thumbnail_key": item.get("thumbnail_key") if succeeded else None,
        "reused": bool(item.get("reused", False)),
        "error": None if succeeded else item.get("error"),
        "error_kind": None if succeeded else item.get("error_kind"),
        "seconds": seconds,
    }


def notification_subject(item: Mapping[str, Any]) -> str:
    """SNS subjects must be ASCII, one line, under 100 characters."""
    name = str(item.get("source_key", "")).rsplit("/", 1)[-1]
    subject = f"meshdrop job {item.get(STATE)}: {name}"
    return _SUBJECT_UNSAFE.sub("?", subject)[:99]
