"""The generator image: which Dockerfile target, which build arguments, and where it is built.

``image_build="local"`` makes it a CDK Docker image asset (``cdk deploy`` builds it with the local
Docker and pushes it to the bootstrap repository). ``"codebuild"`` builds it in AWS instead
(see ``infra.image_codebuild``), for machines without Docker or without bandwidth for ~11 GB.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aws_cdk import IgnoreMode
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = "gpu_container/Dockerfile"
#: The image build context is the repo root, minus everything but what the image copies.
#: Docker ignore semantics: ``*`` drops every top-level entry (``.venv``, ``node_modules``,
#: ``cdk.out``... are never even walked), the ``!`` lines bring back the generator and the
#: contract, so edits elsewhere (CLI, tests) neither change the image hash nor rebuild it.
IMAGE_EXCLUDE: tuple[str, ...] = (
    "*",
    "!gpu_container",
    "!meshdrop_contract",
    # Weights are fetched by the build itself, at a pinned revision: never from a local copy.
    "gpu_container/weights",
    "**/__pycache__",
    "**/*.pyc",
)
#: Where the GPU image keeps baked weights (the Dockerfile puts them there).
BAKED_WEIGHTS_DIR = "/opt/meshdrop/weights/triposr"
#: Hugging Face repository whose published weights the GPU image bakes in.
WEIGHTS_REPO = "stabilityai/TripoSR"


def build_args(
    *,
    target: str,
    weights_mode: str,
    revision: str | None,
    config_sha256: str | None,
    model_sha256: str | None,
    u2net_sha256: str | None,
) -> dict[str, str]:
    """Docker build arguments of the generator image (names as the Dockerfile declares them)."""
    if target == "cpu" or weights_mode != "baked":
        return {"BAKE_WEIGHTS": "0"}
    return {
        "BAKE_WEIGHTS": "1",
        "MESHDROP_MODEL_REPO": WEIGHTS_REPO,
        "MESHDROP_MODEL_REVISION": revision or "",
        "MESHDROP_CONFIG_SHA256": config_sha256 or "",
        "MESHDROP_MODEL_SHA256": model_sha256 or "",
        "U2NET_SHA256": u2net_sha256 or "",
    }


def local_image(*, target: str, args: Mapping[str, str]) -> ecs.ContainerImage:
    """The image as a CDK asset: built by the machine that runs ``cdk deploy``."""
    return ecs.ContainerImage.from_asset(
        str(REPO_ROOT),
        file=DOCKERFILE,
        target=target,
        exclude=list(IMAGE_EXCLUDE),
        ignore_mode=IgnoreMode.DOCKER,
        build_args=dict(args),
        # g5/g6/g4dn are x86: build for them even on an ARM laptop.
        platform=ecr_assets.Platform.LINUX_AMD64,
    )
