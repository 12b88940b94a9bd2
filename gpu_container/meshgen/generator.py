"""The Generator: one segmented photo in, one exported 3-D asset out.

Shaped like TripoSR's ``TSR`` class: build it once with :meth:`Generator.from_pretrained`
(models load once), then call :meth:`Generator.generate` per photo.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import cv2
import numpy as np
import trimesh

from meshdrop_contract import (
    MAX_IMAGE_PIXELS,
    MIN_IMAGE_SIDE,
    AssetFormat,
    JobOptions,
    PresetSpec,
    Stage,
)

from .errors import BadInputError, GenerationError, QualityError
from .export import export_mesh, plain_colour
from .mesh import (
    TARGET_SIZE_M,
    clean_mesh,
    decimate,
    downsampled,
    mesh_from_volume,
    mesh_within_budget,
    to_metres,
)
from .quality import front_view_iou, mesh_metrics
from .shape import (
    OutlineAnalysis,
    PriorKind,
    Volume,
    analyse_outline,
    box_field,
    clean_mask,
    inflation_field,
    revolution_field,
    rotate,
)
from .texture import vertex_colours
from .thumbnail import PREVIEW_FACES, render_thumbnail

if TYPE_CHECKING:
    from .models.triplane import TriplaneModel

#: Called at the start of each stage with the fraction (0..1) of the work done so far.
StageCallback = Callable[[Stage, float], None]

_STAGE_PROGRESS = {Stage.BACKGROUND: 0.1, Stage.RECONSTRUCT: 0.3, Stage.EXPORT: 0.85}


class SegmentationLike(Protocol):
    """What the generator needs from ``background.Segmentation``."""

    rgb: np.ndarray  # (s, s, 3) uint8
    mask: np.ndarray  # (s, s) float32 0..1
    method: str


@dataclass(frozen=True)
class GenerationResult:
    """One generated asset and what is known about it."""

    data: bytes  # the exported file in ``format``
    format: AssetFormat
    thumbnail_png: bytes | None
    faces: int
    vertices: int
    timings: dict[str, float]  # seconds per stage: background, reconstruct, export
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class Reconstruction:
    """Mesh in metres plus the numbers measured while making it (before export)."""

    mesh: trimesh.Trimesh
    metrics: dict[str, Any]
    preview: trimesh.Trimesh  # a few thousand faces of the same shape, for the thumbnail


class Generator:
    """Single-photo 3-D reconstruction with weight-free shape priors or a learned model."""

    @dataclass(frozen=True)
    class Config:
        backend: str = "auto"  # "auto" (triplane when weights are present) | "priors" | "triplane"
        min_iou: float = 0.75  # quality gate: front-view IoU of mesh vs the photo's mask
        device: str = "cpu"  # torch device for the learned backend
        margin: float = 0.1  # border around the object in the segmented square
        size_m: float = TARGET_SIZE_M  # longest side of the asset in metres
        thumbnail: bool = True
        thumbnail_size: int = 256
        max_pixels: int = MAX_IMAGE_PIXELS
        min_side: int = MIN_IMAGE_SIDE
        # Use this prior (revolution|box|inflation) whatever the outline says: for ablations.
        force_prior: str | None = None

        def __post_init__(self) -> None:
            if self.backend not in {"auto", "priors", "triplane"}:
                raise ValueError(f"backend must be auto|priors|triplane, not {self.backend!r}")
            if self.force_prior is not None:
                PriorKind(self.force_prior)  # ValueError names the bad value
            if not 0.0 <= self.min_iou <= 1.0:
                raise ValueError("min_iou must lie in 0..1")

    def __init__(
        self,
        config: Generator.Config | None = None,
        *,
        model: TriplaneModel | None = None,
        background_model: str | os.PathLike[str] | None = None,
    ) -> None:
        self.config = config or Generator.Config()
        if self.config.backend == "triplane" and model is None:
            raise ValueError("backend 'triplane' needs learned weights (from_pretrained(path))")
        self.model = model if self.config.backend != "priors" else None
        self._background_model = background_model
        self._remover: Any = None

    @property
    def backend(self) -> str:
        return "triplane" if self.model is not None else "priors"

    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike[str] | None = None, *, config: Generator.Config | None = None
    ) -> Generator:
        """Load models once from a local directory.

        Parameters
        ----------
        path
            Directory with learned weights (``config.json`` + ``model.safetensors``/``model.pt``)
            and/or a rembg ``*.onnx`` model. ``None``: the weight-free priors backend.
        config
            Backend, quality gate and device settings.
        """
        config = config or cls.Config()
        model = None
        onnx: Path | None = None
        if path is not None:
            root = Path(path)
            if not root.is_dir():
                raise FileNotFoundError(f"model directory {root} does not exist")
            from .models.triplane import TriplaneModel

            if config.backend != "priors" and TriplaneModel.has_weights(root):
                model = TriplaneModel.from_pretrained(root, device=config.device)
            onnx = next(iter(sorted(root.glob("*.onnx"))), None)
        generator = cls(config, model=model, background_model=onnx)
        generator._remover = generator._load_remover()
        return generator

    def _load_remover(self) -> Any:
        from .background import BackgroundRemover

        return BackgroundRemover.shared(model_path=self._background_model)

    # -- the job -------------------------------------------------------------------------
    def generate(
        self, image: bytes, options: JobOptions, *, on_stage: StageCallback | None = None
    ) -> GenerationResult:
        """Photo bytes to an exported asset.

        Raises
        ------
        BadInputError
            Undecodable image or no object in it.
        QualityError
            The mesh failed the quality gate (``err.metrics`` has the numbers).
        """
        from .image import load_image

        spec = options.preset_spec
        timings: dict[str, float] = {}
        _notify(on_stage, Stage.BACKGROUND)
        start = time.perf_counter()
        loaded = load_image(image, max_pixels=self.config.max_pixels, min_side=self.config.min_side)
        if self._remover is None:
            self._remover = self._load_remover()
        segmentation = self._remover.segment(
            loaded, size=spec.image_size, margin=self.config.margin
        )
        timings["background"] = time.perf_counter() - start
        return self.generate_from_segmentation(
            segmentation, options, on_stage=on_stage, timings=timings
        )

    def generate_from_segmentation(
        self,
        segmentation: SegmentationLike,
        options: JobOptions,
        *,
        on_stage: StageCallback | None = None,
        timings: dict[str, float] | None = None,
    ) -> GenerationResult:
        """Reconstruct, gate and export an already segmented photo."""
        timings = dict(timings or {})
        _notify(on_stage, Stage.RECONSTRUCT)
        start = time.perf_counter()
        recon = self.reconstruct(segmentation, options.preset_spec, texture=options.texture)
        timings["reconstruct"] = time.perf_counter() - start
        metrics = recon.metrics
        metrics["background_method"] = getattr(segmentation, "method", "unknown")
        self._gate(metrics)

        _notify(on_stage, Stage.EXPORT)
        start = time.perf_counter()
        data = export_mesh(recon.mesh, options.format, texture=options.texture)
        thumb = None
        if self.config.thumbnail:
            thumb = render_thumbnail(
                recon.preview, size=self.config.thumbnail_size, colour=plain_colour()
            )
        timings["export"] = time.perf_counter() - start
        return GenerationResult(
            data=data,
            format=options.format,
            thumbnail_png=thumb,
            faces=metrics["faces"],
            vertices=metrics["vertices"],
            timings={k: round(v, 4) for k, v in timings.items()},
            metrics=metrics,
        )

    def _gate(self, metrics: dict[str, Any]) -> None:
        if not metrics["watertight"]:
            raise QualityError("quality gate: the mesh is not watertight", metrics)
        if metrics["iou"] < self.config.min_iou:
            raise QualityError(
                f"quality gate: front-view IoU {metrics['iou']:.3f} is below "
                f"min_iou {self.config.min_iou:.3f}",
                metrics,
            )

    # -- reconstruction ------------------------------------------------------------------
    def reconstruct(
        self, segmentation: SegmentationLike, spec: PresetSpec, *, texture: bool = True
    ) -> Reconstruction:
        """Segmented photo to a closed, decimated, coloured mesh in metres (Y-up, on y = 0)."""
        rgb = np.asarray(segmentation.rgb)
        mask = np.asarray(segmentation.mask, dtype=np.float32)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or mask.shape != rgb.shape[:2]:
            raise BadInputError(
                f"segmentation must be (s, s, 3) rgb and (s, s) mask, got {rgb.shape}, {mask.shape}"
            )
        g = spec.grid
        analysis = analyse_outline(mask, rgb)  # raises BadInputError when there is no object
        if self.model is not None:
            # The learned model saw photos as they are: no de-tilting, no prior.
            tilt = 0.0
            mask_up, rgb_up = mask, rgb
            volume = self._learned_volume(rgb, mask, g)
        else:
            tilt = analysis.tilt_deg
            mask_up = rotate(mask, tilt)
            rgb_up = rotate(rgb, tilt)
            mask_g = cv2.resize(mask_up, (g, g), interpolation=cv2.INTER_AREA)
            kind = PriorKind(self.config.force_prior or analysis.kind)
            volume = _prior_volume(kind, analysis, mask_g, g, spec.max_faces)
        # The whole foreground, not only the part reconstructed: a second object the mesh
        # left out must count against it.
        inside_g = cv2.resize(mask_up, (g, g), interpolation=cv2.INTER_AREA) >= 0.5
        mesh = mesh_within_budget(volume, spec.max_faces)
        to_final = np.eye(4)  # (4, 4) float: field coordinates -> delivered asset
        if volume.placement is not None:
            mesh.apply_transform(volume.placement)
            to_final = volume.placement @ to_final
        iou = front_view_iou(mesh, inside_g)
        colours = None
        if texture:
            colours = vertex_colours(
                mesh.vertices,
                mesh.vertex_normals,
                rgb_up,
                clean_mask(mask_up),
                g,
                turn_axis=volume.turn_axis,
                box=volume.box,
                caps=volume.prior == PriorKind.REVOLUTION.value,
            )
            mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=colours)
        if volume.to_object is not None:
            # Built as the camera saw it (texture and IoU above), delivered upright.
            upright = np.eye(4)
            upright[:3, :3] = volume.to_object
            mesh.apply_transform(upright)
            to_final = upright @ to_final
        to_final = to_metres(mesh, self.config.size_m) @ to_final
        # Decimate the delivered mesh: quadric decimation of the same surface still turned as
        # the camera saw it (a box at yaw 30) stalls far above the target and costs seconds.
        preview = _preview_mesh(mesh, volume, to_final)
        if colours is not None:
            _, nearest = mesh.kdtree.query(preview.vertices)
            preview.visual = trimesh.visual.ColorVisuals(preview, vertex_colors=colours[nearest])
        metrics = mesh_metrics(mesh)
        metrics.update(
            iou=round(iou, 4),
            shape_prior=volume.prior,
            backend=self.backend,
            grid=g,
            tilt_deg=round(tilt, 2),
            symmetry_iou=round(analysis.symmetry_iou, 4),
            prior_details={k: round(v, 4) for k, v in volume.details.items()},
        )
        return Reconstruction(mesh=mesh, metrics=metrics, preview=preview)

    def _learned_volume(self, rgb: np.ndarray, mask: np.ndarray, g: int) -> Volume:
        assert self.model is not None
        density = self.model.density_grid(rgb, mask, g)  # (g, g, g) [x, y, z]
        values = density - self.model.config.density_threshold
        origin = np.array([0.0, 0.0, -g / 2.0 + 0.5])
        return Volume(values.astype(np.float32), origin, g, "triplane", {})


def _prior_volume(
    kind: PriorKind, analysis: OutlineAnalysis, mask_g: np.ndarray, g: int, max_faces: int
) -> Volume:
    axis = analysis.axis_col * g - 0.5
    if kind is PriorKind.REVOLUTION:
        return revolution_field(mask_g, axis, with_handle=analysis.handle_fraction > 0)
    if kind is PriorKind.BOX:
        return box_field(mask_g, max_faces=max_faces)
    return inflation_field(mask_g)


def _preview_mesh(mesh: trimesh.Trimesh, volume: Volume, to_final: np.ndarray) -> trimesh.Trimesh:
    """A few thousand faces of the delivered ``mesh`` for the thumbnail.

    Quadric decimation of the finished mesh keeps its smooth surfaces and thin parts (a mug's
    handle); re-meshing a coarser field (the fallback, moved by ``to_final``, ``(4, 4)`` float)
    would put stair steps and lumps in the preview.
    """
    try:
        return decimate(mesh, PREVIEW_FACES)
    except GenerationError:
        # Marching cubes' face count grows with the square of the sampling rate.
        surface = float(mesh.area) / (volume.spacing * _scale_of(to_final)) ** 2
        stride = max(1, int(np.ceil(np.sqrt(2.0 * surface / PREVIEW_FACES))))
        coarse = clean_mesh(mesh_from_volume(downsampled(volume, stride)))
        coarse.apply_transform(to_final)
        return coarse


def _scale_of(matrix: np.ndarray) -> float:
    """Uniform scale of a similarity transform ``(4, 4)``."""
    return float(np.cbrt(abs(np.linalg.det(matrix[:3, :3]))))


def _notify(on_stage: StageCallback | None, stage: Stage) -> None:
    if on_stage is not None:
        on_stage(stage, _STAGE_PROGRESS[stage])
