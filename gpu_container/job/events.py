"""Event emission: the meshdrop job events one job puts on the bus."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from meshdrop_contract import DetailType, JobSpec, Stage, base_detail, put_events_entry

from .failures import TransientError

log = logging.getLogger("meshdrop.entrypoint")


class EventEmitter:
    """Puts meshdrop job events for one job on the bus.

    ``PutEvents`` reports per-entry failures in ``FailedEntryCount`` instead of raising; a few
    quick retries absorb throttling, after which the failure is transient for the whole job.

    Every event names the Batch job and attempt it comes from (``batch_job_id``, ``attempt``)
    when the job runs under Batch, so the state function can believe a generator only about
    its own job; outside Batch (tests, ``meshdrop generate``) they are left out.
    """

    def __init__(
        self,
        events_client: Any,
        bus: str,
        spec: JobSpec,
        *,
        tries: int = 3,
        batch_job_id: str | None = None,
        attempt: int = 1,
    ) -> None:
        self._events = events_client
        self._bus = bus
        self._spec = spec
        self._tries = tries
        self._origin: dict[str, Any] = (
            {"batch_job_id": batch_job_id, "attempt": attempt} if batch_job_id else {}
        )
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
        detail.update(self._origin)
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
