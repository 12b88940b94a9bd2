"""Container entrypoint: the AWS adapter around the generator.

AWS Batch runs ``python -m gpu_container.entrypoint`` with the job in its environment
(:meth:`meshdrop_contract.JobSpec.from_env`, plus ``MESHDROP_EVENT_BUS`` and optionally
``MESHDROP_WEIGHTS``). The process downloads the photo, runs the generator, uploads the asset
and its thumbnail, and reports through EventBridge. Its exit code drives the Batch retry
strategy (:class:`meshdrop_contract.ExitCode`):

* 0: the asset is stored and one "Job Succeeded" event was sent.
* 65 / 66: bad input / quality gate; one "Job Failed" event was sent; never retried.
* 75: transient trouble (throttling, network, memory); NO terminal event, Batch retries.
* 70: a bug; one "Job Failed" (internal) event was sent.

The generator is loaded once per process (:func:`load_generator`), so a warm container that
runs several jobs pays for the model only once.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlparse

from gpu_container import selfcheck
from meshdrop_contract import (
    AssetFormat,
    DetailType,
    ErrorKind,
    ExitCode,
    JobSpec,
    Stage,
    base_detail,
    put_events_entry,
)
from meshdrop_contract.jobs import (
    ASSET_META_GENERATOR,
    ASSET_META_JOB_ID,
    ASSET_META_PRESET,
    ASSET_META_SOURCE_ETAG,
    ASSET_META_SOURCE_KEY,
    ASSET_META_SOURCE_SHA256,
    ENV_EVENT_BUS,
    ENV_WEIGHTS,
)

if TYPE_CHECKING:
    from gpu_container.meshgen import Generator

log = logging.getLogger("meshdrop.entrypoint")

#: Set by AWS Batch: 1 on the first attempt (absent locally: treated as 1).
ENV_BATCH_ATTEMPT = "AWS_BATCH_JOB_ATTEMPT"
#: Overall progress reported around the stages the generator does not see.
PROGRESS_DOWNLOADED = 0.05
PROGRESS_UPLOADING = 0.95

CONTENT_TYPES: dict[AssetFormat, str] = {
    AssetFormat.GLB: "model/gltf-binary",
    AssetFormat.OBJ: "model/obj",
    AssetFormat.STL: "model/stl",
    AssetFormat.PLY: "application/x-ply",
}

#: Error codes of AWS services that mean "try again later", not "this will never work".
_TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "SlowDown",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "RequestTimeout",
        "RequestTimeoutException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalError",
        "InternalFailure",
        "InternalException",
        "InternalServerError",
        "ExpiredToken",
        "ExpiredTokenException",
    }
)
#: Source object errors that no retry can fix: the upload is gone or was replaced.
_SOURCE_GONE_CODES = frozenset(
    {"NoSuchKey", "NoSuchVersion", "404", "NotFound", "PreconditionFailed", "412"}
)
#: Environmental OS errors (network, full disk) that another attempt may not meet.
_TRANSIENT_ERRNOS = frozenset(
    {
        errno.ECONNRESET,
        errno.ECONNREFUSED,
        errno.ECONNABORTED,
        errno.ENETUNREACH,
        errno.EHOSTUNREACH,
        errno.ETIMEDOUT,
        errno.EPIPE,
        errno.ENOSPC,
        errno.ENOMEM,
    }
)
#: A quoted or bare S3 ETag (single part or multipart); anything else is a version id.
_ETAG_RE = re.compile(r'^"?[0-9a-fA-F]{32}(-[0-9]+)?"?$')


class TransientError(Exception):
    """Something outside the input failed; the job should be retried by Batch."""


class SourceError(Exception):
    """The source object cannot be used (gone, replaced, corrupt in transit); never retried."""


@dataclass
class JobOutcome:
    """What one job run ended with; ``exit_code`` is the process exit status."""

    exit_code: int
    detail_type: DetailType | None
    detail: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Error classification


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is worth a retry (by Batch) rather than a terminal failure."""
    if isinstance(exc, TransientError | MemoryError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS:
        return True
    try:
        from botocore.exceptions import (
            ClientError,
            ConnectionClosedError,
            EndpointConnectionError,
            ReadTimeoutError,
        )
        from botocore.exceptions import ConnectionError as BotoConnectionError
    except ImportError:  # pragma: no cover - botocore ships with the container
        return False
    if isinstance(
        exc,
        EndpointConnectionError | ConnectionClosedError | ReadTimeoutError | BotoConnectionError,
    ):
        return True
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return err.get("Code") in _TRANSIENT_CODES or int(status or 0) >= 500
    # torch raises its own OOM type on GPUs; it subclasses RuntimeError.
    return type(exc).__name__ in {"OutOfMemoryError", "CudaOutOfMemoryError"}


def _client_error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code")) or None
    return None


# --------------------------------------------------------------------------------------------
# Events


class EventEmitter:
    """Puts meshdrop job events for one job on the bus.

    ``PutEvents`` reports per-entry failures in ``FailedEntryCount`` instead of raising; a few
    quick retries absorb throttling, after which the failure is transient for the whole job.
    """

    def __init__(self, events_client: Any, bus: str, spec: JobSpec, *, tries: int = 3) -> None:
        self._events = events_client
        self._bus = bus
        self._spec = spec
        self._tries = tries
        self.sent: list[tuple[DetailType, dict[str, Any]]] = []

    def detail(self, asset_key: str | None, **extra: Any) -> dict[str, Any]:
        spec = self._spec
        detail = base_detail(
            job_id=spec.job_id,
            bucket=spec.bucket,
            source_key=spec.source_key,
            asset_key=asset_key,
            options=spec.options.to_dict(),
        )
        detail.update(extra)
        return detail

    def emit(self, detail_type: DetailType, detail: dict[str, Any]) -> None:
        entry = put_events_entry(detail_type, detail, self._bus)
        for attempt in range(self._tries):
            response = self._events.put_events(Entries=[entry])
            if not response.get("FailedEntryCount"):
                self.sent.append((detail_type, detail))
                return
            failed = response.get("Entries", [{}])[0]
            log.warning(
                "PutEvents failed (%s: %s), try %d/%d",
                failed.get("ErrorCode"),
                failed.get("ErrorMessage"),
                attempt + 1,
                self._tries,
            )
            time.sleep(0.2 * 2**attempt)
        raise TransientError(f"PutEvents kept failing for {detail_type.value}")


class ProgressReporter:
    """Turns stage callbacks into "Job Progress" events, rate-limited within a stage.

    ``fraction`` is the share of the whole job done so far (the generator's convention); the
    reported progress never goes backwards, so a consumer can draw one bar from it.
    """

    def __init__(
        self,
        emitter: EventEmitter,
        asset_key: str,
        attempt: int,
        *,
        min_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._emitter = emitter
        self._asset_key = asset_key
        self._attempt = attempt
        self._min_interval = min_interval_s
        self._clock = clock
        self._stage: Stage | None = None
        self._stage_started = clock()
        self._last_sent = -1e9
        self._progress = 0.0
        self.timings: dict[str, float] = {}

    def __call__(self, stage: Stage | str, fraction: float) -> None:
        stage = Stage(stage)
        now = self._clock()
        if stage != self._stage:
            if self._stage is not None:
                self.timings[self._stage.value] = round(now - self._stage_started, 4)
            self._stage, self._stage_started = stage, now
        elif now - self._last_sent < self._min_interval and fraction < 1.0:
            return
        self._progress = round(max(self._progress, min(max(float(fraction), 0.0), 1.0)), 4)
        self._last_sent = now
        self._emitter.emit(
            DetailType.PROGRESS,
            self._emitter.detail(
                self._asset_key,
                stage=stage.value,
                progress=self._progress,
                attempt=self._attempt,
                timings=dict(self.timings),
            ),
        )

    def finish(self) -> dict[str, float]:
        """Close the running stage; the seconds per stage."""
        if self._stage is not None and self._stage.value not in self.timings:
            self.timings[self._stage.value] = round(self._clock() - self._stage_started, 4)
        return dict(self.timings)


# --------------------------------------------------------------------------------------------
# Generator and weights


def resolve_weights(location: str | None, s3_client: Any | None = None) -> Path | None:
    """A local directory holding the weights named by ``MESHDROP_WEIGHTS``.

    ``s3://bucket/prefix`` is downloaded once per container into the temporary directory;
    a local path is used as is; nothing means the generator's default.
    """
    if not location:
        return None
    parsed = urlparse(location)
    if parsed.scheme in {"", "file"}:
        path = Path(parsed.path if parsed.scheme == "file" else location)
        if not path.exists():
            raise FileNotFoundError(f"{ENV_WEIGHTS}={location!r} does not exist")
        return path
    if parsed.scheme != "s3":
        raise ValueError(f"{ENV_WEIGHTS} must be a local path or s3:// URI, not {location!r}")
    s3: Any = s3_client if s3_client is not None else _boto_client("s3")
    bucket, prefix = parsed.netloc, parsed.path.lstrip("/")
    cache_root = Path(tempfile.gettempdir())  # TMPDIR points it at the instance store
    target = cache_root / "meshdrop-weights" / bucket / prefix
    marker = target / ".complete"
    if marker.exists():
        return target
    target.mkdir(parents=True, exist_ok=True)
    paginator = s3.get_paginator("list_objects_v2")
    count = 0
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            rel = obj["Key"][len(prefix) :].lstrip("/")
            if not rel or rel.endswith("/"):
                continue
            dest = (target / rel).resolve()
            if not dest.is_relative_to(target.resolve()):
                raise ValueError(f"weight key {obj['Key']!r} escapes the cache directory")
            dest.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, obj["Key"], str(dest))
            count += 1
    if count == 0:
        raise FileNotFoundError(f"no weights under {location}")
    marker.touch()
    return target


@cache
def load_generator(weights: Path | None) -> Generator:
    """The generator for ``weights``, built once per process."""
    from gpu_container.meshgen import Generator

    started = time.perf_counter()
    generator = Generator.from_pretrained(str(weights) if weights is not None else None)
    log.info("generator loaded in %.2fs", time.perf_counter() - started)
    return generator


def generator_version() -> str:
    """Version string recorded on every asset for provenance."""
    try:
        from gpu_container import meshgen

        version = getattr(meshgen, "__version__", None)
        if version:
            return str(version)
    except ImportError:  # pragma: no cover
        pass
    try:
        from importlib.metadata import version as dist_version

        return f"meshdrop-{dist_version('meshdrop')}"
    except Exception:
        return "unknown"


# --------------------------------------------------------------------------------------------
# S3


def _boto_client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    # Standard retry mode already backs off on throttling; a few extra tries keep short
    # blips from costing a whole Batch attempt.
    config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=10)
    return boto3.client(service, config=config)  # type: ignore[call-overload]


