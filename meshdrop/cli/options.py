"""Option types shared by the commands that start generation."""

from __future__ import annotations

from typing import Annotated

import typer

from meshdrop_contract import AssetFormat, Backend, JobOptions, Preset

PresetOption = Annotated[
    Preset, typer.Option("--preset", "-p", help="Quality preset (grid size and face budget).")
]
FormatOption = Annotated[
    AssetFormat | None,
    typer.Option(
        "--format", "-f", help="Asset format (glb unless set; generate also reads the -o suffix)."
    ),
]
NoTextureOption = Annotated[
    bool, typer.Option("--no-texture", help="Plain colour instead of colours from the photo.")
]

BackendOption = Annotated[
    Backend,
    typer.Option(
        "--backend",
        help="Reconstruction: auto (TripoSR with weights and a GPU, else priors), triposr "
        "(needs weights: --weights or MESHDROP_WEIGHTS; runs on CPU too), priors.",
    ),
]


def job_options(
    preset: Preset, fmt: AssetFormat | None, no_texture: bool, backend: Backend = Backend.AUTO
) -> JobOptions:
    return JobOptions(
        texture=not no_texture, format=fmt or AssetFormat.GLB, preset=preset, backend=backend
    )
