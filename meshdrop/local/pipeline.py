"""The whole pipeline on the embedded AWS: upload, pump, run, report, download.

:class:`LocalPipeline` wires the pieces together; the ``meshdrop local run`` command, the
end-to-end test and the benchmark all drive it.
"""

from __future__ import annotations

import mimetypes
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import boto3
from boto3.dynamodb.conditions import Key

from meshdrop.gallery import GalleryEntry, write_gallery
from meshdrop_contract import (
    ASSET_PREFIX,
    TERMINAL_STATES,
    Category,
    InvalidKeyError,
    JobOptions,
    JobState,
    is_pack_job_name,
    source_key_for,
)
from meshdrop_contract.jobs import GSI_BY_SOURCE, GSI_BY_SOURCE_PK, TABLE_PK, from_dynamo
from meshdrop_contract.wiring import ENV_PACK_SIZE

from .pumps import IngestPump, StatePump, load_handlers, reset_lambda_caches
from .reconcile import reconcile_once
from .resources import LocalResources, ResourceNames, create_resources
from .runner import BatchRunner
from .server import LocalAws, local_aws

if TYPE_CHECKING:
    from lambdas.reconcile.service import ReconcileReport

#: Seconds a source may stay without a job record once every queue is idle before the run
#: gives up on it (the ingest function dropped it, for example to the dead-letter queue).
ORPHAN_GRACE_S = 5.0
#: Reconcile passes one local run may make when it goes idle with jobs not yet terminal.
MAX_RECONCILE_PASSES = 3
#: How far ahead the local reconciler's clock runs: nothing else will move an idle local
#: stack, so every non-terminal record counts as stuck at once.
RECONCILE_CLOCK_OFFSET_S = 10 * 86_400.0
#: Statuses a report does not leave: the pipeline's terminal states and local verdicts.
UNKNOWN = "UNKNOWN"
TIMED_OUT = "TIMED_OUT"
_FINAL_STATUSES = frozenset({*(s.value for s in TERMINAL_STATES), UNKNOWN, TIMED_OUT})


@dataclass
class JobReport:
    """How one uploaded file ended."""

    key: str
    file: str
    status: str
    asset_key: str | None = None
    error: str | None = None
    seconds: float | None = None
    job_id: str | None = None
    error_kind: str | None = None
    thumbnail_key: str | None = None
    faces: int | None = None
    vertices: int | None = None
    attempts: int | None = None
    local_asset: str | None = None
    local_thumbnail: str | None = None
    stage: str | None = None
    progress: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def terminal(self) -> bool:
        return self.status in _FINAL_STATUSES


@dataclass
class Upload:
    file: Path
    key: str
    version_id: str | None
    uploaded_at: float  # perf_counter
    report: JobReport
    first_seen_idle: float | None = None
    submitted_at: float | None = None


@dataclass
class RunSummary:
    reports: list[JobReport]
    notifications: list[dict[str, Any]] = field(default_factory=list)
    wall_seconds: float = 0.0
    gallery: Path | None = None
    #: Batch jobs the runner ran, and how many of them were packs (several photos each).
    batch_jobs: int = 0
    packs: int = 0


