"""Container entrypoint: the AWS adapter around the generator.

AWS Batch runs ``python -m gpu_container.entrypoint`` with the job in its environment
(:meth:`meshdrop_contract.JobSpec.from_env`, plus ``MESHDROP_EVENT_BUS`` and optionally
``MESHDROP_WEIGHTS``; Batch adds ``AWS_BATCH_JOB_ID`` and ``AWS_BATCH_JOB_ATTEMPT``). The
process downloads the photo, runs the generator, checks that the photo is still the key's
current one, uploads the asset and its thumbnail, and reports through EventBridge. Its exit
code drives the Batch retry strategy (:class:`meshdrop_contract.ExitCode`):

* 0: the asset is stored and one "Job Succeeded" event was sent.
* 65 / 66: bad input / quality gate; one "Job Failed" event was sent; never retried.
* 67: a newer upload (or a delete) took the key over while the job ran; nothing was written,
  one "Job Superseded" event was sent; never retried.
* 75: transient trouble (throttling, network, memory); NO terminal event, Batch retries.
* 70: a bug; one "Job Failed" (internal) event was sent.

The work itself lives in :mod:`gpu_container.job`; this module is the thin process entry. The
generator is loaded once per process (:func:`load_generator`), so a pack's photos pay for the
model only once.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

from gpu_container import selfcheck
from gpu_container.job.generator import load_generator
from gpu_container.job.pack import run_pack
from gpu_container.job.run import run_job
from gpu_container.job.spec import JobContext, read_context
from gpu_container.job.storage import boto_client, resolve_weights
from meshdrop_contract import ExitCode

log = logging.getLogger("meshdrop.entrypoint")


def main(env: Mapping[str, str] | None = None) -> int:
    """Run the job described by ``env`` (default: ``os.environ``); the process exit code."""
    env = os.environ if env is None else env
    logging.basicConfig(
        level=env.get("LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        context = read_context(env)
    except (KeyError, ValueError) as exc:
        # A malformed job spec is a deployment bug: no event can even be addressed.
        log.error("invalid job environment: %r", exc)
        return ExitCode.INTERNAL
    # Logs driver/CUDA/GPU; exits (not retried) if the driver is too old for the image.
    facts = selfcheck.run(env)
    s3 = boto_client("s3")
    events = boto_client("events")

    @functools.cache  # once per process: a pack's photos share one generator
    def loader() -> Any:
        weights = resolve_weights(context.weights, s3)
        return load_generator(selfcheck.verify_weights(weights, env))

    if context.pack:
        return _run_pack(context, s3, events, loader, facts.to_dict())
    spec = context.spec
    outcome = run_job(
        spec,
        s3=s3,
        events=events,
        bus=context.bus,
        generator_loader=loader,
        attempt=context.attempt,
        batch_job_id=context.batch_job_id,
        device=facts.to_dict(),
    )
    log.info(
        "job %s (Batch job %s, attempt %d) finished: exit %d (%s)",
        spec.job_id,
        context.batch_job_id or "-",
        context.attempt,
        outcome.exit_code,
        outcome.detail_type.value if outcome.detail_type else "no terminal event",
    )
    return outcome.exit_code


def _run_pack(
    context: JobContext, s3: Any, events: Any, loader: Any, device: Mapping[str, Any]
) -> int:
    """A pack's photos one after the other, the generator loaded once (see ``job.pack``)."""
    outcome = run_pack(
        context.pack,
        s3=s3,
        events=events,
        bus=context.bus,
        generator_loader=loader,
        attempt=context.attempt,
        batch_job_id=context.batch_job_id,
        device=device,
    )
    log.info(
        "pack of %d (Batch job %s, attempt %d) finished: exit %d (%s)",
        len(context.pack),
        context.batch_job_id or "-",
        context.attempt,
        outcome.exit_code,
        ", ".join(f"{k[:8]}: {v}" for k, v in outcome.photos.items()),
    )
    return outcome.exit_code


if __name__ == "__main__":
    sys.exit(main())
