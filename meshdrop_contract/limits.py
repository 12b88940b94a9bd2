"""Input limits checked before any GPU time is spent. Deployments override them (cdk.json)."""

from __future__ import annotations

#: Largest source object accepted, in bytes.
MAX_IMAGE_BYTES = 25 * 1024 * 1024
#: Largest decoded image, in pixels; bigger headers are decompression bombs or scans.
MAX_IMAGE_PIXELS = 40_000_000
#: Smallest side in pixels that still holds an object worth reconstructing.
MIN_IMAGE_SIDE = 32
