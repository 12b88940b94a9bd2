"""A tiny TripoSR in the published layout whose field is a ball, whatever the photo.

Random weights give a field with no shape (usually nothing above the iso-level), which cannot
show that the photo -> mesh path works. These weights are set by hand instead: the backbone's
output projection is zero (its residual passes the learned triplane tokens through), the
upsampler copies channels, the tokens hold ``-(u^2 + v^2)`` on every plane, and the decoder
adds the three planes and passes the sum through monotonic layers. The density is then a
decreasing function of the distance to the centre: a sphere of ``radius`` at the iso-level,
coloured ``colour``. Real networks are checked against the reference elsewhere
(tests/fixtures/triposr_tiny); this one exercises meshing, colours, frames and export.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from gpu_container.meshgen.models import TripoSR
from gpu_container.meshgen.models.published import MESH_THRESHOLD

VIT = {
    "hidden_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "image_size": 32,
    "patch_size": 8,
}

CONFIG = """\
cond_image_size: 64
image_tokenizer_cls: tsr.models.tokenizers.image.DINOSingleImageTokenizer
image_tokenizer:
  pretrained_model_name_or_path: tiny-vit
tokenizer_cls: tsr.models.tokenizers.triplane.Triplane1DTokenizer
tokenizer:
  plane_size: 32
  num_channels: 16
backbone_cls: tsr.models.transformer.transformer_1d.Transformer1D
backbone:
  in_channels: ${tokenizer.num_channels}
  num_attention_heads: 2
  attention_head_dim: 8
  num_layers: 1
  norm_num_groups: 8
  cross_attention_dim: 16
post_processor_cls: tsr.models.network_utils.TriplaneUpsampleNetwork
post_processor:
  in_channels: ${tokenizer.num_channels}
  out_channels: 8
decoder_cls: tsr.models.network_utils.NeRFMLP
decoder:
  in_channels: 24
  n_neurons: 16
  n_hidden_layers: 3
  activation: silu
renderer_cls: tsr.models.nerf_renderer.TriplaneNeRFRenderer
renderer:
  radius: 0.87
  feature_reduction: concat
  density_activation: exp
  density_bias: -1.0
"""


def write_ball_weights(
    root: Path, radius: float = 0.55, colour: tuple[float, float, float] = (0.8, 0.3, 0.2)
) -> Path:
    """Write ``config.yaml``, ``tiny-vit/config.json`` and ``model.ckpt`` under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(CONFIG)
    (root / "tiny-vit").mkdir(exist_ok=True)
    (root / "tiny-vit" / "config.json").write_text(json.dumps(VIT))
    torch.manual_seed(0)
    model = TripoSR.build(root, device="cpu").eval()
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.zero_()
        model.backbone.proj_out.weight.zero_()
        model.backbone.proj_out.bias.zero_()
        # Token channel 2a + b holds the field at fine cell (2i + a, 2j + b); the transposed
        # convolution (in, out, 2, 2) puts it there, so the 2P planes sample it exactly.
        up = model.post_processor.upsample
        up.weight.zero_()
        up.bias.zero_()
        side = 2 * model.tokenizer.plane_size
        centres = (torch.arange(side) + 0.5) / side * 2 - 1  # align_corners=False cell centres
        u, v = torch.meshgrid(centres, centres, indexing="ij")
        field = -(u**2 + v**2)  # (2P, 2P)
        model.tokenizer.embeddings.zero_()
        for a in (0, 1):
            for b in (0, 1):
                up.weight[2 * a + b, 0, a, b] = 1.0
                model.tokenizer.embeddings[:, 2 * a + b] = field[a::2, b::2]
        layers = [m for m in model.decoder.layers if isinstance(m, torch.nn.Linear)]
        for i in (0, 8, 16):
            layers[0].weight[0, i] = 1.0  # channel 0 of each plane: -2 |p|^2 in all
        layers[0].bias[0] = 8.0  # keeps SiLU in its near-linear, increasing part
        for layer in layers[1:-1]:
            layer.weight[0, 0] = 1.0
        layers[-1].weight[0, 0] = 1.0
        level = _decoded(model, radius)
        # Raw density = 12 (h - h(radius)) + log(threshold) + 1: exp(raw - 1) = 25 at radius.
        layers[-1].weight[0, 0] = 12.0
        layers[-1].bias[0] = -12.0 * level + math.log(MESH_THRESHOLD) + 1.0
        layers[-1].bias[1:] = torch.logit(torch.tensor(colour))
    torch.save(model.state_dict(), root / "model.ckpt")
    return root


def _decoded(model: TripoSR, radius: float) -> float:
    """The last hidden unit at distance ``radius`` from the centre, on a diagonal."""
    planes = model.encode(torch.zeros(1, 3, 64, 64))[0]
    point = torch.full((1, 3), radius / math.sqrt(3.0))
    density, _ = model.query(planes, point)
    return float(torch.log(density[0]) + 1.0)  # exp(raw - 1) with raw = h