class LocalPipeline:
    """The pipeline on a moto server, with the real handlers and generator.

    Use as a context manager; on exit it stops the job runner, restores the environment
    variables it changed and forgets the handler modules it imported.

    Parameters
    ----------
    names
        Resource names (default prefix ``meshdrop-local``).
    work_dir
        Where job logs go (default: a temporary directory).
    concurrency
        Generator jobs run at once.
    lambda_env
        Extra environment for the handlers (for example ``MAX_IMAGE_BYTES``).
    pack_size
        Photos per Batch job, as the deployed ``pack_size`` setting: each ingest batch (up to
        this many messages) goes to Batch in packs, one generator process per pack.
    """

    def __init__(
        self,
        *,
        names: ResourceNames | None = None,
        work_dir: Path | None = None,
        concurrency: int = 1,
        lambda_env: Mapping[str, str] | None = None,
        job_env: Mapping[str, str] | None = None,
        pack_size: int = 1,
    ) -> None:
        self._names = names or ResourceNames()
        self._pack_size = max(1, pack_size)
        self._work_dir_obj: tempfile.TemporaryDirectory[str] | None = None
        if work_dir is None:
            self._work_dir_obj = tempfile.TemporaryDirectory(prefix="meshdrop-local-")
            work_dir = Path(self._work_dir_obj.name)
        self.work_dir = work_dir
        self._concurrency = concurrency
        self._lambda_env = dict(lambda_env or {})
        self._job_env = dict(job_env or {})
        self._saved_env: dict[str, str | None] = {}
        self.uploads: dict[str, Upload] = {}
        self.notifications: list[dict[str, Any]] = []
        self.aws: LocalAws | None = None
        self.resources: LocalResources | None = None
        #: Every reconcile pass this pipeline made (what it found and did).
        self.reconcile_reports: list[ReconcileReport] = []

    # -- lifecycle ---------------------------------------------------------------------------

    def _set_env(self, values: Mapping[str, str]) -> None:
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    def start(self) -> LocalPipeline:
        aws = local_aws()
        self._set_env(aws.env)
        aws.reset()
        self.aws = aws
        session = boto3.Session()
        self.resources = res = create_resources(self._names, session=session)
        env = {**res.lambda_env(), ENV_PACK_SIZE: str(self._pack_size), **self._lambda_env}
        self._set_env(env)
        ingest, state = load_handlers(env)
        #: The real handler functions, for callers that invoke them directly (replay).
        self.ingest_handler: Callable[[dict[str, Any], Any], Any] = ingest.lambda_handler
        self.state_handler: Callable[[dict[str, Any], Any], Any] = state.lambda_handler
        self.s3 = session.client("s3")
        self.sqs = session.client("sqs")
        self.batch = session.client("batch")
        self.table = session.resource("dynamodb").Table(res.table)
        self.ingest_pump = IngestPump(
            self.sqs,
            res.ingest_queue_url,
            res.ingest_queue_arn,
            ingest.lambda_handler,
            batch_size=max(10, self._pack_size),
        )
        self.state_pump = StatePump(self.sqs, res.state_queue_url, state.lambda_handler)
        self.runner = BatchRunner(
            session.client("batch"),
            session.client("events"),
            res.job_queue_arn,
            base_env={**aws.env, **self._job_env},
            log_dir=self.work_dir / "logs",
            concurrency=self._concurrency,
        )
        self._drain_test_event()
        return self

    def close(self) -> None:
        runner = getattr(self, "runner", None)
        if runner is not None:
            runner.shutdown()
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()
        reset_lambda_caches()  # no cached client may outlive this run's endpoint
        if self._work_dir_obj is not None:
            self._work_dir_obj.cleanup()

    def __enter__(self) -> LocalPipeline:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _drain_test_event(self) -> None:
        # S3 sends s3:TestEvent when the notification is configured; the ingest function must
        # (and does, on AWS) skip it. Deliver it now so that it never counts as a job.
        self.ingest_pump.pump_once()

    # -- uploads -----------------------------------------------------------------------------

    def upload(
        self,
        file: Path,
        options: JobOptions | None = None,
        *,
        name: str | None = None,
        category: Category = Category.UPLOADED,
    ) -> str:
        """Upload ``file`` as a new photo (options as object metadata); its source key."""
        assert self.resources is not None, "start() first"
        key = source_key_for(category, name or file.name)
        content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        started = time.perf_counter()
        response = self.s3.put_object(
            Bucket=self.resources.bucket,
            Key=key,
            Body=file.read_bytes(),
            ContentType=content_type,
            Metadata=(options or JobOptions()).to_metadata(),
        )
        self.uploads[key] = Upload(
            file=file,
            key=key,
            version_id=response.get("VersionId"),
            uploaded_at=started,
            report=JobReport(key=key, file=str(file), status="UPLOADED"),
        )
        return key

    def add_file(
        self, file: Path, options: JobOptions | None = None, *, name: str | None = None
    ) -> JobReport:
        """Upload ``file``, or give it a REJECTED row saying why it cannot be a job.

        One bad path (missing, a directory, unreadable, an unsupported type) never stops the
        others: it is reported like any other rejected photo and the run goes on.
        """
        name = name or file.name
        reason = local_file_problem(file)
        key = ""
        if reason is None:
            try:
                key = source_key_for(Category.UPLOADED, name)
            except InvalidKeyError as exc:
                reason = _extension_hint(file, str(exc))
        if reason is None:
            try:
                return self.uploads[self.upload(file, options, name=name)].report
            except OSError as exc:  # vanished or became unreadable since the check
                reason = f"cannot read the file: {exc.strerror or exc}"
        return self.reject_local(file, key, reason)

    def reject_local(self, file: Path, key: str, reason: str) -> JobReport:
        """Record ``file`` as REJECTED without uploading it; its report."""
        report = JobReport(
            key=key, file=str(file), status=JobState.REJECTED.value, error=reason, seconds=0.0
        )
        slot = f"local-reject:{len(self.uploads)}:{file}"  # never a real key (no images/ prefix)
        self.uploads[slot] = Upload(
            file=file, key=key, version_id=None, uploaded_at=time.perf_counter(), report=report
        )
        return report

    # -- progress ----------------------------------------------------------------------------

    def record_for(self, key: str) -> dict[str, Any] | None:
        """The newest job record of source ``key`` (consistent read of the job item)."""
        assert self.resources is not None
        items = self.table.query(
            IndexName=GSI_BY_SOURCE,
            KeyConditionExpression=Key(GSI_BY_SOURCE_PK).eq(key),
            ScanIndexForward=False,
            Limit=1,
        ).get("Items", [])
        if not items:
            return None
        fresh = self.table.get_item(Key={TABLE_PK: items[0][TABLE_PK]}, ConsistentRead=True)
        return from_dynamo(fresh.get("Item") or items[0])

    def _queue_depth(self, url: str) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(
            attrs["ApproximateNumberOfMessagesNotVisible"]
        )

    def collect_notifications(self) -> None:
        """Move the SNS messages delivered so far into :attr:`notifications`."""
        self._collect_notifications()

    def is_idle(self) -> bool:
        """No job running and no message waiting in the ingest or state queue."""
        return self._idle()

    def _collect_notifications(self) -> None:
        assert self.resources is not None
        while True:
            messages: list[dict[str, Any]] = self.sqs.receive_message(  # type: ignore[assignment]
                QueueUrl=self.resources.notification_queue_url, MaxNumberOfMessages=10
            ).get("Messages", [])
            if not messages:
                return
            for message in messages:
                self.notifications.append({"body": message["Body"]})
                self.sqs.delete_message(
                    QueueUrl=self.resources.notification_queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                )

    def step(self) -> int:
        """Move everything one step; how many messages or jobs were handled."""
        moved = self.ingest_pump.pump_once()
        moved += self.runner.poll()
        moved += self.state_pump.pump_once()
        self._collect_notifications()
        return moved

    def _refresh(self, upload: Upload, idle: bool) -> None:
        record = self.record_for(upload.key)
        report = upload.report
        if record is None:
            if not idle:
                upload.first_seen_idle = None
                return
            now = time.perf_counter()
            upload.first_seen_idle = upload.first_seen_idle or now
            if now - upload.first_seen_idle > ORPHAN_GRACE_S:
                report.status = UNKNOWN
                report.error = "no job was recorded for this upload (see the ingest DLQ)"
            return
        report.status = str(record.get("state", report.status))
        if report.status == JobState.SUBMITTED and upload.submitted_at is None:
            upload.submitted_at = time.perf_counter()
        report.job_id = record.get("job_id")
        report.asset_key = record.get("asset_key") if report.status == JobState.SUCCEEDED else None
        report.thumbnail_key = record.get("thumbnail_key")
        report.error = record.get("error") or record.get("reason")
        report.error_kind = record.get("error_kind")
        report.faces = record.get("faces")
        report.vertices = record.get("vertices")
        report.stage = record.get("stage")
        report.progress = record.get("progress")
        attempts = record.get("attempts")
        report.attempts = int(attempts) if isinstance(attempts, int | float) else None
        seconds = record.get("seconds")
        if seconds is None and report.terminal:
            seconds = round(time.perf_counter() - upload.uploaded_at, 3)
        report.seconds = seconds

    def _idle(self) -> bool:
        assert self.resources is not None
        return (
            not self.runner.busy
            and self._queue_depth(self.resources.ingest_queue_url) == 0
            and self._queue_depth(self.resources.state_queue_url) == 0
        )

    def run_until_done(
        self,
        *,
        timeout_s: float = 1800.0,
        poll_s: float = 0.1,
        on_update: Callable[[list[JobReport]], None] | None = None,
    ) -> list[JobReport]:
        """Pump until every upload's job is terminal and every queue is drained."""
        deadline = time.monotonic() + timeout_s
        while True:
            moved = self.step()
            idle = moved == 0 and self._idle()
            for upload in self.uploads.values():
                if not upload.report.terminal or upload.report.status == UNKNOWN:
                    self._refresh(upload, idle)
            reports = [u.report for u in self.uploads.values()]
            if on_update is not None:
                on_update(reports)
            if idle and all(r.terminal for r in reports):
                # One more pass so late events (notifications) are all in.
                self.step()
                return reports
            if idle and self._reconcile_stuck(reports):
                continue
            if time.monotonic() > deadline:
                for report in reports:
                    if not report.terminal:
                        report.error = f"still {report.status} after {timeout_s:.0f}s"
                        report.status = TIMED_OUT
                return reports
            if moved == 0:
                time.sleep(poll_s)

    def batch_job_counts(self) -> tuple[int, int]:
        """Batch jobs the runner has run so far, and how many of them were packs."""
        names = [run.job_name for run in self.runner.runs.values()]
        return len(names), sum(is_pack_job_name(n) for n in names)

    def reconcile(self) -> ReconcileReport:
        """One reconcile pass on this stack (every non-terminal job counts as stuck)."""
        assert self.resources is not None, "start() first"
        report = reconcile_once(
            self.batch, self.runner, self.resources, now_offset_s=RECONCILE_CLOCK_OFFSET_S
        )
        self.reconcile_reports.append(report)
        return report

    def _reconcile_stuck(self, reports: list[JobReport]) -> bool:
        """When idle with jobs left in flight: a reconcile pass; whether it acted."""
        in_flight = {JobState.ACCEPTED.value, JobState.SUBMITTED.value, JobState.RUNNING.value}
        if len(self.reconcile_reports) >= MAX_RECONCILE_PASSES:
            return False
        if not any(r.status in in_flight for r in reports):
            return False
        report = self.reconcile()
        return any(a.action not in {"waiting", "skipped"} for a in report.actions)

    # -- results -----------------------------------------------------------------------------

    def download(self, reports: Iterable[JobReport], out_dir: Path) -> None:
        """Copy assets and thumbnails into ``out_dir``, mirroring their keys under it."""
        assert self.resources is not None
        root = out_dir.resolve()
        for report in reports:
            for attr, local_attr in (
                ("asset_key", "local_asset"),
                ("thumbnail_key", "local_thumbnail"),
            ):
                key = getattr(report, attr)
                if not key or not key.startswith(ASSET_PREFIX):
                    continue
                target = (root / key).resolve()
                if not target.is_relative_to(root):
                    raise ValueError(f"asset key {key!r} escapes {root}")
                target.parent.mkdir(parents=True, exist_ok=True)
                self.s3.download_file(self.resources.bucket, key, str(target))
                setattr(report, local_attr, str(target))


