"""Storage construct: a private, versioned, TLS-only bucket that only announces images/."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Template

from meshdrop_contract import ASSET_PREFIX, SOURCE_PREFIX


def data_bucket(template: Template) -> tuple[str, Any]:
    buckets = template.find_resources(
        "AWS::S3::Bucket", {"Properties": {"VersioningConfiguration": {"Status": "Enabled"}}}
    )
    assert len(buckets) == 1, buckets
    return next(iter(buckets.items()))


def test_bucket_is_versioned_private_and_encrypted(template: Template) -> None:
    _, bucket = data_bucket(template)
    props = bucket["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
    assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]


def test_bucket_logs_access_to_the_log_bucket(template: Template) -> None:
    _, bucket = data_bucket(template)
    logging = bucket["Properties"]["LoggingConfiguration"]
    log_bucket_id = logging["DestinationBucketName"]["Ref"]
    log_bucket = template.to_json()["Resources"][log_bucket_id]
    assert log_bucket["Type"] == "AWS::S3::Bucket"
    assert "VersioningConfiguration" not in log_bucket["Properties"]


def test_lifecycle_expires_old_versions_and_aborts_multipart_uploads(template: Template) -> None:
    _, bucket = data_bucket(template)
    rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    assert any(r.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays") == 30 for r in rules)
    assert any(
        r.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation") == 1 for r in rules
    )
    assert all(r["Status"] == "Enabled" for r in rules)


def test_both_buckets_deny_plain_http(template: Template) -> None:
    policies = template.find_resources("AWS::S3::BucketPolicy")
    assert len(policies) == 2
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny"
            and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            and s["Action"] == "s3:*"
            for s in statements
        ), statements


def test_only_images_prefix_is_sent_to_the_ingest_queue(template: Template) -> None:
    notifications = template.find_resources("Custom::S3BucketNotifications")
    assert len(notifications) == 1
    config = next(iter(notifications.values()))["Properties"]["NotificationConfiguration"]
    assert set(config) == {"QueueConfigurations"}
    # Uploads start work; removals let ingest mark (or delete) what the photo made.
    events = sorted(c["Events"][0] for c in config["QueueConfigurations"])
    assert events == ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
    for queue_config in config["QueueConfigurations"]:
        rules = queue_config["Filter"]["Key"]["FilterRules"]
        assert rules == [{"Name": "prefix", "Value": SOURCE_PREFIX}]
        assert queue_config["QueueArn"]["Fn::GetAtt"][0].startswith("IngestQueue")
    # The guard against a loop: outputs are written under a prefix the filter excludes.
    assert not ASSET_PREFIX.startswith(SOURCE_PREFIX)


def test_data_is_retained_by_default(template: Template) -> None:
    _, bucket = data_bucket(template)
    assert bucket["DeletionPolicy"] == "Retain"
    assert bucket["UpdateReplacePolicy"] == "Retain"
