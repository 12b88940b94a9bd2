"""Find the object in a product photo and cut a square, centred crop of it with a soft mask.

Three ways to the mask, tried in this order:

1. ``alpha``: the file has a real alpha channel (a cut-out PNG) - it is the mask.
2. ``rembg``: a rembg ONNX model lies on local disk (``model_path``, ``$MESHDROP_REMBG_MODEL``
   or where rembg itself looks for ``<model_name>.onnx`` under ``$U2NET_HOME``). One session per
   process, created on first use. Nothing is ever downloaded at run time: no file, no rembg.
3. ``classical``: no weights at all. A smooth backdrop (plain or gradient) is fitted to the
   image border; pixels far from it in CIELAB are the object, except pixels that are a darker
   copy of the backdrop with the same chromaticity and soft edges (contact shadows).

Every mask is then cleaned the same way: the largest component is the object, smaller ones are
kept only when they lie within a small gap of it (a handle drawn apart by a thin highlight);
specks elsewhere go. Holes are filled unless they are real openings - see :func:`fill_holes`.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from scipy import ndimage
from skimage.filters import apply_hysteresis_threshold

from meshdrop_contract.jobs import ENV_REMBG_MODEL

from .errors import BadInputError
from .image import LoadedImage

log = logging.getLogger(__name__)

# Work on a downscaled copy: masks need no more than ~1.5x the output resolution, and the
# classical path then costs the same for a 48 Mpx photo as for a 0.5 Mpx one.
_MIN_WORK_SIDE = 512
_WORK_OVERSAMPLE = 1.5

# Classical thresholds, in CIELAB delta-E (76). A just-noticeable difference is ~2.3; the
# thresholds scale up with the backdrop's measured noise (JPEG, sensor) so noisy photos do
# not turn into speckle.
_T_LOW = 8.0  # hysteresis low: may be object when connected to a sure object pixel
_T_HIGH = 12.0  # hysteresis high: surely not backdrop
_T_MATCH = 3.0  # a hole whose cleanest fifth is this close to the backdrop is an opening
# Shadow model: pixel = k * backdrop (per channel, sRGB), with k in [_K_MIN, _K_MAX]
# and a chromaticity residual below _SHADOW_RESIDUAL.
_K_MIN = 0.4
_K_MAX = 0.985
_SHADOW_RESIDUAL = 0.06
# Shadow-like regions whose edge against the backdrop is crisp (slope / depth per pixel at
# least this) are neutral-coloured objects, not shadows: contact shadows are blurred.
_CRISP_EDGE = 0.15

_SESSIONS: dict[tuple[str, str], Any] = {}
_SESSIONS_LOCK = threading.Lock()
_SHARED: dict[tuple[str | None, str], BackgroundRemover] = {}


@dataclass(frozen=True)
class Segmentation:
    """The object, cropped square with a margin and resized to ``size``."""

    rgb: np.ndarray  # (s, s, 3) uint8
    mask: np.ndarray  # (s, s) float32 in [0, 1], object = 1, soft edges
    method: str  # "alpha" | "rembg" | "classical"
    # (left, top, right, bottom) in the loaded image's pixels; may reach outside the image
    # when the object is near an edge (those pixels are edge-replicated in rgb, 0 in mask).
    crop_box: tuple[int, int, int, int]


@dataclass(frozen=True)
class _Backdrop:
    lab: np.ndarray  # (h, w, 3) float32, fitted backdrop colour per pixel
    rgb: np.ndarray  # (h, w, 3) float32, the same in sRGB 0..255
    noise: float  # robust std of the border's delta-E to the fit


class BackgroundRemover:
    """Segments photos; holds (a reference to) the process' single rembg session.

    Parameters
    ----------
    model_path
        A U2-Net-style ONNX model (input 1x3x320x320, ImageNet normalisation, first output is
        the saliency map). Default: ``$MESHDROP_REMBG_MODEL``, else rembg's own
        ``<model_name>.onnx`` if it is already on disk.
    model_name
        The rembg model looked up when no path is given.
    """

    def __init__(
        self, *, model_path: str | os.PathLike[str] | None = None, model_name: str = "u2net"
    ) -> None:
        self._model_path = Path(model_path) if model_path is not None else None
        self._model_name = model_name
        self._session_key: tuple[str, str] | None = None
        self._resolved = False

    @classmethod
    def shared(cls, **kwargs: Any) -> BackgroundRemover:
        """The process-wide remover for these arguments (one rembg session per process)."""
        path = kwargs.get("model_path")
        key = (str(path) if path is not None else None, str(kwargs.get("model_name", "u2net")))
        with _SESSIONS_LOCK:
            remover = _SHARED.get(key)
            if remover is None:
                remover = _SHARED[key] = cls(**kwargs)
            return remover

    # -- rembg -------------------------------------------------------------------------
    def model_file(self) -> Path | None:
        """The ONNX file rembg would use, or ``None`` (then the classical path runs)."""
        explicit = self._model_path or _env_path(os.environ.get(ENV_REMBG_MODEL))
        if explicit is not None:
            if explicit.is_file():
                return explicit.resolve()
            log.warning("rembg model %s does not exist; using classical segmentation", explicit)
            return None
        for candidate in _rembg_candidates(self._model_name):
            if candidate.is_file():
                return candidate.resolve()
        return None

    def rembg_session(self) -> Any | None:
        """The process' rembg session for this model, created on first call; ``None`` if none."""
        if not self._resolved:
            model = self.model_file()
            if model is not None:
                kind = (
                    "custom" if (self._model_path or os.environ.get(ENV_REMBG_MODEL)) else "named"
                )
                self._session_key = (kind, str(model))
            self._resolved = True
        if self._session_key is None:
            return None
        with _SESSIONS_LOCK:
            if self._session_key not in _SESSIONS:
                _SESSIONS[self._session_key] = _new_session(*self._session_key, self._model_name)
            return _SESSIONS[self._session_key]

    # -- segmentation ------------------------------------------------------------------
    def segment(self, image: LoadedImage, *, size: int, margin: float = 0.1) -> Segmentation:
        """Cut the object out of ``image``: a ``size`` x ``size`` crop with its mask.

        Raises
        ------
        BadInputError
            No object could be told from the background.
        ValueError
            ``size`` below 8 or ``margin`` outside [0, 1).
        """
        if int(size) < 8:
            raise ValueError(f"size must be at least 8 pixels, got {size}")
        if not 0.0 <= margin < 1.0:
            raise ValueError(f"margin must be in [0, 1), got {margin}")
        rgb = image.rgb
        h, w = rgb.shape[:2]
        work_side = max(_MIN_WORK_SIDE, int(_WORK_OVERSAMPLE * size))
        scale = min(1.0, work_side / max(h, w))
        work = rgb
        if scale < 1.0:
            dsize = (max(1, round(w * scale)), max(1, round(h * scale)))
            work = cv2.resize(rgb, dsize, interpolation=cv2.INTER_AREA)
            scale = work.shape[1] / w  # the scale actually used along x
        gap = max(2, round(0.01 * float(np.hypot(*work.shape[:2]))))

        if image.alpha is not None:
            soft_full = image.alpha.astype(np.float32) / 255.0  # (h, w)
            soft_work = cv2.resize(soft_full, work.shape[1::-1], interpolation=cv2.INTER_AREA)
            hard = keep_main_object(soft_work >= 0.5, gap=gap)
            keep = cv2.resize(
                _dilate(hard, 2).astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST
            )
            return _crop(rgb, soft_full * keep, hard, 1.0 / scale, 1.0, size, margin, "alpha")

        lab = _to_lab(work)
        backdrop = fit_backdrop(lab)
        delta_e = np.linalg.norm(lab - backdrop.lab, axis=2)  # (h, w) float
        session = self.rembg_session()
        if session is not None:
            soft = _rembg_mask(session, work)
            hard = keep_main_object(soft >= 0.5, gap=gap)
            if hard.any():
                full = fill_holes(hard, delta_e, backdrop.noise)
                soft = np.where(full & ~hard, 1.0, soft * _dilate(hard, 1)).astype(np.float32)
                return _crop(rgb, soft, full, 1.0 / scale, scale, size, margin, "rembg")
            log.info("rembg found no object; trying classical segmentation")

        hard = classical_mask(work, lab, backdrop, delta_e)
        hard = keep_main_object(_open(hard), gap=gap)
        hard = fill_holes(_close(hard), delta_e, backdrop.noise)
        # A sub-pixel blur gives the anti-aliased edge a real photo has; the output resize
        # then interpolates it instead of stair-stepping.
        soft = cv2.GaussianBlur(hard.astype(np.float32), (0, 0), 0.7)
        return _crop(rgb, soft, hard, 1.0 / scale, scale, size, margin, "classical")


