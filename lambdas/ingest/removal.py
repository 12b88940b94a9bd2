"""ObjectRemoved: a photo was deleted. Its jobs note it; its asset goes too only if so configured.

Which jobs lost their source depends on what the key holds now (HeadObject):

* nothing (deleted, or a delete marker on a versioned bucket): every job of the key is marked
  ``source_deleted``; with ``MESHDROP_DELETE_ASSETS_WITH_SOURCE`` the asset, thumbnail and error
  file under ``3d_assets/`` are deleted as well;
* a current photo (one old version was deleted, or a new upload came after the delete): only
  the jobs made from the deleted version are marked, and nothing under ``3d_assets/`` is
  touched, because the newest photo owns those keys.
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Attr

from meshdrop_contract import InvalidKeyError, is_asset_key, parse_source_key
from meshdrop_contract.events import now_iso
from meshdrop_contract.keys import SourceKey

from ..common.jobstore import JobStore
from ..common.observability import logger
from .access import SourceReader
from .notices import Notice
from .shapes import is_valid

SOURCE_DELETED = "source_deleted"
SOURCE_DELETED_AT = "source_deleted_at"


def _affected(
    jobs: list[dict[str, Any]], notice: Notice, key_is_empty: bool
) -> list[dict[str, Any]]:
    mine = [j for j in jobs if is_valid("JOB_RECORD", j) and j.get("bucket") == notice.bucket]
    if key_is_empty:
        return mine
    deleted = notice.version_id
    return [j for j in mine if deleted and j.get("source_version") == deleted]


def _assets_of(source: SourceKey, jobs: list[dict[str, Any]]) -> set[str]:
    keys = {str(j["asset_key"]) for j in jobs if isinstance(j.get("asset_key"), str)}
    keys |= {source.asset_key(), source.thumbnail_key(), source.error_key()}
    # Only ever our own outputs, whatever a record says.
    return {k for k in keys if is_asset_key(k)}


def remove_source(
    notice: Notice, store: JobStore, reader: SourceReader, *, delete_assets: bool
) -> list[str] | None:
    """Apply one ObjectRemoved notice; the ids of the jobs marked, ``None`` if nothing applied."""
    try:
        source = parse_source_key(notice.key)
    except InvalidKeyError as err:
        logger.info("ignoring the removal of a key that is no source", extra={"reason": str(err)})
        return None
    key_is_empty = reader.current_version(notice.bucket, notice.key) is None
    affected = _affected(store.jobs_for_source(notice.key), notice, key_is_empty)
    if not affected:
        logger.info("ignoring the removal of a photo without jobs", extra={"key": notice.key})
        return None
    at = now_iso()
    for job in affected:
        store.update(
            str(job["job_id"]),
            {SOURCE_DELETED: True, SOURCE_DELETED_AT: at},
            condition=Attr("job_id").exists(),
        )
    if key_is_empty and delete_assets:
        for key in sorted(_assets_of(source, affected)):
            reader.s3.delete_object(Bucket=notice.bucket, Key=key)
        logger.info("deleted the photo's asset with it", extra={"key": notice.key})
    logger.info(
        "photo deleted; its jobs note it",
        extra={"key": notice.key, "jobs": len(affected), "assets_deleted": delete_assets},
    )
    return [str(j["job_id"]) for j in affected]
