"""The plain-backdrop path: an object on a plain or smoothly graded backdrop, no weights.

A smooth backdrop (quadratic in x and y, per CIELAB channel) is fitted to the image border;
pixels far from it in CIELAB are the object, except pixels that are a darker copy of the
backdrop with the same chromaticity and soft edges (contact shadows).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage
from skimage.filters import apply_hysteresis_threshold

from ..ndtools import label
from .cleanup import disk

# Classical thresholds, in CIELAB delta-E (76). A just-noticeable difference is ~2.3; the
# thresholds scale up with the backdrop's measured noise (JPEG, sensor) so noisy photos do
# not turn into speckle.
_T_LOW = 8.0  # hysteresis low: may be object when connected to a sure object pixel
_T_HIGH = 12.0  # hysteresis high: surely not backdrop
# Shadow model: pixel = k * backdrop (per channel, sRGB), with k in [_K_MIN, _K_MAX]
# and a chromaticity residual below _SHADOW_RESIDUAL.
_K_MIN = 0.4
_K_MAX = 0.985
_SHADOW_RESIDUAL = 0.06
# Shadow-like regions whose edge against the backdrop is crisp (slope / depth per pixel at
# least this) are neutral-coloured objects, not shadows: contact shadows are blurred.
_CRISP_EDGE = 0.15


@dataclass(frozen=True)
class Backdrop:
    """A smooth backdrop fitted to the photo's border."""

    lab: np.ndarray  # (h, w, 3) float32, fitted backdrop colour per pixel
    rgb: np.ndarray  # (h, w, 3) float32, the same in sRGB 0..255
    noise: float  # robust std of the border's delta-E to the fit


