"""The object address parser behind ``meshdrop get``: keys, s3:// URIs and S3 HTTPS URLs."""

from __future__ import annotations

import pytest

from meshdrop.remote.s3url import S3Ref, S3UrlError, parse_s3_ref

KEY = "3d_assets/uploaded/kitchen/mug.glb"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Bare keys: the bucket comes from the stack.
        (KEY, S3Ref(None, KEY)),
        ("/images/uploaded/mug.jpg", S3Ref(None, "images/uploaded/mug.jpg")),
        ("  images/uploaded/mug.jpg\n", S3Ref(None, "images/uploaded/mug.jpg")),
        # s3:// URIs carry the key verbatim, '+' and '%' included.
        (f"s3://photos/{KEY}", S3Ref("photos", KEY)),
        ("S3://photos/images/uploaded/a+b%20c.jpg", S3Ref("photos", "images/uploaded/a+b%20c.jpg")),
        ("s3://my.dotted.bucket/images/x.png", S3Ref("my.dotted.bucket", "images/x.png")),
        # Virtual-hosted style, with and without region, legacy dash and dual-stack hosts.
        (f"https://photos.s3.amazonaws.com/{KEY}", S3Ref("photos", KEY)),
        (
            f"https://photos.s3.eu-west-1.amazonaws.com/{KEY}",
            S3Ref("photos", KEY, region="eu-west-1"),
        ),
        (
            f"https://photos.s3-us-west-2.amazonaws.com/{KEY}",
            S3Ref("photos", KEY, region="us-west-2"),
        ),
        (
            f"https://photos.s3.dualstack.ap-southeast-2.amazonaws.com/{KEY}",
            S3Ref("photos", KEY, region="ap-southeast-2"),
        ),
        (
            f"https://photos.s3.cn-north-1.amazonaws.com.cn/{KEY}",
            S3Ref("photos", KEY, region="cn-north-1"),
        ),
        (
            f"https://my.s3.bucket.s3.us-gov-west-1.amazonaws.com/{KEY}",
            S3Ref("my.s3.bucket", KEY, region="us-gov-west-1"),
        ),
        # Path style.
        (f"https://s3.amazonaws.com/photos/{KEY}", S3Ref("photos", KEY)),
        (
            f"https://s3.us-east-1.amazonaws.com/photos/{KEY}",
            S3Ref("photos", KEY, region="us-east-1"),
        ),
        (
            f"https://s3-eu-central-1.amazonaws.com/photos/{KEY}",
            S3Ref("photos", KEY, region="eu-central-1"),
        ),
        # Console URLs write a space as '+' and a literal '+' as %2B; unicode is %-encoded.
        (
            "https://photos.s3.us-east-1.amazonaws.com/images/uploaded/red+mug%2B1.jpg",
            S3Ref("photos", "images/uploaded/red mug+1.jpg", region="us-east-1"),
        ),
        (
            "https://s3.us-east-1.amazonaws.com/photos/images/uploaded/caf%C3%A9%20cup.jpg",
            S3Ref("photos", "images/uploaded/café cup.jpg", region="us-east-1"),
        ),
        # Version ids survive; presigned signature parameters are dropped.
        (
            f"https://photos.s3.eu-west-1.amazonaws.com/{KEY}?versionId=3HL4kq.tJl&x-id=GetObject",
            S3Ref("photos", KEY, version_id="3HL4kq.tJl", region="eu-west-1"),
        ),
        (
            f"https://s3.amazonaws.com/photos/{KEY}?X-Amz-Signature=abc&X-Amz-Expires=60",
            S3Ref("photos", KEY),
        ),
    ],
)
def test_addresses_parse(text: str, expected: S3Ref) -> None:
    assert parse_s3_ref(text) == expected


def test_local_endpoint_urls_are_path_style() -> None:
    endpoint = "http://127.0.0.1:50123"
    ref = parse_s3_ref(f"{endpoint}/photos/{KEY}?versionId=v1", endpoint_url=endpoint)
    assert ref == S3Ref("photos", KEY, version_id="v1")
    # The same URL without the endpoint configured is not recognisably S3.
    with pytest.raises(S3UrlError, match="not an S3 URL"):
        parse_s3_ref(f"{endpoint}/photos/{KEY}")
    # A different port is a different service.
    with pytest.raises(S3UrlError, match="not an S3 URL"):
        parse_s3_ref(f"http://127.0.0.1:9/photos/{KEY}", endpoint_url=endpoint)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("s3://photos", "no object key"),
        ("s3://photos/", "no object key"),
        ("s3://Photos/images/a.jpg", "not a valid S3 bucket name"),
        ("s3://ab/images/a.jpg", "not a valid S3 bucket name"),
        ("s3://bad..dots/images/a.jpg", "not a valid S3 bucket name"),
        ("https://photos.s3.amazonaws.com/", "no object key"),
        ("https://s3.amazonaws.com/photos", "no object key"),
        ("https://example.com/photos/images/a.jpg", "not an S3 URL"),
        ("https://photos.s3-website-us-east-1.amazonaws.com/a.jpg", "not an S3 URL"),
        ("ftp://photos/images/a.jpg", "only s3://"),
    ],
)
def test_bad_addresses_say_why(text: str, message: str) -> None:
    with pytest.raises(S3UrlError, match=message):
        parse_s3_ref(text)


def test_uri_for_messages() -> None:
    assert parse_s3_ref(f"https://s3.amazonaws.com/photos/{KEY}").uri() == f"s3://photos/{KEY}"
    assert parse_s3_ref(KEY).uri() == KEY
