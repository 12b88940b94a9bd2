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
    #: A pack's Batch event: what it did to each photo (this summary names no job).
    members: tuple[Applied, ...] = ()

    def as_response(self) -> dict[str, Any]:
        response: dict[str, Any] = {
            "job_id": self.job_id,
            "state": self.state.value if self.state else None,
            "changed": self.changed,
            "notified": self.notified,
            "outcome": self.outcome,
            "reason": self.reason,
        }
        if self.members:
            response["members"] = [m.as_response() for m in self.members]
        return response

    def for_job(self, job_id: str) -> Applied:
        """What this event did to ``job_id`` (a pack member's own result, else this)."""
        return next((m for m in self.members if m.job_id == job_id), self)


def pack_applied(members: list[Applied]) -> Applied:
    """One pack event's result over its photos."""
    return Applied(
        job_id=None,
        state=None,
        changed=any(m.changed for m in members),
        notified=any(m.notified for m in members),
        reason=f"pack of {len(members)} photos",
        members=tuple(members),
    )


def ignored(reason: str, job_id: str | None = None) -> Applied:
    return Applied(job_id=job_id, state=None, changed=False, outcome="ignored", reason=reason)
