"""What ingest reports for each notice, its metric names and its retry signal."""

from __future__ import annotations

from enum import StrEnum


class IngestMetric:
    """Ingest's own metric names, beside :class:`MetricName` (dashboards and alarms key on them)."""

    INVALID_EVENTS = "InvalidEvents"  # malformed or unrecognised bodies, dropped
    INVALID_RECORDS = "InvalidRecords"  # stored items that fail their schema, not used
    IGNORED_EVENTS = "IgnoredEvents"  # folders, removals of unknown keys, other S3 events
    JOBS_SUPERSEDED = "JobsSuperseded"
    SOURCES_DELETED = "SourcesDeleted"
    SUBMITS_ADOPTED = "SubmitsAdopted"  # a Batch job found already submitted for the job


class Outcome(StrEnum):
    IGNORED = "ignored"  # test events, writes under 3d_assets/, folder placeholders
    INVALID = "invalid"  # a body that is not a valid S3 delivery: logged, counted, dropped
    GONE = "gone"  # object deleted before we read it
    DUPLICATE = "duplicate"  # another delivery already handled this upload
    REJECTED = "rejected"
    REUSED = "reused"
    SUBMITTED = "submitted"
    PACKED = "packed"  # accepted and held for its pack, submitted when the invocation ends
    SUPERSEDED = "superseded"  # a newer upload of the key came first: never submitted
    SOURCE_DELETED = "source_deleted"  # ObjectRemoved: the key's jobs marked, assets per setting


class LeaseHeldError(RuntimeError):
    """Another invocation is submitting this job; the message is retried later."""
