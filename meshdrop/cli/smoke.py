"""``meshdrop smoke``: the first job of a fresh deployment, end to end, with timings.

Uploads a bundled sample photo (``samples/``) under ``images/uploaded/smoke/``, then follows
what the stack does with it: the job record's states (from the job table), the asset under
``3d_assets/`` and the finished-job notification on the stack's topic. To see that
notification, the command subscribes a temporary SQS queue to the topic for the duration of
the run and deletes both afterwards (``--no-notification`` skips this; it needs
``sqs:CreateQueue`` and ``sns:Subscribe``).

Exit status 0 when the job succeeded, its asset exists and (unless skipped) the notification
arrived; 1 otherwise, with what was seen so far.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from meshdrop_contract import Category, JobState

if TYPE_CHECKING:
    from meshdrop.remote.client import Remote
    from meshdrop.remote.jobs import JobRecord

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "samples"
DEFAULT_SAMPLE = "mug"
#: After the job finishes, how long the notification may take to arrive.
NOTIFICATION_GRACE_SECONDS = 120.0

Clock = Callable[[], float]
Sleep = Callable[[float], None]
Say = Callable[[str], None]


@dataclass
class SmokeReport:
    """What one smoke run saw, each time in seconds since the upload."""

    key: str
    job_id: str
    states: list[tuple[str, float]] = field(default_factory=list)
    record: JobRecord | None = None
    asset: dict[str, Any] | None = None
    notification: dict[str, Any] | None = None
    notification_seconds: float | None = None
    total_seconds: float = 0.0
    expect_notification: bool = True
    problem: str | None = None

    @property
    def ok(self) -> bool:
        if self.problem or self.record is None or self.record.state is not JobState.SUCCEEDED:
            return False
        return self.asset is not None and (
            self.notification is not None or not self.expect_notification
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "key": self.key,
            "job_id": self.job_id,
            "states": [{"state": s, "seconds": round(t, 1)} for s, t in self.states],
            "record": self.record.to_json() if self.record else None,
            "asset": self.asset,
            "notification": self.notification,
            "notification_seconds": self.notification_seconds,
            "total_seconds": round(self.total_seconds, 1),
            "problem": self.problem,
        }


def sample_photo(name: str, samples: Path = SAMPLES_DIR) -> Path:
    """A bundled sample by name (``mug``) or a path to any photo."""
    candidate = Path(name)
    if candidate.is_file():
        return candidate
    found = sorted(samples.glob(f"{name}.*"))
    if not found:
        names = ", ".join(sorted(p.stem for p in samples.glob("*.jpg")))
        raise typer.BadParameter(f"no sample {name!r}; bundled: {names}")
    return found[0]


class NotificationListener:
    """A temporary SQS queue subscribed to the stack's notification topic."""

    def __init__(self, remote: Remote, topic_arn: str) -> None:
        self.sqs = remote.session.client("sqs")
        self.sns = remote.session.client("sns")
        self.topic_arn = topic_arn
        self.queue_url = ""
        self.subscription_arn = ""

    def open(self, run_id: str) -> None:
        self.queue_url = self.sqs.create_queue(QueueName=f"meshdrop-smoke-{run_id}")["QueueUrl"]
        attrs = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
        queue_arn = attrs["Attributes"]["QueueArn"]
        # Only this topic may send to the queue.
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": self.topic_arn}},
                }
            ],
        }
        self.sqs.set_queue_attributes(
            QueueUrl=self.queue_url, Attributes={"Policy": json.dumps(policy)}
        )
        self.subscription_arn = self.sns.subscribe(
            TopicArn=self.topic_arn, Protocol="sqs", Endpoint=queue_arn, ReturnSubscriptionArn=True
        )["SubscriptionArn"]

    def close(self) -> None:
        if self.subscription_arn:
            self.sns.unsubscribe(SubscriptionArn=self.subscription_arn)
        if self.queue_url:
            self.sqs.delete_queue(QueueUrl=self.queue_url)

    def poll(self, job_id: str) -> dict[str, Any] | None:
        """The notification of ``job_id`` if one is waiting (others are dropped)."""
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        found = None
        messages: list[dict[str, Any]] = response.get("Messages", [])  # type: ignore[assignment]
        for message in messages:
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            envelope = json.loads(message["Body"])
            body = json.loads(envelope.get("Message", "{}"))
            if body.get("job_id") == job_id:
                found = body
        return found


@contextmanager
def listening(remote: Remote, enabled: bool, run_id: str) -> Iterator[NotificationListener | None]:
    topic = remote.names.topic_arn
    if not enabled or not topic:
        yield None
        return
    listener = NotificationListener(remote, topic)
    try:
        listener.open(run_id)
        yield listener
    finally:
        listener.close()


def upload_sample(remote: Remote, photo: Path, stamp: str) -> tuple[str, str]:
    """Upload ``photo`` as ``images/uploaded/smoke/<stamp>-<name>``; (key, job id)."""
    from meshdrop.remote.errors import RemoteError
    from meshdrop.remote.upload import UploadItem, upload

    item = UploadItem(path=photo, name=f"smoke/{stamp}-{photo.name}", size=photo.stat().st_size)
    (result,) = upload(remote, [item], category=Category.UPLOADED, workers=1)
    if not result.ok or not result.key or not result.job_id:
        raise RemoteError(f"upload of {photo} failed: {result.error}")
    return result.key, result.job_id


