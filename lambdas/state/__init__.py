"""State function: job events and AWS Batch state changes -> job record, one SNS per job."""