def download_source(s3: Any, spec: JobSpec) -> tuple[bytes, str]:
    """The exact uploaded version of the source photo and its ETag.

    Raises
    ------
    SourceError
        The object (or that version of it) is gone or its bytes do not match the recorded
        SHA-256: no retry can help.
    """
    kwargs: dict[str, Any] = {"Bucket": spec.bucket, "Key": spec.source_key}
    if spec.source_version:
        if _ETAG_RE.match(spec.source_version):
            etag = spec.source_version.strip('"')
            kwargs["IfMatch"] = f'"{etag}"'
        else:
            kwargs["VersionId"] = spec.source_version
    try:
        response = s3.get_object(**kwargs)
        data = response["Body"].read()
    except Exception as exc:
        if _client_error_code(exc) in _SOURCE_GONE_CODES:
            raise SourceError(
                f"source {spec.source_key} (version {spec.source_version or 'latest'}) "
                f"is gone or was replaced: {_client_error_code(exc)}"
            ) from exc
        raise
    if spec.source_sha256:
        digest = hashlib.sha256(data).hexdigest()
        if digest != spec.source_sha256:
            raise SourceError(
                f"source SHA-256 {digest[:12]}… does not match the recorded "
                f"{spec.source_sha256[:12]}…"
            )
    return data, str(response.get("ETag", "")).strip('"')


