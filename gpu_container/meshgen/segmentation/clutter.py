"""The cluttered-background path: GrabCut seeded from a border-colour and centre prior.

No weights. The photo's border shows the background (a desk, a floor, a shelf, a wall): its
colours, clustered, are what the background looks like. Pixels unlike every sizeable border
cluster, weighted towards the middle of the frame (people centre what they photograph), seed
OpenCV's GrabCut, which learns colour models of object and background and cuts along the
image's edges; a border colour in shadow does not count as unlike it. Of what GrabCut finds,
the object nearest the centre is kept. A second GrabCut at work resolution, in a band around
that outline, recovers what the small cut ate (a narrow rim, a shaded side), smooth shaded
faces beside the object are added back (:mod:`.faces`), and a guided filter snaps the result
to the photo's edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage

from .cleanup import fill_small_holes, keep_main_object, open_mask
from .faces import add_shaded_faces

#: Long side (pixels) GrabCut runs at: its cost grows with the pixel count and a 240 px cut,
#: edge-refined at full resolution, is within a work pixel or two of a full-size one.
GRAB_SIDE = 240
GRAB_ITERATIONS = 3
#: Width of the border strip whose colours define the background, as a share of the short side.
BORDER_STRIP = 0.03
#: Bins per channel of the border's colour histogram, and its smoothing (in bins): 32 levels
#: of 8 so that shading of one surface stays one blob.
HIST_BINS = 32
HIST_SMOOTHING = 1.0
#: The rarest colours of the border, this share of it, may be the object itself running off
#: the edge (a saucer's rim), so they do not set the typical background likelihood.
MIN_CLUSTER_SHARE = 0.06
#: Sigma of the centre prior as a share of the width and height.
CENTRE_SIGMA = 0.3
#: Largest step (8-bit RGB levels, per channel, between neighbouring pixels of the slightly
#: blurred GrabCut image) that a flood from the border crosses: a smooth gradient (a sky
#: paling towards the horizon, a light pool on a wall) is crossed, an object's outline is not.
SMOOTH_STEP = 3
#: Weight, in the choice of the object, of a pixel that such a flood reaches.
REACHED_WEIGHT = 0.1
#: Chromaticity histogram bins per axis (r and g of r + g + b) for shadows; the darkest and
#: the lightest share of the border's brightness read as a shadow, and the width of the ramps
#: at both ends (a soft shadow's edge fades in, a deep one's chromaticity is only noise).
CHROMA_BINS = 32
SHADOW_DARKEST = 0.4
SHADOW_LIGHTEST = 0.95
SHADOW_RAMP = 0.15
#: Second cut, at work resolution: the band around the small cut's outline whose pixels it
#: may still flip, as a share of the object's longer side, and its iterations. Set on the
#: texture composites of ``meshgen/composites.py`` (mean mask IoU 0.950 to 0.974 there, worst
#: case 0.892 to 0.912); wider bands let clutter in.
RECUT_BAND = 0.12
RECUT_ITERATIONS = 3
#: Longest side (pixels) of the second cut's window: its cost grows with the pixel count.
#: 320 px keeps the composites' mean IoU within 0.002 of an uncapped cut for a third of its
#: time on a 0.25 Mpx photo.
RECUT_SIDE = 320
#: Smallest share of the coarse object the second cut must keep to be believed.
RECUT_KEEP = 0.5


@dataclass(frozen=True)
class ClutterCut:
    """GrabCut's answer at GrabCut resolution, and the chosen object at work resolution."""

    small_rgb: np.ndarray  # (hs, ws, 3) uint8, the photo GrabCut saw
    candidates: np.ndarray  # (hs, ws) bool, everything GrabCut called object
    chosen_small: np.ndarray  # (hs, ws) bool, the object nearest the centre
    centre: np.ndarray  # (hs, ws) float 0..1, the centre prior
    soft: np.ndarray  # (h, w) float32 0..1, edge-refined mask at work resolution
    hard: np.ndarray  # (h, w) bool, soft >= 0.5 cleaned


