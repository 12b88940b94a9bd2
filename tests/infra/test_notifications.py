"""Notifications construct: encrypted, TLS-only topic with an optional e-mail subscription."""

from __future__ import annotations

from aws_cdk import App, Stack
from aws_cdk.assertions import Template

from infra.notifications import NotificationsConstruct


def topic(template: Template, prefix: str) -> dict:
    (found,) = [
        t for lid, t in template.find_resources("AWS::SNS::Topic").items() if lid.startswith(prefix)
    ]
    return found["Properties"]


def test_topic_is_encrypted(template: Template) -> None:
    props = topic(template, "NotificationsTopic")
    assert "alias/aws/sns" in str(props["KmsMasterKeyId"])


def test_every_topic_denies_plain_http(template: Template) -> None:
    topics = set(template.find_resources("AWS::SNS::Topic"))
    protected = set()
    for policy in template.find_resources("AWS::SNS::TopicPolicy").values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        if any(
            s["Effect"] == "Deny"
            and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        ):
            protected.update(t["Ref"] for t in policy["Properties"]["Topics"])
    assert topics == protected


def test_no_subscription_without_an_address(template: Template) -> None:
    template.resource_count_is("AWS::SNS::Subscription", 0)


def test_email_subscription_when_an_address_is_given() -> None:
    stack = Stack(App(), "Notify")
    NotificationsConstruct(stack, "Notifications", email="ops@example.com")
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"}
    )
