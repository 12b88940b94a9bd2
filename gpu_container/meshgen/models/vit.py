"""A ViT image encoder whose parameter names are those of ``transformers`` 4.x's ``ViTModel``.

TripoSR's image tokenizer is DINO ViT-B/16 built by ``transformers==4.35.0``; its published
checkpoint stores the encoder under those module names
(``embeddings.patch_embeddings.projection``, ``encoder.layer.N.attention.attention.query``,
``pooler.dense``, ...). This module rebuilds the same network without depending on
``transformers``: 5.x renamed modules and changed how position embeddings are interpolated,
and the real model always interpolates (14 x 14 positions for a 224 px ViT, 32 x 32 patches at
TripoSR's 512 px input).

Nothing is downloaded: the configuration comes from :data:`BUILTIN_CONFIGS` or from a
transformers-style ``config.json``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

#: ``config.json`` keys that describe training or bookkeeping, not the network's inference.
_IGNORED_KEYS = frozenset(
    {
        "architectures",
        "model_type",
        "torch_dtype",
        "transformers_version",
        "initializer_range",
        "hidden_dropout_prob",
        "attention_probs_dropout_prob",
        "encoder_stride",
        "_name_or_path",
        "id2label",
        "label2id",
        "problem_type",
    }
)

_ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu}


@dataclass(frozen=True)
class ViTConfig:
    """The subset of a transformers ``ViTConfig`` that inference depends on."""

    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-12
    image_size: int = 224  # the position embeddings' native grid is image_size / patch_size
    patch_size: int = 16
    num_channels: int = 3
    qkv_bias: bool = True

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size must be a multiple of num_attention_heads")
        if self.image_size % self.patch_size:
            raise ValueError("image_size must be a multiple of patch_size")
        if self.hidden_act not in _ACTIVATIONS:
            raise ValueError(f"hidden_act {self.hidden_act!r} is not one of {sorted(_ACTIVATIONS)}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ViTConfig:
        """From a transformers ``config.json`` (bookkeeping keys ignored, unknown keys refused)."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known - _IGNORED_KEYS
        if unknown:
            raise ValueError(f"unsupported ViT config keys: {sorted(unknown)}")
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_json(cls, path: str | Path) -> ViTConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))


#: Configurations known by name, so that the published TripoSR config needs no download.
#: ``facebook/dino-vitb16``'s ``config.json`` on the Hugging Face Hub holds exactly these values.
BUILTIN_CONFIGS: dict[str, ViTConfig] = {"facebook/dino-vitb16": ViTConfig()}


def resolve_vit_config(name: str, root: Path | None) -> ViTConfig:
    """The ViT configuration called ``name``.

    A folder ``root/name`` holding ``config.json`` wins (tiny test models, other encoders);
    otherwise the built-in values for a known name.

    Raises
    ------
    FileNotFoundError
        Neither a folder nor a built-in configuration of that name exists.
    """
    if root is not None:
        candidate = root / name / "config.json"
        if candidate.is_file():
            return ViTConfig.from_json(candidate)
    if name in BUILTIN_CONFIGS:
        return BUILTIN_CONFIGS[name]
    where = f" and no {root / name / 'config.json'}" if root is not None else ""
    raise FileNotFoundError(f"no built-in ViT configuration named {name!r}{where}")


class ViTPatchEmbeddings(nn.Module):
    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.projection = nn.Conv2d(
            config.num_channels, config.hidden_size, config.patch_size, stride=config.patch_size
        )

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        # (b, c, h, w) -> (b, h/p * w/p, d), patches in row-major order
        return self.projection(pixels).flatten(2).transpose(1, 2)


