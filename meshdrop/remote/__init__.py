"""Client side of a deployed (or local) meshdrop stack: discovery, upload, jobs, assets.

The AWS modules (``client``, ``jobs``, ``assets``, ``upload``) import boto3; this package's
top level stays light so the command line can import it cheaply.
"""

from __future__ import annotations

from .s3url import S3Ref, S3UrlError, parse_s3_ref


class RemoteError(Exception):
    """A failure with a one-line, actionable message (``str(err)``)."""


#: Parallel uploads of ``meshdrop upload``.
DEFAULT_WORKERS = 8

__all__ = ["DEFAULT_WORKERS", "RemoteError", "S3Ref", "S3UrlError", "parse_s3_ref"]
