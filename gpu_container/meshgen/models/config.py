"""TripoSR's published ``config.yaml``, read as it is.

The file (on the Hugging Face Hub as ``stabilityai/TripoSR/config.yaml``; not in the GitHub
repository) names the reference's classes by import path and gives each its settings. It may
use OmegaConf interpolation (``${tokenizer.num_channels}``); the small resolver below covers
the ``${dotted.path}`` form, so OmegaConf is not needed. Unknown keys are errors, as they are
for the reference's structured configs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .transformer import BackboneConfig

#: The classes the published configuration names, and the only ones we implement.
EXPECTED_CLASSES = {
    "image_tokenizer_cls": "tsr.models.tokenizers.image.DINOSingleImageTokenizer",
    "tokenizer_cls": "tsr.models.tokenizers.triplane.Triplane1DTokenizer",
    "backbone_cls": "tsr.models.transformer.transformer_1d.Transformer1D",
    "post_processor_cls": "tsr.models.network_utils.TriplaneUpsampleNetwork",
    "decoder_cls": "tsr.models.network_utils.NeRFMLP",
    "renderer_cls": "tsr.models.nerf_renderer.TriplaneNeRFRenderer",
}


@dataclass(frozen=True)
class ImageTokenizerConfig:
    pretrained_model_name_or_path: str = "facebook/dino-vitb16"
    enable_gradient_checkpointing: bool = False


@dataclass(frozen=True)
class TriplaneTokenizerConfig:
    plane_size: int
    num_channels: int


@dataclass(frozen=True)
class UpsamplerConfig:
    in_channels: int
    out_channels: int


@dataclass(frozen=True)
class DecoderConfig:
    in_channels: int
    n_neurons: int
    n_hidden_layers: int
    activation: str = "relu"
    bias: bool = True
    weight_init: str | None = "kaiming_uniform"
    bias_init: str | None = None

    def __post_init__(self) -> None:
        if self.activation not in {"relu", "silu"}:
            raise ValueError(f"decoder.activation must be relu|silu, not {self.activation!r}")


@dataclass(frozen=True)
class RendererConfig:
    radius: float
    feature_reduction: str = "concat"
    density_activation: str = "trunc_exp"
    density_bias: float = -1.0
    color_activation: str = "sigmoid"
    num_samples_per_ray: int = 128
    randomized: bool = False

    def __post_init__(self) -> None:
        if self.feature_reduction not in {"concat", "mean"}:
            raise ValueError("renderer.feature_reduction must be concat|mean")
        for name in (self.density_activation, self.color_activation):
            if name not in ACTIVATIONS:
                raise ValueError(f"unsupported activation {name!r} (known: {sorted(ACTIVATIONS)})")


#: The reference's activations by config name. ``trunc_exp`` is ``exp`` in the forward pass
#: (it only clamps the gradient).
ACTIVATIONS = {"exp", "trunc_exp", "sigmoid", "none", "relu", "softplus", "tanh"}


@dataclass(frozen=True)
class TripoSRConfig:
    """The whole ``config.yaml``."""

    cond_image_size: int
    image_tokenizer: ImageTokenizerConfig
    tokenizer: TriplaneTokenizerConfig
    backbone: BackboneConfig
    post_processor: UpsamplerConfig
    decoder: DecoderConfig
    renderer: RendererConfig

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TripoSRConfig:
        data = resolve_interpolations(data)
        for key, expected in EXPECTED_CLASSES.items():
            if data.get(key, expected) != expected:
                raise ValueError(f"{key} is {data[key]!r}; only {expected!r} is implemented")
        known = {"cond_image_size", *EXPECTED_CLASSES, *(f.name for f in fields(cls))}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown TripoSR config keys: {sorted(unknown)}")
        try:
            return cls(
                cond_image_size=int(data["cond_image_size"]),
                image_tokenizer=_section(ImageTokenizerConfig, data, "image_tokenizer"),
                tokenizer=_section(TriplaneTokenizerConfig, data, "tokenizer"),
                backbone=_section(BackboneConfig, data, "backbone"),
                post_processor=_section(UpsamplerConfig, data, "post_processor"),
                decoder=_section(DecoderConfig, data, "decoder"),
                renderer=_section(RendererConfig, data, "renderer"),
            )
        except KeyError as exc:
            raise ValueError(f"TripoSR config lacks {exc.args[0]!r}") from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> TripoSRConfig:
        data = yaml.safe_load(Path(path).read_text())
        if not isinstance(data, dict):
            raise ValueError(f"{path} is not a mapping")
        return cls.from_dict(data)

    def summary(self) -> dict[str, Any]:
        """The numbers that identify the architecture, for ``meshdrop model check``."""
        return {
            "cond_image_size": self.cond_image_size,
            "vit": self.image_tokenizer.pretrained_model_name_or_path,
            "plane_size": self.tokenizer.plane_size,
            "plane_channels": self.post_processor.out_channels,
            "token_channels": self.tokenizer.num_channels,
            "backbone_layers": self.backbone.num_layers,
            "backbone_heads": self.backbone.num_attention_heads,
            "decoder": f"{self.decoder.n_hidden_layers + 1} x {self.decoder.n_neurons} "
            f"{self.decoder.activation}",
            "radius": self.renderer.radius,
            "density": f"{self.renderer.density_activation}(x + {self.renderer.density_bias})",
        }


S = TypeVar("S")


def _section(kind: type[S], data: dict[str, Any], name: str) -> S:
    section = data[name] or {}
    known = {f.name for f in fields(kind)}  # type: ignore[arg-type]
    unknown = set(section) - known
    if unknown:
        raise ValueError(f"unknown keys in {name}: {sorted(unknown)}")
    return kind(**section)


_REF = re.compile(r"\$\{([A-Za-z0-9_.]+)\}")


def resolve_interpolations(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with every ``${a.b}`` replaced by the value at that path (OmegaConf's form)."""

    def lookup(path: str, depth: int) -> Any:
        node: Any = data
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                raise ValueError(f"config interpolation ${{{path}}} names nothing")
            node = node[part]
        return resolve(node, depth + 1)

    def resolve(node: Any, depth: int = 0) -> Any:
        if depth > 16:
            raise ValueError("config interpolations form a cycle")
        if isinstance(node, dict):
            return {k: resolve(v, depth) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v, depth) for v in node]
        if isinstance(node, str):
            whole = _REF.fullmatch(node)
            if whole:
                return lookup(whole.group(1), depth)
            return _REF.sub(lambda m: str(lookup(m.group(1), depth)), node)
        return node

    return resolve(data)
