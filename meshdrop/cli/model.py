"""``meshdrop model``: inspect and probe TripoSR weights in the published layout.

``probe`` runs only the network's own input path (8-bit RGB /255, resized to
``cond_image_size``; no background removal, no foreground resize) and queries density and
colour at given points: what a comparison with the reference implementation needs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

model_app = typer.Typer(
    help="Inspect TripoSR weights (config.yaml + model.ckpt) and query the network.",
    no_args_is_help=True,
)

WeightsArg = Annotated[
    Path, typer.Argument(help="Folder with config.yaml, model.ckpt (and the ViT config folder).")
]


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _load(weights: Path, device: str) -> Any:
    from gpu_container.meshgen.device import select_device
    from gpu_container.meshgen.models import TripoSR, WeightsMismatchError

    if not weights.is_dir():
        _fail(f"weights folder {weights} does not exist")
    try:
        return TripoSR.from_pretrained(weights, device=select_device(device).device)
    except (FileNotFoundError, WeightsMismatchError, ValueError) as exc:
        _fail(str(exc))


def _read_image(path: Path) -> Any:
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        _fail(f"image {path} does not exist")
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))  # (h, w, 3) uint8
    except (UnidentifiedImageError, OSError) as exc:
        _fail(f"cannot read image {path}: {exc}")


def _read_points(path: Path) -> Any:
    import numpy as np

    if not path.is_file():
        _fail(f"points file {path} does not exist")
    try:
        points = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        _fail(f"cannot read points {path}: {exc}")
    if not isinstance(points, np.ndarray):
        _fail(f"{path} is not a .npy array (an .npz archive?)")
    if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0:
        _fail(f"points must have shape (n, 3), {path} has {points.shape}")
    if not np.issubdtype(points.dtype, np.floating):
        _fail(f"points must be floating point, {path} holds {points.dtype}")
    return points.astype(np.float32)


@model_app.command("probe")
def probe(
    weights: WeightsArg,
    image: Annotated[Path, typer.Argument(help="Image, read as 8-bit RGB.")],
    points: Annotated[Path, typer.Argument(help=".npy of (n, 3) points in the model's frame.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the .npz.")],
    device: Annotated[str, typer.Option("--device", help="auto | cpu | cuda")] = "cpu",
) -> None:
    """Write density (n,) and color (n, 3) at POINTS for IMAGE to OUTPUT (.npz)."""
    import numpy as np

    pixels = _read_image(image)
    xyz = _read_points(points)
    model = _load(weights, device)
    density, colour = model.density_and_colour(pixels, xyz)
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("wb") as handle:  # np.savez would append .npz to another suffix
        np.savez(handle, density=density, color=colour)
    typer.echo(
        f"{len(xyz)} points: density {density.min():.4g}..{density.max():.4g}, "
        f"colour {colour.min():.3f}..{colour.max():.3f} -> {output}",
        err=True,
    )


@model_app.command("check")
def check(
    weights: WeightsArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Load WEIGHTS strictly; print parameters, the checkpoint's SHA-256 and the config."""
    from gpu_container.meshgen.models.triposr import WEIGHTS_NAME, file_sha256

    model = _load(weights, "cpu")
    state = model.state_dict()
    report = {
        "weights": str(weights),
        "tensors": len(state),
        "parameters": sum(t.numel() for t in state.values()),
        "sha256": file_sha256(weights / WEIGHTS_NAME),
        "config": model.config.summary(),
        "vit": {
            "hidden_size": model.vit_config.hidden_size,
            "layers": model.vit_config.num_hidden_layers,
            "heads": model.vit_config.num_attention_heads,
            "patch": model.vit_config.patch_size,
            "native_image": model.vit_config.image_size,
        },
    }
    if as_json:
        sys.stdout.write(json.dumps(report) + "\n")
        return
    for name, value in report.items():
        if isinstance(value, dict):
            for key, item in value.items():
                typer.echo(f"{name}.{key}: {item}")
        else:
            typer.echo(f"{name}: {value:,}" if isinstance(value, int) else f"{name}: {value}")


def register(app: typer.Typer) -> None:
    app.add_typer(model_app, name="model")
