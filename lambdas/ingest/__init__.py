"""Ingest function: S3 upload notifications (via SQS) -> validated job -> AWS Batch."""
