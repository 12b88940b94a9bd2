"""``3d_assets/<category>/<name>.error.json``: why a photo did not become an asset.

Uploaders look under ``3d_assets/`` for their asset; a job that ends REJECTED (ingest) or FAILED
(state function) leaves this small JSON file where the asset would have been, and a later
success for the same key removes it (state function). Whether to write it is a setting
(:func:`lambdas.common.settings.error_files_enabled`); the callers check it.

Writing is best effort: the job record and the notification are the source of truth, so an S3
error here is logged and never fails the record (a retry would find the job already terminal).
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from meshdrop_contract.events import now_iso
from meshdrop_contract.keys import SourceKey

from .clients import client
from .observability import logger

#: Version of the file's own layout, so readers can tell a future change.
ERROR_FILE_VERSION = "1"


def error_document(
    *, job_id: str, source_key: str, reason: str, error_kind: str, state: str, at: str | None = None
) -> dict[str, Any]:
    """The JSON written to the error file."""
    return {
        "version": ERROR_FILE_VERSION,
        "job_id": job_id,
        "source_key": source_key,
        "state": state,
        "error_kind": error_kind,
        "reason": reason,
        "time": at or now_iso(),
    }


def write_error_file(
    bucket: str,
    source: SourceKey,
    *,
    job_id: str,
    reason: str,
    error_kind: str,
    state: str = "REJECTED",
    s3: Any = None,
) -> str | None:
    """Put the error file of ``source``; its key, or ``None`` when S3 refused (logged)."""
    key = source.error_key()
    body = error_document(
        job_id=job_id, source_key=source.key, reason=reason, error_kind=error_kind, state=state
    )
    try:
        (s3 or client("s3")).put_object(
            Bucket=bucket,
            Key=key,
            Body=json.dumps(body, indent=2).encode(),
            ContentType="application/json",
            Metadata={"meshdrop-job-id": job_id},
        )
    except (ClientError, BotoCoreError) as err:
        logger.warning("could not write the error file", extra={"key": key, "error": str(err)})
        return None
    return key


def remove_error_file(bucket: str, source: SourceKey, *, s3: Any = None) -> bool:
    """Delete the error file of ``source`` (absent is fine); whether S3 accepted the delete."""
    key = source.error_key()
    try:
        (s3 or client("s3")).delete_object(Bucket=bucket, Key=key)
    except (ClientError, BotoCoreError) as err:
        logger.warning("could not remove the error file", extra={"key": key, "error": str(err)})
        return False
    return True
