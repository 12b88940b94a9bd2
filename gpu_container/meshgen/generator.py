"""The Generator: one segmented photo in, one exported 3-D asset out.

Shaped like TripoSR's ``TSR`` class: build it once with :meth:`Generator.from_pretrained`
(models load once), then call :meth:`Generator.generate` per photo. Two backends: TripoSR
(:mod:`.models`, published weights) and the weight-free shape priors (:mod:`.shape`).
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
from trimesh.visual import ColorVisuals

from meshdrop_contract import (
    MAX_IMAGE_PIXELS,
    MIN_IMAGE_SIDE,
    AssetFormat,
    Backend,
    JobOptions,
    PresetSpec,
    Provenance,
    Stage,
)
from meshdrop_contract.provenance import ENV_MODEL_ID, ENV_MODEL_REVISION, ENV_MODEL_SHA256

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
from .models.published import MESH_THRESHOLD
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
    from .device import Placement
    from .models import TripoSR

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
    provenance: Provenance = field(default_factory=lambda: Provenance(Backend.PRIORS.value))


@dataclass
class Reconstruction:
    """Mesh in metres plus the numbers measured while making it (before export)."""

    mesh: trimesh.Trimesh
    metrics: dict[str, Any]
    preview: trimesh.Trimesh  # a few thousand faces of the same shape, for the thumbnail


@dataclass(frozen=True)
class LearnedModel:
    """TripoSR loaded once, where it runs, and what it is (for provenance)."""

    model: TripoSR
    placement: Placement
    model_id: str | None
    revision: str | None
    sha256: str

    def provenance(self) -> Provenance:
        return Provenance(
            Backend.TRIPOSR.value, self.model_id, self.revision, self.sha256, self.placement.kind
        )


class Generator:
    """Single-photo 3-D reconstruction with TripoSR or weight-free shape priors."""

    @dataclass(frozen=True)
    class Config:
        # Deployment default; a job's ``backend`` option other than auto overrides it.
        # auto: TripoSR when weights and a CUDA device are present, else the priors.
        backend: str = Backend.AUTO.value
        min_iou: float = 0.75  # quality gate: front-view IoU of mesh vs the photo's mask
        device: str = "auto"  # torch device for TripoSR: auto (CUDA if present) | cpu | cuda
        precision: str = "fp32"  # fp32 | fp16 | bf16 (half precision on CUDA only)
        margin: float = 0.1  # border around the object in the segmented square
        size_m: float = TARGET_SIZE_M  # longest side of the asset in metres
        thumbnail: bool = True
        thumbnail_size: int = 256
        max_pixels: int = MAX_IMAGE_PIXELS
        min_side: int = MIN_IMAGE_SIDE
        # Use this prior (revolution|box|inflation) whatever the outline says: for ablations.
        force_prior: str | None = None
        mesh_threshold: float = MESH_THRESHOLD  # TripoSR's iso-level on activated density

        def __post_init__(self) -> None:
            if self.backend not in {b.value for b in Backend}:
                allowed = "|".join(b.value for b in Backend)
                raise ValueError(f"backend must be {allowed}, not {self.backend!r}")
            if self.force_prior is not None:
                PriorKind(self.force_prior)
            if not 0.0 <= self.min_iou <= 1.0:
                raise ValueError("min_iou must lie in 0..1")

    def __init__(
        self,
        config: Generator.Config | None = None,
        *,
        weights: str | os.PathLike[str] | None = None,
        learned: LearnedModel | None = None,
        background_model: str | os.PathLike[str] | None = None,
    ) -> None:
        self.config = config or Generator.Config()
        self._weights = Path(weights) if weights is not None else None
        if self.config.backend == Backend.TRIPOSR and learned is None and self._weights is None:
            raise ValueError("backend 'triposr' needs TripoSR weights (from_pretrained(path))")
        self._learned = learned
        self._background_model = background_model
        self._remover: Any = None

    @property
    def backend(self) -> str:
        """The backend a job with ``backend=auto`` gets."""
        return self.backend_for(Backend.AUTO).value

    @property
    def model(self) -> TripoSR | None:
        """TripoSR if it has been loaded."""
        return self._learned.model if self._learned is not None else None

    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike[str] | None = None, *, config: Generator.Config | None = None
    ) -> Generator:
        """Load models once from a local directory.

        Parameters
        ----------
        path
            Directory with TripoSR's published files (``config.yaml``, ``model.ckpt`` and the
            ViT config folder if it names one) and/or a rembg ``*.onnx`` model. ``None``: the
            weight-free priors backend only.
        config
            Backend, quality gate and device settings.
        """
        config = config or cls.Config()
        weights: Path | None = None
        onnx: Path | None = None
        if path is not None:
            root = Path(path)
            if not root.is_dir():
                raise FileNotFoundError(f"model directory {root} does not exist")
            from .models import has_weights

            weights = root if has_weights(root) and config.backend != Backend.PRIORS else None
            onnx = next(iter(sorted(root.glob("*.onnx"))), None)
        generator = cls(config, weights=weights, background_model=onnx)
        if generator.backend == Backend.TRIPOSR:
            generator.learned()  # load now: the first job should not pay for it
        generator._remover = generator._load_remover()
        return generator

    def backend_for(self, requested: Backend) -> Backend:
        """The backend a job asking for ``requested`` runs.

        Raises
        ------
        BadInputError
            TripoSR asked for where no weights are deployed (another option can succeed).
        """
        choice = Backend(self.config.backend) if requested is Backend.AUTO else requested
        has_model = self._learned is not None or self._weights is not None
        if choice is Backend.AUTO:
            if not has_model:
                return Backend.PRIORS  # decided without importing torch
            from .device import select_device

            on_cuda = select_device(self.config.device).kind == "cuda"
            return Backend.TRIPOSR if on_cuda else Backend.PRIORS
        if choice is Backend.TRIPOSR and not has_model:
            raise BadInputError("backend=triposr asked for, but no TripoSR weights are deployed")
        return choice

    def learned(self) -> LearnedModel:
        """TripoSR, loaded on first use and kept for the life of the process."""
        if self._learned is None:
            if self._weights is None:
                raise BadInputError("no TripoSR weights are deployed")
            self._learned = load_learned(self._weights, self.config)
        return self._learned

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
        size = spec.image_size
        if self.backend_for(options.backend) is Backend.TRIPOSR:
            # The network sees cond_image_size pixels (512): segment at least that finely.
            size = max(size, self.learned().model.config.cond_image_size)
        timings: dict[str, float] = {}
        _notify(on_stage, Stage.BACKGROUND)
        start = time.perf_counter()
        loaded = load_image(image, max_pixels=self.config.max_pixels, min_side=self.config.min_side)
        if self._remover is None:
            self._remover = self._load_remover()
        segmentation = self._remover.segment(loaded, size=size, margin=self.config.margin)
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
        backend = self.backend_for(options.backend)
        _notify(on_stage, Stage.RECONSTRUCT)
        start = time.perf_counter()
        recon = self.reconstruct(
            segmentation, options.preset_spec, texture=options.texture, backend=backend
        )
        timings["reconstruct"] = time.perf_counter() - start
        metrics = recon.metrics
        metrics["background_method"] = getattr(segmentation, "method", "unknown")
        metrics["segmentation_confidence"] = round(
            float(getattr(segmentation, "confidence", 1.0)), 3
        )
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
            provenance=self.provenance(backend),
        )

    def provenance(self, backend: Backend) -> Provenance:
        """What a job run on ``backend`` was made with."""
        if backend is Backend.TRIPOSR:
            return self.learned().provenance()
        return Provenance(Backend.PRIORS.value, device="cpu")

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
        self,
        segmentation: SegmentationLike,
        spec: PresetSpec,
        *,
        texture: bool = True,
        backend: Backend | None = None,
    ) -> Reconstruction:
        """Segmented photo to a closed, decimated, coloured mesh in metres (Y-up, on y = 0)."""
        rgb = np.asarray(segmentation.rgb)
        mask = np.asarray(segmentation.mask, dtype=np.float32)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or mask.shape != rgb.shape[:2]:
            raise BadInputError(
                f"segmentation must be (s, s, 3) rgb and (s, s) mask, got {rgb.shape}, {mask.shape}"
            )
        analysis = analyse_outline(mask, rgb)  # raises BadInputError when there is no object
        if (backend or self.backend_for(Backend.AUTO)) is Backend.TRIPOSR:
            return self._reconstruct_triposr(rgb, mask, spec, texture=texture)
        return self._reconstruct_priors(rgb, mask, analysis, spec, texture=texture)

    def _reconstruct_priors(
        self,
        rgb: np.ndarray,
        mask: np.ndarray,
        analysis: OutlineAnalysis,
        spec: PresetSpec,
        *,
        texture: bool,
    ) -> Reconstruction:
        """The weight-free path: a shape prior from the outline, built as the camera saw it."""
        g = spec.grid
        mask_up = rotate(mask, analysis.tilt_deg)  # (s, s) float, roll undone
        rgb_up = rotate(rgb, analysis.tilt_deg)
        mask_g = cv2.resize(mask_up, (g, g), interpolation=cv2.INTER_AREA)
        kind = PriorKind(self.config.force_prior or analysis.kind)
        volume = _prior_volume(kind, analysis, mask_g, g, spec.max_faces)
        mesh = mesh_within_budget(volume, spec.max_faces)
        to_final = np.eye(4)  # (4, 4) float: field coordinates -> delivered asset
        if volume.placement is not None:
            mesh.apply_transform(volume.placement)
            to_final = volume.placement @ to_final
        # The whole foreground, not only the part reconstructed: a second object the mesh
        # left out must count against it.
        iou = front_view_iou(mesh, mask_g >= 0.5)
        colours = None
        if texture:
            colours = _prior_colours(mesh, volume, rgb_up, mask_up, g)
            mesh.visual = ColorVisuals(mesh, vertex_colors=colours)
        if volume.to_object is not None:
            # Built as the camera saw it (texture and IoU above), delivered upright.
            upright = np.eye(4)
            upright[:3, :3] = volume.to_object
            mesh.apply_transform(upright)
            to_final = upright @ to_final
        return self._delivered(
            mesh, volume, to_final, colours,
            iou=round(iou, 4),
            shape_prior=volume.prior,
            backend=Backend.PRIORS.value,
            grid=g,
            tilt_deg=round(analysis.tilt_deg, 2),
            symmetry_iou=round(analysis.symmetry_iou, 4),
            prior_details={k: round(v, 4) for k, v in volume.details.items()},
        )  # fmt: skip

    def _delivered(
        self,
        mesh: trimesh.Trimesh,
        volume: Volume,
        to_final: np.ndarray,
        colours: np.ndarray | None,
        **metrics: object,
    ) -> Reconstruction:
        """Scale ``mesh`` (already in the asset frame) to metres, add its preview and metrics.

        ``to_final`` is the ``(4, 4)`` float transform from field coordinates to the asset so
        far; ``colours`` the ``(n, 4)`` uint8 vertex colours, if any.
        """
        to_final = to_metres(mesh, self.config.size_m) @ to_final
        # Decimate the delivered mesh: quadric decimation of the same surface still turned as
        # the camera saw it (a box at yaw 30) stalls far above the target and costs seconds.
        preview = _preview_mesh(mesh, volume, to_final)
        if colours is not None:
            _, nearest = mesh.kdtree.query(preview.vertices)
            preview.visual = ColorVisuals(preview, vertex_colors=colours[nearest])
        measured = mesh_metrics(mesh)
        measured.update(metrics)
        return Reconstruction(mesh=mesh, metrics=measured, preview=preview)

    def _reconstruct_triposr(
        self, rgb: np.ndarray, mask: np.ndarray, spec: PresetSpec, *, texture: bool
    ) -> Reconstruction:
        """TripoSR: the reference's input, density on the preset's grid, colour head."""
        import torch

        from .models import meshing

        learned = self.learned()
        model = learned.model
        prepared = meshing.reference_input(rgb, mask)
        with torch.no_grad():
            planes = model.encode(model.preprocess(prepared.image))[0]  # (3, C, H, W)
            volume = meshing.density_volume(model, planes, spec.grid, self.config.mesh_threshold)
        mesh = mesh_within_budget(volume, spec.max_faces)  # TripoSR's world frame
        iou = meshing.front_view_iou(mesh, prepared.mask)
        colours = meshing.vertex_colours(model, planes, mesh.vertices) if texture else None
        if colours is not None:
            mesh.visual = ColorVisuals(mesh, vertex_colors=colours)
        to_final = np.eye(4)  # (4, 4) float: world -> delivered asset
        to_final[:3, :3] = meshing.WORLD_TO_ASSET
        mesh.apply_transform(to_final)
        return self._delivered(
            mesh, volume, to_final, colours,
            iou=round(iou, 4),
            shape_prior=Backend.TRIPOSR.value,
            backend=Backend.TRIPOSR.value,
            grid=spec.grid,
            device=learned.placement.kind,
        )  # fmt: skip


def load_learned(root: Path, config: Generator.Config) -> LearnedModel:
    """TripoSR from ``root`` on the configured device, with what provenance needs.

    Raises
    ------
    ValueError
        ``MESHDROP_MODEL_SHA256`` is set and the checkpoint's digest differs.
    """
    from .device import select_device
    from .models import TripoSR
    from .models.triposr import WEIGHTS_NAME, file_sha256

    placement = select_device(config.device, config.precision)
    sha256 = file_sha256(root / WEIGHTS_NAME)
    expected = os.environ.get(ENV_MODEL_SHA256, "").strip().lower()
    if expected and expected != sha256:
        raise ValueError(
            f"{root / WEIGHTS_NAME} has SHA-256 {sha256[:12]}…, "
            f"{ENV_MODEL_SHA256} says {expected[:12]}…"
        )
    model = TripoSR.from_pretrained(root, device=placement.device).to(placement.dtype)
    return LearnedModel(
        model=model,
        placement=placement,
        model_id=os.environ.get(ENV_MODEL_ID) or None,
        revision=os.environ.get(ENV_MODEL_REVISION) or None,
        sha256=sha256,
    )


def _prior_volume(
    kind: PriorKind, analysis: OutlineAnalysis, mask_g: np.ndarray, g: int, max_faces: int
) -> Volume:
    axis = analysis.axis_col * g - 0.5
    if kind is PriorKind.REVOLUTION:
        return revolution_field(mask_g, axis, with_handle=analysis.handle_fraction > 0)
    if kind is PriorKind.BOX:
        return box_field(mask_g, max_faces=max_faces)
    return inflation_field(mask_g)


def _prior_colours(
    mesh: trimesh.Trimesh, volume: Volume, rgb_up: np.ndarray, mask_up: np.ndarray, g: int
) -> np.ndarray:
    """``(n, 4)`` uint8 vertex colours from the upright photo, following the prior's shape."""
    return vertex_colours(
        mesh.vertices,
        mesh.vertex_normals,
        rgb_up,
        clean_mask(mask_up),
        g,
        turn_axis=volume.turn_axis,
        box=volume.box,
        caps=volume.prior == PriorKind.REVOLUTION.value,
    )


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
