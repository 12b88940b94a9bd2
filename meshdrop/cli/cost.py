"""``meshdrop cost``: what a burst of uploads costs on AWS Batch, per asset, term by term."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from meshdrop_contract import Preset


class Market(StrEnum):
    SPOT = "spot"
    ON_DEMAND = "on-demand"


class CostBackend(StrEnum):
    TRIPOSR = "triposr"
    PRIORS = "priors"


def cost(
    burst: Annotated[
        int, typer.Option("--burst", "-n", min=1, help="Photos uploaded at once.")
    ] = 100,
    instance: Annotated[
        str, typer.Option("--instance", "-i", help="EC2 type: g4dn.xlarge, g5.xlarge, g6.xlarge…")
    ] = "g5.xlarge",
    market: Annotated[Market, typer.Option("--market", help="Spot or on-demand prices.")] = (
        Market.SPOT
    ),
    photos_per_job: Annotated[
        int,
        typer.Option("--photos-per-job", "-k", min=1, help="Photos per Batch job (1: today)."),
    ] = 1,
    preset: Annotated[Preset, typer.Option("--preset", "-p", help="Quality preset.")] = (
        Preset.BALANCED
    ),
    backend: Annotated[
        CostBackend,
        typer.Option("--backend", help="triposr (learned model on the GPU) or priors (CPU)."),
    ] = CostBackend.TRIPOSR,
    max_vcpus: Annotated[
        int | None,
        typer.Option(
            "--max-vcpus",
            min=1,
            help="vCPUs the market's compute environment may run (default: the deployed share "
            "of cdk.json's meshdrop:max_vcpus).",
        ),
    ] = None,
    compare: Annotated[
        bool,
        typer.Option(
            "--compare",
            help="Bursts of 1, 100 and 10 000 on g4dn/g5/g6, spot and on-demand, at 1 and "
            "--photos-per-job (50 unless given) photos per job: one line each.",
        ),
    ] = False,
    prices: Annotated[
        Path | None,
        typer.Option("--prices", exists=True, dir_okay=False, help="Another prices file."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Estimate the cost per asset of a burst of uploads, with every term of the bill."""
    from meshdrop import cost as model

    data = model.load_prices(prices) if prices else model.load_prices()
    try:
        if compare:
            packed = photos_per_job if photos_per_job > 1 else 50
            results = model.compare(
                photos_per_job=(1, packed),
                preset=preset.value,
                backend=backend.value,
                prices=data,
            )
            if as_json:
                typer.echo(json.dumps([r.to_dict() for r in results]))
            else:
                typer.echo(model.render_compare(results))
            return
        scenario = model.Scenario(
            burst, instance, market.value, photos_per_job, preset.value, backend.value, max_vcpus
        )
        result = model.estimate(scenario, data)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(result.to_dict()) if as_json else model.render(result))


def register(app: typer.Typer) -> None:
    app.command("cost")(cost)
