"""Storage: the uploads/assets bucket, its access-log bucket and the upload notification."""

from __future__ import annotations

from typing import cast

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from meshdrop_contract import SOURCE_PREFIX


class StorageConstruct(Construct):
    """Versioned, private, TLS-only bucket; new ``images/`` objects are announced on a queue.

    Only ``images/`` is announced, so the generator writing ``3d_assets/`` can never start
    another job (no loop), whatever the handlers do.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        noncurrent_version_days: int,
        log_retention_days: int,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        auto_delete = removal_policy == RemovalPolicy.DESTROY
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(log_retention_days))],
            removal_policy=removal_policy,
            auto_delete_objects=auto_delete,
        )
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            # Versioning gives every upload a version id: the job id is derived from it, so a
            # re-upload under the same key is a new job and a redelivery is the same job.
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="s3-access/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-noncurrent-versions",
                    noncurrent_version_expiration=Duration.days(noncurrent_version_days),
                ),
                s3.LifecycleRule(
                    id="abort-incomplete-multipart-uploads",
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                ),
            ],
            removal_policy=removal_policy,
            auto_delete_objects=auto_delete,
        )

    def notify_uploads(self, queue: sqs.IQueue) -> None:
        """Send an S3 event for every object created or removed under ``images/`` (only).

        Ingest starts work only on ObjectCreated; a removal marks the photo's jobs as having
        lost their source (and, when the deployment says so, deletes the asset).
        """
        destination = cast(s3.IBucketNotificationDestination, s3n.SqsDestination(queue))
        for event in (s3.EventType.OBJECT_CREATED, s3.EventType.OBJECT_REMOVED):
            self.bucket.add_event_notification(
                event, destination, s3.NotificationKeyFilter(prefix=SOURCE_PREFIX)
            )