def fit_backdrop(lab: np.ndarray, *, border: float = 0.02) -> Backdrop:
    """Fit a smooth backdrop (quadratic in x and y, per CIELAB channel) to the image border.

    Parameters
    ----------
    lab : numpy.ndarray
        (h, w, 3) float32 CIELAB image.
    border : float
        Width of the sampled border strip, as a fraction of the shorter side.

    Notes
    -----
    The fit is repeated twice without the samples more than 3 robust standard deviations away,
    so an object touching the border does not drag the backdrop towards its colour.
    """
    h, w = lab.shape[:2]
    strip = max(2, round(border * min(h, w)))
    edge = np.zeros((h, w), dtype=bool)
    edge[:strip, :] = edge[-strip:, :] = True
    edge[:, :strip] = edge[:, -strip:] = True
    ys, xs = np.nonzero(edge)
    step = max(1, len(ys) // 4000)  # a few thousand samples are plenty for 6 coefficients
    ys, xs = ys[::step], xs[::step]
    samples = lab[ys, xs].astype(np.float64)  # (n, 3) float
    design = _poly_terms(xs / max(w - 1, 1), ys / max(h - 1, 1))  # (n, 6) float
    inliers = np.ones(len(samples), dtype=bool)
    coeffs = np.zeros((6, 3))
    noise = 1.0
    for _ in range(3):
        a = design[inliers]
        # Normal equations: a 6x6 solve, far cheaper than lstsq's SVD on thousands of rows.
        coeffs = np.linalg.solve(a.T @ a + 1e-9 * np.eye(6), a.T @ samples[inliers])  # (6, 3)
        resid = np.linalg.norm(samples - design @ coeffs, axis=1)  # (n,) float
        noise = max(0.5, 1.4826 * float(np.median(resid[inliers])))
        inliers = resid <= max(3.0 * noise, 2.0)
        if inliers.sum() < 12:  # the object covers the border: keep the last fit
            inliers[:] = True
            break
    x = (np.arange(w, dtype=np.float32) / max(w - 1, 1))[None, :, None]  # (1, w, 1)
    y = (np.arange(h, dtype=np.float32) / max(h - 1, 1))[:, None, None]  # (h, 1, 1)
    c = coeffs.astype(np.float32)  # (6, 3), same term order as _poly_terms
    full_lab = (c[0] + x * (c[1] + x * c[3] + y * c[4])) + y * (c[2] + y * c[5])  # (h, w, 3)
    full_lab = np.ascontiguousarray(full_lab, dtype=np.float32)
    rgb = cv2.cvtColor(full_lab, cv2.COLOR_Lab2RGB) * 255.0
    return Backdrop(lab=full_lab, rgb=np.clip(rgb, 0.0, 255.0), noise=noise)


def classical_mask(
    rgb: np.ndarray, lab: np.ndarray, backdrop: Backdrop, delta_e: np.ndarray
) -> np.ndarray:
    """Pixels that are neither backdrop nor the backdrop in shadow.

    Parameters
    ----------
    rgb : numpy.ndarray
        (h, w, 3) uint8 photo.
    lab : numpy.ndarray
        (h, w, 3) float32, the same in CIELAB.
    backdrop : Backdrop
        The fitted backdrop.
    delta_e : numpy.ndarray
        (h, w) float, CIELAB distance of each pixel to the backdrop.

    Returns
    -------
    numpy.ndarray
        (h, w) bool, raw object mask (before component selection and hole filling).
    """
    t_low = max(_T_LOW, 4.0 * backdrop.noise)
    t_high = max(_T_HIGH, 7.0 * backdrop.noise)
    shadow = _shadow_like(rgb.astype(np.float32), backdrop.rgb) & (delta_e > t_low)
    # Backdrop pixels right next to the (coloured) object see its edge, not the shadow's.
    near_object = cv2.dilate(((delta_e > t_low) & ~shadow).astype(np.uint8), disk(3)) > 0
    backdrop_side = (delta_e <= t_low) & ~near_object
    shadow &= ~_crisp_regions(shadow, lab[:, :, 0], backdrop.lab[:, :, 0], backdrop_side)
    score = np.where(shadow, 0.0, delta_e).astype(np.float32)
    return _half_contrast_edge(apply_hysteresis_threshold(score, t_low, t_high), score)


def _half_contrast_edge(mask: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Move the outline to where a pixel is at least half object.

    The hysteresis threshold is low so that weakly contrasting objects hold together, which
    puts the outline on pixels only ~20 % covered (and on JPEG chroma bleed) - a one-pixel
    fat mask. On the outline band, keep a pixel only if its contrast reaches half of the
    strongest contrast of the object within two pixels.
    """
    band = mask & ~cv2.erode(mask.astype(np.uint8), disk(2)).astype(bool)
    nearby = cv2.dilate(np.where(mask, score, 0.0).astype(np.float32), np.ones((5, 5), np.uint8))
    return mask & ~(band & (score < 0.5 * nearby))


def _shadow_like(rgb: np.ndarray, back: np.ndarray) -> np.ndarray:
    """(h, w) bool: pixel ~= k * backdrop with k in [_K_MIN, _K_MAX] (same chromaticity)."""
    bb = np.maximum(np.einsum("hwc,hwc->hw", back, back), 1e-6)
    k = np.einsum("hwc,hwc->hw", rgb, back) / bb  # (h, w) float, best darkening factor
    resid = np.linalg.norm(rgb - k[:, :, None] * back, axis=2) / np.sqrt(bb)
    return (k >= _K_MIN) & (k <= _K_MAX) & (resid <= _SHADOW_RESIDUAL)


def _crisp_regions(
    candidate: np.ndarray, lum: np.ndarray, back_lum: np.ndarray, backdrop_like: np.ndarray
) -> np.ndarray:
    """Shadow-like components with a sharp edge against the backdrop: grey objects.

    A contact shadow fades into the backdrop over many pixels; an object's outline is a step
    blurred only by the lens and resampling. Measured as the lightness slope on the backdrop
    side of the component's outline (mean) over the component's mean depth.
    """
    labels, count = label(candidate)
    if count == 0:
        return np.zeros_like(candidate)
    smooth = cv2.GaussianBlur(lum, (0, 0), 1.0)
    gy, gx = np.gradient(smooth)
    slope = np.hypot(gx, gy)  # (h, w) float, lightness change per pixel
    ring = ndimage.grey_dilation(labels, size=3) * (backdrop_like & (labels == 0))
    # Means by bincount: ndimage.median is ~50x slower and the regions are smooth anyway.
    n = count + 1
    area = np.bincount(labels.ravel(), minlength=n).astype(np.float64)
    depth = np.bincount(labels.ravel(), np.maximum(back_lum - lum, 0.0).ravel(), minlength=n)
    ring_len = np.bincount(ring.ravel(), minlength=n).astype(np.float64)
    edge = np.bincount(ring.ravel(), slope.ravel(), minlength=n)
    depth = depth / np.maximum(area, 1.0)
    edge = edge / np.maximum(ring_len, 1.0)
    keep = (edge >= _CRISP_EDGE * np.maximum(depth, 1e-3)) & (ring_len > 0)
    keep[0] = False
    return keep[labels]


def to_lab(rgb: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8 sRGB to (h, w, 3) float32 CIELAB (L 0..100)."""
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def _poly_terms(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(n,) x, (n,) y in [0, 1] -> (n, 6) quadratic design matrix."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=1)
