"""Packaging of the Lambda functions without Docker.

One asset holds both handlers: ``lambdas/`` plus ``meshdrop_contract/`` (stdlib only) plus the
third-party wheels of the ``lambda`` extra in pyproject.toml (boto3 excepted: the runtime has it),
installed for the Lambda platform with ``pip --platform ... --only-binary=:all:``. Docker is only
the fallback when local bundling is impossible.

The asset hash is computed from exactly what goes into the package, so it never depends on
``.venv``, ``node_modules`` or ``cdk.out`` and stays stable across machines.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import jsii
from aws_cdk import (
    AssetHashType,
    BundlingOptions,
    DockerImage,
    Duration,
    ILocalBundling,
    RemovalPolicy,
)
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

REPO_ROOT = Path(__file__).resolve().parent.parent
PYTHON_VERSION = "3.12"
RUNTIME = lambda_.Runtime.PYTHON_3_12
#: (relative path, is a directory) of the project code the functions import.
PACKAGED_PATHS: tuple[str, ...] = ("lambdas", "meshdrop_contract")
#: Supplied by the Lambda runtime; bundling a second copy only grows the package.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer"})
#: The python3.12 runtime runs on Amazon Linux 2023 (glibc 2.34). pip takes the manylinux
#: tags literally (no expansion to older ones), so list those the runtime can load; pillow 12.3
#: ships only manylinux_2_28 wheels, other packages still manylinux2014.
_PLATFORMS: dict[str, tuple[str, ...]] = {
    arch: tuple(f"{tag}_{machine}" for tag in ("manylinux_2_28", "manylinux2014"))
    for arch, machine in (("arm64", "aarch64"), ("x86_64", "x86_64"))
}


def lambda_requirements(root: Path = REPO_ROOT) -> tuple[str, ...]:
    """Pinned requirements of the ``lambda`` extra in ``pyproject.toml``, minus runtime ones."""
    data = tomllib.loads((root / "pyproject.toml").read_text())
    extra = data["project"]["optional-dependencies"]["lambda"]
    wanted = []
    for req in extra:
        name = req.split("[")[0].split("=")[0].split("<")[0].split(">")[0].strip().lower()
        if name not in RUNTIME_PROVIDED:
            wanted.append(req)
    return tuple(sorted(wanted))


def _packaged_files(root: Path) -> Iterator[Path]:
    for rel in PACKAGED_PATHS:
        path = root / rel
        if path.is_file():
            yield path
        elif path.is_dir():
            for file in sorted(path.rglob("*")):
                if file.is_file() and "__pycache__" not in file.parts and file.suffix != ".pyc":
                    yield file
        else:
            raise FileNotFoundError(f"Lambda package needs {path}, which does not exist")


def source_hash(root: Path, architecture: str) -> str:
    """Hash of everything that decides the package's content (code, pins, platform)."""
    digest = hashlib.sha256()
    digest.update(f"{architecture}\n{PYTHON_VERSION}\n".encode())
    # How the package is assembled is part of its content: changing it must change the hash,
    # or CDK would keep serving the previously uploaded zip.
    digest.update(Path(__file__).read_bytes())
    for req in lambda_requirements(root):
        digest.update(f"req:{req}\n".encode())
    for file in _packaged_files(root):
        digest.update(f"file:{file.relative_to(root).as_posix()}\n".encode())
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


def copy_sources(root: Path, output_dir: Path) -> list[Path]:
    """Copy the project code the functions import into ``output_dir``; return what was copied."""
    copied = []
    for file in _packaged_files(root):
        target = output_dir / file.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, target)
        copied.append(target)
    return copied