def run_local(
    files: Iterable[Path],
    out_dir: Path | None,
    *,
    options: JobOptions | None = None,
    timeout_s: float = 1800.0,
    concurrency: int = 1,
    on_update: Callable[[list[JobReport]], None] | None = None,
    pack_size: int = 1,
) -> RunSummary:
    """Run ``files`` through the local pipeline; assets land in ``out_dir`` (if given)."""
    started = time.perf_counter()
    files = list(files)
    with LocalPipeline(concurrency=concurrency, pack_size=pack_size) as pipeline:
        names = _unique_names(files)
        for file, name in zip(files, names, strict=True):
            pipeline.add_file(file, options, name=name)
        reports = pipeline.run_until_done(timeout_s=timeout_s, on_update=on_update)
        gallery = None
        if out_dir is not None:
            pipeline.download(reports, out_dir)
            gallery = write_gallery(out_dir, [_gallery_entry(r) for r in reports])
        return RunSummary(
            reports=reports,
            notifications=list(pipeline.notifications),
            wall_seconds=round(time.perf_counter() - started, 3),
            gallery=gallery,
            batch_jobs=pipeline.batch_job_counts()[0],
            packs=pipeline.batch_job_counts()[1],
        )


def local_file_problem(file: Path) -> str | None:
    """Why ``file`` cannot be uploaded as a photo, or ``None`` when it can."""
    if not file.exists():
        return "no such file"
    if file.is_dir():
        return "is a directory, not a photo"
    if not file.is_file():
        return "not a regular file"
    try:
        with file.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        return f"cannot read the file: {exc.strerror or exc}"
    return None


def _extension_hint(file: Path, reason: str) -> str:
    if file.suffix.lower() in {".heic", ".heif"}:
        return f"{reason}; HEIC/HEIF photos are not supported: export them as JPEG"
    return reason


def _gallery_entry(report: JobReport) -> GalleryEntry:
    photo = Path(report.file)
    readable = photo.is_file() and os.access(photo, os.R_OK)
    return GalleryEntry(
        name=report.key or photo.name,
        status=report.status,
        asset=Path(report.local_asset) if report.local_asset else None,
        thumbnail=Path(report.local_thumbnail) if report.local_thumbnail else None,
        photo=photo if readable and local_file_problem(photo) is None else None,
        error=report.error,
        job_id=report.job_id,
        faces=report.faces,
        vertices=report.vertices,
        seconds=report.seconds,
    )


def _unique_names(files: list[Path]) -> list[str]:
    """Object names for ``files``: the file name, numbered when two share one."""
    seen: dict[str, int] = {}
    names = []
    for file in files:
        name = file.name
        count = seen.get(name, 0)
        seen[name] = count + 1
        if count:
            name = f"{file.stem}-{count + 1}{file.suffix}"
        names.append(name)
    return names
