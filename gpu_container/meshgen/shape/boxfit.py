"""Fit an upright 3-D box and the camera's yaw and pitch to a box's outline.

Under an orthographic camera an upright box (no roll) projects to the convex hull of its eight
corners: a rectangle seen face-on, a hexagon seen from above and to one side. Its three edge
directions project to ``2a (cos yaw, sin yaw sin pitch)``, ``2b (0, cos pitch)`` and
``2c (sin yaw, -cos yaw sin pitch)``, so a hexagon fixes width, height, depth, yaw and pitch
(the two slanted edge slopes multiply to ``-sin^2 pitch``). A rectangle cannot tell depth from
height or width: then the box is taken face-on with the documented depth ratio.

Frames: the *camera frame* is the grid frame of :mod:`.priors` (x = column, y = up, z towards the
camera); the *object frame* has the box axis-aligned, Y up. ``rotation`` maps object to camera.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares
from scipy.spatial import KDTree
from skimage.measure import find_contours

#: Depth of a box seen face-on, as a fraction of its width. A single photo cannot tell; this
#: is the median of packaging boxes (cereal, shoes, electronics) and is documented.
BOX_DEPTH_RATIO = 0.6
#: Depth is read from the outline only when both angles are at least this far from face-on;
#: closer to face-on the hexagon's short edges are a few pixels and the depth is a guess again.
MIN_YAW_DEG = 8.0
MIN_PITCH_DEG = 5.0
#: A fitted box must cover the outline at least this well (IoU of the projected hull).
MIN_FIT_IOU = 0.95
#: A box fitted to an outline's convex hull (a toy car's) covers the hull at least this well:
#: the hull's own bumps (wheels, a cabin narrower than the body) keep it below a box's 0.95.
HULL_MIN_IOU = 0.9
#: ... and is taken only from a raised three-quarter view: a blob's hull also fits a box
#: seen nearly face-on (yaw ~12, pitch ~8), a car's photographed from above and aside does not
#: need that excuse.
HULL_MIN_YAW_DEG = 15.0
HULL_MIN_PITCH_DEG = 10.0
#: Contour points used by the fit; more only slow it down.
FIT_POINTS = 240

_SIGNS = np.array(
    [[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64
)  # (8, 3) corner signs


@dataclass(frozen=True)
class BoxFit:
    """An upright box and the camera angles that make it project onto the outline.

    Attributes
    ----------
    half
        ``(3,)`` float half extents (width x, height y, depth z) in grid pixels, object frame.
    yaw_deg, pitch_deg
        Camera turned about the box's vertical axis, then tilted down (top face visible).
    centre
        ``(3,)`` float box centre in the camera frame (grid pixels; z = 0).
    iou
        IoU of the box's projected outline with the photo's outline.
    depth_observed
        Whether depth came from the outline (hexagon) rather than :data:`BOX_DEPTH_RATIO`.
    """

    half: np.ndarray
    yaw_deg: float
    pitch_deg: float
    centre: np.ndarray
    iou: float
    depth_observed: bool

    @property
    def rotation(self) -> np.ndarray:
        """``(3, 3)`` float rotation from the object frame to the camera frame."""
        return box_rotation(self.yaw_deg, self.pitch_deg)


def box_rotation(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """``(3, 3)`` float object-to-camera rotation: turn about Y by yaw, then tilt by pitch.

    Positive pitch turns the top face towards the camera (the camera looks down).
    """
    yaw, pitch = np.radians(yaw_deg), np.radians(pitch_deg)
    ry = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
    rx = np.array(
        [[1, 0, 0], [0, np.cos(pitch), -np.sin(pitch)], [0, np.sin(pitch), np.cos(pitch)]]
    )
    return rx @ ry


def projected_outline(
    half: np.ndarray, yaw_deg: float, pitch_deg: float, centre_xy: np.ndarray
) -> np.ndarray:
    """Convex outline of the box seen by the orthographic camera.

    Returns
    -------
    numpy.ndarray
        ``(k, 2)`` float hull vertices (x, y up) in counter-clockwise order, k in 4..6.
    """
    corners = (_SIGNS * half) @ box_rotation(yaw_deg, pitch_deg).T  # (8, 3) float
    return _hull(corners[:, :2] + centre_xy)


def _hull(points: np.ndarray) -> np.ndarray:
    """Counter-clockwise convex hull of a few 2-D points (monotone chain)."""
    pts = points[np.lexsort((points[:, 1], points[:, 0]))]

    def half_chain(seq: np.ndarray) -> list[np.ndarray]:
        chain: list[np.ndarray] = []
        for p in seq:
            while len(chain) >= 2:
                o, a = chain[-2], chain[-1]
                if (a[0] - o[0]) * (p[1] - o[1]) - (a[1] - o[1]) * (p[0] - o[0]) > 1e-9:
                    break
                chain.pop()
            chain.append(p)
        return chain

    lower, upper = half_chain(pts), half_chain(pts[::-1])
    return np.array(lower[:-1] + upper[:-1])


def _segment_distances(points: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Distance from each point ``(k, 2)`` to the closed polygon's boundary ``(m, 2)``."""
    a = poly  # (m, 2)
    e = np.roll(poly, -1, axis=0) - a  # (m, 2)
    w = points[:, None, :] - a[None]  # (k, m, 2)
    t = np.clip((w * e).sum(-1) / np.maximum((e * e).sum(-1), 1e-12), 0.0, 1.0)  # (k, m)
    return np.linalg.norm(w - t[..., None] * e, axis=-1).min(axis=1)


