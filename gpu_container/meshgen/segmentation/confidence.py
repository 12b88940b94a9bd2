"""How sure a segmentation is that it found one whole object, and what to say when it is not.

The confidence is a product of factors in 0..1, each for one thing that goes wrong on real
photos and each with a sentence for the user:

* the object runs off the photo (a close-up): by how many sides it touches;
* it fills (nearly) the whole frame, or only a speck of it stands out;
* another object of about the same size was found beside it (which one did they mean?);
* its colours are also the background's around it (the cut is a guess);
* it is a person's face close up (a portrait: the path would cut out the face alone) - found
  with the LBP frontal-face cascade that ships with scikit-image (OpenCV's, BSD licence).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ..ndtools import label
from .cleanup import dilate, sides_touched

#: Below this the photo is refused with the notes as the reason.
MIN_CONFIDENCE = 0.5
#: Confidence left by the number of photo sides the object touches (0, 1, 2, 3, 4). One side
#: is common (an object standing on the bottom edge); three is a close-up.
SIDE_FACTORS = (1.0, 0.9, 0.55, 0.2, 0.05)
#: Another component at least this share of the object's area is a rival object.
RIVAL_SHARE = 0.5
#: Colour histogram intersection (0 = disjoint, 1 = same colours) of the object and the
#: background ring around it at which the separation factor reaches 0 and 1.
OVERLAP_BAD, OVERLAP_GOOD = 0.75, 0.35

#: An object under this share of the photo is a detail, not what was photographed.
MIN_AREA = 0.01

#: A face at least this share of the photo's short side is a portrait, not a detail (a face
#: printed on a cereal box).
MIN_FACE_SHARE = 0.12

_NUMBERS = ("no", "one", "two", "three", "four")
#: A photo is black-and-white when fewer than ``COLOUR_SHARE`` of its pixels have channels
#: more than ``GREY_SPREAD`` levels apart: JPEG keeps a grey photo within 2, while a grey
#: floor under a slightly bluish light is mostly 3 to 5 or more, and is still cut by colour.
GREY_SPREAD = 3
COLOUR_SHARE = 0.02
#: What the cluttered path says of a black-and-white photo: it tells object from background
#: by colour. On grey copies of its tuning composites it refused 29 of 40 and cut 7 of the
#: other 11 wrongly (mask IoU under 0.4).
NO_COLOUR = (
    "the photo has no colour and a busy background, so the object cannot be told from it "
    "(a colour photo would do)"
)


def colourless(rgb: np.ndarray) -> bool:
    """Whether a (h, w, 3) uint8 photo is black-and-white, or nearly."""
    spread = rgb.max(axis=2).astype(np.int16) - rgb.min(axis=2)  # (h, w) int
    return float((spread > GREY_SPREAD).mean()) < COLOUR_SHARE


@dataclass(frozen=True)
class Verdict:
    """A segmentation's confidence and the reasons it is below 1."""

    confidence: float
    notes: tuple[str, ...]

    @property
    def refused(self) -> bool:
        return self.confidence < MIN_CONFIDENCE

    def message(self) -> str:
        """The refusal, for the user: what was seen and what to do."""
        seen = "; ".join(self.notes) or "the object cannot be told from the background"
        return (
            f"no object found with enough confidence ({self.confidence:.2f}): {seen}. Use a "
            "photo of one whole object with some background around it on every side, ideally "
            "on a plain surface, or upload a cut-out PNG with transparency"
        )


