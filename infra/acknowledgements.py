"""cdk-nag findings of the meshdrop stack that are deliberate, each with a reason that is true."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Acknowledgment, Token, Validations
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from meshdrop_contract import ASSET_PREFIX, SOURCE_PREFIX

if TYPE_CHECKING:
    from infra.stack import MeshdropStack

_MANAGED = "arn:<AWS::Partition>:iam::aws:policy"


def ack(scope: Construct, rule: str, reason: str) -> None:
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))


def _role(function: lambda_.Function) -> Construct:
    """The function's role: python_function creates it beside the function, not inside."""
    role = function.role
    assert isinstance(role, Construct)
    return role


def acknowledge(stack: MeshdropStack) -> None:
    """Acknowledge, on the narrowest construct, each finding the design accepts."""
    _object_prefixes(stack)
    _functions(stack)
    _compute(stack)
    _queues(stack)
    if stack.image_build is not None:
        _image_build(stack)


def _object_prefixes(stack: MeshdropStack) -> None:
    bucket_arn = stack.resolve(stack.storage.bucket.bucket_arn)["Fn::GetAtt"][0]
    for prefix in (SOURCE_PREFIX, ASSET_PREFIX):
        for scope in (stack.compute.job_role, _role(stack.ingest.function)):
            ack(
                scope,
                f"AwsSolutions-IAM5[Resource::<{bucket_arn}.Arn>/{prefix}*]",
                f"Object access is scoped to the {prefix} prefix of the meshdrop bucket; "
                "the objects' names are not known in advance.",
            )
    # The reconciler runs the state function's logic when it applies a lost Batch state.
    for state_role in (_role(stack.state.function), _role(stack.reconcile.function)):
        for pattern in (f"{ASSET_PREFIX}*", f"{ASSET_PREFIX}*.error.json"):
            ack(
                state_role,
                f"AwsSolutions-IAM5[Resource::<{bucket_arn}.Arn>/{pattern}]",
                "The state logic reads asset metadata and writes error files under the "
                f"{ASSET_PREFIX} prefix; the objects' names are not known in advance.",
            )
    if stack.settings.weights_s3_uri:
        partition = stack.partition
        if Token.is_unresolved(partition):
            partition = "<AWS::Partition>"  # how cdk-nag renders the pseudo parameter
        weights = stack.settings.weights_s3_uri.removeprefix("s3://")
        ack(
            stack.compute.job_role,
            f"AwsSolutions-IAM5[Resource::arn:{partition}:s3:::{weights}*]",
            "Weights are read from the configured s3:// prefix only.",
        )


def _functions(stack: MeshdropStack) -> None:
    for submitter in (stack.ingest.function, stack.reconcile.function):
        ack(
            _role(submitter),
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:batch:<AWS::Region>:"
            "<AWS::AccountId>:job/*]"
            if Token.is_unresolved(stack.region)
            else f"AwsSolutions-IAM5[Resource::{stack.batch_jobs_arn}]",
            "Tagging applies to the jobs this function submits (batch:CreateAction=SubmitJob); "
            "their ids do not exist before submission.",
        )
    function_id = stack.resolve(stack.reconcile.function.function_arn)["Fn::GetAtt"][0]
    ack(
        stack.reconcile.schedule_role,
        f"AwsSolutions-IAM5[Resource::<{function_id}.Arn>:*]",
        "CDK's Lambda invoke grant also covers the function's versions and aliases (ARN:*); "
        "the role invokes only the reconcile function.",
    )
    ack(
        _role(stack.reconcile.function),
        "AwsSolutions-IAM5[Resource::*]",
        "X-Ray tracing (xray:PutTraceSegments/PutTelemetryRecords) and batch:ListJobs/"
        "DescribeJobs support no resource-level permissions.",
    )
    for function in (stack.ingest.function, stack.state.function, stack.reconcile.function):
        if function is not stack.reconcile.function:
            ack(
                _role(function),
                "AwsSolutions-IAM5[Resource::*]",
                "X-Ray tracing (xray:PutTraceSegments/PutTelemetryRecords) and, for ingest, "
                "batch:ListJobs support no resource-level permissions.",
            )
        ack(
            function,
            "AwsSolutions-L1",
            "python3.12 is pinned on purpose: the handlers share meshdrop_contract with the "
            "generator image, which runs CPython 3.12; a runtime upgrade moves both together.",
        )
    handler = next(
        child
        for child in stack.node.children
        if child.node.id.startswith("BucketNotificationsHandler")
    )
    assert isinstance(handler, Construct)
    ack(
        handler,
        f"AwsSolutions-IAM4[Policy::{_MANAGED}/service-role/AWSLambdaBasicExecutionRole]",
        "CDK's bucket-notification custom resource: its role is created by CDK with this "
        "managed policy (logs in any group of the account) and runs only during deployments.",
    )