def outline_points(mask: np.ndarray) -> np.ndarray:
    """Sub-pixel outline of a soft mask in the camera frame.

    Parameters
    ----------
    mask
        ``(g, g)`` float 0..1, rows top to bottom.

    Returns
    -------
    numpy.ndarray
        ``(k, 2)`` float (x = column, y = rows from the bottom) on the longest contour.
    """
    g = mask.shape[0]
    contours = find_contours(np.pad(mask.astype(np.float64), 1), 0.5)
    contour = max(contours, key=len) - 1.0  # (k, 2) float (row, col)
    return np.stack([contour[:, 1], g - 1 - contour[:, 0]], axis=1)


def _polygon_iou(poly: np.ndarray, mask: np.ndarray) -> float:
    import cv2

    g = mask.shape[0]
    image = np.zeros((g, g), np.uint8)
    pts = np.stack([poly[:, 0], g - 1 - poly[:, 1]], axis=1)
    cv2.fillPoly(image, [np.rint((pts + 0.5) * 16 - 0.5).astype(np.int32)], 1, cv2.LINE_8, 4)
    inside = mask >= 0.5
    box = image.astype(bool)
    union = (inside | box).sum()
    return float((inside & box).sum() / union) if union else 0.0


def _hexagon_start(pts: np.ndarray) -> tuple[np.ndarray, float, float] | None:
    """Closed-form box and angles from a hexagonal outline, or ``None`` if it is no hexagon.

    A projected box is a zonogon: its edges in order are ``u, v, w, -u, -v, -w``, with ``v``
    the vertical edges. The slanted pairs give pitch and yaw (see the module docstring).

    Parameters
    ----------
    pts
        ``(k, 2)`` float outline points (x, y up).
    """
    import cv2

    hull = cv2.convexHull(pts.astype(np.float32))  # (m, 1, 2) float
    poly = cv2.approxPolyDP(hull, 0.015 * cv2.arcLength(hull, True), True)[:, 0].astype(float)
    if len(poly) != 6:
        return None
    edges = np.roll(poly, -1, axis=0) - poly  # (6, 2) float
    pairs = 0.5 * (edges[:3] - edges[3:])  # (3, 2) float: opposite edges averaged
    lengths = np.linalg.norm(pairs, axis=1)
    k = int(np.argmax(np.abs(pairs[:, 1]) / np.maximum(lengths, 1e-9)))
    vertical = pairs[k]
    u, w = pairs[(k + 1) % 3], pairs[(k + 2) % 3]
    if abs(u[0]) < 1e-6 or abs(w[0]) < 1e-6:
        return None
    s_u, s_w = u[1] / u[0], w[1] / w[0]
    sin_p = float(np.sqrt(max(-s_u * s_w, 0.0)))
    if sin_p < 1e-3 or sin_p >= 1.0:
        return None
    pitch = np.arcsin(sin_p)
    # u is the box's x edge: slope tan(yaw) sin(pitch).
    yaw = float(np.arctan(s_u / sin_p))
    a = abs(u[0]) / (2.0 * np.cos(yaw))
    c = abs(w[0]) / (2.0 * max(abs(np.sin(yaw)), 1e-6))
    b = abs(vertical[1]) / (2.0 * np.cos(pitch))
    return np.array([a, b, c]), float(np.degrees(yaw)), float(np.degrees(pitch))


def _starts(pts: np.ndarray, width: float, height: float) -> list[tuple[np.ndarray, float, float]]:
    """Starting boxes for the fit: the hexagon's closed form, else turned three-quarter views.

    An outline that is no clean hexagon (a box's convex hull with a bump, a toy car's hull)
    still comes from an upright box seen from a raised three-quarter angle: starts at yaw
    +-35 and pitch 20, sized from the outline's extent, let least squares find it. An outline
    seen face-on then converges to yaw ~0 and is taken face-on below.
    """
    hexagon = _hexagon_start(pts)
    if hexagon is not None:
        return [hexagon]
    starts = []
    for yaw in (-35.0, 35.0):
        cos, sin = np.cos(np.radians(yaw)), abs(np.sin(np.radians(yaw)))
        # The outline's width is 2a cos(yaw) + 2c sin(yaw): start with a square footprint.
        side = 0.5 * width / (cos + sin)
        starts.append((np.array([side, 0.4 * height, side]), yaw, 20.0))
    return starts


