"""Speed of the full-size TripoSR network per preset: seconds per stage and peak memory.

``python -m gpu_container.meshgen.models.bench [--presets fast,balanced,quality]
[--device auto] [--precision fp32] [--weights DIR] [--json]`` (``make bench-gpu``).

Without ``--weights`` the network is the published architecture (config reconstructed in
:mod:`.published`) with random weights: the same arithmetic as the real checkpoint, so the
network's stages time the same. Stages:

* ``encode``: resize to 512 px, ViT-B/16, 16-block backbone, upsampler (once per photo).
* ``density``: the activated density on the preset's ``grid``^3 points.
* ``marching_cubes``: scikit-image on that grid. A random network's field has no object,
  so the iso-level is the field's 99th percentile here (a surface of similar extent to an
  object's); decimation and export are not timed (a random surface is not representative).
* ``colour``: the colour head at up to 200,000 mesh vertices.

Peak memory: CUDA's ``max_memory_allocated`` per preset; on the CPU the process' resident
high-water mark (monotonic, so presets run in increasing order).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from skimage.measure import marching_cubes

from meshdrop_contract import PRESETS, Preset

from ..device import Placement, select_device
from . import meshing, published
from .triposr import TripoSR

T = TypeVar("T")
MAX_COLOUR_VERTICES = 200_000


def random_published_model(placement: Placement, seed: int = 0) -> TripoSR:
    """The published architecture with random weights, made directly on the device."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "config.yaml").write_text(published.CONFIG_YAML)
        model = TripoSR.build(tmp)  # meta: no memory, no init time
    model = model.to_empty(device=placement.device)
    generator = torch.Generator(device=placement.device).manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(("norm.weight", "norm1.weight", "norm2.weight", "norm3.weight")) or (
                "layernorm" in name and name.endswith("weight")
            ):
                param.fill_(1.0)
            else:
                fan_in = param.shape[1] if param.ndim > 1 else 1
                param.normal_(0.0, 1.0 / fan_in**0.5, generator=generator)
    model.image_tokenizer._register_statistics()
    return model.to(placement.dtype).eval()


def _timed(placement: Placement, fn: Callable[[], T]) -> tuple[T, float]:
    if placement.kind == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if placement.kind == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def bench_preset(model: TripoSR, placement: Placement, preset: Preset) -> dict[str, Any]:
    """One photo's network stages at ``preset``'s grid."""
    grid = PRESETS[preset].grid
    if placement.kind == "cuda":
        torch.cuda.reset_peak_memory_stats()
    photo = np.random.default_rng(0).integers(0, 256, (640, 640, 3), dtype=np.uint8)
    seconds: dict[str, float] = {}
    with torch.no_grad():
        planes, seconds["encode"] = _timed(
            placement, lambda: model.encode(model.preprocess(photo))[0]
        )
        volume, seconds["density"] = _timed(
            placement, lambda: meshing.density_volume(model, planes, grid, threshold=0.0)
        )
        level = float(np.percentile(volume.values, 99.0))
        (verts, faces, _, _), seconds["marching_cubes"] = _timed(
            placement, lambda: marching_cubes(volume.values, level=level)
        )
        world = (verts[:MAX_COLOUR_VERTICES] * volume.spacing + volume.origin).astype(np.float32)
        _, seconds["colour"] = _timed(
            placement, lambda: meshing.vertex_colours(model, planes, world)
        )
    return {
        "preset": preset.value,
        "grid": grid,
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "total_s": round(sum(seconds.values()), 3),
        "faces": len(faces),
        "peak_memory_mib": _peak_mib(placement),
    }


def _peak_mib(placement: Placement) -> float:
    if placement.kind == "cuda":
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--presets", default="fast,balanced,quality")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--weights", type=Path, help="published layout; default random weights")
    parser.add_argument("--chunk", type=int, default=262_144, help="points per query batch")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    placement = select_device(args.device, args.precision)
    started = time.perf_counter()
    if args.weights is not None:
        model = TripoSR.from_pretrained(args.weights, device=placement.device).to(placement.dtype)
    else:
        model = random_published_model(placement)
    model.chunk_size = args.chunk
    load_s = time.perf_counter() - started
    device_name = (
        torch.cuda.get_device_name(placement.device) if placement.kind == "cuda" else "cpu"
    )
    header = {
        "device": device_name,
        "dtype": str(placement.dtype).removeprefix("torch."),
        "threads": torch.get_num_threads(),
        "load_s": round(load_s, 2),
        "weights": str(args.weights) if args.weights else "random (published architecture)",
    }
    rows = [bench_preset(model, placement, Preset(p)) for p in args.presets.split(",")]
    if args.json:
        sys.stdout.write(json.dumps({**header, "presets": rows}) + "\n")
        return 0
    print(" ".join(f"{k}={v}" for k, v in header.items()))
    print(
        f"{'preset':9} {'grid':>4} {'encode':>8} {'density':>8} {'mcubes':>8} {'colour':>8} "
        f"{'total':>8} {'peak MiB':>9}"
    )
    for r in rows:
        s = r["seconds"]
        print(
            f"{r['preset']:9} {r['grid']:>4} {s['encode']:>8.2f} {s['density']:>8.2f} "
            f"{s['marching_cubes']:>8.2f} {s['colour']:>8.2f} {r['total_s']:>8.2f} "
            f"{r['peak_memory_mib']:>9.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
