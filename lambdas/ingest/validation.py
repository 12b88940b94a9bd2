"""Cheap checks on an uploaded image, run before any GPU time is spent.

Everything here works on bytes already in memory and never decodes full-resolution pixels: the
size and pixel limits come from headers, and truncation is caught from the container structure
(or, for JPEG, by a 1/8-scale draft decode that costs a fraction of a full one).
"""

from __future__ import annotations

import hashlib
import io
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from PIL import (
    BmpImagePlugin,
    Image,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    UnidentifiedImageError,
    WebPImagePlugin,
)

from meshdrop_contract import MIN_IMAGE_SIDE
from meshdrop_contract.limits import image_size_problem

# Register the accepted formats' decoders now, at cold start. Left to Pillow, the first open
# of a record pays for it (preinit: ~10 ms), and the first WEBP or TIFF makes Pillow import
# all ~45 of its plugins (~45 ms) because those two are not among the preinit ones.
_PLUGINS = (BmpImagePlugin, JpegImagePlugin, PngImagePlugin, TiffImagePlugin, WebPImagePlugin)
Image.preinit()

ACCEPTED_FORMATS = ("JPEG", "PNG", "BMP", "TIFF", "WEBP")
if _missing := [fmt for fmt in ACCEPTED_FORMATS if fmt not in Image.OPEN]:
    raise ImportError(f"this Pillow build cannot decode {', '.join(_missing)}")
#: Bytes needed to tell every format below apart.
MAGIC_BYTES = 16

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IEND = b"IEND\xaeB`\x82"


class RejectedInputError(ValueError):
    """The upload can never become an asset; ``str(err)`` is the reason shown to the uploader."""


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What the header says about an accepted image."""

    format: str  # one of ACCEPTED_FORMATS
    width: int
    height: int
    mode: str
    size: int  # bytes
    sha256: str


def sniff_format(head: bytes) -> str | None:
    """Name of an accepted image format from the first bytes, or ``None``."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(_PNG_SIGNATURE):
        return "PNG"
    if head.startswith(b"BM"):
        return "BMP"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return None


def describe_content(head: bytes) -> str:
    """Short human name of what a non-image (or unsupported image) upload really is."""
    known = (
        (b"GIF87a", "GIF"),
        (b"GIF89a", "GIF"),
        (b"%PDF", "PDF"),
        (b"PK\x03\x04", "a ZIP archive"),
        (b"\x1f\x8b", "gzip data"),
        (b"\x00\x00\x01\x00", "an ICO icon"),
        (b"8BPS", "a Photoshop document"),
        (b"<svg", "SVG"),
        (b"<?xml", "XML"),
        (b"\x00asm", "WebAssembly"),
    )
    for magic, name in known:
        if head.startswith(magic):
            return name
    if head[4:8] == b"ftyp":
        brand = head[8:12].decode("ascii", "replace")
        if brand in {"heic", "heix", "hevc", "mif1", "msf1"}:
            return "HEIC"
        if brand.startswith("avi"):
            return "AVIF"
        return "an ISO media file (video?)"
    if head[:4] == b"RIFF":
        return f"a RIFF {head[8:12].decode('ascii', 'replace')} file"
    stripped = head.lstrip()
    if stripped[:1] in (b"{", b"["):
        return "JSON"
    if stripped and all(32 <= b < 127 or b in (9, 10, 13) for b in stripped):
        return "text"
    return "unrecognised binary data"


def reject_unless_image(head: bytes) -> str:
    """The accepted format of content starting with ``head``; else :class:`RejectedInputError`."""
    fmt = sniff_format(head)
    if fmt is None:
        allowed = ", ".join(ACCEPTED_FORMATS)
        raise RejectedInputError(
            f"content is {describe_content(head)}, not an accepted image ({allowed})"
        )
    return fmt


