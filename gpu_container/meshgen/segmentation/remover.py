"""Find the object in a photo and cut a square, centred crop of it with a soft mask.

The chain, first that applies wins:

1. ``alpha``: the file has a real alpha channel (a cut-out PNG) - it is the mask.
2. ``rembg``: a rembg ONNX model lies on local disk (``model_path``, ``$MESHDROP_REMBG_MODEL``
   or where rembg itself looks for ``<model_name>.onnx`` under ``$U2NET_HOME``). Nothing is
   ever downloaded at run time: no file, no rembg.
3. ``classical``: the border is a plain or smoothly graded backdrop (its fit leaves little
   noise): the backdrop model of :mod:`.backdrop`, with contact shadows.
4. ``grabcut``: anything else (a desk, a floor, a shelf): :mod:`.clutter`.

Paths 3 and 4 are judged by :mod:`.confidence`; a photo whose object cannot be found with
enough confidence is refused with what was seen and what to do.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from meshdrop_contract.jobs import ENV_REMBG_MODEL

from ..errors import BadInputError
from ..image import LoadedImage
from . import rembg_model
from .backdrop import Backdrop, classical_mask, fit_backdrop, to_lab
from .cleanup import close_mask, dilate, fill_holes, keep_main_object, open_mask
from .clutter import cut_object
from .confidence import NO_COLOUR, Verdict, assess, colourless
from .result import Segmentation, crop_square

log = logging.getLogger(__name__)

# Work on a downscaled copy: masks need no more than ~1.5x the output resolution, and the
# classical paths then cost the same for a 48 Mpx photo as for a 0.5 Mpx one.
_MIN_WORK_SIDE = 512
_WORK_OVERSAMPLE = 1.5
#: Border noise (robust std of delta-E to the fitted backdrop) up to which the border is a
#: plain or graded backdrop. JPEG and sensor noise on a paper sweep stay near 1; wood grain,
#: carpet or a room are 5 and more.
PLAIN_NOISE = 3.0

_SHARED: dict[tuple[str | None, str], BackgroundRemover] = {}


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
        with rembg_model.SESSIONS_LOCK:
            remover = _SHARED.get(key)
            if remover is None:
                remover = _SHARED[key] = cls(**kwargs)
            return remover

    # -- rembg -------------------------------------------------------------------------
    def model_file(self) -> Path | None:
        """The ONNX file rembg would use, or ``None`` (then the classical paths run)."""
        explicit = self._model_path or rembg_model.env_path(os.environ.get(ENV_REMBG_MODEL))
        if explicit is not None:
            if explicit.is_file():
                return explicit.resolve()
            log.warning("rembg model %s does not exist; using classical segmentation", explicit)
            return None
        for candidate in rembg_model.rembg_candidates(self._model_name):
            if candidate.is_file():
                return candidate.resolve()
        return None

    def rembg_session(self) -> Any | None:
        """The process' rembg session for this model, created on first call; ``None`` if none."""
        if not self._resolved:
            model = self.model_file()
            if model is not None:
                custom = self._model_path or os.environ.get(ENV_REMBG_MODEL)
                self._session_key = ("custom" if custom else "named", str(model))
            self._resolved = True
        if self._session_key is None:
            return None
        with rembg_model.SESSIONS_LOCK:
            if self._session_key not in rembg_model.SESSIONS:
                rembg_model.SESSIONS[self._session_key] = rembg_model.new_session(
                    *self._session_key, self._model_name
                )
            return rembg_model.SESSIONS[self._session_key]

    # -- segmentation ------------------------------------------------------------------
    def segment(self, image: LoadedImage, *, size: int, margin: float = 0.1) -> Segmentation:
        """Cut the object out of ``image``: a ``size`` x ``size`` crop with its mask.

        Raises
        ------
        BadInputError
            No object could be told from the background with enough confidence; the
            message says what was seen and what to do.
        ValueError
            ``size`` below 8 or ``margin`` outside [0, 1).
        """
        if int(size) < 8:
            raise ValueError(f"size must be at least 8 pixels, got {size}")
        if not 0.0 <= margin < 1.0:
            raise ValueError(f"margin must be in [0, 1), got {margin}")
        job = _Job(image.rgb, size, margin)
        if image.alpha is not None:
            return job.from_alpha(image.alpha)
        lab = to_lab(job.work)
        backdrop = fit_backdrop(lab)
        delta_e = np.linalg.norm(lab - backdrop.lab, axis=2)  # (h, w) float
        session = self.rembg_session()
        if session is not None:
            found = job.from_rembg(session, delta_e, backdrop.noise)
            if found is not None:
                return found
            log.info("rembg found no object; trying classical segmentation")
        if backdrop.noise <= PLAIN_NOISE:
            return job.from_backdrop(lab, backdrop, delta_e)
        return job.from_clutter()


