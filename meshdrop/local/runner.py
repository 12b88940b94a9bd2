"""A local job runner that mirrors AWS Batch for the generator container.

moto's Batch (without Docker) records submitted jobs and marks them SUCCEEDED at once without
running anything. This runner finds those jobs, runs each as ``python -m
gpu_container.entrypoint`` in a subprocess with the job's ``containerOverrides`` environment
(as the container would get it), and publishes Batch-shaped "Batch Job State Change" events on
the default bus, applying the job definition's retry strategy and attempt timeout.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshdrop_contract import BATCH_DETAIL_TYPE, BATCH_SOURCE, ExitCode

log = logging.getLogger("meshdrop.local")

REPO_ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT_MODULE = "gpu_container.entrypoint"
#: moto's statuses; listing all of them finds a job whatever moto did with it.
_LIST_STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")
TIMEOUT_REASON = "Job attempt duration exceeded timeout"
ESSENTIAL_EXIT_REASON = "Essential container in task exited"


@dataclass
class AttemptResult:
    number: int
    exit_code: int | None  # None: killed on timeout
    started_at: int  # epoch ms
    stopped_at: int
    status_reason: str
    log_path: Path | None = None

    def as_batch(self) -> dict[str, Any]:
        container: dict[str, Any] = {"logStreamName": f"meshdrop/local/{self.number}"}
        if self.exit_code is not None:
            container["exitCode"] = self.exit_code
        else:
            container["reason"] = self.status_reason
        return {
            "container": container,
            "startedAt": self.started_at,
            "stoppedAt": self.stopped_at,
            "statusReason": self.status_reason,
        }


@dataclass
class JobRun:
    """One Batch job as the runner ran it."""

    job_id: str
    job_name: str
    status: str = "SUBMITTED"
    attempts: list[AttemptResult] = field(default_factory=list)
    status_reason: str | None = None
    #: DescribeJobs' view of the job when the runner found it (definition, container, ...).
    job: dict[str, Any] = field(default_factory=dict[str, Any])

    @property
    def exit_code(self) -> int | None:
        return self.attempts[-1].exit_code if self.attempts else None

    @property
    def done(self) -> bool:
        return self.status in {"SUCCEEDED", "FAILED"}

    def log_tail(self, lines: int = 20) -> str:
        """The end of the last attempt's output, for error reports."""
        if not self.attempts or self.attempts[-1].log_path is None:
            return ""
        path = self.attempts[-1].log_path
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def retry_action(
    strategy: Mapping[str, Any] | None, exit_code: int | None, status_reason: str
) -> str:
    """``"RETRY"`` or ``"EXIT"`` for a failed attempt, per Batch ``evaluateOnExit`` rules.

    The first entry whose conditions all match decides (glob patterns, as Batch uses); when
    entries exist and none match, Batch retries, as it does when there are none at all.
    """
    for rule in (strategy or {}).get("evaluateOnExit") or []:
        conditions: list[bool] = []
        if "onExitCode" in rule:
            conditions.append(
                exit_code is not None and fnmatch.fnmatchcase(str(exit_code), rule["onExitCode"])
            )
        if "onStatusReason" in rule:
            conditions.append(fnmatch.fnmatchcase(status_reason, rule["onStatusReason"]))
        if "onReason" in rule:
            conditions.append(fnmatch.fnmatchcase(status_reason, rule["onReason"]))
        if conditions and all(conditions):
            return str(rule.get("action", "EXIT")).upper()
    return "RETRY"


def _now_ms() -> int:
    return int(time.time() * 1000)


