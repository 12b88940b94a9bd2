"""The generator's start-up self-check, with torch and the NVIDIA libraries mocked."""

from __future__ import annotations

import ctypes
import hashlib
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from gpu_container import selfcheck
from gpu_container.selfcheck import DeviceFacts, SelfCheckError, check, device_facts
from meshdrop_contract import ExitCode


class FakeCuda:
    """libcuda.so.1: cuDriverGetVersion writes the encoded CUDA version it supports."""

    def __init__(self, version: int) -> None:
        self.version = version

    def cuDriverGetVersion(self, out: Any) -> int:  # noqa: N802 - the C name
        out._obj.value = self.version
        return 0


class FakeNvml:
    """libnvidia-ml.so.1 reporting one driver version."""

    def __init__(self, driver: str) -> None:
        self.driver = driver
        self.shut_down = False

    def nvmlInit_v2(self) -> int:  # noqa: N802
        return 0

    def nvmlSystemGetDriverVersion(self, buffer: Any, size: Any) -> int:  # noqa: N802
        ctypes.memmove(buffer, self.driver.encode(), len(self.driver))
        return 0

    def nvmlShutdown(self) -> int:  # noqa: N802
        self.shut_down = True
        return 0


def loader(cuda: int | None, driver: str | None):
    libs = {}
    if cuda is not None:
        libs["libcuda.so.1"] = FakeCuda(cuda)
    if driver is not None:
        libs["libnvidia-ml.so.1"] = FakeNvml(driver)

    def load(name: str) -> Any:
        if name not in libs:
            raise OSError(f"{name}: cannot open shared object file")
        return libs[name]

    return load


def fake_torch(cuda: str | None, available: bool = True, name: str = "NVIDIA A10G") -> Any:
    return SimpleNamespace(
        __version__="2.13.0",
        version=SimpleNamespace(cuda=cuda),
        cuda=SimpleNamespace(
            is_available=lambda: available,
            get_device_name=lambda index: name,
            device_count=lambda: 1,
        ),
    )


def test_a_gpu_with_a_new_enough_driver_is_used_and_named() -> None:
    facts = device_facts(fake_torch("13.0"), loader(13000, "580.65.06"))
    assert facts == DeviceFacts(
        device="cuda",
        gpu_name="NVIDIA A10G",
        gpu_count=1,
        driver_version="580.65.06",
        driver_cuda="13.0",
        runtime_cuda="13.0",
        torch_version="2.13.0",
    )
    assert check(facts) is facts


def test_a_newer_driver_minor_than_the_runtime_is_fine() -> None:
    facts = device_facts(fake_torch("13.0"), loader(13020, "590.1"))
    assert facts.device == "cuda"
    assert facts.driver_cuda == "13.2"


def test_a_driver_too_old_for_the_image_fails_with_a_reason_batch_does_not_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    facts = device_facts(fake_torch("13.0", available=False), loader(12080, "570.133.20"))
    assert facts.device == "cpu"
    assert facts.reason is not None
    assert "CUDA 13.0" in facts.reason and "R580" in facts.reason
    assert "570.133.20" in facts.reason and "12.8" in facts.reason
    with pytest.raises(SelfCheckError) as raised:
        check(facts)
    assert raised.value.exit_code == ExitCode.INTERNAL
    assert ExitCode.INTERNAL not in ExitCode.RETRYABLE


def test_run_exits_the_process_with_the_non_retried_code(monkeypatch) -> None:
    monkeypatch.setattr(
        selfcheck,
        "device_facts",
        lambda: device_facts(fake_torch("13.0", available=False), loader(12020, "535.1")),
    )
    with pytest.raises(SystemExit) as exited:
        selfcheck.run({})
    assert exited.value.code == ExitCode.INTERNAL


