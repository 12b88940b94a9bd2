"""Pipeline benchmark on the embedded AWS (``make bench`` / ``python -m meshdrop.bench``).

Prints, never asserts:

* ingest handler milliseconds per record (p50/p95), one record per invocation;
* drop -> SUBMITTED latency (p50/p95): from ``PutObject`` until the job record says SUBMITTED,
  with the ingest queue pumped as fast as it delivers (the goal is <= 200 ms p50);
* end-to-end seconds per job through the whole local pipeline (generator on this CPU);
* a burst (``--burst N``, default 1000 uploads) through the ingest function alone, no
  generator: seconds until every job is SUBMITTED, Batch jobs submitted, duplicates (Batch
  jobs beyond one per job id; must be 0) and the AWS calls the ingest function makes per upload.

Numbers from moto on a laptop say where time goes, not what AWS will do: on AWS the SQS
event source mapping adds its polling delay and Batch adds instance start-up.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from meshdrop_contract import (
    JobOptions,
    JobState,
    Preset,
    is_pack_job_name,
    job_id_from_batch_job_name,
    pack_job_ids,
)
from meshdrop_contract.jobs import GSI_BY_SOURCE_PK, GSI_BY_STATE_PK

REPO_ROOT = Path(__file__).resolve().parents[1]
GOAL_SUBMITTED_P50_MS = 200.0


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return float(values[0])
    return float(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1])


def _photo(i: int) -> bytes:
    """A distinct small JPEG per ``i`` (distinct bytes: no content reuse between jobs)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (160, 120), (236, 236, 238))
    draw = ImageDraw.Draw(image)
    shade = (40 + (i * 37) % 180, 80 + (i * 53) % 150, 120)
    draw.ellipse((40 + i % 20, 20, 120 - i % 7, 100), fill=shade)
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90)
    return buf.getvalue()


class CallTimer:
    """Counts and times every AWS API call made through boto3's default session.

    Registered before the handlers create their clients, so their calls are included: it
    shows which calls a record costs, which is what the latency is made of.
    """

    def __init__(self) -> None:
        self.calls: dict[str, list[float]] = {}
        self.enabled = False

    def install(self) -> None:
        import boto3

        # The hooks go on the default session, which every boto3.client() call shares.
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        session = boto3.DEFAULT_SESSION
        assert session is not None
        events = session.events
        events.register("before-call.*.*", self._before)
        events.register("after-call.*.*", self._after)

    def uninstall(self) -> None:
        """Remove the hooks (clients created while installed keep their copy)."""
        import boto3

        if boto3.DEFAULT_SESSION is not None:
            events = boto3.DEFAULT_SESSION.events
            events.unregister("before-call.*.*", self._before)
            events.unregister("after-call.*.*", self._after)

    def _before(self, context: dict[str, Any], **_: Any) -> None:
        context["meshdrop_started"] = time.perf_counter()

    def _after(self, context: dict[str, Any], model: Any, **_: Any) -> None:
        started = context.get("meshdrop_started")
        if self.enabled and started is not None:
            name = f"{model.service_model.service_name}.{model.name}"
            self.calls.setdefault(name, []).append((time.perf_counter() - started) * 1000)


def bench_ingest(records: int, work: Path, timer: CallTimer | None = None) -> list[float]:
    """Milliseconds the ingest handler takes per record (one-record SQS events)."""
    from meshdrop.local.pipeline import LocalPipeline

    timings: list[float] = []
    with LocalPipeline(work_dir=work / "ingest") as pipeline:
        assert pipeline.resources is not None
        for i in range(records):
            path = work / f"ingest-{i}.jpg"
            path.write_bytes(_photo(i))
            pipeline.upload(path, JobOptions(preset=Preset.FAST))
        pump = pipeline.ingest_pump
        handler = pump._handler
        pending = records
        while pending > 0:
            messages: list[dict[str, Any]] = pipeline.sqs.receive_message(  # type: ignore[assignment]
                QueueUrl=pipeline.resources.ingest_queue_url,
                MaxNumberOfMessages=10,
                AttributeNames=["All"],
                WaitTimeSeconds=1,
            ).get("Messages", [])
            if not messages:
                break
            for raw in messages:
                message: dict[str, Any] = dict(raw)  # the pump takes the plain SQS shape
                event = {"Records": [pump._record(message)]}
                if timer is not None:
                    timer.enabled = True
                started = time.perf_counter()
                response = handler(event, pump._context.fresh())
                timings.append((time.perf_counter() - started) * 1000)
                if timer is not None:
                    timer.enabled = False
                if not (response or {}).get("batchItemFailures"):
                    pipeline.sqs.delete_message(
                        QueueUrl=pipeline.resources.ingest_queue_url,
                        ReceiptHandle=message["ReceiptHandle"],
                    )
                pending -= 1
    return timings


