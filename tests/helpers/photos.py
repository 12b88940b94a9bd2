"""Synthetic product photos with a KNOWN object mask, for tests across the project.

Each photo is a shaded object (disc, box, bottle, mug with an open handle) on a plain or
gradient backdrop, optionally standing on a soft contact shadow, optionally carrying a label
that is almost the backdrop's colour, optionally JPEG-compressed. Objects are rendered with 4x
supersampling, so edges are anti-aliased like a real photo; ``mask`` is the coverage >= 0.5.

    photo = make_photo("mug", background="gradient", shadow=True, jpeg_quality=85)
    loaded = load_image(photo.data)          # photo.data: the encoded file
    iou(recovered_mask, photo.mask)
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

SHAPES = ("disc", "box", "bottle", "mug")
# The label's colour is the backdrop's mean behind it plus this (8-bit levels, all channels).
_LABEL_OFFSET = 18.0
BACKGROUNDS = ("plain", "gradient")

# Object colours per shape: distinct from the neutral backdrops in hue, like most products.
_COLOURS: dict[str, tuple[int, int, int]] = {
    "disc": (200, 60, 50),
    "box": (60, 90, 170),
    "bottle": (40, 130, 70),
    "mug": (180, 120, 40),
}


@dataclass(frozen=True)
class SyntheticPhoto:
    """A rendered photo and its ground truth."""

    name: str
    rgb: np.ndarray  # (h, w, 3) uint8, exactly what ``data`` decodes to
    mask: np.ndarray  # (h, w) bool, the object's silhouette (holes such as a handle are False)
    shadow: np.ndarray  # (h, w) bool, backdrop visibly darkened by the contact shadow
    hole: np.ndarray  # (h, w) bool, real openings through the object (a mug handle's hole)
    label: np.ndarray  # (h, w) bool, the near-backdrop label on the object (part of ``mask``)
    data: bytes  # the encoded file (JPEG when jpeg_quality is set, else PNG)
    format: str  # "JPEG" or "PNG"


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two masks (values > 0.5 count as inside)."""
    a_in = np.asarray(a) > 0.5
    b_in = np.asarray(b) > 0.5
    union = np.logical_or(a_in, b_in).sum()
    return float(np.logical_and(a_in, b_in).sum() / union) if union else 1.0


def shape_coverage(shape: str, height: int, width: int, *, supersample: int = 4) -> np.ndarray:
    """Fractional coverage of ``shape`` centred in a ``height`` x ``width`` frame.

    Returns
    -------
    numpy.ndarray
        (height, width) float32 in [0, 1].
    """
    return _render(shape, height, width, supersample)[0]


def make_photo(
    shape: str = "disc",
    *,
    height: int = 360,
    width: int = 480,
    background: str = "plain",
    shadow: bool = False,
    label: bool = False,
    jpeg_quality: int | None = None,
    noise: float = 1.5,
    colour: tuple[int, int, int] | None = None,
    seed: int = 0,
) -> SyntheticPhoto:
    """Render a product photo with known mask.

    Parameters
    ----------
    shape : {"disc", "box", "bottle", "mug"}
    background : {"plain", "gradient"}
        ``plain`` is a light grey sweep; ``gradient`` darkens and cools towards the bottom and
        one side, like a lit studio backdrop.
    shadow : bool
        Put a soft elliptical contact shadow (up to ~45 % darker) under the object's base.
    label : bool
        Put a label band on the object whose colour is only ~6 delta-E brighter than the
        backdrop: segmentation sees a hole there that must be filled.
    jpeg_quality : int or None
        JPEG-compress the photo (``rgb`` is then the decoded JPEG, with its artefacts).
    noise : float
        Standard deviation of sensor noise, in 8-bit levels.
    """
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")
    if background not in BACKGROUNDS:
        raise ValueError(f"unknown background {background!r}; expected one of {BACKGROUNDS}")
    rng = np.random.default_rng(seed)
    coverage, hole, base_y, half_width, label_cov = _render(shape, height, width, 4)
    backdrop = _backdrop(background, height, width)  # (h, w, 3) float
    shadow_mask = np.zeros((height, width), dtype=bool)
    if shadow:
        backdrop, shadow_mask = _with_shadow(backdrop, coverage, base_y, half_width)
    obj = _shade(colour or _COLOURS[shape], coverage.shape, hole)  # (h, w, 3) float
    if label and label_cov.any():
        # ~6 delta-E brighter than the backdrop behind it: too close to be foreground by
        # colour, far enough to be told from the backdrop itself.
        paper = np.clip(backdrop[label_cov > 0].mean(axis=0) + _LABEL_OFFSET, 0, 255)  # (3,)
        obj = obj * (1 - label_cov[:, :, None]) + paper * label_cov[:, :, None]
    img = backdrop * (1 - coverage[:, :, None]) + obj * coverage[:, :, None]
    img = img + rng.normal(0.0, noise, img.shape)
    data, fmt = _encode(np.clip(np.rint(img), 0, 255).astype(np.uint8), jpeg_quality)
    return SyntheticPhoto(
        name=_photo_name(shape, background, shadow, label, jpeg_quality),
        rgb=np.asarray(Image.open(io.BytesIO(data)).convert("RGB")),
        mask=coverage >= 0.5,
        shadow=shadow_mask,
        hole=hole,
        label=(label_cov >= 0.5) if label else np.zeros_like(shadow_mask),
        data=data,
        format=fmt,
    )


