"""Image checks of the ingest function, on bytes (no AWS)."""

from __future__ import annotations

import hashlib

import pytest

from lambdas.ingest.validation import (
    RejectedInputError,
    check_size,
    describe_content,
    inspect_image,
    read_checked,
    sniff_format,
)
from tests.helpers.photos import exif_rotated_jpeg, image_bytes, png_header_only

LIMIT = 40_000_000


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "BMP", "TIFF", "WEBP"])
def test_sniffs_each_accepted_format(fmt: str) -> None:
    assert sniff_format(image_bytes(fmt)[:16]) == fmt


@pytest.mark.parametrize(
    ("head", "name"),
    [
        (b"GIF89a\x01\x00\x01\x00", "GIF"),
        (b"%PDF-1.7\n", "PDF"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00", "HEIC"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00", "AVIF"),
        (b"PK\x03\x04\x14\x00", "a ZIP archive"),
        (b'{"not": "an image"}', "JSON"),
        (b"just some words\n", "text"),
        (b"\x00\x01\x02\x03\xfe\xff", "unrecognised binary data"),
    ],
)
def test_describes_what_a_non_image_is(head: bytes, name: str) -> None:
    assert sniff_format(head) is None
    assert describe_content(head) == name


def test_reading_hashes_the_stream_and_stops_at_a_non_image() -> None:
    data = image_bytes("PNG", (128, 128))
    chunks = [data[i : i + 100] for i in range(0, len(data), 100)]
    content, sha = read_checked(chunks, max_bytes=10_000_000)
    assert content == data
    assert sha == hashlib.sha256(data).hexdigest()

    consumed = []

    def gif_stream():  # type: ignore[no-untyped-def]
        for chunk in (b"GIF89a" + b"\0" * 20, b"\0" * 1000, b"\0" * 1000):
            consumed.append(chunk)
            yield chunk

    with pytest.raises(RejectedInputError, match="content is GIF"):
        read_checked(gif_stream(), max_bytes=10_000_000)
    assert len(consumed) == 1  # rejected without reading the rest


def test_reading_stops_past_the_limit_even_if_the_header_lied() -> None:
    with pytest.raises(RejectedInputError, match="larger than the limit"):
        read_checked([image_bytes("BMP", (100, 100))], max_bytes=1000)


@pytest.mark.parametrize(
    ("length", "message"),
    [(0, "file is empty"), (30_000_001, "file is 30.0 MB, larger than the limit of 25.0 MB")],
)
def test_size_check(length: int, message: str) -> None:
    with pytest.raises(RejectedInputError) as err:
        check_size(length, 25_000_000)
    assert str(err.value) == message


def test_accepted_image_reports_its_header() -> None:
    data = exif_rotated_jpeg()
    info = inspect_image(data, "abc", max_pixels=LIMIT)
    assert (info.format, info.width, info.height, info.mode) == ("JPEG", 80, 40, "RGB")
    assert (info.size, info.sha256) == (len(data), "abc")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(png_header_only(40000, 40000), "decompression bomb", id="bomb"),
        pytest.param(
            png_header_only(8000, 6000),
            "image is 8000x6000 (48.0 megapixels), above the limit of 40.0 megapixels",
            id="too many pixels",
        ),
        pytest.param(image_bytes("PNG", (1, 1)), "image is 1x1 pixels", id="1x1"),
        pytest.param(image_bytes("PNG", (400, 20)), "image is 400x20 pixels", id="thin"),
        pytest.param(image_bytes("PNG")[:-20], "PNG file is truncated", id="png cut"),
        pytest.param(
            image_bytes("JPEG", (512, 512))[:2000], "JPEG file is truncated", id="jpeg cut"
        ),
        pytest.param(image_bytes("WEBP", (256, 256))[:-40], "WEBP file is truncated", id="webp"),
        pytest.param(image_bytes("BMP")[:-500], "BMP file is truncated", id="bmp cut"),
        pytest.param(b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "PNG", id="garbage after signature"),
    ],
)
def test_bad_images_are_rejected_with_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(RejectedInputError) as err:
        inspect_image(data, "x", max_pixels=LIMIT)
    assert message in str(err.value)
