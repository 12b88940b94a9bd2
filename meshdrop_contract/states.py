"""Job states and the transitions allowed between them.

Every state change is a conditional write that names the states it may come from, so a
duplicate or late event can never move a job backwards.
"""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    ACCEPTED = "ACCEPTED"
    SUBMITTED = "SUBMITTED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    REJECTED = "REJECTED"
    #: A newer upload of the same key owns it: this job is never submitted, or its asset is never
    #: written. No notification (the newer job notifies).
    SUPERSEDED = "SUPERSEDED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES: frozenset[JobState] = frozenset(
    {JobState.SUCCEEDED, JobState.FAILED, JobState.REJECTED, JobState.SUPERSEDED}
)

#: For each state, the states a job may be in before entering it. Skipping forward is allowed
#: (events can be lost or arrive out of order: SUCCEEDED may come before RUNNING); going back,
#: or leaving a terminal state, is not. REJECTED is for input refused before any GPU time.
ALLOWED_PREDECESSORS: dict[JobState, frozenset[JobState]] = {
    JobState.ACCEPTED: frozenset(),
    JobState.SUBMITTED: frozenset({JobState.ACCEPTED}),
    JobState.RUNNING: frozenset({JobState.ACCEPTED, JobState.SUBMITTED}),
    JobState.SUCCEEDED: frozenset({JobState.ACCEPTED, JobState.SUBMITTED, JobState.RUNNING}),
    JobState.FAILED: frozenset({JobState.ACCEPTED, JobState.SUBMITTED, JobState.RUNNING}),
    JobState.REJECTED: frozenset({JobState.ACCEPTED}),
    JobState.SUPERSEDED: frozenset({JobState.ACCEPTED, JobState.SUBMITTED, JobState.RUNNING}),
}


def can_transition(current: JobState | None, target: JobState) -> bool:
    """Whether a job in ``current`` (``None``: no record yet) may move to ``target``."""
    if current is None:
        return target in {JobState.ACCEPTED, JobState.REJECTED, JobState.SUPERSEDED}
    return current in ALLOWED_PREDECESSORS[target]


class ExitCode:
    """Exit codes of the generator container; the Batch retry strategy keys on them."""

    OK = 0
    #: The input can never succeed (corrupt image, nothing to reconstruct): never retried.
    BAD_INPUT = 65  # sysexits EX_DATAERR
    #: The asset failed the quality gate: deterministic, never retried.
    QUALITY = 66
    #: The source object changed while the job ran (a newer upload owns the key): the asset was
    #: not written; never retried.
    SUPERSEDED = 67
    #: Something outside the input failed (network, throttling, out of memory): retried.
    TRANSIENT = 75  # sysexits EX_TEMPFAIL
    #: Any other crash is a bug; retrying will not help.
    INTERNAL = 70  # sysexits EX_SOFTWARE

    RETRYABLE: frozenset[int] = frozenset({TRANSIENT})