@jsii.implements(ILocalBundling)
class LocalLambdaBundling:
    """Bundle on this machine: copy the sources, pip-install wheels for the Lambda platform."""

    def __init__(self, root: Path, architecture: str) -> None:
        self.root = root
        self.architecture = architecture

    def pip_command(self, output_dir: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            *(arg for tag in _PLATFORMS[self.architecture] for arg in ("--platform", tag)),
            "--implementation",
            "cp",
            "--only-binary=:all:",
            "--python-version",
            PYTHON_VERSION,
            "--target",
            output_dir,
            *lambda_requirements(self.root),
        ]

    @jsii.member(jsii_name="tryBundle")
    def try_bundle(self, output_dir: str, options: BundlingOptions) -> bool:
        copy_sources(self.root, Path(output_dir))
        result = subprocess.run(
            self.pip_command(output_dir), capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            # Failing loudly beats falling back to Docker, which these machines do not have.
            raise RuntimeError(
                "pip could not install the Lambda dependencies for "
                f"{self.architecture}:\n{result.stderr.strip()}"
            )
        remove_runtime_provided(Path(output_dir))
        return True


def remove_runtime_provided(output_dir: Path) -> list[str]:
    """Delete copies of boto3/botocore that dependencies dragged in; return what was removed.

    aws-xray-sdk depends on botocore; a bundled botocore would shadow the runtime's and could
    mismatch the runtime's boto3.
    """
    removed = []
    for entry in sorted(output_dir.iterdir()):
        name = entry.name.split("-")[0].lower()
        if name in RUNTIME_PROVIDED:
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry.name)
    return removed


def lambda_code(architecture: str, root: Path = REPO_ROOT) -> lambda_.Code:
    """The shared code asset of both functions, bundled locally (Docker only as fallback)."""
    copy = " && ".join(f"cp -r --parents {p} /asset-output/" for p in PACKAGED_PATHS)
    reqs = " ".join(f"'{r}'" for r in lambda_requirements(root))
    return lambda_.Code.from_asset(
        str(root),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=source_hash(root, architecture),
        # Only consulted if bundling falls back to a copy; keeps it from ever walking the venv.
        exclude=[".venv", "node_modules", "cdk.out", ".git", "**/__pycache__"],
        bundling=BundlingOptions(
            image=DockerImage.from_registry(f"public.ecr.aws/sam/build-python{PYTHON_VERSION}"),
            platform="linux/arm64" if architecture == "arm64" else "linux/amd64",
            command=[
                "bash",
                "-c",
                f"pip install --no-compile -t /asset-output {reqs} && {copy} && "
                f"rm -rf {' '.join(f'/asset-output/{n}*' for n in sorted(RUNTIME_PROVIDED))}",
            ],
            local=cast(ILocalBundling, LocalLambdaBundling(root, architecture)),
        ),
    )


def python_function(
    scope: Construct,
    construct_id: str,
    *,
    code: lambda_.Code,
    handler: str,
    description: str,
    environment: dict[str, str],
    architecture: str,
    log_retention: logs.RetentionDays,
    removal_policy: RemovalPolicy,
    timeout: Duration,
    memory_mib: int = 512,
    reserved_concurrency: int | None = None,
) -> lambda_.Function:
    """A traced Python function with its own log group (retention set, removed with the stack).

    Its role may write to that log group only: AWSLambdaBasicExecutionRole would allow every
    log group in the account.
    """
    log_group = logs.LogGroup(
        scope,
        f"{construct_id}Logs",
        retention=log_retention,
        removal_policy=removal_policy,
    )
    role = iam.Role(
        scope,
        f"{construct_id}Role",
        assumed_by=cast(iam.IPrincipal, iam.ServicePrincipal("lambda.amazonaws.com")),
        description=f"meshdrop {construct_id}: {description}"[:1000],
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[log_group.log_group_arn],
        )
    )
    return lambda_.Function(
        scope,
        construct_id,
        code=code,
        handler=handler,
        description=description,
        runtime=RUNTIME,
        architecture=(
            lambda_.Architecture.ARM_64 if architecture == "arm64" else lambda_.Architecture.X86_64
        ),
        memory_size=memory_mib,
        timeout=timeout,
        tracing=lambda_.Tracing.ACTIVE,
        log_group=log_group,
        role=cast(iam.IRole, role),
        logging_format=lambda_.LoggingFormat.JSON,
        reserved_concurrent_executions=reserved_concurrency,
        environment=environment,
    )
