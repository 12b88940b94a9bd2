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


BurstOption = Annotated[int, typer.Option("--burst", "-n", min=1, help="Photos uploaded at once.")]
InstanceOption = Annotated[
    str, typer.Option("--instance", "-i", help="EC2 type: g4dn.xlarge, g5.xlarge, g6.xlarge…")
]
MarketOption = Annotated[Market, typer.Option("--market", help="Spot or on-demand prices.")]
PhotosPerJobOption = Annotated[
    int, typer.Option("--photos-per-job", "-k", min=1, help="Photos per Batch job (1: today).")
]
CostPresetOption = Annotated[Preset, typer.Option("--preset", "-p", help="Quality preset.")]
CostBackendOption = Annotated[
    CostBackend,
    typer.Option("--backend", help="triposr (learned model on the GPU) or priors (CPU)."),
]
MaxVcpusOption = Annotated[
    int | None,
    typer.Option(
        "--max-vcpus",
        min=1,
        help="vCPUs the market's compute environment may run (default: the deployed share "
        "of cdk.json's meshdrop:max_vcpus).",
    ),
]
CompareOption = Annotated[
    bool,
    typer.Option(
        "--compare",
        help="Bursts of 1, 100 and 10 000 on g4dn/g5/g6, spot and on-demand, at 1 and "
        "--photos-per-job (50 unless given) photos per job: one line each.",
    ),
]
PricesOption = Annotated[
    Path | None, typer.Option("--prices", exists=True, dir_okay=False, help="Another prices file.")
]


def cost(
    burst: BurstOption = 100,
    instance: InstanceOption = "g5.xlarge",
    market: MarketOption = Market.SPOT,
    photos_per_job: PhotosPerJobOption = 1,
    preset: CostPresetOption = Preset.BALANCED,
    backend: CostBackendOption = CostBackend.TRIPOSR,
    max_vcpus: MaxVcpusOption = None,
    compare: CompareOption = False,
    prices: PricesOption = None,
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
            text = model.render_compare(results)
            typer.echo(json.dumps([r.to_dict() for r in results]) if as_json else text)
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
