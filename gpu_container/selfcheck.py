"""Start-up self-check of the generator container: which device a job will really run on.

Logs the NVIDIA driver, the CUDA versions (what the driver supports, what torch was built for)
and the GPU's name, and fails fast when the image needs a newer driver than the host has: CUDA
13 wheels on an R570 driver would otherwise surface, minutes later, as an obscure error deep in
torch, and every retry on the same AMI would fail the same way. That failure exits with
:attr:`meshdrop_contract.ExitCode.INTERNAL`, which the job definition's retry strategy never
retries. A job that lands on a CPU is allowed, but says so: :func:`device_facts` returns what
the metrics and provenance record.

Standard library and (optionally) torch only: no AWS calls. The driver is queried through
``libcuda`` and ``libnvidia-ml`` with ctypes, so no ``nvidia-smi`` binary is needed.
Also verifies downloaded weights against a SHA256SUMS manifest (:func:`verify_weights`).
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from meshdrop_contract import ExitCode

log = logging.getLogger("meshdrop.selfcheck")

#: The job environment names the sha256 of the SHA256SUMS file that lists the S3 weights.
ENV_WEIGHTS_SHA256 = "MESHDROP_WEIGHTS_SHA256"
#: Name of the checksum manifest stored with weights on S3 (``sha256sum`` output format).
WEIGHTS_MANIFEST = "SHA256SUMS"
#: NVIDIA driver branch that first supports each CUDA major version (for the error message).
MIN_DRIVER_FOR_CUDA = {11: "R450", 12: "R525", 13: "R580"}

Loader = Callable[[str], Any]


class SelfCheckError(RuntimeError):
    """The host cannot run this image; ``exit_code`` is what the process should exit with."""

    exit_code = ExitCode.INTERNAL


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    """Where this job runs. ``device`` is ``"cuda"`` or ``"cpu"``; ``reason`` says why CPU."""

    device: str
    gpu_name: str | None = None
    gpu_count: int = 0
    driver_version: str | None = None
    #: Highest CUDA version the driver supports ("12.8"), from cuDriverGetVersion.
    driver_cuda: str | None = None
    #: CUDA version torch was built for ("13.0"); None for a CPU-only torch or no torch.
    runtime_cuda: str | None = None
    torch_version: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for metrics and asset provenance."""
        return asdict(self)


def _version(number: int) -> str:
    """CUDA's integer encoding (12080) as text ("12.8")."""
    return f"{number // 1000}.{(number % 1000) // 10}"


def _major(version: str) -> int:
    return int(version.split(".", 1)[0])


def driver_cuda_version(load: Loader = ctypes.CDLL) -> str | None:
    """Highest CUDA version the installed driver supports, or None without a driver."""
    try:
        libcuda = load("libcuda.so.1")
    except OSError:
        return None
    number = ctypes.c_int(0)
    if libcuda.cuDriverGetVersion(ctypes.byref(number)) != 0 or number.value <= 0:
        return None
    return _version(number.value)


def driver_version(load: Loader = ctypes.CDLL) -> str | None:
    """The NVIDIA driver version ("580.65.06") from NVML, or None where NVML is absent."""
    try:
        nvml = load("libnvidia-ml.so.1")
    except OSError:
        return None
    if nvml.nvmlInit_v2() != 0:
        return None
    try:
        buffer = ctypes.create_string_buffer(96)
        if nvml.nvmlSystemGetDriverVersion(buffer, ctypes.c_uint(96)) != 0:
            return None
        return buffer.value.decode(errors="replace")
    finally:
        nvml.nvmlShutdown()


def _torch() -> Any | None:
    try:
        import torch  # optional: the slim CPU image has no torch
    except ImportError:
        return None
    return torch


