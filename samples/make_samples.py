"""Make the sample product photos in this folder (run: ``python samples/make_samples.py``).

Synthetic, so the project owns them outright: each is one object, lit from the upper left, on
a plain studio background with a soft contact shadow, saved as RGB JPEG (no alpha) under
100 KB. Shapes are chosen to exercise different reconstructions: two solids of revolution
(bottle, vase), one with a handle (mug) and a box seen from three-quarters.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

SIZE = 512
HERE = Path(__file__).resolve().parent


def _grid() -> tuple[np.ndarray, np.ndarray]:
    """Pixel centre coordinates.

    Returns
    -------
    tuple of ndarray
        ``x``, ``y``: each (SIZE, SIZE) float, x to the right, y down.
    """
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64) + 0.5
    return x, y


def _background(top: tuple[int, int, int], bottom: tuple[int, int, int]) -> np.ndarray:
    """Vertical studio gradient; (SIZE, SIZE, 3) float in 0..255."""
    t = np.linspace(0.0, 1.0, SIZE)[:, None, None]  # (SIZE, 1, 1)
    return (1 - t) * np.array(top, float) + t * np.array(bottom, float) + np.zeros((1, SIZE, 3))


def _shadow(img: np.ndarray, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    """Darken an ellipse under the object (blurred contact shadow)."""
    x, y = _grid()
    inside = (((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0).astype(np.float64)
    blurred = np.asarray(
        Image.fromarray((inside * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(14)),
        dtype=np.float64,
    )
    return img * (1.0 - 0.35 * blurred[..., None] / 255.0)


def _revolve(
    img: np.ndarray,
    profile: Callable[[np.ndarray], np.ndarray],
    top: float,
    bottom: float,
    colour: tuple[int, int, int],
    cx: float = SIZE / 2,
    gloss: float = 0.6,
) -> np.ndarray:
    """Paint a shaded solid of revolution.

    Parameters
    ----------
    img
        (SIZE, SIZE, 3) float canvas, painted in place and returned.
    profile
        Radius in pixels as a function of the row ``y`` (vectorised).
    top, bottom
        Rows the object spans.
    colour
        Base albedo.
    """
    x, y = _grid()
    rows = np.clip(y, top, bottom)
    radius = np.where((y >= top) & (y <= bottom), profile(rows), 0.0)  # (SIZE, SIZE)
    u = np.divide(x - cx, radius, out=np.full_like(x, 2.0), where=radius > 0)
    mask = np.abs(u) <= 1.0
    nz = np.sqrt(np.clip(1 - u**2, 0, 1))
    # Lambert from the upper left plus a narrow specular stripe: reads as a lit cylinder.
    light = np.clip(-0.55 * u + 0.8 * nz, 0, 1)
    spec = gloss * np.exp(-(((u + 0.45) / 0.08) ** 2))
    shade = 0.25 + 0.75 * light
    painted = np.array(colour, float) * shade[..., None] + 255.0 * spec[..., None]
    img[mask] = np.clip(painted[mask], 0, 255)
    return img


def bottle() -> np.ndarray:
    img = _background((238, 240, 244), (210, 214, 222))
    img = _shadow(img, SIZE / 2, 452, 70, 14)

    def profile(y: np.ndarray) -> np.ndarray:
        body = np.where(y > 230, 62.0, 62.0 - (230 - y) * 0.9)
        neck = np.maximum(body, 20.0)
        return np.where(y < 120, 20.0, neck)

    img = _revolve(img, profile, 70, 450, (40, 120, 70), gloss=0.7)
    return _revolve(img, lambda y: np.full_like(y, 23.0), 60, 84, (200, 170, 60))


def vase() -> np.ndarray:
    img = _background((246, 241, 233), (222, 214, 200))
    img = _shadow(img, SIZE / 2, 448, 80, 15)

    def profile(y: np.ndarray) -> np.ndarray:
        t = (y - 100) / 345.0
        return 38 + 55 * np.sin(np.pi * np.clip(t, 0, 1) ** 0.8) + 18 * np.exp(-((t / 0.06) ** 2))

    return _revolve(img, profile, 100, 445, (60, 90, 170), gloss=0.5)


def mug() -> np.ndarray:
    img = _background((235, 236, 238), (205, 206, 210))
    img = _shadow(img, SIZE / 2 - 20, 420, 105, 16)
    x, y = _grid()
    cx, cy = SIZE / 2 + 85, 300.0
    ring = np.hypot((x - cx) / 1.0, (y - cy) / 1.15)
    handle = (ring >= 42) & (ring <= 62) & (x > SIZE / 2 + 40)
    tone = 0.55 + 0.45 * np.clip((cy - y) / 80 + 0.5, 0, 1)
    img[handle] = np.array([190, 60, 50], float) * tone[handle][:, None]
    return _revolve(img, lambda y: np.full_like(y, 92.0), 190, 418, (200, 70, 60), cx=SIZE / 2 - 20)


def box() -> np.ndarray:
    img = _background((240, 238, 236), (212, 208, 204))
    img = _shadow(img, SIZE / 2, 430, 150, 22)
    canvas = Image.fromarray(img.astype(np.uint8))
    from PIL import ImageDraw

    draw = ImageDraw.Draw(canvas)
    c, h = SIZE / 2, 170
    top = [(c, 120), (c + 150, 180), (c, 240), (c - 150, 180)]
    left = [(c - 150, 180), (c, 240), (c, 240 + h), (c - 150, 180 + h)]
    right = [(c, 240), (c + 150, 180), (c + 150, 180 + h), (c, 240 + h)]
    draw.polygon(top, fill=(214, 172, 112))
    draw.polygon(left, fill=(176, 132, 80))
    draw.polygon(right, fill=(132, 96, 56))
    # Packing tape across the top face: texture the reconstruction should carry.
    tape = [(c - 69, 141), (c + 81, 201), (c + 69, 219), (c - 81, 159)]
    draw.polygon(tape, fill=(196, 166, 124))
    return np.asarray(canvas, dtype=np.float64)


SAMPLES: dict[str, Callable[[], np.ndarray]] = {
    "bottle": bottle,
    "mug": mug,
    "box": box,
    "vase": vase,
}


def main(out_dir: Path = HERE) -> list[Path]:
    """Write every sample as ``<name>.jpg`` into ``out_dir``; the paths written."""
    rng = np.random.default_rng(7)  # fixed: the committed JPEGs are reproducible
    written = []
    for name, make in SAMPLES.items():
        pixels = make()
        pixels = pixels + rng.normal(0.0, 1.5, pixels.shape)  # sensor noise, as in real photos
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="RGB")
        image = image.filter(ImageFilter.GaussianBlur(0.6))
        path = out_dir / f"{name}.jpg"
        image.save(path, format="JPEG", quality=88, optimize=True)
        written.append(path)
    return written


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="output folder")
    for p in main(parser.parse_args().out):
        print(f"{p} {p.stat().st_size // 1024} KB")