def _meta_value(value: str) -> str:
    # S3 user metadata travels in HTTP headers: ASCII only, so keys with other characters
    # are percent-encoded (decode with urllib.parse.unquote).
    return quote(value, safe="/-_.~ ") if not value.isascii() else value


def asset_metadata(spec: JobSpec, source_etag: str, source_sha256: str) -> dict[str, str]:
    """Provenance written as user metadata on the asset object."""
    return {
        ASSET_META_JOB_ID: spec.job_id,
        ASSET_META_SOURCE_KEY: _meta_value(spec.source_key),
        ASSET_META_SOURCE_ETAG: source_etag,
        ASSET_META_SOURCE_SHA256: source_sha256,
        ASSET_META_GENERATOR: _meta_value(generator_version()),
        ASSET_META_PRESET: spec.options.preset.value,
    }


# --------------------------------------------------------------------------------------------
# The job


def run_job(
    spec: JobSpec,
    *,
    s3: Any,
    events: Any,
    bus: str,
    generator_loader: Callable[[], Any],
    attempt: int = 1,
    progress_interval_s: float = 1.0,
) -> JobOutcome:
    """Run one job end to end; never raises (except ``KeyboardInterrupt``).

    Parameters
    ----------
    spec
        The job, as the ingest function submitted it.
    s3, events
        boto3 clients.
    bus
        Event bus name for every event of this job.
    generator_loader
        Returns the (cached) generator; called after the download so that a missing source
        fails fast without loading a model.
    attempt
        Batch attempt number, reported in progress events.
    """
    from gpu_container.meshgen.errors import BadInputError, QualityError

    emitter = EventEmitter(events, bus, spec)
    asset_key = spec.asset_key
    progress = ProgressReporter(emitter, asset_key, attempt, min_interval_s=progress_interval_s)
    started = time.perf_counter()

    def failed(kind: ErrorKind, code: int, reason: str, metrics: dict | None = None) -> JobOutcome:
        detail = emitter.detail(
            None,
            reason=reason[:2000] or kind.value,
            error_kind=kind.value,
            exit_code=code,
            attempts=attempt,
            seconds=round(time.perf_counter() - started, 3),
            metrics=metrics or None,
        )
        try:
            emitter.emit(DetailType.FAILED, detail)
        except Exception as exc:
            # Without the terminal event the job would hang in RUNNING: let Batch retry; its
            # own FAILED state change is the backstop once attempts run out.
            log.error("could not emit Job Failed (%s); exiting transient", exc)
            return JobOutcome(ExitCode.TRANSIENT, None)
        return JobOutcome(code, DetailType.FAILED, detail)

    try:
        progress(Stage.DOWNLOAD, 0.0)
        source, source_etag = download_source(s3, spec)
        source_sha256 = spec.source_sha256 or hashlib.sha256(source).hexdigest()
        progress(Stage.DOWNLOAD, PROGRESS_DOWNLOADED)

        generator = generator_loader()
        result = generator.generate(source, spec.options, on_stage=progress)

        progress(Stage.UPLOAD, PROGRESS_UPLOADING)
        fmt = spec.options.format
        s3.put_object(
            Bucket=spec.bucket,
            Key=asset_key,
            Body=result.data,
            ContentType=CONTENT_TYPES.get(fmt, "application/octet-stream"),
            Metadata={
                **asset_metadata(spec, source_etag, source_sha256),
                **result.provenance.to_metadata(),
            },
        )
        thumbnail_key: str | None = None
        if result.thumbnail_png:
            thumbnail_key = spec.thumbnail_key
            s3.put_object(
                Bucket=spec.bucket,
                Key=thumbnail_key,
                Body=result.thumbnail_png,
                ContentType="image/png",
                Metadata={ASSET_META_JOB_ID: spec.job_id},
            )
        progress(Stage.UPLOAD, 1.0)
        timings = {**{k: float(v) for k, v in (result.timings or {}).items()}, **progress.finish()}
        detail = emitter.detail(
            asset_key,
            thumbnail_key=thumbnail_key,
            faces=int(result.faces),
            vertices=int(result.vertices),
            bytes=len(result.data),
            seconds=round(time.perf_counter() - started, 3),
            timings={k: round(max(v, 0.0), 4) for k, v in timings.items()},
            metrics=_jsonable(result.metrics or {}),
            provenance=result.provenance.to_dict(),
        )
        emitter.emit(DetailType.SUCCEEDED, detail)
        return JobOutcome(ExitCode.OK, DetailType.SUCCEEDED, detail)
    except KeyboardInterrupt:
        raise
    except (BadInputError, SourceError) as exc:
        log.warning("bad input: %s", exc)
        return failed(ErrorKind.BAD_INPUT, ExitCode.BAD_INPUT, str(exc))
    except QualityError as exc:
        log.warning("quality gate: %s", exc)
        return failed(ErrorKind.QUALITY, ExitCode.QUALITY, str(exc), _jsonable(exc.metrics))
    except BaseException as exc:
        if isinstance(exc, SystemExit):
            raise
        if is_transient(exc):
            log.warning("transient failure, Batch will retry: %r", exc)
            return JobOutcome(ExitCode.TRANSIENT, None)
        log.exception("internal error")
        return failed(ErrorKind.INTERNAL, ExitCode.INTERNAL, f"{type(exc).__name__}: {exc}")