def assess(
    chosen: np.ndarray,
    candidates: np.ndarray | None = None,
    rgb: np.ndarray | None = None,
) -> Verdict:
    """Judge a mask of the object in the photo's frame.

    Parameters
    ----------
    chosen : numpy.ndarray
        (h, w) bool, the object kept.
    candidates : numpy.ndarray, optional
        (h, w) bool, everything the path called foreground (rivals are sought here).
    rgb : numpy.ndarray, optional
        (h, w, 3) uint8 photo, for the colour separation.
    """
    if not chosen.any():
        return Verdict(0.0, ("nothing stands out from the background",))
    factors: list[float] = []
    notes: list[str] = []
    sides = sides_touched(chosen)
    factors.append(SIDE_FACTORS[len(sides)])
    if len(sides) >= 2:
        notes.append(
            f"the object touches {_NUMBERS[len(sides)]} edges of the photo ({', '.join(sides)})"
        )
    area = float(chosen.mean())
    if area < MIN_AREA:
        factors.append(0.1)
        notes.append(
            f"only a small detail ({100 * area:.1f} % of the photo) stands out from the "
            "background - a close-up whose object runs off the photo looks like this"
        )
    if area > 0.85:
        factors.append(0.1)
        notes.append("the object fills the whole photo")
    if candidates is not None:
        rivals = _rivals(chosen, candidates)
        if rivals:
            factors.append(0.25)
            count = _NUMBERS[min(rivals + 1, 4)] if rivals < 4 else "several"
            notes.append(f"{count} objects of about the same size")
    if rgb is not None and portrait(rgb, chosen):
        factors.append(0.1)
        notes.append("the photo is a close-up of a person's face (a portrait, not an object)")
    if rgb is not None:
        overlap = colour_overlap(rgb, chosen)
        factors.append(float(np.clip((OVERLAP_BAD - overlap) / (OVERLAP_BAD - OVERLAP_GOOD), 0, 1)))
        if overlap > 0.5 * (OVERLAP_BAD + OVERLAP_GOOD):
            notes.append("the object's colours are also the background's around it")
    return Verdict(float(np.prod(factors)), tuple(notes))


def _rivals(chosen: np.ndarray, candidates: np.ndarray) -> int:
    """Components of ``candidates`` apart from ``chosen`` about as large as it."""
    labels, count = label(candidates & ~dilate(chosen, 2))
    if count == 0:
        return 0
    areas = np.bincount(labels.ravel())[1:]
    return int((areas >= RIVAL_SHARE * float(chosen.sum())).sum())


def colour_overlap(rgb: np.ndarray, chosen: np.ndarray, bins: int = 8) -> float:
    """Histogram intersection of the object's colours and its surroundings' (0..1).

    The surroundings are a ring around the object a fifth of its size wide: what GrabCut had
    to tell it from, not the far corners of the photo.

    Parameters
    ----------
    rgb : numpy.ndarray
        (h, w, 3) uint8.
    chosen : numpy.ndarray
        (h, w) bool.
    """
    ys, xs = np.nonzero(chosen)
    size = max(int(np.ptp(ys)), int(np.ptp(xs)), 1)
    ring = dilate(chosen, max(2, size // 5)) & ~dilate(chosen, 1)
    if ring.sum() < 16:
        return 0.0
    hist = []
    for region in (chosen, ring):
        h = cv2.calcHist(
            [rgb], [0, 1, 2], region.astype(np.uint8), [bins] * 3, [0, 256] * 3
        ).ravel()
        hist.append(h / max(float(h.sum()), 1.0))
    return float(np.minimum(hist[0], hist[1]).sum())


_CASCADE: list[Any] = []
_CASCADE_LOCK = threading.Lock()


def portrait(rgb: np.ndarray, chosen: np.ndarray) -> bool:
    """Whether a frontal face of at least :data:`MIN_FACE_SHARE` lies on the object.

    Parameters
    ----------
    rgb : numpy.ndarray
        (h, w, 3) uint8 photo (a few hundred pixels a side: the cascade costs ~50 ms there).
    chosen : numpy.ndarray
        (h, w) bool object mask.
    """
    with _CASCADE_LOCK:
        if not _CASCADE:
            from skimage import data
            from skimage.feature import Cascade

            _CASCADE.append(Cascade(data.lbp_frontal_face_cascade_filename()))
        cascade = _CASCADE[0]
    side = min(rgb.shape[:2])
    smallest = max(24, int(MIN_FACE_SHARE * side))
    faces = cascade.detect_multi_scale(
        img=rgb,
        scale_factor=1.2,
        step_ratio=1,
        min_size=(smallest, smallest),
        max_size=(side, side),
    )
    for face in faces:
        cy, cx = face["r"] + face["height"] // 2, face["c"] + face["width"] // 2
        if chosen[min(cy, chosen.shape[0] - 1), min(cx, chosen.shape[1] - 1)]:
            return True
    return False
