"""Notifications: the topic that tells people a job finished (one message per job)."""

from __future__ import annotations

from typing import cast

from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct


class NotificationsConstruct(Construct):
    """TLS-only topic encrypted with the AWS-managed SNS key, optionally with an e-mail."""

    def __init__(self, scope: Construct, construct_id: str, *, email: str | None) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name="meshdrop job notifications",
            # The AWS-managed key costs nothing at rest; only AWS services publishing to the
            # topic directly (not the state function) would need a customer-managed key.
            master_key=kms.Alias.from_alias_name(self, "SnsKey", "alias/aws/sns"),
            enforce_ssl=True,
        )
        if email:
            self.topic.add_subscription(
                cast(sns.ITopicSubscription, subscriptions.EmailSubscription(email))
            )