def test_a_cpu_instance_runs_on_cpu_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    facts = device_facts(fake_torch("13.0", available=False), loader(None, None))
    assert facts.device == "cpu"
    assert facts.reason == "no NVIDIA driver visible to the container"
    assert facts.driver_version is None
    with caplog.at_level(logging.INFO, logger="meshdrop.selfcheck"):
        check(facts)
    assert "running on CPU: no NVIDIA driver" in caplog.text
    assert "device=cpu" in caplog.text


def test_the_slim_image_without_torch_is_a_cpu_job() -> None:
    facts = device_facts(None, loader(None, None), find_torch=lambda: None)
    assert facts.device == "cpu"
    assert facts.reason == "torch not installed"
    assert check(facts).to_dict()["device"] == "cpu"


def test_a_cpu_only_torch_on_a_gpu_host_is_reported() -> None:
    facts = device_facts(fake_torch(None), loader(13000, "580.1"))
    assert facts.device == "cpu"
    assert facts.reason == "torch is a CPU-only build"
    assert facts.driver_cuda == "13.0"
    check(facts)  # not a driver problem: runs, on CPU


def test_cuda_unavailable_despite_a_good_driver_is_reported() -> None:
    facts = device_facts(fake_torch("13.0", available=False), loader(13000, "580.1"))
    assert (facts.device, facts.reason) == ("cpu", "torch.cuda.is_available() is False")


def test_facts_are_json_ready_for_provenance() -> None:
    facts = device_facts(fake_torch("13.0"), loader(13000, "580.65.06"))
    assert facts.to_dict()["gpu_name"] == "NVIDIA A10G"
    assert set(facts.to_dict()) >= {"device", "driver_version", "driver_cuda", "runtime_cuda"}


def test_driver_queries_survive_missing_libraries() -> None:
    assert selfcheck.driver_cuda_version(loader(None, None)) is None
    assert selfcheck.driver_version(loader(None, None)) is None


def write_weights(directory: Path) -> str:
    (directory / "config.yaml").write_text("model: triposr\n")
    (directory / "model.ckpt").write_bytes(b"\x00weights\x01" * 100)
    lines = [
        f"{hashlib.sha256((directory / n).read_bytes()).hexdigest()}  {n}"
        for n in ("config.yaml", "model.ckpt")
    ]
    (directory / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    return hashlib.sha256((directory / "SHA256SUMS").read_bytes()).hexdigest()


def test_downloaded_weights_are_checked_against_the_pinned_manifest(tmp_path: Path) -> None:
    pinned = write_weights(tmp_path)
    env = {selfcheck.ENV_WEIGHTS_SHA256: pinned}
    assert selfcheck.verify_weights(tmp_path, env) == tmp_path
    (tmp_path / "model.ckpt").write_bytes(b"tampered")
    with pytest.raises(SelfCheckError, match=r"'model\.ckpt' does not match"):
        selfcheck.verify_weights(tmp_path, env)


def test_an_altered_manifest_or_missing_file_is_refused(tmp_path: Path) -> None:
    pinned = write_weights(tmp_path)
    with pytest.raises(SelfCheckError, match="does not match MESHDROP_WEIGHTS_SHA256"):
        selfcheck.verify_weights(tmp_path, {selfcheck.ENV_WEIGHTS_SHA256: "0" * 64})
    (tmp_path / "config.yaml").unlink()
    with pytest.raises(SelfCheckError, match=r"'config\.yaml' .* is missing"):
        selfcheck.verify_weights(tmp_path, {selfcheck.ENV_WEIGHTS_SHA256: pinned})


def test_baked_weights_need_no_manifest(tmp_path: Path) -> None:
    assert selfcheck.verify_weights(tmp_path, {}) == tmp_path
    assert selfcheck.verify_weights(None, {selfcheck.ENV_WEIGHTS_SHA256: "a" * 64}) is None


@pytest.mark.slow
def test_infra_names_the_same_job_variable() -> None:
    from infra.stack import ENV_WEIGHTS_SHA256

    assert ENV_WEIGHTS_SHA256 == selfcheck.ENV_WEIGHTS_SHA256