def bench_submitted(drops: int, work: Path) -> list[float]:
    """Milliseconds from PutObject to a SUBMITTED job record, one upload at a time."""
    from meshdrop.local.pipeline import LocalPipeline

    latencies: list[float] = []
    with LocalPipeline(work_dir=work / "submit") as pipeline:
        for i in range(drops):
            path = work / f"drop-{i}.jpg"
            path.write_bytes(_photo(1000 + i))
            started = time.perf_counter()
            key = pipeline.upload(path, JobOptions(preset=Preset.FAST))
            deadline = started + 30
            while time.perf_counter() < deadline:
                pipeline.ingest_pump.pump_once()
                record = pipeline.record_for(key)
                if record and record.get("state") != JobState.ACCEPTED:
                    if record.get("state") == JobState.SUBMITTED:
                        latencies.append((time.perf_counter() - started) * 1000)
                    break
    return latencies


def _burst_photo(base: bytes, i: int) -> bytes:
    """``base`` made distinct by a JPEG comment: same pixels, another SHA-256.

    Identical bytes would be the same upload to the ingest function (asset reuse), and a
    burst of reused assets would submit no jobs at all.
    """
    from PIL import Image

    buf = io.BytesIO()
    Image.open(io.BytesIO(base)).save(buf, "JPEG", quality=90, comment=f"burst {i}".encode())
    return buf.getvalue()


def _drain_ingest(pipeline: Any, timer: CallTimer) -> None:
    """Pump the ingest queue, as the event source mapping would, until it stays empty."""
    assert pipeline.resources is not None
    timer.enabled = True
    try:
        empty_polls = 0
        while empty_polls < 2:  # a second empty look: moto delivers notifications at once
            empty_polls = empty_polls + 1 if pipeline.ingest_pump.pump_once() == 0 else 0
    finally:
        timer.enabled = False


def _job_states(pipeline: Any) -> dict[str, str]:
    """Source key -> state of every job record (one paginated scan)."""
    states: dict[str, str] = {}
    kwargs: dict[str, Any] = {}
    while True:
        page = pipeline.table.scan(**kwargs)
        for item in page.get("Items", []):
            states[str(item.get(GSI_BY_SOURCE_PK))] = str(item.get(GSI_BY_STATE_PK))
        if "LastEvaluatedKey" not in page:
            return states
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _batch_jobs(pipeline: Any) -> list[dict[str, Any]]:
    """Every Batch job of the queue, any status, described (name and parameters)."""
    import boto3

    assert pipeline.resources is not None
    # A session of its own: these listing calls must not count as the ingest function's.
    batch = boto3.Session().client("batch")
    seen: list[str] = []
    for status in (
        "SUBMITTED",
        "PENDING",
        "RUNNABLE",
        "STARTING",
        "RUNNING",
        "SUCCEEDED",
        "FAILED",
    ):
        pages = batch.get_paginator("list_jobs").paginate(
            jobQueue=pipeline.resources.job_queue_arn, jobStatus=status
        )
        for page in pages:
            # A job moving state between pages counts once.
            seen += [j["jobId"] for j in page.get("jobSummaryList", []) if j["jobId"] not in seen]
    jobs: list[dict[str, Any]] = []
    for start in range(0, len(seen), 100):
        jobs += [dict(j) for j in batch.describe_jobs(jobs=seen[start : start + 100])["jobs"]]
    return jobs


def _batch_jobs_per_photo(jobs: list[dict[str, Any]]) -> dict[str, int]:
    """Job id -> how many Batch jobs carry the photo (alone, or in a pack)."""
    counts: dict[str, int] = {}
    for job in jobs:
        name = str(job.get("jobName", ""))
        alone = job_id_from_batch_job_name(name) or name
        members = pack_job_ids(job.get("parameters")) if is_pack_job_name(name) else [alone]
        for member in members:
            counts[member] = counts.get(member, 0) + 1
    return counts