def _photo_name(
    shape: str, background: str, shadow: bool, label: bool, jpeg_quality: int | None
) -> str:
    """A readable test id: ``box-gradient-shadow-q80``."""
    parts = [shape, background]
    parts += [p for p, on in (("shadow", shadow), ("label", label)) if on]
    if jpeg_quality is not None:
        parts.append(f"q{jpeg_quality}")
    return "-".join(parts)


def _with_shadow(
    backdrop: np.ndarray, coverage: np.ndarray, base_y: float, half_width: float
) -> tuple[np.ndarray, np.ndarray]:
    """The backdrop darkened by a soft contact shadow, and where the shadow shows."""
    height, width = coverage.shape
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    # Centred a little below the base so that it peeks out under the object.
    r2 = ((xx - width / 2.0) / (1.25 * half_width)) ** 2 + (
        (yy - base_y - 0.01 * height) / (0.07 * height)
    ) ** 2
    darkening = 0.45 * np.exp(-1.6 * r2)  # (h, w) float, soft blob
    shadowed = backdrop * (1.0 - darkening[:, :, None])
    return shadowed, (darkening > 0.05) & (coverage < 0.5)


def _encode(rgb: np.ndarray, jpeg_quality: int | None) -> tuple[bytes, str]:
    """PNG, or JPEG at ``jpeg_quality``: the file bytes and the format name."""
    buf = io.BytesIO()
    fmt = "PNG" if jpeg_quality is None else "JPEG"
    options = {} if jpeg_quality is None else {"quality": int(jpeg_quality)}
    Image.fromarray(rgb).save(buf, fmt, **options)
    return buf.getvalue(), fmt


def _backdrop(kind: str, height: int, width: int) -> np.ndarray:
    """(h, w, 3) float backdrop colour."""
    base = np.array([232.0, 232.0, 228.0])
    if kind == "plain":
        return np.broadcast_to(base, (height, width, 3)).copy()
    v = np.linspace(0.0, 1.0, height)[:, None, None]
    u = np.linspace(0.0, 1.0, width)[None, :, None]
    # Darker and cooler towards the bottom, slightly darker to the right.
    return base - v * np.array([55.0, 45.0, 25.0]) - u * np.array([15.0, 15.0, 15.0])