def _jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays and other odd types made JSON-friendly."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if hasattr(value, "tolist"):
        return _jsonable(value.tolist())
    return str(value)


def main(env: Mapping[str, str] | None = None) -> int:
    """Run the job described by ``env`` (default: ``os.environ``); the process exit code."""
    env = os.environ if env is None else env
    logging.basicConfig(
        level=env.get("LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        spec = JobSpec.from_env(env)
        bus = env[ENV_EVENT_BUS]
    except (KeyError, ValueError) as exc:
        # A malformed job spec is a deployment bug: no event can even be addressed.
        log.error("invalid job environment: %r", exc)
        return ExitCode.INTERNAL
    try:
        attempt = max(1, int(env.get(ENV_BATCH_ATTEMPT) or 1))
    except ValueError:
        attempt = 1
    selfcheck.run(env)  # logs driver/CUDA/GPU; exits (not retried) if the driver is too old
    s3 = _boto_client("s3")
    events = _boto_client("events")
    weights_location = env.get(ENV_WEIGHTS) or None

    def loader() -> Any:
        return load_generator(selfcheck.verify_weights(resolve_weights(weights_location, s3), env))

    outcome = run_job(spec, s3=s3, events=events, bus=bus, generator_loader=loader, attempt=attempt)
    log.info(
        "job %s finished: exit %d (%s)",
        spec.job_id,
        outcome.exit_code,
        outcome.detail_type.value if outcome.detail_type else "no terminal event",
    )
    return outcome.exit_code


if __name__ == "__main__":
    sys.exit(main())
