"""``make bench-gpu``'s module runs and reports every stage (on the tiny fixture, CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpu_container.meshgen.models import bench

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "triposr_tiny"


@pytest.mark.slow
def test_bench_reports_seconds_per_stage_and_peak_memory(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["--weights", str(FIXTURE), "--presets", "fast", "--device", "cpu", "--json"]
    assert bench.main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["device"] == "cpu" and report["dtype"] == "float32"
    (row,) = report["presets"]
    assert row["preset"] == "fast" and row["grid"] == 128
    assert set(row["seconds"]) == {"encode", "density", "marching_cubes", "colour"}
    assert all(s >= 0 for s in row["seconds"].values()) and row["faces"] > 0
    assert row["peak_memory_mib"] > 0