def check_size(content_length: int, max_bytes: int) -> None:
    """Reject empty and oversized objects from their length alone (before reading them)."""
    if content_length <= 0:
        raise RejectedInputError("file is empty")
    if content_length > max_bytes:
        raise RejectedInputError(
            f"file is {content_length / 1e6:.1f} MB, larger than the limit of "
            f"{max_bytes / 1e6:.1f} MB"
        )


def read_checked(chunks: Iterable[bytes], max_bytes: int) -> tuple[bytes, str]:
    """Read a streamed body once, hashing as it goes; reject non-images after the first bytes.

    Returns
    -------
    tuple of (bytes, str)
        The content and its hex SHA-256.
    """
    digest = hashlib.sha256()
    buffer = bytearray()
    sniffed = False
    it: Iterator[bytes] = iter(chunks)
    for chunk in it:
        digest.update(chunk)
        buffer += chunk
        if len(buffer) > max_bytes:
            # More bytes than the length checked up front (a server or proxy lied); stop reading.
            raise RejectedInputError(f"file is larger than the limit of {max_bytes / 1e6:.1f} MB")
        if not sniffed and len(buffer) >= MAGIC_BYTES:
            reject_unless_image(bytes(buffer[:MAGIC_BYTES]))
            sniffed = True
    if not buffer:
        raise RejectedInputError("file is empty")
    if not sniffed:
        reject_unless_image(bytes(buffer))
    return bytes(buffer), digest.hexdigest()


def _check_riff_length(data: bytes) -> None:
    # The RIFF header states the file length; libwebp's decoder only says "could not create
    # decoder object" for a short file, so say what is wrong before it gets there.
    (riff_size,) = struct.unpack_from("<I", data, 4)
    if len(data) < riff_size + 8:
        raise RejectedInputError(f"WEBP file is truncated ({len(data)} of {riff_size + 8} bytes)")


def _check_truncation(fmt: str, data: bytes, image: Image.Image) -> None:
    if fmt == "PNG":
        # A PNG ends with its IEND chunk; some writers append a few bytes after it.
        if _PNG_IEND not in data[-64:]:
            raise RejectedInputError("PNG file is truncated (no IEND chunk at the end)")
    elif fmt == "BMP" and len(data) >= 6:
        (declared,) = struct.unpack_from("<I", data, 2)
        # bfSize is 0 or unreliable in some writers; only a clearly short file is truncated.
        if declared and len(data) < declared:
            raise RejectedInputError(f"BMP file is truncated ({len(data)} of {declared} bytes)")
    elif fmt == "JPEG":
        width, height = image.size
        image.draft(image.mode, (max(1, width // 8), max(1, height // 8)))
        try:
            image.load()
        except OSError as err:
            raise RejectedInputError(f"JPEG file is truncated or corrupt ({err})") from None


def inspect_image(data: bytes, sha256: str, *, max_pixels: int) -> ImageInfo:
    """Check an image's header, dimensions and completeness without a full decode.

    Raises
    ------
    RejectedInputError
        Not an accepted format, undecodable header, too many pixels (decompression bomb), a
        side below :data:`meshdrop_contract.MIN_IMAGE_SIDE`, or a truncated file.
    """
    fmt = reject_unless_image(data[:MAGIC_BYTES])
    if fmt == "WEBP":
        _check_riff_length(data)
    try:
        image = Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError:
        raise RejectedInputError(
            f"image header declares far more than {max_pixels / 1e6:.0f} megapixels "
            "(a decompression bomb or a scan)"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, struct.error) as err:
        if "truncated" in str(err).lower():
            raise RejectedInputError(f"{fmt} file is truncated ({err})") from None
        raise RejectedInputError(f"cannot read the {fmt} header: {err}") from None
    with image:
        width, height = image.size
        # The contract's wording, which the generator also uses on the bytes it downloads.
        problem = image_size_problem(width, height, max_pixels=max_pixels, min_side=MIN_IMAGE_SIDE)
        if problem is not None:
            raise RejectedInputError(problem)
        mode = image.mode
        _check_truncation(fmt, data, image)
    return ImageInfo(
        format=fmt, width=width, height=height, mode=mode, size=len(data), sha256=sha256
    )
