"""The burst harness of ``make bench``: many uploads through the local ingest, no generator."""

from __future__ import annotations

from pathlib import Path

from meshdrop.bench import bench_burst


def test_a_burst_of_20_submits_each_job_once(tmp_path: Path) -> None:
    burst = bench_burst(20, tmp_path)

    assert burst["uploads"] == 20
    assert burst["jobs_submitted_state"] == burst["job_records"] == 20
    assert burst["batch_jobs"] == 20 and burst["duplicates"] == 0
    assert burst["seconds_to_all_submitted"] is not None
    # One SubmitJob per upload, and the ingest function's calls are all counted.
    assert burst["aws_calls"]["batch.SubmitJob"] == 20
    assert burst["aws_calls_per_upload"] == sum(burst["aws_calls"].values()) / 20


def test_a_burst_of_40_in_packs_of_10_puts_each_photo_in_one_pack(tmp_path: Path) -> None:
    burst = bench_burst(40, tmp_path, pack_size=10)

    assert burst["jobs_submitted_state"] == burst["job_records"] == 40
    assert burst["photos_in_batch_jobs"] == 40 and burst["duplicates"] == 0
    # ⌈40/10⌉ packs, give or take a partial pack where a batch came short of ten messages.
    assert burst["batch_jobs"] == burst["packs"] == burst["aws_calls"]["batch.SubmitJob"]
    assert 4 <= burst["packs"] <= 8, burst["packs"]