def bench_burst(uploads: int, work: Path, pack_size: int = 1) -> dict[str, Any]:
    """``uploads`` photos dropped at once, then the ingest queue drained; no generator runs.

    With ``pack_size`` > 1 the ingest function packs the photos of each batch (the batch
    holds up to ``max(10, pack_size)`` messages, as the event source mapping is sized).

    Uploads are sequential PutObjects and the ingest function runs one batch of 10 at a time
    in this process, so the seconds are this machine's throughput, not AWS's (where uploads
    are parallel and the function runs up to its reserved concurrency at once).
    """
    from meshdrop.local.pipeline import LocalPipeline

    timer = CallTimer()
    timer.install()  # before the pipeline starts, so the handlers' new clients carry the hook
    base = _photo(7)
    photos = []
    for i in range(uploads):
        path = work / f"burst-{i}.jpg"
        path.write_bytes(_burst_photo(base, i))
        photos.append(path)
    try:
        with LocalPipeline(work_dir=work / "burst", pack_size=pack_size) as pipeline:
            started = time.perf_counter()
            keys = [pipeline.upload(p, JobOptions(preset=Preset.FAST)) for p in photos]
            uploaded = time.perf_counter()
            _drain_ingest(pipeline, timer)
            drained = time.perf_counter()
            states = _job_states(pipeline)
            jobs = _batch_jobs(pipeline)
    finally:
        timer.uninstall()
    submitted = sum(1 for k in keys if states.get(k) == JobState.SUBMITTED)
    per_photo = _batch_jobs_per_photo(jobs)
    calls = {name: len(ms) for name, ms in timer.calls.items()}
    return {
        "uploads": uploads,
        "upload_s": round(uploaded - started, 2),
        "ingest_drain_s": round(drained - uploaded, 2),
        "seconds_to_all_submitted": round(drained - started, 2) if submitted == uploads else None,
        "jobs_submitted_state": submitted,
        "job_records": len(states),
        "pack_size": pack_size,
        "batch_jobs": len(jobs),
        "packs": sum(is_pack_job_name(str(j.get("jobName", ""))) for j in jobs),
        "photos_in_batch_jobs": len(per_photo),
        "duplicates": sum(n - 1 for n in per_photo.values() if n > 1),
        "aws_calls_per_upload": round(sum(calls.values()) / max(uploads, 1), 2),
        "aws_calls": dict(sorted(calls.items(), key=lambda kv: -kv[1])),
    }


