"""``meshdrop generate``: the generator alone on one photo, no AWS involved."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from meshdrop_contract import AssetFormat, Backend, ExitCode, JobOptions, Preset

if TYPE_CHECKING:
    from gpu_container.meshgen import GenerationResult, Generator

from .options import BackendOption, FormatOption, NoTextureOption, PresetOption, job_options


def _format_for(output: Path, fmt: AssetFormat | None) -> AssetFormat:
    suffix = output.suffix.lower().lstrip(".")
    if fmt is None:
        try:
            return AssetFormat(suffix)
        except ValueError:
            allowed = ", ".join(f".{f.value}" for f in AssetFormat)
            raise typer.BadParameter(
                f"cannot tell the format from {output.name!r} (use {allowed} or --format)",
                param_hint="-o",
            ) from None
    if suffix and suffix != fmt.value:
        raise typer.BadParameter(
            f"--format {fmt.value} does not match the file name {output.name!r}", param_hint="-o"
        )
    return fmt


def generate(
    image: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, readable=True, help="Photo of one object."),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the asset.")],
    preset: PresetOption = Preset.BALANCED,
    fmt: FormatOption = None,
    no_texture: NoTextureOption = False,
    backend: BackendOption = Backend.AUTO,
    thumbnail: Annotated[
        Path | None, typer.Option("--thumbnail", help="Also write a PNG preview here.")
    ] = None,
    weights: Annotated[
        Path | None,
        typer.Option("--weights", exists=True, file_okay=False, help="Model weights folder."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Turn IMAGE into a 3D asset with the generator alone (no AWS, no moto)."""
    options = job_options(preset, _format_for(output, fmt), no_texture, backend)
    # Imported after the arguments are checked: torch takes seconds to import.
    from gpu_container.meshgen import Generator

    started = time.perf_counter()
    with _err().status("loading the generator…"):
        generator = Generator.from_pretrained(str(weights) if weights else None)
    loaded = time.perf_counter()
    result = _run(generator, image, options)
    seconds = time.perf_counter() - loaded
    _write(output, result.data)
    if thumbnail is not None and result.thumbnail_png:
        _write(thumbnail, result.thumbnail_png)
    summary = {
        "output": str(output),
        "format": options.format.value,
        "bytes": len(result.data),
        "faces": result.faces,
        "vertices": result.vertices,
        "seconds": round(seconds, 3),
        "load_seconds": round(loaded - started, 3),
        "timings": result.timings,
        "metrics": result.metrics,
        "provenance": result.provenance.to_dict(),
        "thumbnail": str(thumbnail) if thumbnail is not None and result.thumbnail_png else None,
    }
    if as_json:
        sys.stdout.write(json.dumps(summary, default=str) + "\n")
    else:
        _print_summary(f"{image.name} → {output}", summary)


def _err() -> Console:
    return Console(stderr=True)


def _run(generator: Generator, image: Path, options: JobOptions) -> GenerationResult:
    """The generator on ``image``; bad input and a failed quality gate exit with their codes."""
    from gpu_container.meshgen.errors import BadInputError, QualityError

    err = _err()

    def on_stage(stage: Any, fraction: float) -> None:
        err.print(f"[dim]{fraction:4.0%} {stage}[/dim]")

    try:
        return generator.generate(image.read_bytes(), options, on_stage=on_stage)
    except BadInputError as exc:
        err.print(f"[red]bad input:[/red] {exc}")
        raise typer.Exit(ExitCode.BAD_INPUT) from None
    except QualityError as exc:
        err.print(f"[red]quality gate failed:[/red] {exc}")
        if exc.metrics:
            err.print(exc.metrics)
        raise typer.Exit(ExitCode.QUALITY) from None


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _print_summary(title: str, summary: dict[str, Any]) -> None:
    table = Table(title=title, show_header=False)
    for name, value in summary.items():
        if name in {"timings", "metrics", "provenance"}:
            for k, v in (value or {}).items():
                table.add_row(f"{name}.{k}", _fmt(v))
        else:
            table.add_row(name, _fmt(value))
    Console().print(table)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
