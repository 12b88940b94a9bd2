"""What ingest reports for each notice, and its retry signal."""

from __future__ import annotations

from enum import StrEnum


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
