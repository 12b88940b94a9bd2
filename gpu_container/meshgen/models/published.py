"""What is known of the published ``stabilityai/TripoSR`` files without downloading them.

``config.yaml`` lives on the Hugging Face Hub only (not in the GitHub repository). The text
below is reconstructed from what the reference code reads (``tsr/system.py`` and the classes
it names) and the published checkpoint's tensor shapes: 549 float32 tensors, 419,275,628
parameters; ViT-B/16 tokens (768) cross-attended by 16 blocks of 16 x 64 heads over 3 x 32 x 32
tokens of 1024 channels, upsampled to 3 x 40 x 64 x 64 planes, decoded by 10 linear layers of
64 with SiLU. ``density_activation: exp`` with ``density_bias: -1.0`` is what the published
file sets (the reference class defaults to ``trunc_exp``, identical in the forward pass).
"""

from __future__ import annotations

MODEL_ID = "stabilityai/TripoSR"
N_TENSORS = 549
N_PARAMETERS = 419_275_628
#: Mesh extraction iso-level on the activated density (the reference's ``extract_mesh``).
MESH_THRESHOLD = 25.0
#: Foreground share of the frame and backdrop grey of the reference's preprocessing (run.py).
FOREGROUND_RATIO = 0.85
BACKDROP_GREY = 0.5

CONFIG_YAML = """\
cond_image_size: 512

image_tokenizer_cls: tsr.models.tokenizers.image.DINOSingleImageTokenizer
image_tokenizer:
  pretrained_model_name_or_path: "facebook/dino-vitb16"

tokenizer_cls: tsr.models.tokenizers.triplane.Triplane1DTokenizer
tokenizer:
  plane_size: 32
  num_channels: 1024

backbone_cls: tsr.models.transformer.transformer_1d.Transformer1D
backbone:
  in_channels: ${tokenizer.num_channels}
  num_attention_heads: 16
  attention_head_dim: 64
  num_layers: 16
  cross_attention_dim: 768

post_processor_cls: tsr.models.network_utils.TriplaneUpsampleNetwork
post_processor:
  in_channels: ${tokenizer.num_channels}
  out_channels: 40

decoder_cls: tsr.models.network_utils.NeRFMLP
decoder:
  in_channels: 120 # 3 * 40
  n_neurons: 64
  n_hidden_layers: 9
  activation: silu

renderer_cls: tsr.models.nerf_renderer.TriplaneNeRFRenderer
renderer:
  radius: 0.87 # slightly larger than 0.5 * sqrt(3)
  feature_reduction: concat
  density_activation: exp
  density_bias: -1.0
  num_samples_per_ray: 128
"""