def centre_prior(h: int, w: int, sigma: float = CENTRE_SIGMA) -> np.ndarray:
    """(h, w) float 0..1 Gaussian weight around the middle of the frame."""
    y = (np.arange(h, dtype=np.float32) + 0.5) / h - 0.5
    x = (np.arange(w, dtype=np.float32) + 0.5) / w - 0.5
    return np.exp(-0.5 * ((y[:, None] / sigma) ** 2 + (x[None, :] / sigma) ** 2))


def border_contrast(rgb: np.ndarray) -> np.ndarray:
    """How unlike the colours of the photo's border each pixel is.

    The border strip's colours, in a smoothed 3-D RGB histogram, are the background's colour
    distribution (a wood grain, a carpet and a wall are each a few blobs in it). A pixel whose
    colour is rarer there than most border pixels' own colours is unlike the background.

    Parameters
    ----------
    rgb : numpy.ndarray
        (h, w, 3) uint8 photo.

    Returns
    -------
    numpy.ndarray
        (h, w) float32 in 0..1: 0 for common border colours, 1 for colours never on it.
    """
    h, w = rgb.shape[:2]
    ring = _border_ring(h, w).astype(np.uint8)
    hist = cv2.calcHist([rgb], [0, 1, 2], ring, [HIST_BINS] * 3, [0, 256] * 3)
    hist = ndimage.gaussian_filter(hist, HIST_SMOOTHING, mode="constant")
    hist /= max(float(hist.sum()), 1e-9)
    index = (rgb // (256 // HIST_BINS)).astype(np.intp)  # (h, w, 3) int bin per channel
    likelihood = hist[index[..., 0], index[..., 1], index[..., 2]]  # (h, w) float
    # Most border pixels (all but the rarest MIN_CLUSTER_SHARE) sit at or above this level:
    # the object running off the edge is that rare share.
    typical = float(np.percentile(likelihood[ring > 0], 100.0 * MIN_CLUSTER_SHARE))
    return np.clip(1.0 - likelihood / max(typical, 1e-12), 0.0, 1.0).astype(np.float32)


def shadow_likeness(rgb: np.ndarray) -> np.ndarray:
    """How much each pixel looks like a border colour in shadow.

    A shadow on a desk darkens the desk but keeps its chromaticity (its hue and saturation),
    so the shadowed desk has colours the border never shows and would seed the object. A pixel
    whose chromaticity is common on the border and whose brightness is 40 % to 95 % of the
    border's is shadow-like. Darker pixels are left alone: their chromaticity is too noisy
    to tell a shadow from a dark side of the object.

    Parameters
    ----------
    rgb : numpy.ndarray
        (h, w, 3) uint8 photo.

    Returns
    -------
    numpy.ndarray
        (h, w) float32 in 0..1: 1 for a clearly shadowed border colour.
    """
    h, w = rgb.shape[:2]
    ring = _border_ring(h, w)
    value = rgb.astype(np.float32) + 1.0  # (h, w, 3); +1 keeps black defined
    total = value.sum(axis=2)  # (h, w)
    chroma = value[..., :2] / total[..., None]  # (h, w, 2) float in (0, 1): r and g shares
    bins = np.minimum((chroma * CHROMA_BINS).astype(np.intp), CHROMA_BINS - 1)
    flat = bins @ np.array([CHROMA_BINS, 1])  # (h, w) int: the (r, g) chromaticity bin
    hist = np.bincount(flat[ring], minlength=CHROMA_BINS**2).astype(np.float64)
    hist = ndimage.gaussian_filter(hist.reshape(CHROMA_BINS, CHROMA_BINS), 1.0, mode="constant")
    likelihood = hist.ravel()[flat] / max(float(hist.sum()), 1e-9)  # (h, w)
    typical = float(np.percentile(likelihood[ring], 100.0 * MIN_CLUSTER_SHARE))
    common = np.clip(likelihood / max(typical, 1e-12), 0.0, 1.0)
    # Brightness against the darker border pixels (their 25th percentile): the shadowed
    # desk is compared with the desk, not with a bright wall above it.
    k = total / max(float(np.percentile(total[ring], 25.0)), 1.0)  # (h, w)
    lighter_end = np.clip((SHADOW_LIGHTEST - k) / SHADOW_RAMP, 0.0, 1.0)
    darker = lighter_end * np.clip((k - SHADOW_DARKEST) / SHADOW_RAMP, 0.0, 1.0)
    return (common * darker).astype(np.float32)


def _border_ring(h: int, w: int) -> np.ndarray:
    """(h, w) bool: the border strip whose colours define the background."""
    s = max(2, round(BORDER_STRIP * min(h, w)))
    ring = np.zeros((h, w), dtype=bool)
    ring[:s], ring[-s:], ring[:, :s], ring[:, -s:] = True, True, True, True
    return ring


def border_reach(rgb: np.ndarray, unlike: np.ndarray, step: int = SMOOTH_STEP) -> np.ndarray:
    """The pixels reached from the background along the border without crossing an edge.

    A flood from every border pixel of a common border colour (``unlike < 0.5``: not the
    object running off the edge) that moves only between neighbours within ``step`` levels
    of each other. It follows smooth gradients that the border's colour histogram cannot
    know about (the sky low between two towers is paler than the sky along the top edge, a
    lamp's light pool on a wall is brighter than the wall at the edges) and stops at any
    real outline. Textured backgrounds stop it at once; they are left to the histogram.

    Parameters
    ----------
    rgb : numpy.ndarray
        (h, w, 3) uint8 photo (the GrabCut-size copy: the cost is one flood per border run).
    unlike : numpy.ndarray
        (h, w) float 0..1, :func:`border_contrast` of ``rgb``.
    step : int
        Largest neighbour-to-neighbour difference per channel that the flood crosses.

    Returns
    -------
    numpy.ndarray
        (h, w) bool.
    """
    h, w = rgb.shape[:2]
    blur = cv2.GaussianBlur(rgb, (0, 0), 1.0)  # (h, w, 3) uint8, JPEG noise smoothed
    filled = np.zeros((h + 2, w + 2), dtype=np.uint8)  # floodFill's mask has a 1-px frame
    flags = 8 | cv2.FLOODFILL_MASK_ONLY | (1 << 8)  # 8-connected, fill the mask with 1
    diff = (step, step, step)
    ring = np.zeros((h, w), dtype=bool)
    ring[0], ring[-1], ring[:, 0], ring[:, -1] = True, True, True, True
    ys, xs = np.nonzero(ring & (unlike < 0.5))  # (k,) int each: the flood's starts
    for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
        if not filled[y + 1, x + 1]:
            cv2.floodFill(blur, filled, (x, y), (0, 0, 0), diff, diff, flags)
    return filled[1:-1, 1:-1] > 0


def seed_mask(prior: np.ndarray, unlike: np.ndarray) -> np.ndarray | None:
    """GrabCut's starting labels from the object prior; ``None`` when nothing stands out.

    Parameters
    ----------
    prior : numpy.ndarray
        (h, w) float 0..1, border contrast times the centre prior.
    unlike : numpy.ndarray
        (h, w) float 0..1, border contrast alone.

    Returns
    -------
    numpy.ndarray or None
        (h, w) uint8 of ``cv2.GC_*`` labels.
    """
    top = float(np.percentile(prior, 99.5))
    if top < 0.15:
        return None
    seeds = np.full(prior.shape, cv2.GC_PR_BGD, dtype=np.uint8)
    seeds[prior >= 0.4 * top] = cv2.GC_PR_FGD
    # The strongest, most central pixels are surely object: GrabCut keeps them, which stops
    # its colour models drifting to the background when the object is small.
    sure = cv2.erode((prior >= 0.8 * top).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    seeds[sure] = cv2.GC_FGD
    ring = np.zeros(prior.shape, dtype=bool)
    ring[:2], ring[-2:], ring[:, :2], ring[:, -2:] = True, True, True, True
    seeds[ring & (unlike < 0.5)] = cv2.GC_BGD
    return seeds


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Edge-preserving smoothing of ``src`` along the edges of ``guide`` (He et al. 2010).

    Parameters
    ----------
    guide, src : numpy.ndarray
        (h, w) float32, guide in 0..1.
    radius : int
        Box radius in pixels.
    eps : float
        Regularisation: edges weaker than about ``sqrt(eps)`` in the guide are smoothed over.

    Returns
    -------
    numpy.ndarray
        (h, w) float32.
    """
    k = (2 * radius + 1, 2 * radius + 1)

    def box(a: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(a, cv2.CV_32F, k, borderType=cv2.BORDER_REFLECT)

    mean_i, mean_p = box(guide), box(src)
    var_i = box(guide * guide) - mean_i * mean_i
    cov_ip = box(guide * src) - mean_i * mean_p
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box(a) * guide + box(b)


def cut_object(work: np.ndarray, *, gap: int) -> ClutterCut | None:
    """Find the object nearest the centre of a photo with a busy background.

    Parameters
    ----------
    work : numpy.ndarray
        (h, w, 3) uint8 photo at work resolution.
    gap : int
        Work pixels within which a separate part still belongs to the object.

    Returns
    -------
    ClutterCut or None
        ``None`` when nothing in the photo differs from its border's colours.
    """
    h, w = work.shape[:2]
    scale = min(1.0, GRAB_SIDE / max(h, w))
    dsize = (max(8, round(w * scale)), max(8, round(h * scale)))
    small = cv2.resize(work, dsize, interpolation=cv2.INTER_AREA)
    # A shadow on the desk is a border colour, darker: it is not unlike the background.
    unlike = border_contrast(small) * (1.0 - shadow_likeness(small))  # (hs, ws) float
    centre = centre_prior(*small.shape[:2])
    # What the border reaches smoothly is background the histogram missed: it neither seeds
    # the object nor counts towards choosing it.
    reach = np.where(border_reach(small, unlike), REACHED_WEIGHT, 1.0)  # (hs, ws) float
    seeds = seed_mask(unlike * (0.3 + 0.7 * centre) * reach, unlike)
    if seeds is None:
        return None
    bgd, fgd = np.zeros((1, 65)), np.zeros((1, 65))
    cv2.setRNGSeed(12345)  # GrabCut seeds its colour models with k-means too
    cv2.grabCut(small, seeds, (0, 0, 0, 0), bgd, fgd, GRAB_ITERATIONS, cv2.GC_INIT_WITH_MASK)
    candidates = open_mask((seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD))
    # Of the candidates, the object is the central one that the border cannot reach smoothly.
    chosen = keep_main_object(candidates, gap=max(1, round(gap * scale)), weights=centre * reach)
    chosen = fill_small_holes(chosen)
    soft = _refine(work, chosen)
    hard = keep_main_object(soft >= 0.5, gap=gap, weights=centre_prior(h, w))
    return ClutterCut(small, candidates, chosen, centre, soft, fill_small_holes(hard))


def _refine(work: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """(h, w) float32 soft mask: the small cut, cut again at work resolution near its outline
    (:func:`recut`), its shaded faces added back (:mod:`.faces`) and snapped to the photo's
    edges."""
    h, w = work.shape[:2]
    up = cv2.resize(chosen.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR) >= 0.5
    fine = add_shaded_faces(work, recut(work, up))
    guide = cv2.cvtColor(work, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    soft = guided_filter(guide, fine.astype(np.float32), radius=2, eps=1e-3)
    return np.clip(soft, 0.0, 1.0).astype(np.float32)


def recut(work: np.ndarray, coarse: np.ndarray, band: float = RECUT_BAND) -> np.ndarray:
    """GrabCut again at full resolution, only in a band around a coarse object mask.

    Far outside the coarse mask is surely background; the mask itself and a band around it
    (``band`` times the object's longer side) are left for GrabCut to decide from colour models
    learnt on this photo at full resolution. This recovers what the coarse
    cut lost by working small (a rim a few pixels wide, the end of a bottle) without letting
    the search wander off into the clutter; a thin part the coarse cut lost entirely stays
    lost (it lies outside the band, or costs GrabCut more edge than it gains). The photo's
    outermost strip stays background unless the coarse mask already reached it, so the cut
    cannot leak along the frame.

    Parameters
    ----------
    work : numpy.ndarray
        (h, w, 3) uint8 photo.
    coarse : numpy.ndarray
        (h, w) bool object mask, e.g. a small cut upsampled.
    band : float
        Half-width of the undecided band as a share of the object's longer side.

    Returns
    -------
    numpy.ndarray
        (h, w) bool; ``coarse`` itself when it is empty, leaves no background, or when the cut
        keeps less than ``RECUT_KEEP`` of it.
    """
    h, w = coarse.shape
    ys, xs = np.nonzero(coarse)  # (n,) int each
    if ys.size == 0:
        return coarse
    reach = max(2, round(band * max(np.ptp(ys), np.ptp(xs))))
    y0, y1 = max(0, ys.min() - 2 * reach), min(h, ys.max() + 1 + 2 * reach)
    x0, x1 = max(0, xs.min() - 2 * reach), min(w, xs.max() + 1 + 2 * reach)
    inside = coarse[y0:y1, x0:x1].astype(np.uint8)  # (hc, wc) 0/1
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))
    labels = np.full(inside.shape, cv2.GC_BGD, dtype=np.uint8)
    labels[cv2.dilate(inside, disk) > 0] = cv2.GC_PR_BGD
    # Inside is only probable object: a handle's opening, which the small cut closed, can
    # open again (texture composites' mugs 0.91-0.92 -> 0.96-0.99 mask IoU).
    labels[inside > 0] = cv2.GC_PR_FGD
    frame = np.zeros((h, w), dtype=bool)
    s = max(2, round(0.01 * max(h, w)))
    frame[:s], frame[-s:], frame[:, :s], frame[:, -s:] = True, True, True, True
    labels[frame[y0:y1, x0:x1] & (inside == 0)] = cv2.GC_BGD
    if not np.isin(labels, (cv2.GC_BGD, cv2.GC_PR_BGD)).any():
        return coarse  # the object fills the photo: no background to learn from
    out = np.zeros((h, w), dtype=bool)
    out[y0:y1, x0:x1] = _grabcut_labels(np.ascontiguousarray(work[y0:y1, x0:x1]), labels)
    # A closer look refines the outline; it does not overturn the object. When it keeps less
    # than RECUT_KEEP of it, its colour models failed (an object much like its background).
    return out if out.sum() >= RECUT_KEEP * ys.size else coarse


def _grabcut_labels(rgb: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(h, w) bool object after GrabCut from ``cv2.GC_*`` labels, at most ``RECUT_SIDE`` px."""
    h, w = labels.shape
    scale = min(1.0, RECUT_SIDE / max(h, w))
    if scale < 1.0:
        dsize = (max(8, round(w * scale)), max(8, round(h * scale)))
        rgb = cv2.resize(rgb, dsize, interpolation=cv2.INTER_AREA)
        labels = cv2.resize(labels, dsize, interpolation=cv2.INTER_NEAREST)
    bgd, fgd = np.zeros((1, 65)), np.zeros((1, 65))
    cv2.setRNGSeed(12345)
    cv2.grabCut(rgb, labels, (0, 0, 0, 0), bgd, fgd, RECUT_ITERATIONS, cv2.GC_INIT_WITH_MASK)
    found = ((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)).astype(np.float32)
    if scale < 1.0:
        found = cv2.resize(found, (w, h), interpolation=cv2.INTER_LINEAR)
    return found >= 0.5