def _unpack(p: np.ndarray) -> tuple[np.ndarray, float, float, np.ndarray]:
    """Parameters -> half extents ``(3,)``, yaw and pitch in degrees, centre ``(2,)``."""
    return np.exp(p[:3]), float(np.degrees(p[3])), float(np.degrees(p[4])), p[5:7]


def _least_squares_box(
    pts: np.ndarray, width: float, height: float, centre_xy: np.ndarray
) -> np.ndarray | None:
    """The best of the least-squares fits from each start, as packed parameters.

    Residuals are outline points (``(k, 2)`` float ``pts``, subsampled) to the projected hull's
    edges, plus hull corners to the outline, so no corner floats off the outline.
    """
    sample = pts[:: max(1, len(pts) // FIT_POINTS)]
    tree = KDTree(pts)

    def residuals(p: np.ndarray) -> np.ndarray:
        half, yaw, pitch, c = _unpack(p)
        poly = projected_outline(half, yaw, pitch, c)
        to_edges = _segment_distances(sample, poly)  # (k,) float
        to_outline, _ = tree.query(poly)  # (m,) float
        # Fixed length: least squares needs it; the hull has 4 to 6 corners.
        corners = np.zeros(6)
        corners[: len(to_outline)] = to_outline[:6]
        return np.concatenate([to_edges, 2.0 * corners])

    bounds = (
        [-np.inf] * 3 + [-np.pi / 2, 0.0, -np.inf, -np.inf],
        [np.inf] * 3 + [np.pi / 2, np.radians(80.0), np.inf, np.inf],
    )
    best: np.ndarray | None = None
    best_cost = np.inf
    for half0, yaw0, pitch0 in _starts(pts, width, height):
        x0 = np.array([*np.log(half0), np.radians(yaw0), np.radians(pitch0), *centre_xy])
        found = least_squares(
            residuals,
            x0,
            bounds=bounds,
            max_nfev=40,
            x_scale=np.array([0.1, 0.1, 0.1, 0.1, 0.1, 1.0, 1.0]),
        )
        if found.cost < best_cost:
            best, best_cost = found.x, float(found.cost)
    return best


def fit_box(
    mask: np.ndarray, depth_ratio: float = BOX_DEPTH_RATIO, *, min_iou: float = MIN_FIT_IOU
) -> BoxFit:
    """Fit an upright box and camera yaw/pitch to a de-tilted box outline.

    A hexagonal outline gives a closed-form start (:func:`_hexagon_start`), refined by least
    squares (outline points to the projected hull's edges, hull corners to the outline). Any
    other outline, or a fit that explains it poorly, gives the box face-on with ``depth_ratio``.

    Parameters
    ----------
    mask
        ``(g, g)`` float 0..1 de-tilted outline, rows top to bottom.
    depth_ratio
        Depth over width when the outline cannot tell.
    """
    pts = outline_points(mask)  # (k, 2) float
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    centre_xy = (lo + hi) / 2.0
    width, height = hi - lo
    best = _least_squares_box(pts, width, height, centre_xy)
    if best is not None:
        half, yaw, pitch, c = _unpack(best)
        # Name the axes so the face most turned to the camera is the front (+z in the asset).
        if yaw > 45.0:
            yaw, half = yaw - 90.0, half[[2, 1, 0]]
        elif yaw < -45.0:
            yaw, half = yaw + 90.0, half[[2, 1, 0]]
        iou = _polygon_iou(projected_outline(half, yaw, pitch, c), mask)
        if abs(yaw) >= MIN_YAW_DEG and pitch >= MIN_PITCH_DEG and iou >= min_iou:
            return BoxFit(half, yaw, pitch, np.array([c[0], c[1], 0.0]), iou, True)
    # Face-on: width and height straight from the outline, depth guessed.
    half = np.array([width / 2.0, height / 2.0, depth_ratio * width / 2.0])
    iou = _polygon_iou(projected_outline(half, 0.0, 0.0, centre_xy), mask)
    return BoxFit(half, 0.0, 0.0, np.array([*centre_xy, 0.0]), iou, False)


def convex_hull(mask: np.ndarray) -> np.ndarray:
    """``(g, g)`` float32 0/1: the convex hull of the outline's largest part."""
    import cv2

    inside = (mask >= 0.5).astype(np.uint8)
    contours, _ = cv2.findContours(inside, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    hull = np.zeros_like(inside)
    if contours:
        cv2.fillPoly(hull, [cv2.convexHull(max(contours, key=cv2.contourArea))], 1)
    return hull.astype(np.float32)
