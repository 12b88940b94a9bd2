"""A TripoSR-kind single-image reconstructor: image encoder -> triplane -> implicit decoder.

The layout follows TripoSR (Tochilkin et al., 2024) at a configurable, much smaller size:
patch tokens of the segmented RGBA photo go through a transformer encoder; learned triplane
queries cross-attend to them and are upsampled to three feature planes (xy, xz, yz); an MLP
decodes the summed plane features at any 3-D point into density and colour. The density grid
is meshed by marching cubes like the weight-free priors.

Weights are not shipped with the project; ``from_pretrained`` loads a directory holding
``config.json`` and ``model.safetensors`` (if the ``safetensors`` package is installed) or
``model.pt`` (a ``state_dict`` saved by :meth:`TriplaneModel.save_pretrained`).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

CONFIG_NAME = "config.json"
WEIGHTS_PT = "model.pt"
WEIGHTS_SAFETENSORS = "model.safetensors"


class TriplaneModel(nn.Module):
    """Image -> triplane -> density/colour field."""

    @dataclass(frozen=True)
    class Config:
        image_size: int = 256  # square RGBA input (mask as the 4th channel)
        patch_size: int = 16
        encoder_dim: int = 256
        encoder_layers: int = 6
        encoder_heads: int = 8
        plane_tokens: int = 16  # triplane token grid per side before upsampling
        plane_channels: int = 32
        plane_upsample: int = 2  # each x2 doubles the plane resolution
        decoder_hidden: int = 64
        decoder_layers: int = 4
        density_threshold: float = 10.0  # marching-cubes level on the density grid
        query_chunk: int = 262_144  # points decoded per batch (memory bound)

        def __post_init__(self) -> None:
            if self.image_size % self.patch_size:
                raise ValueError("image_size must be a multiple of patch_size")
            if self.encoder_dim % self.encoder_heads:
                raise ValueError("encoder_dim must be a multiple of encoder_heads")

        @classmethod
        def from_dict(cls, data: dict[str, Any]) -> TriplaneModel.Config:
            known = {f.name for f in fields(cls)}
            unknown = set(data) - known
            if unknown:
                raise ValueError(f"unknown triplane config keys: {sorted(unknown)}")
            return cls(**data)

    def __init__(self, config: TriplaneModel.Config) -> None:
        super().__init__()
        self.config = c = config
        n_patches = (c.image_size // c.patch_size) ** 2
        self.patch_embed = nn.Conv2d(4, c.encoder_dim, c.patch_size, stride=c.patch_size)
        self.pos_embed = nn.Parameter(torch.randn(1, n_patches, c.encoder_dim) * 0.02)
        layer = nn.TransformerEncoderLayer(
            c.encoder_dim, c.encoder_heads, 4 * c.encoder_dim, dropout=0.0, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, c.encoder_layers, enable_nested_tensor=False)
        self.plane_queries = nn.Parameter(
            torch.randn(1, 3 * c.plane_tokens**2, c.encoder_dim) * 0.02
        )
        self.cross = nn.TransformerDecoderLayer(
            c.encoder_dim, c.encoder_heads, 4 * c.encoder_dim, dropout=0.0, batch_first=True
        )
        ups: list[nn.Module] = []
        ch = c.encoder_dim
        for _ in range(c.plane_upsample):
            ups += [nn.ConvTranspose2d(ch, c.plane_channels, 2, stride=2), nn.GELU()]
            ch = c.plane_channels
        ups.append(nn.Conv2d(ch, c.plane_channels, 3, padding=1))
        self.upsample = nn.Sequential(*ups)
        layers: list[nn.Module] = []
        width = c.plane_channels
        for _ in range(c.decoder_layers - 1):
            layers += [nn.Linear(width, c.decoder_hidden), nn.SiLU()]
            width = c.decoder_hidden
        layers.append(nn.Linear(width, 4))
        self.decoder = nn.Sequential(*layers)

    # -- loading -------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike[str], *, device: str | torch.device = "cpu"
    ) -> TriplaneModel:
        """Load ``config.json`` and weights from a directory; the model is in eval mode."""
        root = Path(path)
        config_file = root / CONFIG_NAME
        if not config_file.is_file():
            raise FileNotFoundError(f"no {CONFIG_NAME} in {root}")
        model = cls(cls.Config.from_dict(json.loads(config_file.read_text())))
        state = _load_state(root)
        model.load_state_dict(state)
        return model.to(device).eval()

    def save_pretrained(self, path: str | os.PathLike[str]) -> None:
        """Write ``config.json`` and ``model.pt`` into ``path`` (created if missing)."""
        root = Path(path)
        root.mkdir(parents=True, exist_ok=True)
        (root / CONFIG_NAME).write_text(json.dumps(asdict(self.config), indent=2))
        torch.save(self.state_dict(), root / WEIGHTS_PT)

    @staticmethod
    def has_weights(path: str | os.PathLike[str]) -> bool:
        root = Path(path)
        weights = (root / WEIGHTS_PT).is_file() or (root / WEIGHTS_SAFETENSORS).is_file()
        return (root / CONFIG_NAME).is_file() and weights

    # -- inference -----------------------------------------------------------------------
    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """Triplanes of a batch of photos.

        Parameters
        ----------
        image
            ``(b, 4, s, s)`` float in 0..1: RGB and the foreground mask.

        Returns
        -------
        torch.Tensor
            ``(b, 3, c, r, r)`` float plane features (xy, xz, yz).
        """
        c = self.config
        if image.shape[1:] != (4, c.image_size, c.image_size):
            raise ValueError(
                f"expected (b, 4, {c.image_size}, {c.image_size}), got {tuple(image.shape)}"
            )
        tokens = self.patch_embed(image * 2.0 - 1.0).flatten(2).transpose(1, 2) + self.pos_embed
        memory = self.encoder(tokens)  # (b, n, d)
        b = image.shape[0]
        planes = self.cross(self.plane_queries.expand(b, -1, -1), memory)  # (b, 3 t^2, d)
        t = c.plane_tokens
        planes = planes.reshape(b * 3, t, t, c.encoder_dim).permute(0, 3, 1, 2)
        planes = self.upsample(planes)  # (b * 3, c, r, r)
        return planes.reshape(b, 3, *planes.shape[1:])

    def decode(
        self, planes: torch.Tensor, points: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Density and colour at points.

        Parameters
        ----------
        planes
            ``(b, 3, c, r, r)`` float from :meth:`encode`.
        points
            ``(b, n, 3)`` float in ``[-1, 1]^3`` (x right, y up, z towards the camera).

        Returns
        -------
        density, rgb
            ``(b, n)`` float (non-negative) and ``(b, n, 3)`` float in 0..1.
        """
        b = planes.shape[0]
        coords = torch.stack(
            [points[..., [0, 1]], points[..., [0, 2]], points[..., [1, 2]]], dim=1
        )  # (b, 3, n, 2)
        flat = planes.reshape(b * 3, *planes.shape[2:])
        grid = coords.reshape(b * 3, 1, -1, 2)
        feats = F.grid_sample(
            flat, grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )
        feats = feats.reshape(b, 3, planes.shape[2], -1).sum(dim=1).transpose(1, 2)  # (b, n, c)
        out = self.decoder(feats)
        return F.softplus(out[..., 0]), torch.sigmoid(out[..., 1:])

    def forward(
        self, image: torch.Tensor, points: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.decode(self.encode(image), points)

    @torch.no_grad()
    def density_grid(self, rgb: np.ndarray, mask: np.ndarray, grid: int) -> np.ndarray:
        """Density on a ``grid``^3 lattice over the working square, for marching cubes.

        Parameters
        ----------
        rgb
            ``(s, s, 3)`` uint8 segmented photo.
        mask
            ``(s, s)`` float 0..1 foreground.
        grid
            Samples per axis.

        Returns
        -------
        numpy.ndarray
            ``(grid, grid, grid)`` float32 indexed ``[x, y, z]``: x = column, y = rows from
            the bottom, z from back to front.
        """
        c = self.config
        device = next(self.parameters()).device
        image = np.concatenate([rgb.astype(np.float32) / 255.0, mask[..., None]], axis=2)
        tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]
        tensor = F.interpolate(tensor, size=(c.image_size, c.image_size), mode="bilinear")
        planes = self.encode(tensor.to(device))
        axis = (torch.arange(grid, dtype=torch.float32, device=device) + 0.5) / grid * 2.0 - 1.0
        xs, ys, zs = torch.meshgrid(axis, axis, axis, indexing="ij")
        points = torch.stack([xs, ys, zs], dim=-1).reshape(1, -1, 3)  # (1, g^3, 3)
        out = torch.empty(points.shape[1], dtype=torch.float32, device=device)
        for start in range(0, points.shape[1], c.query_chunk):
            chunk = points[:, start : start + c.query_chunk]
            out[start : start + chunk.shape[1]] = self.decode(planes, chunk)[0][0]
        return out.reshape(grid, grid, grid).cpu().numpy()


def _load_state(root: Path) -> dict[str, torch.Tensor]:
    if (root / WEIGHTS_SAFETENSORS).is_file():
        try:
            from safetensors.torch import load_file
        except ImportError as exc:  # the container installs it; the dev venv may not
            raise ImportError(
                f"{root / WEIGHTS_SAFETENSORS} needs the safetensors package"
            ) from exc
        return load_file(str(root / WEIGHTS_SAFETENSORS))
    if (root / WEIGHTS_PT).is_file():
        return torch.load(root / WEIGHTS_PT, map_location="cpu", weights_only=True)
    raise FileNotFoundError(f"no {WEIGHTS_SAFETENSORS} or {WEIGHTS_PT} in {root}")
