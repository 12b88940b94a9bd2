"""Decode an uploaded photo into 8-bit RGB (plus a real alpha channel when the file has one).

Everything that can be wrong with an upload is reported as :class:`BadInputError` with a message
a user can act on: the job is then not retried, because the same bytes would fail again.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from meshdrop_contract import MAX_IMAGE_PIXELS, MIN_IMAGE_SIDE
from meshdrop_contract.limits import image_size_problem

from .errors import BadInputError

# Modes whose samples are wider than 8 bits; PIL's own convert("RGB") clips them instead of
# scaling, which turns most 16-bit photos white.
_WIDE_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I"}
# Modes that carry an alpha channel (palette transparency is handled separately).
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}


@dataclass(frozen=True)
class LoadedImage:
    """A decoded photo, upright, as 8-bit RGB."""

    rgb: np.ndarray  # (h, w, 3) uint8
    alpha: np.ndarray | None  # (h, w) uint8, only for a real (non-constant) alpha channel
    source_format: str  # "JPEG", "PNG", ...
    source_mode: str  # PIL mode before conversion ("RGB", "L", "CMYK", "P", "I;16", ...)
    frames: int  # frames in the file (the first one is used)

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` in pixels."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])


def load_image(
    data: bytes,
    *,
    max_pixels: int = MAX_IMAGE_PIXELS,
    min_side: int = MIN_IMAGE_SIDE,
) -> LoadedImage:
    """Decode ``data`` (the bytes of an image file) into a :class:`LoadedImage`.

    The EXIF orientation is applied, so the result is upright as a viewer shows it. Grayscale,
    CMYK, palette and 16-bit images become 8-bit RGB; palette transparency and alpha channels
    become ``alpha``. Of a multi-frame file (animated GIF/WebP, multi-page TIFF) the first frame
    is used.

    Raises
    ------
    BadInputError
        Empty or undecodable data, a truncated file, more than ``max_pixels`` pixels (checked on
        the header, before anything is decoded) or a side shorter than ``min_side``.
    """
    img = _open(data, max_pixels)
    with img:
        source_format = str(img.format or "unknown")
        width, height = img.size
        problem = image_size_problem(width, height, max_pixels=max_pixels, min_side=min_side)
        if problem:
            raise BadInputError(problem)
        frames = int(getattr(img, "n_frames", 1) or 1)
        try:
            img.seek(0)
            img.load()
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise BadInputError(
                f"the {source_format} file is truncated or corrupt and cannot be decoded ({exc})"
            ) from exc
        source_mode = img.mode
        upright = _exif_upright(img)
        rgb, alpha = _to_rgb8(upright)

    return LoadedImage(
        rgb=rgb,
        alpha=alpha,
        source_format=source_format,
        source_mode=source_mode,
        frames=frames,
    )


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """Open ``data`` lazily (header only); anything PIL cannot identify is bad input."""
    if not data:
        raise BadInputError("the image file is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            # Our own limit is the one that counts; PIL's warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise BadInputError(
            f"the image has far too many pixels (limit {max_pixels:,}): {exc}"
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BadInputError(
            f"the file is not an image in a format we can read ({len(data):,} bytes; "
            "use JPEG, PNG, WebP, GIF, BMP or TIFF)"
        ) from exc


def _exif_upright(img: Image.Image) -> Image.Image:
    # A broken EXIF block is a metadata problem, not a pixel problem: keep the pixels as stored.
    try:
        return ImageOps.exif_transpose(img)
    except Exception:
        return img


def _to_rgb8(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Convert any PIL mode to ``(rgb (h, w, 3) uint8, alpha (h, w) uint8 | None)``."""
    mode = img.mode
    if mode in _WIDE_MODES:
        wide = np.asarray(img)
        # 16-bit files hold 0..65535; "I" from a 16-bit PNG does too. Only an "I" image that
        # never exceeds 255 is really 8-bit data in a wide container.
        scale = 1.0 if mode == "I" and int(wide.max(initial=0)) <= 255 else 257.0
        gray = np.clip(np.rint(wide.astype(np.float64) / scale), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2)), None
    if mode == "F":
        gray = np.clip(np.rint(np.asarray(img, dtype=np.float64)), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2)), None
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode in _ALPHA_MODES:
        img = img.convert("RGBA")
    elif mode != "RGB":
        # L, 1, CMYK, YCbCr, LAB, HSV: PIL's converters are exact enough for 8-bit data.
        img = img.convert("RGB")

    if img.mode == "RGBA":
        rgba = np.asarray(img, dtype=np.uint8)
        alpha = np.ascontiguousarray(rgba[:, :, 3])
        # A constant alpha (all opaque, or all transparent from a careless export) says
        # nothing about where the object is, so it is not a usable mask.
        real = int(alpha.min()) != int(alpha.max())
        return np.ascontiguousarray(rgba[:, :, :3]), (alpha if real else None)
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8)), None