class BatchRunner:
    """Runs the moto Batch jobs of one job queue as local subprocesses.

    Parameters
    ----------
    batch, events
        boto3 clients on the embedded AWS.
    job_queue_arn
        Only jobs on this queue are run.
    base_env
        Environment of every job process (the embedded AWS endpoint and credentials); the
        job's own container environment is laid over it.
    log_dir
        Where each attempt's output goes (``<job id>.<attempt>.log``).
    concurrency
        Jobs run at once; generation is CPU-bound here, so 1 is right on a small machine.
    """

    def __init__(
        self,
        batch: Any,
        events: Any,
        job_queue_arn: str,
        *,
        base_env: Mapping[str, str],
        log_dir: Path,
        concurrency: int = 1,
        python: str = sys.executable,
        on_change: Callable[[JobRun], None] | None = None,
    ) -> None:
        self._batch = batch
        self._events = events
        self._queue_arn = job_queue_arn
        self._queue_name = job_queue_arn.rsplit("/", 1)[-1]
        self._base_env = dict(base_env)
        self._log_dir = log_dir
        self._python = python
        self._on_change = on_change
        self._pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="job")
        self._futures: dict[str, Future[None]] = {}
        self._definitions: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self.runs: dict[str, JobRun] = {}
        #: Batch statuses whose state change events are not published (fault injection: a
        #: lost event, for the reconciler to repair).
        self.drop_statuses: set[str] = set()

    # -- discovery ---------------------------------------------------------------------------

    def poll(self) -> int:
        """Start every job of the queue not seen before; the number started."""
        ids: list[str] = []
        for status in _LIST_STATUSES:
            pages = self._batch.get_paginator("list_jobs").paginate(
                jobQueue=self._queue_arn, jobStatus=status
            )
            for page in pages:
                ids.extend(j["jobId"] for j in page.get("jobSummaryList", []))
        new = [i for i in dict.fromkeys(ids) if i not in self.runs]
        for chunk in range(0, len(new), 100):
            for job in self._batch.describe_jobs(jobs=new[chunk : chunk + 100])["jobs"]:
                run = JobRun(job_id=job["jobId"], job_name=job["jobName"], job=job)
                self.runs[run.job_id] = run
                self._futures[run.job_id] = self._pool.submit(self._run_job, job, run)
        return len(new)

    @property
    def busy(self) -> bool:
        return any(not f.done() for f in self._futures.values())

    def wait(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        for future in list(self._futures.values()):
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            future.result(timeout=remaining)

    def shutdown(self) -> None:
        """Kill running job processes and stop the worker threads."""
        with self._lock:
            processes = list(self._processes.values())
        for process in processes:
            _kill(process)
        self._pool.shutdown(wait=True, cancel_futures=True)

    # -- one job -----------------------------------------------------------------------------

    def _definition(self, arn: str) -> dict[str, Any]:
        if arn not in self._definitions:
            found = self._batch.describe_job_definitions(jobDefinitions=[arn])["jobDefinitions"]
            self._definitions[arn] = found[0] if found else {}
        return self._definitions[arn]

    def describe(self, run: JobRun) -> dict[str, Any]:
        """The job as DescribeJobs would show it now (also a state change event's detail)."""
        job = run.job
        container = dict(job.get("container") or {})
        container.pop("environment", None)  # Batch events carry it; ours may hold secrets
        if run.attempts:
            last = run.attempts[-1]
            if last.exit_code is not None and run.status in {"SUCCEEDED", "FAILED"}:
                container["exitCode"] = last.exit_code
        detail: dict[str, Any] = {
            "jobArn": job.get("jobArn"),
            "jobName": run.job_name,
            "jobId": run.job_id,
            "jobQueue": self._queue_arn,
            "status": run.status,
            "attempts": [a.as_batch() for a in run.attempts],
            "createdAt": job.get("createdAt"),
            "retryStrategy": {"attempts": self._attempts_allowed(job)},
            "dependsOn": [],
            "jobDefinition": job.get("jobDefinition"),
            "parameters": job.get("parameters", {}),
            "container": container,
            "tags": job.get("tags", {}),
            "platformCapabilities": ["EC2"],
        }
        if run.status_reason:
            detail["statusReason"] = run.status_reason
        if run.attempts:
            detail["startedAt"] = run.attempts[0].started_at
        if run.status in {"SUCCEEDED", "FAILED"} and run.attempts:
            detail["stoppedAt"] = run.attempts[-1].stopped_at
        return detail

    def _emit(self, job: Mapping[str, Any], run: JobRun, status: str) -> None:
        run.status = status
        if status in self.drop_statuses:
            log.warning("dropping the Batch %s event of %s (as asked)", status, run.job_id)
        else:
            entry = {
                "Source": BATCH_SOURCE,
                "DetailType": BATCH_DETAIL_TYPE,
                "Detail": json.dumps(self.describe(run), default=str),
                "Resources": [str(job.get("jobArn"))],
                "EventBusName": "default",
            }
            response = self._events.put_events(Entries=[entry])
            if response.get("FailedEntryCount"):
                log.error("could not publish Batch %s event for %s", status, run.job_id)
        if self._on_change is not None:
            self._on_change(run)

    def _attempts_allowed(self, job: Mapping[str, Any]) -> int:
        strategy = self._definition(str(job.get("jobDefinition"))).get("retryStrategy") or {}
        return int((job.get("retryStrategy") or strategy).get("attempts") or 1)

    def _timeout(self, job: Mapping[str, Any]) -> float | None:
        own = (job.get("timeout") or {}).get("attemptDurationSeconds")
        defined = (self._definition(str(job.get("jobDefinition"))).get("timeout") or {}).get(
            "attemptDurationSeconds"
        )
        value = own or defined
        return float(value) if value else None

    def _command(self, job: Mapping[str, Any]) -> list[str]:
        command = list((job.get("container") or {}).get("command") or [])
        if command and command[0].startswith("python"):
            return [self._python, *command[1:]]
        return [self._python, "-m", ENTRYPOINT_MODULE]

    def _run_job(self, job: dict[str, Any], run: JobRun) -> None:
        try:
            self._run_attempts(job, run)
        except Exception as exc:
            log.exception("runner crashed on job %s", run.job_id)
            run.status_reason = f"local runner error: {exc!r}"
            self._emit(job, run, "FAILED")

    def _run_attempts(self, job: dict[str, Any], run: JobRun) -> None:
        definition = self._definition(str(job.get("jobDefinition")))
        strategy = job.get("retryStrategy") or definition.get("retryStrategy")
        allowed = self._attempts_allowed(job)
        self._emit(job, run, "RUNNABLE")
        for number in range(1, allowed + 1):
            self._emit(job, run, "STARTING")
            exit_code, reason = self._attempt(job, run, number)
            if exit_code == ExitCode.OK:
                run.status_reason = None
                self._emit(job, run, "SUCCEEDED")
                return
            run.status_reason = reason
            if number < allowed and retry_action(strategy, exit_code, reason) == "RETRY":
                log.info("job %s attempt %d exited %s; retrying", run.job_id, number, exit_code)
                self._emit(job, run, "RUNNABLE")
                continue
            break
        self._emit(job, run, "FAILED")

    def _attempt_env(self, job: Mapping[str, Any], run: JobRun, number: int) -> dict[str, str]:
        """The container's environment, with what Batch adds to every attempt."""
        container_env = {
            e["name"]: e["value"] for e in (job.get("container") or {}).get("environment", [])
        }
        return {
            **os.environ,
            **self._base_env,
            **container_env,
            "AWS_BATCH_JOB_ID": run.job_id,
            "AWS_BATCH_JOB_ATTEMPT": str(number),
            "AWS_BATCH_JQ_NAME": self._queue_name,
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p
            ),
        }

    def _attempt(self, job: dict[str, Any], run: JobRun, number: int) -> tuple[int | None, str]:
        """Run attempt ``number`` as a subprocess; its exit code (128+n when killed by signal
        n, ``None`` past the timeout) and Batch's reason."""
        self._log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self._log_dir / f"{run.job_id}.{number}.log"
        started = _now_ms()
        with log_path.open("wb") as out:
            process = subprocess.Popen(
                self._command(job),
                env=self._attempt_env(job, run, number),
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # so a timeout kills the whole process group
            )
            with self._lock:
                self._processes[run.job_id] = process
            run.attempts.append(
                AttemptResult(number, None, started, started, "", log_path=log_path)
            )
            self._emit(job, run, "RUNNING")
            try:
                exit_code: int | None = process.wait(timeout=self._timeout(job))
                reason = ESSENTIAL_EXIT_REASON if exit_code else ""
            except subprocess.TimeoutExpired:
                _kill(process)
                exit_code, reason = None, TIMEOUT_REASON
            finally:
                with self._lock:
                    self._processes.pop(run.job_id, None)
        if exit_code is not None and exit_code < 0:
            # Killed by a signal (OOM killer, Ctrl-C): a container would report 128+n.
            exit_code = 128 - exit_code
        run.attempts[-1] = AttemptResult(
            number, exit_code, started, _now_ms(), reason, log_path=log_path
        )
        return exit_code, reason


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
    process.wait()
