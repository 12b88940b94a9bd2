"""The segmentation result and the square crop every path ends in."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from ..errors import BadInputError


@dataclass(frozen=True)
class Segmentation:
    """The object, cropped square with a margin and resized to ``size``."""

    rgb: np.ndarray  # (s, s, 3) uint8
    mask: np.ndarray  # (s, s) float32 in [0, 1], object = 1, soft edges
    method: str  # "alpha" | "rembg" | "classical" | "clutter"
    # (left, top, right, bottom) in the loaded image's pixels; may reach outside the image
    # when the object is near an edge (those pixels are edge-replicated in rgb, 0 in mask).
    crop_box: tuple[int, int, int, int]
    # How sure the path is that the mask is one whole object (0..1); see .confidence.
    confidence: float = 1.0
    # What lowered the confidence, in words ("the object touches two edges of the photo").
    notes: tuple[str, ...] = field(default=())


def crop_square(
    rgb: np.ndarray,
    soft: np.ndarray,
    hard: np.ndarray,
    to_image: float,
    soft_scale: float,
    size: int,
    margin: float,
) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
    """Square crop around ``hard`` with ``margin``, resized to ``size``.

    Parameters
    ----------
    rgb : numpy.ndarray
        (h, w, 3) uint8 loaded image.
    soft : numpy.ndarray
        (h', w') float mask to resample, at ``soft_scale`` times the image's resolution.
    hard : numpy.ndarray
        (h'', w'') bool object mask in work pixels; ``to_image`` maps them to image pixels.

    Returns
    -------
    rgb, mask, box
        (size, size, 3) uint8, (size, size) float32 0..1 and the crop box in image pixels.

    Raises
    ------
    BadInputError
        ``hard`` is empty.
    """
    if not hard.any():
        raise BadInputError(
            "no object found in the photo: nothing stands out from the background; use a photo "
            "of one object on a plain or smoothly graded backdrop"
        )
    rows = np.flatnonzero(hard.any(axis=1))
    cols = np.flatnonzero(hard.any(axis=0))
    x0, x1 = cols[0] * to_image, (cols[-1] + 1) * to_image
    y0, y1 = rows[0] * to_image, (rows[-1] + 1) * to_image
    side_px = max(1, int(np.ceil(max(x1 - x0, y1 - y0) * (1.0 + 2.0 * margin))))
    left = int(np.floor((x0 + x1) / 2.0 - side_px / 2.0))
    top = int(np.floor((y0 + y1) / 2.0 - side_px / 2.0))
    box = (left, top, left + side_px, top + side_px)
    out_mask = _warp_mask(soft, box, soft_scale, size)
    return _crop_rgb(rgb, box, size), out_mask, box


def _warp_mask(
    soft: np.ndarray, box: tuple[int, int, int, int], soft_scale: float, size: int
) -> np.ndarray:
    """Resample ``soft`` (at ``soft_scale`` times image pixels) over ``box`` to ``(size, size)``.

    Returns
    -------
    numpy.ndarray
        ``(size, size)`` float32 0..1.
    """
    left, top, right, _ = box
    side_px = right - left
    # Output pixel centre u maps to image x = left + (u + 0.5) * side_px / size - 0.5, and
    # image x to soft-mask x = (x + 0.5) * soft_scale - 0.5.
    step = side_px / size * soft_scale
    matrix = np.array(
        [
            [step, 0.0, (left + 0.5 * side_px / size) * soft_scale - 0.5],
            [0.0, step, (top + 0.5 * side_px / size) * soft_scale - 0.5],
        ]
    )
    soft = soft.astype(np.float32)
    if step > 1.5:  # shrinking a lot: pre-blur so the warp does not alias the edge
        soft = cv2.GaussianBlur(soft, (0, 0), 0.5 * step)
    out_mask = cv2.warpAffine(
        soft,
        matrix,
        (size, size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0.0,
    )
    return np.clip(out_mask, 0.0, 1.0).astype(np.float32)


def _crop_rgb(rgb: np.ndarray, box: tuple[int, int, int, int], size: int) -> np.ndarray:
    """(size, size, 3) uint8 of ``rgb`` inside ``box``, edge-replicated outside the image."""
    left, top, right, bottom = box
    h, w = rgb.shape[:2]
    pad = (max(0, -top), max(0, bottom - h), max(0, -left), max(0, right - w))
    piece = rgb[max(0, top) : min(h, bottom), max(0, left) : min(w, right)]
    if any(pad):
        piece = cv2.copyMakeBorder(piece, *pad, cv2.BORDER_REPLICATE)
    interp = cv2.INTER_AREA if right - left > size else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(piece, (size, size), interpolation=interp))
