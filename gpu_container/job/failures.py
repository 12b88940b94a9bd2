"""Failure mapping: what is worth a Batch retry and what is final."""

from __future__ import annotations

import errno

from meshdrop_contract.wiring import S3_NOT_FOUND_CODES

#: Error codes of AWS services that mean "try again later", not "this will never work".
TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "SlowDown",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "RequestTimeout",
        "RequestTimeoutException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalError",
        "InternalFailure",
        "InternalException",
        "InternalServerError",
        "ExpiredToken",
        "ExpiredTokenException",
    }
)
#: Source object errors that no retry can fix: the upload is gone or was replaced.
SOURCE_GONE_CODES = S3_NOT_FOUND_CODES | {"PreconditionFailed", "412"}
#: HEAD of a key whose current version is a delete marker answers 404; asked for a version
#: that is a delete marker it answers 405. Both mean the photo is gone.
SOURCE_DELETED_CODES = S3_NOT_FOUND_CODES | {"405", "MethodNotAllowed"}
#: Environmental OS errors (network, full disk) that another attempt may not meet.
_TRANSIENT_ERRNOS = frozenset(
    {
        errno.ECONNRESET,
        errno.ECONNREFUSED,
        errno.ECONNABORTED,
        errno.ENETUNREACH,
        errno.EHOSTUNREACH,
        errno.ETIMEDOUT,
        errno.EPIPE,
        errno.ENOSPC,
        errno.ENOMEM,
    }
)


class TransientError(Exception):
    """Something outside the input failed; the job should be retried by Batch."""


class SourceError(Exception):
    """The source object cannot be used (gone, replaced, corrupt in transit); never retried."""


class SupersededError(Exception):
    """The key's current photo is no longer the one this job was made from.

    A newer upload (or a delete) took the key over; writing the asset now would overwrite the
    newer photo's asset with this older one, so the job stops without writing.
    """


def client_error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ``ClientError`` (``None`` for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code")) or None  # type: ignore[union-attr]
    return None


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is worth a retry (by Batch) rather than a terminal failure."""
    if isinstance(exc, TransientError | MemoryError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS:
        return True
    try:
        from botocore.exceptions import (
            ClientError,
            ConnectionClosedError,
            EndpointConnectionError,
            ReadTimeoutError,
        )
        from botocore.exceptions import ConnectionError as BotoConnectionError
    except ImportError:  # pragma: no cover - botocore ships with the container
        return False
    if isinstance(
        exc,
        EndpointConnectionError | ConnectionClosedError | ReadTimeoutError | BotoConnectionError,
    ):
        return True
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return err.get("Code") in TRANSIENT_CODES or int(status or 0) >= 500
    # torch raises its own OOM type on GPUs; it subclasses RuntimeError.
    return type(exc).__name__ in {"OutOfMemoryError", "CudaOutOfMemoryError"}
