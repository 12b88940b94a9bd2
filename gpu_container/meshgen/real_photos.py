"""Real photos with hand-made masks, for the evaluation: the public-domain / CC0 photos that
ship inside scikit-image's wheel (nothing is downloaded), and their object outlines.

Each mask is a union of polygons (minus ``"cut"`` polygons) whose corners were picked by eye
on the photo with a coordinate grid, then checked as an overlay (see
``eval_photos/README.md``). The coordinates are in the photo's own pixels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

MASKS = Path(__file__).with_name("eval_photos") / "masks.json"


@dataclass(frozen=True)
class RealPhoto:
    """A real photo's description from ``masks.json``."""

    name: str
    source: str  # skimage.data function that returns it
    licence: str
    role: str  # "tune": looked at while setting thresholds; "report": measured only
    subject: str  # what the photo shows ("cup on saucer, wooden table")
    # "object": should become an asset; "refuse-ok": a close-up or a person may be refused;
    # "refuse": no single object (a tray of coins): should be refused. The last two may have
    # no mask (``shapes`` empty): then no IoU is measured.
    expect: str
    shapes: tuple[dict, ...]


def photos() -> dict[str, RealPhoto]:
    """The evaluation photos by name, in file order."""
    data = json.loads(MASKS.read_text())
    return {
        p["name"]: RealPhoto(
            p["name"],
            p["source"],
            p["licence"],
            p["role"],
            p["subject"],
            p["expect"],
            tuple(p["shapes"]),
        )
        for p in data["photos"]
    }


PHOTOS = photos


def load_rgb(photo: RealPhoto) -> np.ndarray:
    """(h, w, 3) uint8 photo from scikit-image's bundled data (grey photos become RGB)."""
    from skimage import data

    image = np.asarray(getattr(data, photo.source)())
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3].astype(np.uint8))


def draw_mask(shape: tuple[int, int], shapes: tuple[dict, ...]) -> np.ndarray:
    """(h, w) bool mask from ``add``/``cut`` polygons and ellipses (4x supersampled edges).

    Parameters
    ----------
    shape
        (h, w) of the photo.
    shapes
        Each ``{"op": "add"|"cut", "poly": [[x, y], ...]}`` or
        ``{"op": ..., "ellipse": [cx, cy, rx, ry, angle_deg]}``, applied in order.
    """
    h, w = shape
    sub = 4
    canvas = np.zeros((h * sub, w * sub), dtype=np.uint8)
    for item in shapes:
        value = 1 if item["op"] == "add" else 0
        if "poly" in item:
            pts = (np.asarray(item["poly"], dtype=np.float64) + 0.5) * sub - 0.5
            cv2.fillPoly(canvas, [np.rint(pts).astype(np.int32)], value)
        else:
            cx, cy, rx, ry, angle = item["ellipse"]
            centre = (round((cx + 0.5) * sub - 0.5), round((cy + 0.5) * sub - 0.5))
            axes = (round(rx * sub), round(ry * sub))
            cv2.ellipse(canvas, centre, axes, angle, 0, 360, value, -1)
    small = cv2.resize(canvas.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    return small >= 0.5


def load_truth(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(h, w, 3) uint8 photo and (h, w) bool hand-made object mask."""
    photo = photos()[name]
    rgb = load_rgb(photo)
    return rgb, draw_mask(rgb.shape[:2], photo.shapes)
