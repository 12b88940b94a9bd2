"""Parse what people paste as "the object": a key, an ``s3://`` URI or an S3 HTTPS URL.

People copy object addresses from the S3 console (virtual-hosted URL, ``+`` for spaces), from
``aws s3 ls`` (``s3://`` URI, key as is), from presigned links (query string) or from the local
pipeline's endpoint (path-style on ``http://127.0.0.1:<port>``); all of them name one object.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, unquote_plus, urlsplit


class S3UrlError(ValueError):
    """The text is not an S3 object address; ``str(err)`` says why."""


@dataclass(frozen=True, slots=True)
class S3Ref:
    """One object: bucket (``None`` for a bare key), key and an optional version id."""

    bucket: str | None
    key: str
    version_id: str | None = None
    region: str | None = None

    def uri(self) -> str:
        """The ``s3://`` form (without version), for messages."""
        return f"s3://{self.bucket}/{self.key}" if self.bucket else self.key


# Bucket naming rules: 3-63 of lower-case letters, digits, dots and hyphens, starting and ending
# with a letter or digit. Dots are allowed, which is why the host patterns below match greedily.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# <bucket>.s3.amazonaws.com, <bucket>.s3.<region>.amazonaws.com, <bucket>.s3-<region>.amazonaws.com,
# <bucket>.s3.dualstack.<region>.amazonaws.com, and the .com.cn partition.
_VIRTUAL_HOST = re.compile(
    r"^(?P<bucket>.+)\.s3(?:[.-](?:dualstack\.)?(?P<region>[a-z]{2}(?:-[a-z]+)+-\d))?"
    r"\.amazonaws\.com(?:\.cn)?$"
)
_PATH_HOST = re.compile(
    r"^s3(?:[.-](?:dualstack\.)?(?P<region>[a-z]{2}(?:-[a-z]+)+-\d))?\.amazonaws\.com(?:\.cn)?$"
)


def _check_bucket(bucket: str) -> str:
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise S3UrlError(f"{bucket!r} is not a valid S3 bucket name")
    return bucket


def _check_key(key: str, text: str) -> str:
    if not key:
        raise S3UrlError(f"{text!r} names a bucket but no object key")
    return key


def _version_of(query: str) -> str | None:
    values = parse_qs(query, keep_blank_values=False).get("versionId")
    return values[0] if values else None


def parse_s3_ref(text: str, *, endpoint_url: str | None = None) -> S3Ref:
    """Split an object address into bucket, key and version.

    Parameters
    ----------
    text
        A bare key (``images/uploaded/mug.jpg``), ``s3://bucket/key``, a virtual-hosted URL
        (``https://bucket.s3.region.amazonaws.com/key``), a path-style URL
        (``https://s3.region.amazonaws.com/bucket/key``), or a path-style URL on
        ``endpoint_url`` (a local or S3-compatible endpoint). HTTPS URLs may carry a query
        string; ``versionId`` is kept, the rest (presigned signatures) ignored.
    endpoint_url
        Custom endpoint whose URLs are read path-style (``AWS_ENDPOINT_URL``).

    Returns
    -------
    S3Ref
        ``bucket`` is ``None`` for a bare key.

    Raises
    ------
    S3UrlError
        Empty text, a URL that is not S3, a bad bucket name or a missing key.
    """
    text = text.strip()
    if not text:
        raise S3UrlError("empty object address")
    lowered = text.lower()
    if lowered.startswith("s3://"):
        # s3:// URIs (aws cli, console "Copy S3 URI") carry the key verbatim, not URL-encoded.
        bucket, _, key = text[5:].partition("/")
        return S3Ref(bucket=_check_bucket(bucket), key=_check_key(key, text))
    if lowered.startswith(("https://", "http://")):
        return _parse_http(text, endpoint_url)
    if "://" in text:
        raise S3UrlError(f"{text!r}: only s3://, https:// and http:// addresses are understood")
    return S3Ref(bucket=None, key=text.lstrip("/"))


def _parse_http(text: str, endpoint_url: str | None) -> S3Ref:
    url = urlsplit(text)
    host = (url.hostname or "").lower()
    version = _version_of(url.query)
    # S3 decodes '+' in a path as a space (the console writes spaces that way), so a literal
    # '+' in a key arrives as %2B; plain unquote would turn "my+mug.jpg" into the wrong key.
    path = url.path
    if m := _VIRTUAL_HOST.match(host):
        key = unquote_plus(path.lstrip("/"))
        return S3Ref(
            bucket=_check_bucket(m["bucket"]),
            key=_check_key(key, text),
            version_id=version,
            region=m["region"],
        )
    region: str | None = None
    if m := _PATH_HOST.match(host):
        region = m["region"]
        rest = path
    elif endpoint_url and _same_origin(text, endpoint_url):
        base = urlsplit(endpoint_url).path.rstrip("/")
        rest = path[len(base) :] if path.startswith(base) else path
    else:
        raise S3UrlError(f"{text!r} is not an S3 URL (host {host or '?'} is not an S3 endpoint)")
    bucket, _, raw_key = rest.lstrip("/").partition("/")
    return S3Ref(
        bucket=_check_bucket(unquote(bucket)),
        key=_check_key(unquote_plus(raw_key), text),
        version_id=version,
        region=region,
    )


def _same_origin(url: str, endpoint_url: str) -> bool:
    a, b = urlsplit(url), urlsplit(endpoint_url)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)