def _render(
    shape: str, height: int, width: int, ss: int
) -> tuple[np.ndarray, np.ndarray, float, float, np.ndarray]:
    """Supersampled silhouette: coverage, hole mask, base row, half width, label coverage."""
    hs, ws = height * ss, width * ss
    y = (np.arange(hs) + 0.5) / ss
    x = (np.arange(ws) + 0.5) / ss
    yy, xx = np.meshgrid(y, x, indexing="ij")  # (hs, ws) float, pixel coordinates
    cx, cy = width / 2.0, height / 2.0
    s = min(height, width)
    hole = np.zeros((hs, ws), dtype=bool)
    label = np.zeros((hs, ws), dtype=bool)
    if shape == "disc":
        r = 0.3 * s
        inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
        base, half = cy + r, r
    elif shape == "box":
        hw, hh = 0.28 * s, 0.3 * s
        inside = (np.abs(xx - cx) <= hw) & (np.abs(yy - cy) <= hh)
        label = (np.abs(xx - cx) <= 0.7 * hw) & (np.abs(yy - cy) <= 0.25 * hh)
        base, half = cy + hh, hw
    elif shape == "bottle":
        top, bottom = cy - 0.38 * s, cy + 0.38 * s
        body_w, neck_w, shoulder = 0.16 * s, 0.06 * s, cy - 0.1 * s
        t = np.clip((yy - (shoulder - 0.1 * s)) / (0.1 * s), 0.0, 1.0)
        half_w = neck_w + (body_w - neck_w) * (3 * t**2 - 2 * t**3)  # smooth shoulder
        inside = (yy >= top) & (yy <= bottom) & (np.abs(xx - cx) <= half_w)
        label = (yy >= cy + 0.02 * s) & (yy <= cy + 0.2 * s) & (np.abs(xx - cx) <= 0.75 * body_w)
        base, half = bottom, body_w
    elif shape == "mug":
        bw, bh = 0.2 * s, 0.27 * s
        bx = cx - 0.06 * s
        body = (np.abs(xx - bx) <= bw) & (np.abs(yy - cy) <= bh)
        hx, hy = bx + bw, cy - 0.02 * s
        rr = np.sqrt(((xx - hx) / 1.0) ** 2 + ((yy - hy) / 1.25) ** 2)
        ring = (rr <= 0.14 * s) & (xx > hx)
        hole = (rr < 0.075 * s) & (xx > hx + 1.0)
        inside = (body | ring) & ~hole
        label = (np.abs(xx - bx) <= 0.6 * bw) & (np.abs(yy - cy) <= 0.3 * bh)
        base, half = cy + bh, bw
    else:
        raise ValueError(f"unknown shape {shape!r}")

    def down(m: np.ndarray) -> np.ndarray:
        return m.reshape(height, ss, width, ss).mean(axis=(1, 3)).astype(np.float32)

    return down(inside), down(hole) >= 0.5, float(base), float(half), down(label & inside)


def _shade(colour: tuple[int, int, int], shape: tuple[int, int], hole: np.ndarray) -> np.ndarray:
    """(h, w, 3) float object colour with a left-lit cylinder-like shading."""
    height, width = shape
    u = np.linspace(-1.0, 1.0, width)[None, :]
    v = np.linspace(-1.0, 1.0, height)[:, None]
    light = 0.8 + 0.25 * np.cos(np.clip(u + 0.35, -1.5, 1.5) * 1.2) - 0.05 * v  # (h, w)
    return np.asarray(colour, dtype=np.float64)[None, None, :] * light[:, :, None]


# Small real files and crafted headers for the ways an upload can be odd or unusable.


def image_bytes(
    fmt: str = "JPEG", size: tuple[int, int] = (64, 48), mode: str = "RGB", **save: Any
) -> bytes:
    """A small real image with some structure (a gradient and a square), encoded as ``fmt``."""
    width, height = size
    image = Image.new("RGB", size, (240, 240, 235))
    pixels = image.load()
    assert pixels is not None
    for y in range(height):
        for x in range(width):
            if width // 4 <= x < 3 * width // 4 and height // 4 <= y < 3 * height // 4:
                pixels[x, y] = (200 * x // width, 80, 200 * y // height)
    if mode != "RGB":
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save)
    return buffer.getvalue()


def exif_rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° CW to display
    return image_bytes("JPEG", (80, 40), exif=exif.tobytes())


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` but holds one tiny IDAT chunk."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )
