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

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES: frozenset[JobState] = frozenset(
    {JobState.SUCCEEDED, JobState.FAILED, JobState.REJECTED}
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
}


def can_transition(current: JobState | None, target: JobState) -> bool:
    """Whether a job in ``current`` (``None``: no record yet) may move to ``target``."""
    if current is None:
        return target in {JobState.ACCEPTED, JobState.REJECTED}
    return current in ALLOWED_PREDECESSORS[target]


class ExitCode:
    """Exit codes of the generator container; the Batch retry strategy keys on them."""

    OK = 0
    #: The input can never succeed (corrupt image, nothing to reconstruct): never retried.
    BAD_INPUT = 65  # sysexits EX_DATAERR
    #: The asset failed the quality gate: deterministic, never retried.
    QUALITY = 66
    #: Something outside the input failed (network, throttling, out of memory): retried.
    TRANSIENT = 75  # sysexits EX_TEMPFAIL
    #: Any other crash is a bug; retrying will not help.
    INTERNAL = 70  # sysexits EX_SOFTWARE

    RETRYABLE: frozenset[int] = frozenset({TRANSIENT})