def device_facts(
    torch: Any | None = None,
    load: Loader = ctypes.CDLL,
    *,
    find_torch: Callable[[], Any | None] = _torch,
) -> DeviceFacts:
    """What device a job will use, and why, without failing (see :func:`check`)."""
    torch = torch if torch is not None else find_torch()
    driver, driver_cuda = driver_version(load), driver_cuda_version(load)
    if torch is None:
        return DeviceFacts(
            "cpu", driver_version=driver, driver_cuda=driver_cuda, reason="torch not installed"
        )
    runtime_cuda = getattr(torch.version, "cuda", None)
    common = {
        "driver_version": driver,
        "driver_cuda": driver_cuda,
        "runtime_cuda": runtime_cuda,
        "torch_version": str(torch.__version__),
    }
    if runtime_cuda is None:
        return DeviceFacts("cpu", reason="torch is a CPU-only build", **common)
    if driver_cuda is None:
        return DeviceFacts("cpu", reason="no NVIDIA driver visible to the container", **common)
    if _major(driver_cuda) < _major(runtime_cuda):
        return DeviceFacts("cpu", reason=_too_old(runtime_cuda, driver, driver_cuda), **common)
    if not torch.cuda.is_available():
        return DeviceFacts("cpu", reason="torch.cuda.is_available() is False", **common)
    return DeviceFacts(
        "cuda",
        gpu_name=str(torch.cuda.get_device_name(0)),
        gpu_count=int(torch.cuda.device_count()),
        **common,
    )


def _too_old(runtime_cuda: str, driver: str | None, driver_cuda: str) -> str:
    needed = MIN_DRIVER_FOR_CUDA.get(_major(runtime_cuda), "a newer driver")
    return (
        f"the image needs CUDA {runtime_cuda} (NVIDIA driver {needed} or newer) but the host "
        f"driver {driver or '(unknown version)'} supports CUDA {driver_cuda} at most: "
        "use an AMI with a newer driver (meshdrop:ami_id / ami_ssm_parameter)"
    )


def check(facts: DeviceFacts) -> DeviceFacts:
    """Log the facts; raise :class:`SelfCheckError` when the driver is too old for the image.

    A machine without any driver (a CPU instance) passes: it is a CPU job, and says so.
    """
    log.info(
        "device=%s gpu=%s x%d driver=%s driver_cuda=%s runtime_cuda=%s torch=%s",
        facts.device,
        facts.gpu_name,
        facts.gpu_count,
        facts.driver_version,
        facts.driver_cuda,
        facts.runtime_cuda,
        facts.torch_version,
    )
    both_known = facts.runtime_cuda and facts.driver_cuda
    if both_known and _major(facts.driver_cuda or "0") < _major(facts.runtime_cuda or "0"):
        raise SelfCheckError(facts.reason or "driver too old")
    if facts.device == "cpu":
        log.warning("running on CPU: %s", facts.reason)
    return facts


def run(env: Mapping[str, str] | None = None) -> DeviceFacts:
    """The entrypoint's call: check the device, exit the process if the host cannot run it."""
    del env  # reserved: the check needs no configuration today
    try:
        return check(device_facts())
    except SelfCheckError as exc:
        log.error("self-check failed: %s", exc)
        sys.exit(exc.exit_code)


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_weights(directory: Path | None, env: Mapping[str, str]) -> Path | None:
    """Check downloaded weights against their SHA256SUMS manifest, itself pinned by the job
    environment (``MESHDROP_WEIGHTS_SHA256``); return ``directory`` when all match.

    Without the variable (baked weights, checked when the image was built) nothing is read.

    Raises
    ------
    SelfCheckError
        For a missing or altered manifest, or a file whose sha256 differs.
    """
    pinned = env.get(ENV_WEIGHTS_SHA256)
    if directory is None or not pinned:
        return directory
    manifest = directory / WEIGHTS_MANIFEST
    if not manifest.is_file():
        raise SelfCheckError(f"{WEIGHTS_MANIFEST} missing from the weights in {directory}")
    if sha256_of(manifest) != pinned:
        raise SelfCheckError(f"{WEIGHTS_MANIFEST} does not match {ENV_WEIGHTS_SHA256}")
    for line in manifest.read_text().splitlines():
        if not line.strip():
            continue
        expected, _, name = line.partition("  ")
        target = (directory / name.lstrip("*")).resolve()
        if not target.is_relative_to(directory.resolve()) or not target.is_file():
            raise SelfCheckError(f"weights file {name!r} listed in {WEIGHTS_MANIFEST} is missing")
        if sha256_of(target) != expected.strip():
            raise SelfCheckError(f"weights file {name!r} does not match its sha256")
    return directory
