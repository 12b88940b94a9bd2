"""Segmented photos of objects of known shape, for the generator's reconstruction tests.

They skip background removal: the ray-marched render's true mask is cropped the way
``BackgroundRemover.segment`` crops (square, 10 % margin), so a failing test points at the
reconstruction, not at segmentation.
"""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np

from gpu_container.meshgen.scenes import (
    SyntheticSegmentation,
    render,
    scenes,
    segmentation_of,
)


@cache
def rendered(
    name: str, size: int = 256, yaw: float = 0.0, elevation: float = 0.0, background: str = "plain"
) -> SyntheticSegmentation:
    """Segmentation of a scene from :func:`gpu_container.meshgen.scenes.scenes`."""
    rgb, mask = render(
        scenes()[name], size=size, yaw_deg=yaw, elevation_deg=elevation, background=background
    )
    return segmentation_of(rgb, mask, size)


def rolled(seg: SyntheticSegmentation, angle_deg: float) -> SyntheticSegmentation:
    """The same segmentation with the camera rolled by ``angle_deg`` (counter-clockwise)."""
    s = seg.mask.shape[0]
    matrix = cv2.getRotationMatrix2D(((s - 1) / 2, (s - 1) / 2), angle_deg, 1.0)
    rgb = cv2.warpAffine(
        seg.rgb, matrix, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    mask = cv2.warpAffine(seg.mask, matrix, (s, s), flags=cv2.INTER_LINEAR)
    return SyntheticSegmentation(rgb, mask.astype(np.float32))


def blob(size: int = 256) -> SyntheticSegmentation:
    """An irregular, asymmetric outline (no axis, no corners): only inflation fits it."""
    mask = np.zeros((size, size), np.float32)
    c = size / 256
    cv2.ellipse(mask, (int(120 * c), int(140 * c)), (int(90 * c), int(45 * c)), 25, 0, 360, 1, -1)
    cv2.circle(mask, (int(70 * c), int(90 * c)), int(38 * c), 1, -1)
    cv2.circle(mask, (int(190 * c), int(185 * c)), int(22 * c), 1, -1)
    mask = cv2.GaussianBlur(mask, (3, 3), 0)
    rgb = np.zeros((size, size, 3), np.uint8)
    rgb[:] = (90, 160, 200)
    return SyntheticSegmentation(rgb, mask)


def empty(size: int = 128) -> SyntheticSegmentation:
    return SyntheticSegmentation(
        np.full((size, size, 3), 240, np.uint8), np.zeros((size, size), np.float32)
    )
