"""``meshdrop cost``: the arithmetic against hand computations, and the prices file itself."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from meshdrop import cost
from meshdrop.cli import app

GPU_TYPES = ("g4dn.xlarge", "g5.xlarge", "g6.xlarge")


def _timing(value: float) -> dict[str, Any]:
    return {"value": value, "source": "estimate"}


def _round_prices() -> dict[str, Any]:
    """Round numbers that make hand computation easy: $3.60 an hour is $0.001 a second."""
    price = {"usd_per_hour": 3.6, "date": "2025-06", "source": "test"}
    return {
        "instances": {"t.xlarge": {"vcpus": 4, "on_demand": price, "spot": price}},
        "ebs_gp3_usd_per_gib_month": {"value": 0.0},
        "requests_per_asset": {"note": "", "items": []},
        "timings": {
            "scale_up_wait_s": _timing(5),
            "instance_boot_s": _timing(10),
            "image_pull_s": _timing(20),
            "idle_before_terminate_s": _timing(30),
            "container_start_s": _timing(1),
            "photo_io_s": _timing(1),
            "backends": {
                "triposr": {
                    "imports_s": _timing(2),
                    "model_load_s": _timing(3),
                    "photo_s": {
                        "source": "estimate",
                        "t.xlarge": {"fast": 4, "balanced": 4, "quality": 4},
                    },
                },
            },
        },
    }


DEPLOYED = {"max_vcpus": 8, "spot": False, "job_vcpus": 4, "root_volume_gib": 100}


def _price(burst: int, photos_per_job: int = 1, **prices: Any) -> cost.Estimate:
    data = _round_prices()
    data["timings"].update({k: _timing(v) for k, v in prices.items()})
    scenario = cost.Scenario(burst, "t.xlarge", "on-demand", photos_per_job)
    return cost.estimate(scenario, data, DEPLOYED)


def test_one_photo_by_hand() -> None:
    # boot 10 + pull 20 + idle 30, one job: start 1 + imports 2 + load 3 + photo 4 + I/O 1.
    result = _price(1)
    assert (result.jobs, result.instances) == (1, 1)
    assert result.billed_instance_s == pytest.approx(71)
    assert result.total_usd == pytest.approx(0.071)
    assert result.usd_per_asset == pytest.approx(0.071)
    assert result.wall_s == pytest.approx(5 + 10 + 20 + 11)  # idle comes after the last asset


def test_ten_photos_on_two_instances_by_hand() -> None:
    # 8 vCPUs / 4 = 2 instances; 10 jobs of 11 s, 5 each: 2 x (60 + 55) s.
    result = _price(10)
    assert (result.jobs, result.instances) == (10, 2)
    assert result.total_usd == pytest.approx(0.230)
    assert result.usd_per_asset == pytest.approx(0.023)
    # Packed 5 per job: 2 jobs of 6 + 5 x 5 = 31 s, one per instance: 2 x (60 + 31) s.
    packed = _price(10, photos_per_job=5)
    assert (packed.jobs, packed.instances) == (2, 2)
    assert packed.total_usd == pytest.approx(0.182)


def test_the_60_second_minimum_is_billed() -> None:
    result = _price(1, instance_boot_s=0, image_pull_s=0, idle_before_terminate_s=0)
    top_up = next(t for t in result.terms if t.name == "60 s minimum top-up")
    assert top_up.seconds == pytest.approx(60 - 11)
    assert result.total_usd == pytest.approx(0.060)


def test_terms_add_up_to_the_total() -> None:
    result = cost.estimate(cost.Scenario(250, photos_per_job=7))
    instance_terms = [t for t in result.terms if t.seconds_each > 0 or "top-up" in t.name]
    assert sum(t.seconds for t in instance_terms) == pytest.approx(result.billed_instance_s)
    per_s = result.usd_per_hour / 3600
    assert sum(t.usd for t in instance_terms) == pytest.approx(result.billed_instance_s * per_s)
    assert result.usd_per_asset == pytest.approx(result.total_usd / 250)


def test_last_job_takes_the_remainder() -> None:
    result = _price(11, photos_per_job=5)
    assert result.jobs == 3
    photo_terms = [t for t in result.terms if t.name in {"generator per photo", "photo I/O"}]
    assert all(t.count == 11 for t in photo_terms)


@pytest.mark.parametrize("instance", GPU_TYPES)
@pytest.mark.parametrize("market", cost.MARKETS)
@pytest.mark.parametrize("burst", [1, 7, 100, 1000])
def test_more_photos_per_job_never_costs_more(instance: str, market: str, burst: int) -> None:
    per_asset = [
        cost.estimate(cost.Scenario(burst, instance, market, k)).usd_per_asset
        for k in (1, 2, 5, 10, 50, 100, 1000)
    ]
    assert all(b <= a + 1e-12 for a, b in itertools.pairwise(per_asset)), per_asset


@pytest.mark.parametrize("instance", GPU_TYPES)
@pytest.mark.parametrize("photos_per_job", [1, 50])
def test_spot_costs_less_than_on_demand(instance: str, photos_per_job: int) -> None:
    for burst in (1, 100, 10_000):
        spot = cost.estimate(cost.Scenario(burst, instance, "spot", photos_per_job))
        on_demand = cost.estimate(cost.Scenario(burst, instance, "on-demand", photos_per_job))
        assert spot.usd_per_asset < on_demand.usd_per_asset


def test_compute_environment_split_follows_the_stack() -> None:
    # The same halving as infra.compute.vcpu_split (Spot takes the odd vCPU).
    assert cost.market_vcpus(32, True, "spot") == cost.market_vcpus(32, True, "on-demand") == 16
    assert (cost.market_vcpus(33, True, "spot"), cost.market_vcpus(33, True, "on-demand")) == (
        17,
        16,
    )
    assert cost.market_vcpus(32, False, "on-demand") == 32


def test_deployment_reads_cdk_json(tmp_path: Path) -> None:
    cdk = tmp_path / "cdk.json"
    cdk.write_text(json.dumps({"context": {"meshdrop:max_vcpus": 64, "meshdrop:spot": False}}))
    deployed = cost.deployment(cdk)
    assert deployed["max_vcpus"] == 64 and deployed["spot"] is False
    assert deployed["job_vcpus"] == cost.DEPLOYMENT_DEFAULTS["job_vcpus"]
    assert cost.deployment(tmp_path / "missing.json") == cost.DEPLOYMENT_DEFAULTS


def test_prices_file_dates_and_sources_every_price() -> None:
    prices = cost.load_prices()
    assert set(GPU_TYPES) <= set(prices["instances"])
    for name, spec in prices["instances"].items():
        for market in ("on_demand", "spot"):
            entry = spec[market]
            assert entry["usd_per_hour"] > 0, name
            assert entry["date"] and entry["source"].startswith("https://"), (name, market)
        assert spec["spot"]["usd_per_hour"] < spec["on_demand"]["usd_per_hour"], name
    assert prices["ebs_gp3_usd_per_gib_month"]["date"]
    assert prices["requests_per_asset"]["date"]


def test_every_timing_says_where_it_comes_from() -> None:
    timings = cost.load_prices()["timings"]
    backends = timings.pop("backends")
    entries = list(timings.values())
    for backend in backends.values():
        entries += [backend["imports_s"], backend["model_load_s"], backend["photo_s"]]
    assert entries and all(e["source"] in {"measured", "estimate"} for e in entries)
    for preset in cost.PRESETS:
        for instance in GPU_TYPES:
            assert cost.photo_seconds(cost.load_prices(), "triposr", instance, preset) > 0


def test_unknown_instance_is_an_error() -> None:
    with pytest.raises(ValueError, match="no price for"):
        cost.estimate(cost.Scenario(1, "x9.huge"))


def test_scenario_is_validated() -> None:
    with pytest.raises(ValueError):
        cost.Scenario(0)
    with pytest.raises(ValueError):
        cost.Scenario(1, market="reserved")


def test_cli_prints_every_term_as_json() -> None:
    result = CliRunner().invoke(app, ["cost", "--burst", "40", "-k", "10", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["jobs"] == 4 and report["scenario"]["photos_per_job"] == 10
    assert report["usd_per_asset"] == pytest.approx(report["total_usd"] / 40, abs=1e-6)
    names = {t["name"] for t in report["terms"]}
    assert {"instance boot", "image pull", "model load", "generator per photo"} <= names


def test_cli_compare_and_table() -> None:
    runner = CliRunner()
    table = runner.invoke(app, ["cost", "--burst", "3"])
    assert table.exit_code == 0 and "per asset: $" in table.output
    grid = runner.invoke(app, ["cost", "--compare", "--json"])
    assert grid.exit_code == 0
    rows = json.loads(grid.output)
    assert len(rows) == 3 * 3 * 2 * 2  # bursts x instance types x markets x photos per job
    bad = runner.invoke(app, ["cost", "--instance", "x9.huge"])
    assert bad.exit_code == 2


def test_a_lone_photo_waits_at_most_the_deployed_batching_window() -> None:
    from meshdrop.bench import lone_photo_bound
    from meshdrop.cost import deployment

    settings = deployment()
    bound = lone_photo_bound(50.0)
    assert bound["pack_size"] == settings["pack_size"] > 1
    assert bound["at_most_ms"] == 50.0 + 1000.0 * settings["pack_wait_seconds"]
