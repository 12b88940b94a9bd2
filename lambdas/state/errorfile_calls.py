"""The state function's calls to the error file ``3d_assets/<category>/<name>.error.json``.

A FAILED job leaves it where the uploader looks for the asset; a later success for the same key
removes it. ``lambdas/common/errorfile.py`` (ingest's branch) holds the shared implementation;
until the branches meet, this module is the state function's minimal one, with the signatures
agreed for the merge. The layout of the file is the same: version, job id, source key, state,
error kind, reason, time. Writing is best effort: the record and the notification are the truth,
so an S3 error is logged, never raised (a retry would find the job already notified).
"""

from __future__ import annotations

import json
import os
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from meshdrop_contract import InvalidKeyError, parse_source_key

from ..common.observability import logger

#: Same variable ingest reads (``meshdrop_contract.wiring.ENV_ERROR_FILES`` on its branch).
ENV_ERROR_FILES = "MESHDROP_ERROR_FILES"
ERROR_FILE_VERSION = "1"
ERROR_SUFFIX = "error.json"


def error_files_enabled() -> bool:
    """Off only when the deployment says so (``false``, ``0``, ``no``, ``off``)."""
    return os.environ.get(ENV_ERROR_FILES, "").strip().lower() not in {"0", "false", "no", "off"}


def error_key(source_key: str) -> str | None:
    """``3d_assets/<category>/<name>.error.json`` beside the asset; ``None`` for a bad key."""
    try:
        return parse_source_key(source_key).asset_key(ERROR_SUFFIX)
    except InvalidKeyError:
        return None


def write_error_file(
    s3_client: Any,
    bucket: str,
    source_key: str,
    *,
    job_id: str,
    reason: str,
    error_kind: str,
    at: str,
) -> None:
    """Put the error file of ``source_key`` (best effort)."""
    key = error_key(source_key)
    if key is None:
        return
    body = {
        "version": ERROR_FILE_VERSION,
        "job_id": job_id,
        "source_key": source_key,
        "state": "FAILED",
        "error_kind": error_kind,
        "reason": reason,
        "time": at,
    }
    try:
        s3_client.put_object(
            Bucket=bucket,
            Key=key,
            Body=json.dumps(body, indent=2).encode(),
            ContentType="application/json",
            Metadata={"meshdrop-job-id": job_id},
        )
    except (ClientError, BotoCoreError) as err:
        logger.warning("could not write the error file", extra={"key": key, "error": str(err)})


def remove_error_file(s3_client: Any, bucket: str, source_key: str) -> None:
    """Delete the error file of ``source_key``; absent is fine (best effort)."""
    key = error_key(source_key)
    if key is None:
        return
    try:
        s3_client.delete_object(Bucket=bucket, Key=key)
    except (ClientError, BotoCoreError) as err:
        logger.warning("could not remove the error file", extra={"key": key, "error": str(err)})