def bench_end_to_end(photos: Sequence[Path], preset: Preset, work: Path) -> dict[str, Any]:
    """Seconds per job (upload to terminal) and the wall time for all of them."""
    from meshdrop.local.pipeline import run_local

    summary = run_local(photos, work / "e2e-out", options=JobOptions(preset=preset))
    return {
        "jobs": [
            {"file": Path(r.file).name, "status": r.status, "seconds": r.seconds}
            for r in summary.reports
        ],
        "wall_seconds": summary.wall_seconds,
    }


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, default=50, help="ingest records to time")
    parser.add_argument("--drops", type=int, default=20, help="uploads for drop -> SUBMITTED")
    parser.add_argument(
        "--photos",
        type=Path,
        nargs="*",
        default=sorted((REPO_ROOT / "samples").glob("*.jpg"))[:2],
        help="photos for the end-to-end run (default: two samples)",
    )
    parser.add_argument("--preset", type=Preset, default=Preset.FAST)
    parser.add_argument(
        "--burst", type=int, default=1000, help="uploads in the ingest burst (0: skip it)"
    )
    parser.add_argument(
        "--pack-size", type=int, default=10, help="photos per Batch job in the burst (1: none)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    with tempfile.TemporaryDirectory(prefix="meshdrop-bench-") as tmp:
        work = Path(tmp)
        timer = CallTimer()
        timer.install()
        ingest = bench_ingest(args.records, work, timer)
        submitted = bench_submitted(args.drops, work)
        e2e = bench_end_to_end(args.photos, args.preset, work) if args.photos else None
        burst = bench_burst(args.burst, work, args.pack_size) if args.burst > 0 else None
    results = _results(ingest, timer, submitted)
    results["lone_photo_with_packs"] = lone_photo_bound(results["drop_to_submitted_ms"]["p50"])
    results["end_to_end"] = e2e
    results["burst"] = burst
    if args.json:
        print(json.dumps(results))
        return 0
    _print_results(results)
    return 0


def _results(ingest: list[float], timer: CallTimer, submitted: list[float]) -> dict[str, Any]:
    per_record = max(len(ingest), 1)
    return {
        "ingest_ms_per_record": {
            "n": len(ingest),
            "p50": round(percentile(ingest, 50), 2),
            "p95": round(percentile(ingest, 95), 2),
        },
        "ingest_aws_calls_per_record": {
            name: {
                "calls": round(len(ms) / per_record, 2),
                "mean_ms": round(statistics.fmean(ms), 2),
            }
            for name, ms in sorted(timer.calls.items(), key=lambda kv: -sum(kv[1]))
        },
        "drop_to_submitted_ms": {
            "n": len(submitted),
            "p50": round(percentile(submitted, 50), 2),
            "p95": round(percentile(submitted, 95), 2),
            "goal_p50": GOAL_SUBMITTED_P50_MS,
        },
    }


def lone_photo_bound(p50_ms: float) -> dict[str, Any]:
    """A lone upload with the deployed packs: the ingest event source holds it for at most
    ``pack_wait_seconds`` waiting for company (an SQS batching window moto does not have), then
    it goes the way measured above."""
    from meshdrop.cost import deployment

    settings = deployment()
    wait_s = float(settings["pack_wait_seconds"]) if int(settings["pack_size"]) > 1 else 0.0
    return {
        "pack_size": int(settings["pack_size"]),
        "pack_wait_seconds": wait_s,
        "at_most_ms": round(p50_ms + 1000.0 * wait_s, 1),
    }


def _print_results(results: dict[str, Any]) -> None:
    i, s = results["ingest_ms_per_record"], results["drop_to_submitted_ms"]
    verdict = "meets" if s["p50"] <= GOAL_SUBMITTED_P50_MS else "MISSES"
    print(f"ingest handler    : p50 {i['p50']:8.1f} ms  p95 {i['p95']:8.1f} ms  ({i['n']} records)")
    for name, call in results["ingest_aws_calls_per_record"].items():
        print(f"  {name:<28}: {call['calls']:4.1f} call(s)/record, {call['mean_ms']:6.1f} ms each")
    print(
        f"drop -> SUBMITTED : p50 {s['p50']:8.1f} ms  p95 {s['p95']:8.1f} ms  ({s['n']} drops; "
        f"{verdict} the {GOAL_SUBMITTED_P50_MS:.0f} ms p50 goal)"
    )
    lone = results["lone_photo_with_packs"]
    print(
        f"lone photo, packs : drop -> SUBMITTED at most {lone['at_most_ms']:.0f} ms (p50 + the "
        f"{lone['pack_wait_seconds']:g} s batching window of pack_size {lone['pack_size']})"
    )
    e2e = results["end_to_end"]
    if e2e:
        for job in e2e["jobs"]:
            print(f"end to end        : {job['file']:<20} {job['status']:<10} {job['seconds']} s")
        print(f"end to end wall   : {e2e['wall_seconds']} s for {len(e2e['jobs'])} job(s)")
    if results["burst"]:
        _print_burst(results["burst"])


def _print_burst(burst: dict[str, Any]) -> None:
    print(
        f"burst             : {burst['uploads']} uploads in {burst['upload_s']} s, ingest drained "
        f"in {burst['ingest_drain_s']} s; all SUBMITTED after {burst['seconds_to_all_submitted']} s"
    )
    print(
        f"  jobs SUBMITTED {burst['jobs_submitted_state']}, Batch jobs {burst['batch_jobs']} "
        f"({burst['packs']} packs of up to {burst['pack_size']}), duplicates "
        f"{burst['duplicates']}, AWS calls per upload {burst['aws_calls_per_upload']}"
    )
    for name, count in burst["aws_calls"].items():
        print(f"  {name:<28}: {count / max(burst['uploads'], 1):4.2f} call(s)/upload")


if __name__ == "__main__":
    sys.exit(main())
