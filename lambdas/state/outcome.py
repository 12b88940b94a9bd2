"""What the state function did with one event (its return value, and what replay prints)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meshdrop_contract import JobState


@dataclass(frozen=True, slots=True)
class Applied:
    """What one event did: the job, its state afterwards, and whether a notification went out.

    ``outcome`` is "applied" when the event was acted on (even if it changed nothing: a
    duplicate), "ignored" when it does not concern this function or was not believed, and
    "invalid" when it failed its schema.
    """

    job_id: str | None
    state: JobState | None
    changed: bool
    notified: bool = False
    outcome: str = "applied"
    reason: str = ""

    def as_response(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "state": self.state.value if self.state else None,
            "changed": self.changed,
            "notified": self.notified,
            "outcome": self.outcome,
            "reason": self.reason,
        }


def ignored(reason: str, job_id: str | None = None) -> Applied:
    return Applied(job_id=job_id, state=None, changed=False, outcome="ignored", reason=reason)