def _compute(stack: MeshdropStack) -> None:
    ack(
        stack.compute.container,
        "AwsSolutions-IAM5[Resource::*]",
        "ecr:GetAuthorizationToken supports no resource; the pull is scoped to the image repo.",
    )
    for environment in stack.compute.compute_environments:
        ack(
            environment,
            f"AwsSolutions-IAM4[Policy::{_MANAGED}/service-role/"
            "AmazonEC2ContainerServiceforEC2Role]",
            "The policy AWS Batch documents for the ECS agent on its instances; containers "
            "cannot use it (IMDSv2 hop limit 1 in the launch template).",
        )


def _queues(stack: MeshdropStack) -> None:
    ack(
        stack.routing.dead_letter_queue,
        "AwsSolutions-SQS3",
        "This queue is the dead-letter queue of the EventBridge targets.",
    )
    ack(
        stack.routing.failed_jobs_queue,
        "AwsSolutions-SQS3",
        "Holds copies of failed-job and queue-blocked events for inspection; EventBridge "
        "dead-letters undeliverable ones to the target dead-letter queue.",
    )
    ack(
        stack.state.failure_queue,
        "AwsSolutions-SQS3",
        "This queue is the on-failure destination of the state function's async invocations.",
    )
    ack(
        stack.reconcile.dead_letter_queue,
        "AwsSolutions-SQS3",
        "This queue is the dead-letter queue of the reconciler's schedule target.",
    )


def _image_build(stack: MeshdropStack) -> None:
    """The in-AWS image build (image_build="codebuild"): CodeBuild and CDK's provider framework."""
    build = stack.image_build
    assert build is not None
    project_id = stack.resolve(build.project.project_name)["Ref"]
    project_role = build.project.role
    assert isinstance(project_role, Construct)
    for action in ("s3:GetBucket*", "s3:GetObject*", "s3:List*"):
        ack(
            project_role,
            f"AwsSolutions-IAM5[Action::{action}]",
            "CDK's read grant on the one build-context object (a content-hashed key in the "
            "bootstrap assets bucket) that CodeBuild downloads as its source.",
        )
    ack(
        project_role,
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:"
        f"log-group:/aws/codebuild/<{project_id}>:*]",
        "CodeBuild's default grant on this project's own /aws/codebuild log group.",
    )
    ack(
        project_role,
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:codebuild:<AWS::Region>:"
        f"<AWS::AccountId>:report-group/<{project_id}>-*]",
        "CodeBuild's default grant on report groups named after this project only.",
    )
    ack(
        project_role,
        "AwsSolutions-IAM5[Resource::*]",
        "ecr:GetAuthorizationToken supports no resource; push and pull are scoped to the "
        "stack's repository.",
    )
    ack(
        build.project,
        "AwsSolutions-CB4",
        "The project produces no build artifacts (the image goes to ECR, encrypted at rest); "
        "CodeBuild encrypts its logs and workspace with AWS-managed keys.",
    )
    _image_build_provider(stack)


def _image_build_provider(stack: MeshdropStack) -> None:
    """CDK's provider framework that starts and polls the in-AWS image build."""
    build = stack.image_build
    assert build is not None
    for handler in build.handlers:
        ack(
            _role(handler),
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray tracing: xray:PutTraceSegments/PutTelemetryRecords support no resource.",
        )
        ack(
            handler,
            "AwsSolutions-L1",
            "python3.12 like the other functions; these two only start and poll the image build.",
        )
    ack(
        build.provider,
        f"AwsSolutions-IAM4[Policy::{_MANAGED}/service-role/AWSLambdaBasicExecutionRole]",
        "CDK's custom-resource provider framework creates its roles with this managed policy; "
        "its functions run only during deployments.",
    )
    for handler in (*build.handlers, *_framework_functions(build.provider)):
        handler_id = stack.resolve(handler.function_arn)["Fn::GetAtt"][0]
        ack(
            build.provider,
            f"AwsSolutions-IAM5[Resource::<{handler_id}.Arn>:*]",
            "The provider framework invokes its own handler functions, any version.",
        )
    for rule in ("AwsSolutions-SF1", "AwsSolutions-SF2"):
        ack(
            build.provider,
            rule,
            "CDK's provider-framework waiter, rendered without logging or tracing options; it "
            "only polls the build during deployments (the build logs to BuildLogs).",
        )


def _framework_functions(provider: Construct) -> list[lambda_.Function]:
    return [
        child
        for child in provider.node.children
        if isinstance(child, lambda_.Function) and child.node.id != "framework-onEvent"
    ]