class ViTEmbeddings(nn.Module):
    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.config = config
        n = (config.image_size // config.patch_size) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.position_embeddings = nn.Parameter(torch.zeros(1, n + 1, config.hidden_size))
        self.patch_embeddings = ViTPatchEmbeddings(config)

    def interpolate_pos_encoding(self, height: int, width: int) -> torch.Tensor:
        """Position embeddings for a ``height`` x ``width`` image, ``(1, 1 + patches, d)``.

        DINO's form, as transformers 4.x has it: bicubic with ``scale_factor = (h0 + 0.1) /
        sqrt(N)``. The 0.1 makes the output size round down to ``h0``, and because a scale
        factor (not a size) is passed, the sampling positions differ slightly from ``size=``
        interpolation: the published weights were used with exactly this.
        """
        pos = self.position_embeddings
        n = pos.shape[1] - 1
        h0 = height // self.config.patch_size
        w0 = width // self.config.patch_size
        if h0 * w0 == n and height == width:
            return pos
        side = int(math.sqrt(n))
        dim = pos.shape[-1]
        grid = pos[:, 1:].reshape(1, side, side, dim).permute(0, 3, 1, 2)  # (1, d, s, s)
        grid = F.interpolate(
            grid,
            scale_factor=((h0 + 0.1) / math.sqrt(n), (w0 + 0.1) / math.sqrt(n)),
            mode="bicubic",
            align_corners=False,
        )
        if grid.shape[-2:] != (h0, w0):
            raise RuntimeError(f"interpolated positions {tuple(grid.shape[-2:])} != {(h0, w0)}")
        patches = grid.permute(0, 2, 3, 1).reshape(1, h0 * w0, dim)
        return torch.cat((pos[:, :1], patches), dim=1)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        b, _, h, w = pixels.shape
        tokens = self.patch_embeddings(pixels)  # (b, n, d)
        tokens = torch.cat((self.cls_token.expand(b, -1, -1), tokens), dim=1)
        return tokens + self.interpolate_pos_encoding(h, w)


class ViTSelfAttention(nn.Module):
    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.heads = config.num_attention_heads
        d = config.hidden_size
        self.query = nn.Linear(d, d, bias=config.qkv_bias)
        self.key = nn.Linear(d, d, bias=config.qkv_bias)
        self.value = nn.Linear(d, d, bias=config.qkv_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:  # (b, n, d) -> (b, heads, n, d / heads)
            return t.view(b, n, self.heads, d // self.heads).transpose(1, 2)

        out = F.scaled_dot_product_attention(
            split(self.query(x)), split(self.key(x)), split(self.value(x))
        )
        return out.transpose(1, 2).reshape(b, n, d)


class ViTSelfOutput(nn.Module):
    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(x)


class ViTAttention(nn.Module):
    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.attention = ViTSelfAttention(config)
        self.output = ViTSelfOutput(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.attention(x))


class ViTIntermediate(nn.Module):
    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = _ACTIVATIONS[config.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(x))


class ViTOutput(nn.Module):
    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.dense(x) + residual


class ViTLayer(nn.Module):
    """Pre-norm block: attention then MLP, each added to its input."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.attention = ViTAttention(config)
        self.intermediate = ViTIntermediate(config)
        self.output = ViTOutput(config)
        self.layernorm_before = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.layernorm_after = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.attention(self.layernorm_before(x)) + x
        return self.output(self.intermediate(self.layernorm_after(x)), x)


class ViTEncoder(nn.Module):
    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(ViTLayer(config) for _ in range(config.num_hidden_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.layer:
            x = block(x)
        return x


class ViTPooler(nn.Module):
    """Stored in the checkpoint (``pooler.dense.*``) but unused: TripoSR reads the tokens."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(tokens[:, 0]))


class ViTModel(nn.Module):
    """Patch tokens plus a class token through a pre-norm transformer, final layer norm."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = ViTEmbeddings(config)
        self.encoder = ViTEncoder(config)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.pooler = ViTPooler(config)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """``(b, c, h, w)`` normalised pixels -> ``(b, 1 + h/p * w/p, d)`` tokens, class first."""
        return self.layernorm(self.encoder(self.embeddings(pixels)))
