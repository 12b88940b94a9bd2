"""TripoSR (Tochilkin et al., 2024, MIT): one photo -> triplane -> density and colour anywhere.

Our own implementation of the network whose weights Stability AI and Tripo AI published as
``stabilityai/TripoSR`` (``config.yaml`` + ``model.ckpt``). Module names match the published
checkpoint, so it loads with ``load_state_dict(strict=True)``:

* ``image_tokenizer.model``: DINO ViT-B/16 (:mod:`.vit`); ImageNet normalisation inside.
* ``tokenizer.embeddings``: learned triplane tokens ``(3, C, P, P)``.
* ``backbone``: 1-D transformer with cross-attention to the image tokens (:mod:`.transformer`).
* ``post_processor.upsample``: transposed convolution, planes ``P`` -> ``2P``.
* ``decoder.layers``: NeRF-style MLP, the three plane features in, raw density + colour out.

The "renderer" of the reference has no weights; :meth:`TripoSR.query` is its triplane query.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from .config import (
    DecoderConfig,
    TriplaneTokenizerConfig,
    TripoSRConfig,
    UpsamplerConfig,
)
from .transformer import Transformer1D
from .vit import ViTConfig, ViTModel, resolve_vit_config

CONFIG_NAME = "config.yaml"
WEIGHTS_NAME = "model.ckpt"
#: ImageNet statistics the DINO encoder was trained with.
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)
#: Points decoded per batch: bounds the (points x 3 * channels) feature memory.
DEFAULT_CHUNK = 65_536


class WeightsMismatchError(ValueError):
    """The checkpoint's tensors are not the ones the configured network has."""


