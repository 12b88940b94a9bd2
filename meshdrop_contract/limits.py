"""Input limits checked before any GPU time is spent. Deployments override them (cdk.json)."""

from __future__ import annotations

#: Largest source object accepted, in bytes.
MAX_IMAGE_BYTES = 25 * 1024 * 1024
#: Largest decoded image, in pixels; bigger headers are decompression bombs or scans.
MAX_IMAGE_PIXELS = 40_000_000
#: Smallest side in pixels that still holds an object worth reconstructing.
MIN_IMAGE_SIDE = 32


def image_size_problem(
    width: int,
    height: int,
    *,
    max_pixels: int = MAX_IMAGE_PIXELS,
    min_side: int = MIN_IMAGE_SIDE,
) -> str | None:
    """Why an image of ``width`` x ``height`` pixels cannot be a job, or ``None`` when it can.

    Both ingest (before any GPU time) and the generator (on the bytes it downloads) ask this,
    on the header alone: decoding a decompression bomb is the attack itself.
    """
    if width * height > max_pixels:
        return (
            f"the image is {width}x{height} ({_megapixels(width * height)}), above the limit "
            f"of {_megapixels(max_pixels)}; scale it down before uploading"
        )
    if min(width, height) < min_side:
        return (
            f"the image is {width}x{height} pixels, too small: each side must be at least "
            f"{min_side} pixels"
        )
    return None


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} megapixels" if pixels >= 100_000 else f"{pixels:,} pixels"
