"""``make bench-processes``: one process per photo against one process for all, on 2 photos."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpu_container.meshgen import bench_processes


@pytest.mark.slow  # starts two interpreters: 2-3 s on 2 idle cores, more under load
def test_both_ways_on_two_photos(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_processes.main(["--photos", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    separate, together = report["per_process"], report["one_process"]
    assert report["photos"] == 2 and report["preset"] == "fast"
    assert separate["backend"] == together["backend"] == "priors"
    # The parts the child timed fit inside the wall time the parent saw.
    assert 0 < separate["load_median_s"] + separate["generate_median_s"] <= separate["median_s"]
    assert separate["wall_s"] == pytest.approx(2 * separate["seconds_per_photo"], rel=1e-3)
    assert together["wall_s"] == pytest.approx(2 * together["seconds_per_photo"], rel=1e-3)
    ratio = separate["seconds_per_photo"] / together["seconds_per_photo"]
    assert report["ratio"] == pytest.approx(ratio, abs=0.01)
    assert report["machine"]["cpus"] >= 1


def test_worker_writes_an_asset_and_reports_its_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (photo,) = bench_processes.photo_paths(1)
    out = tmp_path / "one.glb"
    assert bench_processes.main(["--one", str(photo), "--output", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert out.read_bytes()[:4] == b"glTF"
    assert report["backend"] == "priors" and report["load_s"] >= 0 < report["generate_s"]


def test_photos_cycle_the_samples() -> None:
    samples = sorted(bench_processes.SAMPLES.glob("*.jpg"))
    photos = bench_processes.photo_paths(len(samples) + 2)
    assert photos[: len(samples)] == samples and photos[len(samples) :] == samples[:2]


def test_no_photos_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        bench_processes.photo_paths(3, source=tmp_path)
