"""Small conversions from validated settings to CDK values, shared by the constructs.

A note on the ``cast()`` calls across infra/: jsii's generated Python protocols name some
parameters differently from the classes implementing them (``scope`` versus ``_scope``), so
pyright rejects real implementations of CDK interfaces (``IPrincipal``, ``IRuleTarget``...).
Each cast names the interface the value really implements; none changes a value.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

#: CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS: dict[int, logs.RetentionDays] = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}

_REMOVAL = {
    "retain": RemovalPolicy.RETAIN,
    "destroy": RemovalPolicy.DESTROY,
}


def log_retention(days: int) -> logs.RetentionDays:
    """The retention enum for ``days`` (settings validation guarantees it is allowed)."""
    return LOG_RETENTION_DAYS[days]


def removal_policy(name: str) -> RemovalPolicy:
    return _REMOVAL[name]


def parking_queue(scope: Construct, construct_id: str) -> sqs.Queue:
    """A queue where messages that could not be handled wait for a person: encrypted, TLS
    only, kept for the 14 days SQS allows at most (dead-letter and failure queues)."""
    return sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=Duration.days(14),
    )