class DINOSingleImageTokenizer(nn.Module):
    """Image in ``[0, 1]`` -> ViT tokens (class token first)."""

    image_mean: torch.Tensor
    image_std: torch.Tensor

    def __init__(self, vit: ViTConfig) -> None:
        super().__init__()
        self.model = ViTModel(vit)
        self._register_statistics()

    def _register_statistics(self) -> None:
        # Not in the checkpoint (persistent=False), as in the reference.
        self.register_buffer(
            "image_mean", torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer(
            "image_std", torch.tensor(IMAGE_STD).view(1, 3, 1, 1), persistent=False
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(b, 3, h, w)`` -> ``(b, 1 + patches, d)``."""
        return self.model((images - self.image_mean) / self.image_std)


class Triplane1DTokenizer(nn.Module):
    def __init__(self, config: TriplaneTokenizerConfig) -> None:
        super().__init__()
        c, p = config.num_channels, config.plane_size
        self.plane_size = p
        self.embeddings = nn.Parameter(torch.randn(3, c, p, p) / c**0.5)

    def forward(self, batch: int) -> torch.Tensor:
        """Tokens ``(b, C, 3 * P * P)``: plane-major, then rows, then columns."""
        c = self.embeddings.shape[1]
        return self.embeddings.transpose(0, 1).reshape(1, c, -1).expand(batch, -1, -1)

    def detokenize(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(b, C, 3 * P * P)`` -> planes ``(b, 3, C, P, P)``."""
        b, c, _ = tokens.shape
        p = self.plane_size
        return tokens.view(b, c, 3, p, p).permute(0, 2, 1, 3, 4)


class TriplaneUpsampleNetwork(nn.Module):
    def __init__(self, config: UpsamplerConfig) -> None:
        super().__init__()
        self.upsample = nn.ConvTranspose2d(
            config.in_channels, config.out_channels, kernel_size=2, stride=2
        )

    def forward(self, planes: torch.Tensor) -> torch.Tensor:
        """``(b, 3, Ci, P, P)`` -> ``(b, 3, Co, 2P, 2P)``."""
        b = planes.shape[0]
        up = self.upsample(planes.flatten(0, 1))
        return up.view(b, 3, *up.shape[1:])


class NeRFMLP(nn.Module):
    """Plane features -> 4 raw outputs: density, then three colour features."""

    def __init__(self, config: DecoderConfig) -> None:
        super().__init__()
        act: type[nn.Module] = nn.SiLU if config.activation == "silu" else nn.ReLU
        widths = [config.in_channels] + [config.n_neurons] * config.n_hidden_layers
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(widths):
            layers += [nn.Linear(a, b, bias=config.bias), act()]
        layers.append(nn.Linear(widths[-1], 4, bias=config.bias))
        self.layers = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features)


def _activation(name: str, x: torch.Tensor) -> torch.Tensor:
    if name in {"exp", "trunc_exp"}:
        return torch.exp(x)
    if name == "sigmoid":
        return torch.sigmoid(x)
    if name == "relu":
        return F.relu(x)
    if name == "softplus":
        return F.softplus(x)
    if name == "tanh":
        return torch.tanh(x)
    return x  # "none"


class TripoSR(nn.Module):
    """The TripoSR network: :meth:`encode` a photo once, :meth:`query` points many times."""

    Config = TripoSRConfig

    def __init__(self, config: TripoSRConfig, vit: ViTConfig) -> None:
        super().__init__()
        self.config = config
        self.vit_config = vit
        self.image_tokenizer = DINOSingleImageTokenizer(vit)
        self.tokenizer = Triplane1DTokenizer(config.tokenizer)
        self.backbone = Transformer1D(config.backbone)
        self.post_processor = TriplaneUpsampleNetwork(config.post_processor)
        self.decoder = NeRFMLP(config.decoder)
        self.chunk_size = DEFAULT_CHUNK

    # -- loading -------------------------------------------------------------------------
    @classmethod
    def build(cls, root: str | os.PathLike[str], *, device: str = "meta") -> TripoSR:
        """The network ``root/config.yaml`` describes, with uninitialised (meta) weights."""
        root = Path(root)
        config = TripoSRConfig.from_yaml(_required(root / CONFIG_NAME))
        vit = resolve_vit_config(config.image_tokenizer.pretrained_model_name_or_path, root)
        with torch.device(device):
            return cls(config, vit)

    @classmethod
    def from_pretrained(
        cls, root: str | os.PathLike[str], *, device: str | torch.device = "cpu"
    ) -> TripoSR:
        """Load ``root/config.yaml`` and ``root/model.ckpt`` (the published layout).

        The checkpoint is read with ``weights_only=True`` (no pickled code runs) and must hold
        exactly the network's tensors.

        Raises
        ------
        FileNotFoundError
            A file of the layout is missing.
        WeightsMismatchError
            Missing, unexpected or wrongly shaped tensors; the message names the first ones.
        """
        root = Path(root)
        model = cls.build(root)  # meta: no time spent initialising 419 M parameters
        state = load_checkpoint(_required(root / WEIGHTS_NAME))
        check_state_dict(model, state)
        model.load_state_dict(state, strict=True, assign=True)
        model.image_tokenizer._register_statistics()  # buffers are not in the checkpoint
        return model.to(device).eval()

    # -- inference -----------------------------------------------------------------------
    def preprocess(self, image: np.ndarray | torch.Tensor) -> torch.Tensor:
        """``(h, w, 3)`` uint8 or float in ``[0, 1]`` -> ``(1, 3, s, s)`` at ``cond_image_size``.

        Bilinear with antialiasing, as the reference resizes; no other change to the image.
        """
        pixels = torch.as_tensor(np.array(image)) if isinstance(image, np.ndarray) else image
        if pixels.dtype == torch.uint8:
            pixels = pixels.float() / 255.0
        if pixels.ndim != 3 or pixels.shape[-1] != 3:
            raise ValueError(f"image must be (h, w, 3), got {tuple(pixels.shape)}")
        size = self.config.cond_image_size
        pixels = pixels.to(self.device, torch.float32).permute(2, 0, 1)[None]
        return F.interpolate(
            pixels, (size, size), mode="bilinear", align_corners=False, antialias=True
        )

    @property
    def device(self) -> torch.device:
        return self.tokenizer.embeddings.device

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """``(b, 3, s, s)`` in ``[0, 1]`` -> triplanes ``(b, 3, C, 2P, 2P)`` (scene codes)."""
        dtype = self.tokenizer.embeddings.dtype
        context = self.image_tokenizer(pixels.to(self.device, dtype))  # (b, 1 + n, d)
        tokens = self.backbone(self.tokenizer(pixels.shape[0]), context)  # (b, C, 3 P P)
        return self.post_processor(self.tokenizer.detokenize(tokens))

    def query(
        self, planes: torch.Tensor, points: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Activated density ``(n,)`` and colour ``(n, 3)`` at world points ``(n, 3)``.

        ``planes`` is one scene code ``(3, C, H, W)``; points lie in ``[-radius, radius]^3``.
        Density is what mesh extraction thresholds (25 in the reference); colour in ``[0, 1]``.
        """
        r = self.config.renderer
        points = points.to(planes.device, planes.dtype).reshape(-1, 3) / r.radius
        densities, colours = [], []
        step = self.chunk_size if self.chunk_size > 0 else max(1, points.shape[0])
        for start in range(0, points.shape[0], step):
            raw = self.decoder(self._features(planes, points[start : start + step]))  # (m, 4)
            densities.append(_activation(r.density_activation, raw[:, 0] + r.density_bias))
            colours.append(_activation(r.color_activation, raw[:, 1:4]))
        return torch.cat(densities), torch.cat(colours)

    def _features(self, planes: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Plane features at ``x`` ``(m, 3)`` in ``[-1, 1]``: ``(m, 3 C)`` or ``(m, C)``."""
        # Planes are indexed (x, y), (x, z), (y, z); grid_sample reads (column, row).
        grid = torch.stack((x[:, [0, 1]], x[:, [0, 2]], x[:, [1, 2]]))[:, None]  # (3, 1, m, 2)
        out = F.grid_sample(planes, grid, mode="bilinear", align_corners=False)  # (3, C, 1, m)
        out = out[:, :, 0]  # (3, C, m)
        if self.config.renderer.feature_reduction == "mean":
            return out.mean(0).T
        return out.permute(2, 0, 1).reshape(x.shape[0], -1)

    def density_and_colour(
        self, image: np.ndarray | torch.Tensor, points: np.ndarray | torch.Tensor
    ) -> tuple[np.ndarray, np.ndarray]:
        """An RGB image and world points ``(n, 3)`` -> density ``(n,)``, colour ``(n, 3)``."""
        with torch.no_grad():
            planes = self.encode(self.preprocess(image))[0]
            density, colour = self.query(planes, torch.as_tensor(np.asarray(points)))
        return density.float().cpu().numpy(), colour.float().cpu().numpy()


def _required(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    return path


def load_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """A flat state dict, read without running pickled code; memory-mapped where possible."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # legacy (non-zip) files cannot be memory-mapped
        state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsMismatchError(f"{path} is not a flat state dict of tensors")
    return state


def check_state_dict(model: nn.Module, state: dict[str, Any]) -> None:
    """Refuse a checkpoint whose keys or shapes differ from the network's, naming them."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing ({_first(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected ({_first(unexpected)})")
    shapes = [
        f"{k} {tuple(state[k].shape)} != {expected[k]}"
        for k in expected
        if k in state and tuple(state[k].shape) != expected[k]
    ]
    if shapes:
        problems.append(f"{len(shapes)} of the wrong shape ({_first(shapes)})")
    if problems:
        raise WeightsMismatchError("checkpoint does not fit the config: " + "; ".join(problems))


def _first(items: list[str], n: int = 3) -> str:
    more = f", … {len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def file_sha256(path: str | os.PathLike[str], block: int = 1 << 22) -> str:
    """Hex SHA-256 of a file, read in 4 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def has_weights(root: str | os.PathLike[str] | None) -> bool:
    """Whether ``root`` holds the published layout (``config.yaml`` and ``model.ckpt``)."""
    if root is None:
        return False
    root = Path(root)
    return (root / CONFIG_NAME).is_file() and (root / WEIGHTS_NAME).is_file()