class _Job:
    """One photo being segmented: its work-resolution copy and the crop settings."""

    def __init__(self, rgb: np.ndarray, size: int, margin: float) -> None:
        self.rgb = rgb  # (h, w, 3) uint8 as loaded
        self.size, self.margin = int(size), margin
        h, w = rgb.shape[:2]
        work_side = max(_MIN_WORK_SIDE, int(_WORK_OVERSAMPLE * size))
        scale = min(1.0, work_side / max(h, w))
        self.work = rgb  # (hw, ww, 3) uint8
        if scale < 1.0:
            dsize = (max(1, round(w * scale)), max(1, round(h * scale)))
            self.work = cv2.resize(rgb, dsize, interpolation=cv2.INTER_AREA)
            scale = self.work.shape[1] / w  # the scale actually used along x
        self.scale = scale
        self.gap = max(2, round(0.01 * float(np.hypot(*self.work.shape[:2]))))

    def finish(
        self, soft: np.ndarray, hard: np.ndarray, soft_scale: float, method: str, verdict: Verdict
    ) -> Segmentation:
        """Crop around ``hard`` (work pixels); ``soft`` is at ``soft_scale`` x the image."""
        rgb, mask, box = crop_square(
            self.rgb, soft, hard, 1.0 / self.scale, soft_scale, self.size, self.margin
        )
        return Segmentation(rgb, mask, method, box, round(verdict.confidence, 3), verdict.notes)

    def from_alpha(self, alpha: np.ndarray) -> Segmentation:
        h, w = self.rgb.shape[:2]
        soft_full = alpha.astype(np.float32) / 255.0  # (h, w)
        soft_work = cv2.resize(soft_full, self.work.shape[1::-1], interpolation=cv2.INTER_AREA)
        hard = keep_main_object(soft_work >= 0.5, gap=self.gap)
        keep = cv2.resize(dilate(hard, 2).astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
        return self.finish(soft_full * keep, hard, 1.0, "alpha", Verdict(1.0, ()))

    def from_rembg(self, session: Any, delta_e: np.ndarray, noise: float) -> Segmentation | None:
        soft = rembg_model.rembg_mask(session, self.work)
        hard = keep_main_object(soft >= 0.5, gap=self.gap)
        if not hard.any():
            return None
        full = fill_holes(hard, delta_e, noise)
        soft = np.where(full & ~hard, 1.0, soft * dilate(hard, 1)).astype(np.float32)
        return self.finish(soft, full, self.scale, "rembg", Verdict(1.0, ()))

    def from_backdrop(
        self, lab: np.ndarray, backdrop: Backdrop, delta_e: np.ndarray
    ) -> Segmentation:
        hard = classical_mask(self.work, lab, backdrop, delta_e)
        hard = keep_main_object(open_mask(hard), gap=self.gap)
        hard = fill_holes(close_mask(hard), delta_e, backdrop.noise)
        if not hard.any():
            crop_square(self.rgb, hard, hard, 1.0, 1.0, self.size, self.margin)  # raises
        verdict = assess(hard)
        if verdict.refused:
            raise BadInputError(verdict.message())
        # A sub-pixel blur gives the anti-aliased edge a real photo has; the output resize
        # then interpolates it instead of stair-stepping.
        soft = cv2.GaussianBlur(hard.astype(np.float32), (0, 0), 0.7)
        return self.finish(soft, hard, self.scale, "classical", verdict)

    def from_clutter(self) -> Segmentation:
        if colourless(self.work):
            raise BadInputError(Verdict(0.0, (NO_COLOUR,)).message())
        cut = cut_object(self.work, gap=self.gap)
        if cut is None or not cut.hard.any():
            raise BadInputError(Verdict(0.0, ("nothing stands out from the background",)).message())
        verdict = assess(cut.chosen_small, cut.candidates, cut.small_rgb)
        if verdict.refused:
            raise BadInputError(verdict.message())
        return self.finish(cut.soft * dilate(cut.hard, 1), cut.hard, self.scale, "grabcut", verdict)
