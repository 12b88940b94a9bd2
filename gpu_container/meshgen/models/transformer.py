"""TripoSR's backbone: a 1-D transformer over triplane tokens that cross-attends to the image.

Module names follow the published checkpoint (``backbone.transformer_blocks.N.attn1.to_q``,
``ff.net.0.proj``, ...), which inherited them from diffusers' ``Transformer2DModel``: a group
norm and a linear projection in, pre-norm blocks (self-attention, cross-attention, GEGLU
feed-forward), a linear projection out, and a residual around the whole stack.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn


@dataclass(frozen=True)
class BackboneConfig:
    """``backbone:`` of TripoSR's ``config.yaml`` (the reference's names and defaults)."""

    num_attention_heads: int = 16
    attention_head_dim: int = 88
    in_channels: int | None = None
    out_channels: int | None = None
    num_layers: int = 1
    dropout: float = 0.0
    norm_num_groups: int = 32
    cross_attention_dim: int | None = None
    attention_bias: bool = False
    activation_fn: str = "geglu"
    only_cross_attention: bool = False
    double_self_attention: bool = False
    upcast_attention: bool = False
    norm_type: str = "layer_norm"
    norm_elementwise_affine: bool = True
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        if self.in_channels is None:
            raise ValueError("backbone.in_channels is required")
        if self.in_channels % self.norm_num_groups:
            raise ValueError("backbone.in_channels must be a multiple of norm_num_groups")
        # The published model uses none of the reference's other variants; refusing them
        # beats silently computing something else.
        if self.activation_fn != "geglu" or self.norm_type != "layer_norm":
            raise ValueError("only activation_fn=geglu and norm_type=layer_norm are supported")
        if self.only_cross_attention or self.double_self_attention:
            raise ValueError("only_cross_attention/double_self_attention are not supported")
        if self.cross_attention_dim is None:
            raise ValueError("backbone.cross_attention_dim is required (image conditioning)")


class Attention(nn.Module):
    """Multi-head attention; ``context`` given: cross-attention to it."""

    def __init__(self, dim: int, heads: int, head_dim: int, context_dim: int | None, bias: bool):
        super().__init__()
        inner = heads * head_dim
        self.heads = heads
        self.to_q = nn.Linear(dim, inner, bias=bias)
        self.to_k = nn.Linear(context_dim or dim, inner, bias=bias)
        self.to_v = nn.Linear(context_dim or dim, inner, bias=bias)
        # Index 1 was a dropout in the reference: nothing to store, the index is kept.
        self.to_out = nn.ModuleList([nn.Linear(inner, dim), nn.Identity()])

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        context = x if context is None else context
        b = x.shape[0]

        def split(t: torch.Tensor) -> torch.Tensor:  # (b, n, inner) -> (b, heads, n, head_dim)
            return t.view(b, -1, self.heads, t.shape[-1] // self.heads).transpose(1, 2)

        out = F.scaled_dot_product_attention(
            split(self.to_q(x)), split(self.to_k(context)), split(self.to_v(context))
        )
        out = out.transpose(1, 2).reshape(b, -1, out.shape[1] * out.shape[3])
        return self.to_out[0](out)


class GEGLU(nn.Module):
    """``a * gelu(b)`` of the two halves of one projection."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.proj(x).chunk(2, dim=-1)
        return value * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int = 4) -> None:
        super().__init__()
        # net.1 was a dropout: an empty slot keeps the checkpoint's index 2 for the output.
        self.net = nn.ModuleList(
            [GEGLU(dim, dim * mult), nn.Identity(), nn.Linear(dim * mult, dim)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for module in self.net:
            x = module(x)
        return x


class BasicTransformerBlock(nn.Module):
    """Pre-norm self-attention, cross-attention to the image tokens, feed-forward."""

    def __init__(self, config: BackboneConfig) -> None:
        super().__init__()
        c = config
        dim = c.num_attention_heads * c.attention_head_dim
        affine = c.norm_elementwise_affine
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=affine)
        self.attn1 = Attention(
            dim, c.num_attention_heads, c.attention_head_dim, None, c.attention_bias
        )
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=affine)
        self.attn2 = Attention(
            dim,
            c.num_attention_heads,
            c.attention_head_dim,
            c.cross_attention_dim,
            c.attention_bias,
        )
        self.norm3 = nn.LayerNorm(dim, elementwise_affine=affine)
        self.ff = FeedForward(dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = self.attn1(self.norm1(x)) + x
        x = self.attn2(self.norm2(x), context) + x
        return self.ff(self.norm3(x)) + x


class Transformer1D(nn.Module):
    """Tokens ``(b, c, n)`` -> tokens ``(b, c, n)``, conditioned on ``(b, m, d_ctx)``."""

    def __init__(self, config: BackboneConfig) -> None:
        super().__init__()
        c = config
        assert c.in_channels is not None  # checked by the config
        inner = c.num_attention_heads * c.attention_head_dim
        self.norm = nn.GroupNorm(c.norm_num_groups, c.in_channels, eps=1e-6, affine=True)
        self.proj_in = nn.Linear(c.in_channels, inner)
        self.transformer_blocks = nn.ModuleList(
            BasicTransformerBlock(c) for _ in range(c.num_layers)
        )
        self.proj_out = nn.Linear(inner, c.in_channels)

    def forward(self, tokens: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = self.proj_in(self.norm(tokens).transpose(1, 2))  # (b, n, inner)
        for block in self.transformer_blocks:
            x = block(x, context)
        return self.proj_out(x).transpose(1, 2) + tokens
