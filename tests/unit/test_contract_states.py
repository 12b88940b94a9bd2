"""Job states: forward only, terminal states final."""

from __future__ import annotations

import itertools

import pytest

from meshdrop_contract import TERMINAL_STATES, ExitCode, JobState, can_transition

ORDER = [JobState.ACCEPTED, JobState.SUBMITTED, JobState.RUNNING]


def test_happy_path_is_allowed() -> None:
    path = [None, JobState.ACCEPTED, JobState.SUBMITTED, JobState.RUNNING, JobState.SUCCEEDED]
    for current, target in itertools.pairwise(path):
        assert can_transition(current, target), (current, target)


@pytest.mark.parametrize("terminal", sorted(TERMINAL_STATES))
@pytest.mark.parametrize("target", list(JobState))
def test_terminal_states_never_move(terminal: JobState, target: JobState) -> None:
    assert not can_transition(terminal, target)


@pytest.mark.parametrize(("earlier", "later"), list(itertools.combinations(ORDER, 2)))
def test_never_backwards(earlier: JobState, later: JobState) -> None:
    assert can_transition(earlier, later)
    assert not can_transition(later, earlier)


def test_a_state_does_not_re_enter_itself() -> None:
    # Same-state updates (progress) are enrichments, not transitions.
    for state in JobState:
        assert not can_transition(state, state)


def test_out_of_order_success_before_running_is_accepted() -> None:
    assert can_transition(JobState.SUBMITTED, JobState.SUCCEEDED)


def test_rejection_only_before_submission() -> None:
    assert can_transition(None, JobState.REJECTED)
    assert can_transition(JobState.ACCEPTED, JobState.REJECTED)
    assert not can_transition(JobState.SUBMITTED, JobState.REJECTED)
    assert not can_transition(None, JobState.RUNNING)


def test_only_transient_exits_are_retryable() -> None:
    assert {ExitCode.TRANSIENT} == ExitCode.RETRYABLE
    codes = {ExitCode.OK, ExitCode.BAD_INPUT, ExitCode.QUALITY, ExitCode.TRANSIENT}
    assert len(codes) == 4
    assert JobState.FAILED.terminal and not JobState.RUNNING.terminal