def follow_job(
    remote: Remote, report: SmokeReport, *, start: float, deadline: float, interval: float,
    clock: Clock, sleep: Sleep, say: Say,
) -> None:  # fmt: skip
    """Poll the job record until it is final or the deadline passes, noting each new state."""
    from meshdrop.remote.jobs import get_job

    while clock() < deadline:
        record = get_job(remote, report.job_id)
        if record is not None:
            report.record = record
            if not report.states or report.states[-1][0] != record.state.value:
                report.states.append((record.state.value, clock() - start))
                say(f"{clock() - start:7.1f}s  {record.state.value}")
            if record.terminal:
                return
        sleep(interval)
    report.problem = f"no final state within {deadline - start:g}s"


def check_asset(remote: Remote, report: SmokeReport) -> None:
    from botocore.exceptions import ClientError

    record = report.record
    if record is None or record.state is not JobState.SUCCEEDED or not record.asset_key:
        return
    try:
        head = remote.s3.head_object(Bucket=remote.bucket, Key=record.asset_key)
    except ClientError as err:
        report.problem = f"asset {record.asset_key} missing: {err}"
        return
    report.asset = {
        "key": record.asset_key,
        "bytes": head["ContentLength"],
        "version_id": head.get("VersionId"),
    }


def wait_notification(
    listener: NotificationListener, report: SmokeReport, *, start: float, clock: Clock,
    sleep: Sleep, grace: float,
) -> None:  # fmt: skip
    until = clock() + grace
    while clock() < until:
        found = listener.poll(report.job_id)
        if found is not None:
            report.notification = found
            report.notification_seconds = clock() - start
            return
        sleep(1.0)
    report.problem = report.problem or f"no notification for the job within {grace:g}s"


def run_smoke(
    remote: Remote,
    photo: Path,
    *,
    timeout: float,
    interval: float,
    notify: bool = True,
    grace: float = NOTIFICATION_GRACE_SECONDS,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
    say: Say = print,
) -> SmokeReport:
    """Upload ``photo`` and follow its job to the asset and the notification."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    with listening(remote, notify, stamp.lower()) as listener:
        start = clock()
        key, job_id = upload_sample(remote, photo, stamp)
        say(f"uploaded s3://{remote.bucket}/{key} (job {job_id})")
        report = SmokeReport(key=key, job_id=job_id, expect_notification=listener is not None)
        follow_job(
            remote, report, start=start, deadline=start + timeout, interval=interval,
            clock=clock, sleep=sleep, say=say,
        )  # fmt: skip
        check_asset(remote, report)
        if listener is not None and report.record is not None and report.record.terminal:
            wait_notification(listener, report, start=start, clock=clock, sleep=sleep, grace=grace)
        report.total_seconds = clock() - start
    return report


def describe(report: SmokeReport) -> list[str]:
    """The summary lines printed at the end of a run."""
    lines = [f"job {report.job_id}: {' -> '.join(s for s, _ in report.states) or 'no record'}"]
    record = report.record
    if record is not None and record.error:
        lines.append(f"error: {record.error}")
    if record is not None and record.metrics:
        device = record.metrics.get("device")
        lines.append(f"device: {device}" if device else "device: not recorded")
    if report.asset:
        lines.append(f"asset: {report.asset['key']} ({report.asset['bytes']} bytes)")
    if report.notification is not None:
        lines.append(f"notification: {report.notification.get('state')} after "
                     f"{report.notification_seconds:.1f}s")  # fmt: skip
    elif not report.expect_notification:
        lines.append("notification: not checked")
    lines.append(f"total: {report.total_seconds:.1f}s  {'OK' if report.ok else 'FAILED'}")
    if report.problem:
        lines.append(f"problem: {report.problem}")
    return lines


def smoke_cmd(
    sample: Annotated[
        str, typer.Option(help="Bundled sample name (mug, box, bottle, vase) or a photo path.")
    ] = DEFAULT_SAMPLE,
    timeout: Annotated[
        float, typer.Option(help="Give up on the job after this many seconds.")
    ] = 1800.0,
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between polls.")] = 5.0,
    notification: Annotated[
        bool, typer.Option(help="Wait for the SNS notification (temporary SQS subscription).")
    ] = True,
    stack: Annotated[str | None, typer.Option(envvar="MESHDROP_STACK", help="Stack name.")] = None,
    region: Annotated[str | None, typer.Option(help="AWS region.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Run one sample photo through the deployed stack and report what happened, and when."""
    from meshdrop.cli.remote import jobs
    from meshdrop.remote.client import Remote
    from meshdrop.remote.errors import RemoteError

    photo = sample_photo(sample)
    try:
        remote = Remote.connect(stack=stack, region=region)
        remote.check_bucket()
        say: Say = (lambda _: None) if as_json else typer.echo
        report = run_smoke(
            remote, photo, timeout=timeout, interval=interval, notify=notification,
            clock=jobs.CLOCK.now, sleep=jobs.CLOCK.sleep, say=say,
        )  # fmt: skip
    except RemoteError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2, default=str))
    else:
        for line in describe(report):
            typer.echo(line)
    if not report.ok:
        raise typer.Exit(1)


def register(parent: typer.Typer) -> None:
    """Add ``smoke`` to the ``meshdrop`` app."""
    parent.command("smoke")(smoke_cmd)
