"""Turn AWS client failures into one line a person can act on.

The CLI prints :class:`RemoteError` messages and exits 1; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    TokenRetrievalError,
)

from meshdrop_contract.wiring import S3_NOT_FOUND_CODES

from . import RemoteError

_ACCESS_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "Forbidden",
    "403",
    "UnauthorizedOperation",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
}
_NO_BUCKET = {"NoSuchBucket"}

__all__ = ["RemoteError", "error_code", "explain", "guard", "is_fatal"]


def error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def is_fatal(err: Exception) -> bool:
    """Whether ``err`` will fail every other call of the run too (credentials, bucket, access)."""
    if isinstance(err, NoCredentialsError | PartialCredentialsError | TokenRetrievalError):
        return True
    if isinstance(err, NoRegionError | EndpointConnectionError):
        return True
    return isinstance(err, ClientError) and error_code(err) in _ACCESS_DENIED | _NO_BUCKET


def explain(err: Exception, *, what: str = "") -> RemoteError | None:
    """The :class:`RemoteError` for a known client failure, ``None`` for anything else.

    Parameters
    ----------
    err
        The exception boto3 raised.
    what
        What was being accessed (``"bucket photos"``, ``"s3://b/k"``), for the message.
    """
    about = f" ({what})" if what else ""
    if isinstance(err, NoCredentialsError | PartialCredentialsError):
        return RemoteError(
            "No AWS credentials found: run `aws configure`, set AWS_PROFILE, or export "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."
        )
    if isinstance(err, TokenRetrievalError):
        return RemoteError(f"AWS credentials expired: log in again (aws sso login). {err}")
    if isinstance(err, NoRegionError):
        return RemoteError(
            "No AWS region configured: pass --region, set AWS_REGION or AWS_DEFAULT_REGION, "
            "or set region in ~/.aws/config."
        )
    if isinstance(err, EndpointConnectionError):
        return RemoteError(f"Cannot reach {err.kwargs.get('endpoint_url', 'the AWS endpoint')}.")
    if not isinstance(err, ClientError):
        return None
    code = error_code(err)
    operation = err.operation_name
    if code in _ACCESS_DENIED:
        return RemoteError(
            f"Access denied: your credentials may not call {operation}{about}. "
            "Ask for the meshdrop user policy or use another profile."
        )
    if code in _NO_BUCKET:
        return RemoteError(f"Bucket does not exist{about}: check --bucket/--stack and the region.")
    if code == "ResourceNotFoundException":
        return RemoteError(
            f"DynamoDB table not found{about}: check --table/--stack and the region."
        )
    if code == "ValidationError" and "does not exist" in str(err):
        return RemoteError(
            f"CloudFormation stack not found{about}: deploy it (cdk deploy), pass --stack, "
            "or give --bucket and --table."
        )
    if code in S3_NOT_FOUND_CODES:
        return RemoteError(f"No such object{about}.")
    message = err.response.get("Error", {}).get("Message") or code
    return RemoteError(f"{operation} failed{about}: {message}")


@contextmanager
def guard(what: str = "") -> Iterator[None]:
    """Re-raise known AWS failures inside the block as :class:`RemoteError` about ``what``."""
    try:
        yield
    except (ClientError, BotoCoreError) as err:
        known = explain(err, what=what)
        if known is None:
            raise
        raise known from None
