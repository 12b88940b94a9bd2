"""Building the generator image in AWS: a CodeBuild project the stack owns (``image_build``
"codebuild"), so ``cdk deploy`` needs neither a local Docker nor an 11 GB upload.

``cdk deploy`` uploads the build context (a few hundred KB: gpu_container/ and the contract) as
a file asset; a custom resource starts the build and waits for it (up to two hours), and the
job definition depends on that resource, so no job is defined before its image exists. Images
go to a repository of this stack whose lifecycle rule keeps the newest ``keep_images``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import cast

from aws_cdk import CustomResource, Duration, IgnoreMode, RemovalPolicy
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import custom_resources as cr
from constructs import Construct

from infra.image import DOCKERFILE, IMAGE_EXCLUDE, REPO_ROOT
from infra.lambda_code import python_function

BUILD_TIMEOUT = Duration.hours(2)
#: Starts the build on create/update (a new tag means a new build) and reports when it is done.
TRIGGER_CODE = """
import boto3

codebuild = boto3.client("codebuild")


def on_event(event, context):
    props = event["ResourceProperties"]
    if event["RequestType"] == "Delete":
        return {"PhysicalResourceId": event["PhysicalResourceId"]}
    build = codebuild.start_build(projectName=props["ProjectName"])["build"]
    return {"PhysicalResourceId": props["ImageTag"], "Data": {"BuildId": build["id"]}}


def is_complete(event, context):
    if event["RequestType"] == "Delete":
        return {"IsComplete": True}
    build_id = event["Data"]["BuildId"]
    build = codebuild.batch_get_builds(ids=[build_id])["builds"][0]
    status = build["buildStatus"]
    if status == "IN_PROGRESS":
        return {"IsComplete": False}
    if status != "SUCCEEDED":
        raise RuntimeError(f"image build {build_id} ended {status}: see its CodeBuild log")
    return {"IsComplete": True}
"""


def image_tag(context_hash: str, target: str, build_args: Mapping[str, str]) -> str:
    """A tag that changes with the build context, the target or any build argument."""
    text = json.dumps([context_hash, target, dict(sorted(build_args.items()))])
    return f"{target}-{hashlib.sha256(text.encode()).hexdigest()[:32]}"


def build_commands(target: str, build_args: Mapping[str, str]) -> list[str]:
    """The buildspec's build phase: one docker build, its arguments quoted for the shell."""
    args = " ".join(f'--build-arg {name}="${name}"' for name in sorted(build_args))
    return [
        f'docker build -f {DOCKERFILE} --target {target} {args} -t "$REPOSITORY_URI:$IMAGE_TAG" .',
        'docker push "$REPOSITORY_URI:$IMAGE_TAG"',
    ]


class CodeBuildImage(Construct):
    """ECR repository + CodeBuild project + a deploy-time build; ``image`` for the job."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        target: str,
        build_args: Mapping[str, str],
        keep_images: int,
        removal_policy: RemovalPolicy,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        self.repository = ecr.Repository(
            self,
            "Repository",
            image_scan_on_push=True,
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,
            lifecycle_rules=[
                ecr.LifecycleRule(
                    description=f"keep the newest {keep_images} generator images",
                    max_image_count=keep_images,
                )
            ],
            removal_policy=removal_policy,
            empty_on_delete=removal_policy == RemovalPolicy.DESTROY,
        )
        self.context = s3_assets.Asset(
            self,
            "Context",
            path=str(REPO_ROOT),
            exclude=list(IMAGE_EXCLUDE),
            ignore_mode=IgnoreMode.DOCKER,
        )
        self.tag = image_tag(self.context.asset_hash, target, build_args)
        self.project = self._project(target, build_args, log_retention, removal_policy)
        self.build = self._trigger(log_retention, removal_policy)
        self.image = ecs.ContainerImage.from_ecr_repository(
            cast(ecr.IRepository, self.repository), tag=self.tag
        )

    def _project(
        self,
        target: str,
        build_args: Mapping[str, str],
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> codebuild.Project:
        self.build_logs = logs.LogGroup(
            self, "BuildLogs", retention=log_retention, removal_policy=removal_policy
        )
        variables = {
            "REPOSITORY_URI": self.repository.repository_uri,
            "IMAGE_TAG": self.tag,
            **build_args,
        }
        project = codebuild.Project(
            self,
            "Project",
            description="Builds the meshdrop generator image (gpu_container/Dockerfile)",
            source=codebuild.Source.s3(bucket=self.context.bucket, path=self.context.s3_object_key),
            environment=codebuild.BuildEnvironment(
                build_image=codebuild.LinuxBuildImage.STANDARD_7_0,
                compute_type=codebuild.ComputeType.LARGE,
                privileged=True,  # docker build needs the Docker daemon
            ),
            environment_variables={
                k: codebuild.BuildEnvironmentVariable(value=v) for k, v in variables.items()
            },
            build_spec=codebuild.BuildSpec.from_object(
                {
                    "version": "0.2",
                    "phases": {
                        "pre_build": {
                            "commands": [
                                "aws ecr get-login-password | docker login --username AWS "
                                '--password-stdin "${REPOSITORY_URI%%/*}"'
                            ]
                        },
                        "build": {"commands": build_commands(target, build_args)},
                    },
                }
            ),
            logging=codebuild.LoggingOptions(
                cloud_watch=codebuild.CloudWatchLoggingOptions(log_group=self.build_logs)
            ),
            timeout=BUILD_TIMEOUT,
        )
        self.repository.grant_pull_push(cast(iam.IGrantable, project))
        return project

    def _trigger(
        self, log_retention: logs.RetentionDays, removal_policy: RemovalPolicy
    ) -> CustomResource:
        code = lambda_.Code.from_inline(TRIGGER_CODE)

        def handler(name: str, entry: str) -> lambda_.Function:
            return python_function(
                self,
                name,
                code=code,
                handler=f"index.{entry}",
                description=f"meshdrop image build: {entry}",
                environment={},
                architecture="arm64",
                log_retention=log_retention,
                removal_policy=removal_policy,
                timeout=Duration.seconds(30),
                memory_mib=128,
            )

        on_event, is_complete = (
            handler("StartBuild", "on_event"),
            handler("BuildDone", "is_complete"),
        )
        on_event.add_to_role_policy(
            iam.PolicyStatement(
                actions=["codebuild:StartBuild"], resources=[self.project.project_arn]
            )
        )
        is_complete.add_to_role_policy(
            iam.PolicyStatement(
                actions=["codebuild:BatchGetBuilds"], resources=[self.project.project_arn]
            )
        )
        provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=cast(lambda_.IFunction, on_event),
            is_complete_handler=cast(lambda_.IFunction, is_complete),
            query_interval=Duration.seconds(30),
            total_timeout=BUILD_TIMEOUT,
            log_group=logs.LogGroup(
                self, "ProviderLogs", retention=log_retention, removal_policy=removal_policy
            ),
        )
        self.provider = provider
        self.handlers = (on_event, is_complete)
        return CustomResource(
            self,
            "Build",
            service_token=provider.service_token,
            properties={"ProjectName": self.project.project_name, "ImageTag": self.tag},
        )