# -- the classical path ----------------------------------------------------------------
def fit_backdrop(lab: np.ndarray, *, border: float = 0.02) -> _Backdrop:
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
    return _Backdrop(lab=full_lab, rgb=np.clip(rgb, 0.0, 255.0), noise=noise)


def classical_mask(
    rgb: np.ndarray, lab: np.ndarray, backdrop: _Backdrop, delta_e: np.ndarray
) -> np.ndarray:
    """Pixels that are neither backdrop nor the backdrop in shadow.

    Parameters
    ----------
    rgb : numpy.ndarray
        (h, w, 3) uint8 photo.
    lab : numpy.ndarray
        (h, w, 3) float32, the same in CIELAB.
    backdrop : _Backdrop
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
    near_object = cv2.dilate(((delta_e > t_low) & ~shadow).astype(np.uint8), _disk(3)) > 0
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
    band = mask & ~cv2.erode(mask.astype(np.uint8), _disk(2)).astype(bool)
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
    labels, count = ndimage.label(candidate)
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


# -- cleanup shared by all paths ---------------------------------------------------------
def keep_main_object(mask: np.ndarray, *, gap: int = 3) -> np.ndarray:
    """Keep the largest component and the components within ``gap`` pixels of it.

    Parameters
    ----------
    mask : numpy.ndarray
        (h, w) bool.
    gap : int
        Largest distance, in pixels, from the main component at which another component still
        counts as attached. Components smaller than 0.1 % of the main one are specks and go.

    Returns
    -------
    numpy.ndarray
        (h, w) bool; all False when ``mask`` is empty.
    """
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if count <= 1:
        return labels > 0
    areas = np.bincount(labels.ravel())[1:]  # (count,) int
    main = int(np.argmax(areas)) + 1
    dist = ndimage.distance_transform_edt(labels != main)  # (h, w) float, 0 on the main one
    index = np.arange(1, count + 1)
    near = np.asarray(ndimage.minimum(dist, labels, index)) <= gap
    big = areas >= max(4, 0.001 * areas[main - 1])
    keep = np.zeros(count + 1, dtype=bool)
    keep[1:] = near & big
    keep[main] = True
    return keep[labels]


def fill_holes(mask: np.ndarray, delta_e: np.ndarray, noise: float = 1.0) -> np.ndarray:
    """Fill the object's holes except real openings.

    The rule: an enclosed background region stays open only when it is BOTH

    * large: at least 0.2 % of the object's area (and 16 pixels) - smaller holes are JPEG
      blocks, specular glints or cracks in the mask, and
    * the backdrop itself: the 20th percentile of its CIELAB distance to the fitted backdrop
      at that position is at most ``max(3, 2 * noise)`` delta-E - as when the backdrop shows
      through a mug's handle (the percentile, not the median, because the object's colour
      bleeds into the rim of a narrow opening).

    A white label on a white backdrop is close to, but not exactly, the backdrop's colour
    (different material and lighting), so it misses the second test and is filled. A label of
    exactly the backdrop's colour cannot be told from an opening and stays open.

    Parameters
    ----------
    mask : numpy.ndarray
        (h, w) bool object mask.
    delta_e : numpy.ndarray
        (h, w) float, CIELAB distance of each pixel to the backdrop.
    noise : float
        Robust standard deviation of the backdrop's delta-E (from :func:`fit_backdrop`).

    Returns
    -------
    numpy.ndarray
        (h, w) bool.
    """
    filled = ndimage.binary_fill_holes(mask)
    holes = filled & ~mask
    labels, count = ndimage.label(holes)
    if count == 0:
        return filled
    index = np.arange(1, count + 1)
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    # The cleanest fifth of the hole: near its rim the object's colour bleeds in (JPEG chroma
    # subsampling, lens blur), while a label is off by the same amount everywhere.
    clean = ndimage.labeled_comprehension(
        delta_e, labels, index, lambda v: np.percentile(v, 20), float, np.inf
    )
    big = areas >= max(16.0, 0.002 * float(mask.sum()))
    opening = big & (np.asarray(clean) <= max(_T_MATCH, 2.0 * noise))
    reopen = np.zeros(count + 1, dtype=bool)
    reopen[1:] = opening
    return filled & ~reopen[labels]


# -- helpers ---------------------------------------------------------------------------
def _crop(
    rgb: np.ndarray,
    soft: np.ndarray,
    hard: np.ndarray,
    to_image: float,
    soft_scale: float,
    size: int,
    margin: float,
    method: str,
) -> Segmentation:
    """Square crop around ``hard`` (work pixels; ``to_image`` maps them to image pixels).

    ``soft`` is the mask to resample, at ``soft_scale`` times the image's resolution.
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
    side = max(x1 - x0, y1 - y0) * (1.0 + 2.0 * margin)
    side_px = max(1, int(np.ceil(side)))
    left = int(np.floor((x0 + x1) / 2.0 - side_px / 2.0))
    top = int(np.floor((y0 + y1) / 2.0 - side_px / 2.0))
    box = (left, top, left + side_px, top + side_px)

    h, w = rgb.shape[:2]
    pad = (max(0, -top), max(0, box[3] - h), max(0, -left), max(0, box[2] - w))
    piece = rgb[max(0, top) : min(h, box[3]), max(0, left) : min(w, box[2])]
    if any(pad):
        piece = cv2.copyMakeBorder(piece, *pad, cv2.BORDER_REPLICATE)
    interp = cv2.INTER_AREA if side_px > size else cv2.INTER_LINEAR
    out_rgb = cv2.resize(piece, (size, size), interpolation=interp)

    # Output pixel centre u maps to image x = left + (u + 0.5) * side_px / size - 0.5, and
    # image x to soft-mask x = (x + 0.5) * soft_scale - 0.5.
    step = side_px / size * soft_scale
    matrix = np.array(
        [
            [step, 0.0, (left + 0.5 * side_px / size) * soft_scale - 0.5],
            [0.0, step, (top + 0.5 * side_px / size) * soft_scale - 0.5],
        ]
    )
    if step > 1.5:  # shrinking a lot: pre-blur so the warp does not alias the edge
        soft = cv2.GaussianBlur(soft.astype(np.float32), (0, 0), 0.5 * step)
    out_mask = cv2.warpAffine(
        soft.astype(np.float32),
        matrix,
        (size, size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0.0,
    )
    return Segmentation(
        rgb=np.ascontiguousarray(out_rgb, dtype=np.uint8),
        mask=np.clip(out_mask, 0.0, 1.0).astype(np.float32),
        method=method,
        crop_box=box,
    )


def _to_lab(rgb: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8 sRGB to (h, w, 3) float32 CIELAB (L 0..100)."""
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def _poly_terms(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(n,) x, (n,) y in [0, 1] -> (n, 6) quadratic design matrix."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=1)


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    return cv2.dilate(mask.astype(np.uint8), _disk(radius)).astype(bool)


def _open(mask: np.ndarray) -> np.ndarray:
    # Removes one-pixel JPEG halos and speckle along edges without eating thin parts.
    return cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, _disk(1)).astype(bool)


def _close(mask: np.ndarray) -> np.ndarray:
    return cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, _disk(1)).astype(bool)


def _env_path(value: str | None) -> Path | None:
    return Path(value).expanduser() if value else None


def _rembg_candidates(model_name: str) -> list[Path]:
    """Where rembg 2.0.86 looks for an already-downloaded ``<model_name>.onnx``.

    Mirrors ``BaseSession.model_dir``/``legacy_home`` without importing rembg (a 2 s import)
    when no model is there anyway.
    """
    fname = f"{model_name}.onnx"
    u2net_home = os.environ.get("U2NET_HOME")
    xdg = os.environ.get("XDG_DATA_HOME")
    legacy = Path(u2net_home or Path(xdg or "~") / ".u2net").expanduser()
    if u2net_home:
        home = legacy
    else:
        default = Path(xdg) / "rembg" if xdg else Path("~") / ".rembg"
        home = Path(os.environ.get("REMBG_HOME") or default).expanduser()
    return [home / "models" / model_name / fname, legacy / fname]


def _new_session(kind: str, model: str, model_name: str) -> Any:
    """Create a rembg session from a local file; never downloads."""
    import onnxruntime as ort
    import rembg
    from rembg.sessions import sessions as rembg_sessions

    log.info("loading rembg model %s", model)
    if kind == "named":
        session_class = rembg_sessions.get(model_name)
        # resolve_existing only finds files; a miss would make rembg download, so refuse.
        if session_class is None or session_class.resolve_existing(f"{model_name}.onnx") is None:
            raise RuntimeError(f"rembg does not find {model} for model {model_name!r}")
        return rembg.new_session(model_name)
    try:
        return rembg.new_session("u2net_custom", model_path=model)
    except ValueError:
        # rembg only accepts custom models under its own home directory. This path comes from
        # the deployment's configuration, not from a user, so load it where it lies.
        return _local_session_class()("u2net_custom", ort.SessionOptions(), model_path=model)


def _rembg_mask(session: Any, rgb: np.ndarray) -> np.ndarray:
    """(h, w) float32 in [0, 1] saliency mask from rembg."""
    import rembg

    out = rembg.remove(rgb, session=session, only_mask=True)
    mask = np.asarray(out, dtype=np.float32)
    if mask.ndim == 3:
        mask = mask[:, :, -1]
    return mask / 255.0


def _local_session_class() -> type:
    from rembg.sessions.u2net_custom import U2netCustomSession

    class LocalU2netSession(U2netCustomSession):
        @classmethod
        def download_models(cls, *args: Any, **kwargs: Any) -> str:
            return str(Path(kwargs["model_path"]).resolve())

    return LocalU2netSession
