"""Reconciler configuration, read from the environment once per container."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from meshdrop_contract.wiring import (
    ENV_EVENT_BUS_NAME,
    ENV_JOB_DEFINITION,
    ENV_JOB_QUEUE,
    ENV_JOB_TTL_DAYS,
    ENV_RECONCILE_MAX_RESUBMITS,
    ENV_RECONCILE_RUNNING_AFTER_S,
    ENV_RECONCILE_STUCK_AFTER_S,
    ENV_TABLE_NAME,
    ENV_TOPIC_ARN,
)

from ..common.settings import (
    DEFAULT_JOB_TTL_DAYS,
    ConfigurationError,
    StateSettings,
    error_files_enabled,
    positive_int,
    required,
)

#: Defaults matching the stack's: the queue cancels RUNNABLE jobs after 30 minutes, so a job
#: untouched for 45 is one Batch will not fix; 3 attempts of 30 minutes bound a RUNNING one.
DEFAULT_STUCK_AFTER_S = 45 * 60
DEFAULT_RUNNING_AFTER_S = 3 * 30 * 60 + DEFAULT_STUCK_AFTER_S
DEFAULT_MAX_RESUBMITS = 2

__all__ = ["ConfigurationError", "ReconcileSettings", "reconcile_settings"]


@dataclass(frozen=True, slots=True)
class ReconcileSettings:
    table_name: str
    topic_arn: str
    event_bus_name: str
    job_queue: str
    job_definition: str
    stuck_after_s: int = DEFAULT_STUCK_AFTER_S
    running_after_s: int = DEFAULT_RUNNING_AFTER_S
    max_resubmits: int = DEFAULT_MAX_RESUBMITS
    job_ttl_days: int = DEFAULT_JOB_TTL_DAYS
    #: As the state function's: the reconciler applies states with the same logic.
    error_files: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ReconcileSettings:
        """Validate ``env``; :class:`ConfigurationError` names the first bad variable."""
        return cls(
            table_name=required(env, ENV_TABLE_NAME),
            topic_arn=required(env, ENV_TOPIC_ARN),
            event_bus_name=required(env, ENV_EVENT_BUS_NAME),
            job_queue=required(env, ENV_JOB_QUEUE),
            job_definition=required(env, ENV_JOB_DEFINITION),
            stuck_after_s=positive_int(env, ENV_RECONCILE_STUCK_AFTER_S, DEFAULT_STUCK_AFTER_S),
            running_after_s=positive_int(
                env, ENV_RECONCILE_RUNNING_AFTER_S, DEFAULT_RUNNING_AFTER_S
            ),
            max_resubmits=positive_int(env, ENV_RECONCILE_MAX_RESUBMITS, DEFAULT_MAX_RESUBMITS),
            job_ttl_days=positive_int(env, ENV_JOB_TTL_DAYS, DEFAULT_JOB_TTL_DAYS),
            error_files=error_files_enabled(env),
        )

    def state_settings(self) -> StateSettings:
        """What the state function's logic needs, to apply a Batch state the reconciler finds."""
        return StateSettings(
            table_name=self.table_name,
            topic_arn=self.topic_arn,
            job_ttl_days=self.job_ttl_days,
            error_files=self.error_files,
        )


@cache
def reconcile_settings() -> ReconcileSettings:
    """Settings of the reconciler, validated on first use and then kept."""
    return ReconcileSettings.from_env(os.environ)
