"""Pipeline benchmark on the embedded AWS (``make bench`` / ``python -m meshdrop.bench``).

Prints, never asserts:

* ingest handler milliseconds per record (p50/p95), one record per invocation;
* drop -> SUBMITTED latency (p50/p95): from ``PutObject`` until the job record says SUBMITTED,
  with the ingest queue pumped as fast as it delivers (the goal is <= 200 ms p50);
* end-to-end seconds per job through the whole local pipeline (generator on this CPU).

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

from meshdrop_contract import JobOptions, JobState, Preset

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
            for message in messages:
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


def main(argv: Sequence[str] | None = None) -> int:
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
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="meshdrop-bench-") as tmp:
        work = Path(tmp)
        timer = CallTimer()
        timer.install()
        ingest = bench_ingest(args.records, work, timer)
        submitted = bench_submitted(args.drops, work)
        e2e = bench_end_to_end(args.photos, args.preset, work) if args.photos else None
    results["ingest_ms_per_record"] = {
        "n": len(ingest),
        "p50": round(percentile(ingest, 50), 2),
        "p95": round(percentile(ingest, 95), 2),
    }
    per_record = max(len(ingest), 1)
    results["ingest_aws_calls_per_record"] = {
        name: {"calls": round(len(ms) / per_record, 2), "mean_ms": round(statistics.fmean(ms), 2)}
        for name, ms in sorted(timer.calls.items(), key=lambda kv: -sum(kv[1]))
    }
    results["drop_to_submitted_ms"] = {
        "n": len(submitted),
        "p50": round(percentile(submitted, 50), 2),
        "p95": round(percentile(submitted, 95), 2),
        "goal_p50": GOAL_SUBMITTED_P50_MS,
    }
    results["end_to_end"] = e2e
    if args.json:
        print(json.dumps(results))
        return 0
    i, s = results["ingest_ms_per_record"], results["drop_to_submitted_ms"]
    verdict = "meets" if s["p50"] <= GOAL_SUBMITTED_P50_MS else "MISSES"
    print(f"ingest handler    : p50 {i['p50']:8.1f} ms  p95 {i['p95']:8.1f} ms  ({i['n']} records)")
    for name, call in results["ingest_aws_calls_per_record"].items():
        print(f"  {name:<28}: {call['calls']:4.1f} call(s)/record, {call['mean_ms']:6.1f} ms each")
    print(
        f"drop -> SUBMITTED : p50 {s['p50']:8.1f} ms  p95 {s['p95']:8.1f} ms  ({s['n']} drops; "
        f"{verdict} the {GOAL_SUBMITTED_P50_MS:.0f} ms p50 goal)"
    )
    if e2e:
        for job in e2e["jobs"]:
            print(f"end to end        : {job['file']:<20} {job['status']:<10} {job['seconds']} s")
        print(f"end to end wall   : {e2e['wall_seconds']} s for {len(e2e['jobs'])} job(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
