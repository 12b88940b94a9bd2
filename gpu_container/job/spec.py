"""Spec reading: the job and the Batch attempt it runs as, from the container environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from meshdrop_contract import JobSpec, specs_from_env
from meshdrop_contract.jobs import ENV_EVENT_BUS, ENV_PACK, ENV_WEIGHTS

#: Set by AWS Batch: 1 on the first attempt (absent locally: treated as 1).
ENV_BATCH_ATTEMPT = "AWS_BATCH_JOB_ATTEMPT"
#: Set by AWS Batch: the id of the Batch job (the local runner sets it too).
ENV_BATCH_JOB_ID = "AWS_BATCH_JOB_ID"


@dataclass(frozen=True)
class JobContext:
    """Everything the container learns from its environment."""

    spec: JobSpec
    bus: str
    attempt: int = 1
    batch_job_id: str | None = None
    weights: str | None = None
    #: A pack's photos, in order (``MESHDROP_PACK``); empty for a job of one photo.
    pack: tuple[JobSpec, ...] = ()


def batch_attempt(env: Mapping[str, str]) -> int:
    """The 1-based Batch attempt number (1 when absent or malformed)."""
    try:
        return max(1, int(env.get(ENV_BATCH_ATTEMPT) or 1))
    except ValueError:
        return 1


def read_context(env: Mapping[str, str]) -> JobContext:
    """The job described by ``env``.

    Raises
    ------
    KeyError, ValueError
        The job spec or the bus is missing or malformed (a deployment bug).
    """
    pack = tuple(specs_from_env(env)) if env.get(ENV_PACK) else ()
    return JobContext(
        spec=pack[0] if pack else JobSpec.from_env(env),
        pack=pack,
        bus=env[ENV_EVENT_BUS],
        attempt=batch_attempt(env),
        batch_job_id=env.get(ENV_BATCH_JOB_ID) or None,
        weights=env.get(ENV_WEIGHTS) or None,
    )
