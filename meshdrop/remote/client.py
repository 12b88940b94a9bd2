"""Find a meshdrop deployment and talk to it: stack discovery and the shared boto3 clients.

Names come, in this order, from command line flags, the environment (``MESHDROP_BUCKET``,
``MESHDROP_TABLE``) and the CloudFormation stack's outputs. ``AWS_ENDPOINT_URL`` (honoured by
boto3 itself) points everything at the local pipeline's moto server.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from meshdrop_contract.wiring import (
    CLI_ENV_BUCKET,
    CLI_ENV_STACK,
    CLI_ENV_TABLE,
    DEFAULT_STACK_NAME,
    STACK_OUTPUT_BUCKET,
    STACK_OUTPUT_EVENT_BUS,
    STACK_OUTPUT_TABLE,
    STACK_OUTPUT_TOPIC,
)

from .errors import RemoteError, error_code, explain

#: Standard retry mode backs off on throttling; uploads of hundreds of files do hit it.
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 8}, max_pool_connections=32)


@dataclass(frozen=True, slots=True)
class StackNames:
    """Where a deployment keeps its things; ``None`` where it could not be found."""

    bucket: str
    table: str | None = None
    event_bus: str | None = None
    topic_arn: str | None = None
    stack: str | None = None


def stack_outputs(cloudformation: Any, stack: str) -> dict[str, str]:
    """``OutputKey -> OutputValue`` of a CloudFormation stack."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except (ClientError, BotoCoreError) as err:
        raise (explain(err, what=f"stack {stack}") or err) from None
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def discover(
    cloudformation: Any,
    *,
    stack: str | None = None,
    bucket: str | None = None,
    table: str | None = None,
    env: Mapping[str, str] | None = None,
) -> StackNames:
    """Resolve the deployment's names from flags, then environment, then stack outputs.

    Parameters
    ----------
    cloudformation
        A boto3 CloudFormation client; only called when flags and environment leave a gap.
    stack, bucket, table
        Command line values (``None`` when not given).
    env
        Environment to read (``os.environ`` by default).

    Raises
    ------
    RemoteError
        The stack does not exist (and no bucket was given), or it has no bucket output.
    """
    env = os.environ if env is None else env
    bucket = bucket or env.get(CLI_ENV_BUCKET) or None
    table = table or env.get(CLI_ENV_TABLE) or None
    stack = stack or env.get(CLI_ENV_STACK) or DEFAULT_STACK_NAME
    if bucket and table:
        return StackNames(bucket=bucket, table=table)
    try:
        outputs = stack_outputs(cloudformation, stack)
    except RemoteError:
        if bucket:
            # A bucket alone is enough for upload/get; commands needing the table say so.
            return StackNames(bucket=bucket)
        raise
    bucket = bucket or outputs.get(STACK_OUTPUT_BUCKET)
    if not bucket:
        raise RemoteError(
            f"Stack {stack} has no {STACK_OUTPUT_BUCKET} output: pass --bucket or set "
            f"{CLI_ENV_BUCKET}."
        )
    return StackNames(
        bucket=bucket,
        table=table or outputs.get(STACK_OUTPUT_TABLE),
        event_bus=outputs.get(STACK_OUTPUT_EVENT_BUS),
        topic_arn=outputs.get(STACK_OUTPUT_TOPIC),
        stack=stack,
    )


class Remote:
    """boto3 clients for one deployment, created on first use."""

    def __init__(self, names: StackNames, session: boto3.Session | None = None) -> None:
        self.names = names
        self.session = session or boto3.Session()

    @classmethod
    def connect(
        cls,
        *,
        stack: str | None = None,
        bucket: str | None = None,
        table: str | None = None,
        region: str | None = None,
        session: boto3.Session | None = None,
    ) -> Remote:
        # botocore reads AWS_DEFAULT_REGION only; AWS_REGION is what Lambda and most SDKs use.
        region = region or os.environ.get("AWS_REGION") or None
        session = session or boto3.Session(region_name=region)
        cfn = session.client("cloudformation", config=_CONFIG)
        return cls(discover(cfn, stack=stack, bucket=bucket, table=table), session)

    @property
    def bucket(self) -> str:
        return self.names.bucket

    @property
    def table_name(self) -> str:
        if not self.names.table:
            raise RemoteError(
                f"No job table known: pass --table, set {CLI_ENV_TABLE}, or deploy the stack."
            )
        return self.names.table

    def check_bucket(self) -> None:
        """Fail early, with one clear line, when credentials, bucket or access are missing."""
        if self.session.get_credentials() is None:
            raise explain(NoCredentialsError()) or RemoteError("No AWS credentials found.")
        try:
            self.s3.head_bucket(Bucket=self.bucket)
        except ClientError as err:
            # head_bucket has no body, so S3 answers with bare HTTP codes.
            if error_code(err) in {"404", "NoSuchBucket"}:
                raise RemoteError(
                    f"Bucket does not exist (bucket {self.bucket}): check --bucket/--stack "
                    "and the region."
                ) from None
            raise (explain(err, what=f"bucket {self.bucket}") or err) from None
        except BotoCoreError as err:
            raise (explain(err) or err) from None

    @cached_property
    def s3(self) -> Any:
        return self.session.client("s3", config=_CONFIG)

    @cached_property
    def table(self) -> Any:
        dynamodb: Any = self.session.resource("dynamodb", config=_CONFIG)
        return dynamodb.Table(self.table_name)
