"""Settings: every knob from cdk.json context, validated with errors that name the key."""

from __future__ import annotations

import dataclasses
import json

import pytest

from infra.settings import CONTEXT_PREFIX, MeshdropSettings, SettingsError
from meshdrop_contract import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS
from tests.infra.conftest import REPO_ROOT


def cdk_json() -> dict:
    return json.loads((REPO_ROOT / "cdk.json").read_text())


def meshdrop_context() -> dict:
    return {
        k.removeprefix(CONTEXT_PREFIX): v
        for k, v in cdk_json()["context"].items()
        if k.startswith(CONTEXT_PREFIX)
    }


def test_cdk_json_lists_every_setting_with_the_code_defaults() -> None:
    context = meshdrop_context()
    assert set(context) == {f.name for f in dataclasses.fields(MeshdropSettings)}
    assert MeshdropSettings.from_mapping(context) == MeshdropSettings()


def test_every_setting_is_read_from_context() -> None:
    # A field the reader forgets would silently keep its default whatever cdk.json says.
    flipped = {
        f.name: not f.default
        for f in dataclasses.fields(MeshdropSettings)
        if isinstance(f.default, bool)
    }
    settings = MeshdropSettings.from_mapping(flipped)
    assert {name: getattr(settings, name) for name in flipped} == flipped


def test_cdk_json_runs_the_app_with_the_venv_and_sets_feature_flags() -> None:
    doc = cdk_json()
    assert doc["app"] == ".venv/bin/python app.py"
    flags = [k for k in doc["context"] if k.startswith("@aws-cdk/")]
    assert len(flags) > 20
    assert doc["context"]["@aws-cdk/aws-batch:defaultToAL2023"] is True


def test_image_limits_default_to_the_contract() -> None:
    settings = MeshdropSettings()
    assert settings.max_image_bytes == MAX_IMAGE_BYTES
    assert settings.max_image_pixels == MAX_IMAGE_PIXELS


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        MeshdropSettings().max_vcpus = 1  # type: ignore[misc]


def test_command_line_strings_are_converted() -> None:
    # `cdk synth -c meshdrop:max_vcpus=64` hands the app strings.
    settings = MeshdropSettings.from_mapping(
        {
            "max_vcpus": "64",
            "spot": "false",
            "gpu_instance_types": "g6.xlarge, g5",
            "alarm_email": "ops@example.com",
        }
    )
    assert settings.max_vcpus == 64
    assert settings.spot is False
    assert settings.gpu_instance_types == ("g6.xlarge", "g5")
    assert settings.alarm_email == "ops@example.com"
    assert MeshdropSettings.from_mapping({"gpu_instance_types": '["g4dn"]'}).gpu_instance_types == (
        "g4dn",
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"max_vcpus": 0}, r"meshdrop:max_vcpus=0: expected an integer in \[1, 10000\]"),
        ({"max_vcpus": True}, "meshdrop:max_vcpus=True: expected an integer"),
        ({"spot": "maybe"}, "meshdrop:spot='maybe': expected true or false"),
        ({"gpu_instance_types": []}, "non-empty list"),
        ({"gpu_instance_types": ["g5", "G5"]}, "duplicate instance types"),
        ({"gpu_instance_types": ["not a type"]}, "not instance families or types"),
        ({"log_retention_days": 31}, "meshdrop:log_retention_days=31: expected one of 1, 3"),
        ({"alarm_email": "nobody"}, "meshdrop:alarm_email='nobody': expected an e-mail"),
        ({"removal_policy": "keep"}, "expected one of retain, destroy"),
        ({"lambda_architecture": "riscv"}, "expected one of arm64, x86_64"),
        ({"job_attempts": 11}, r"\[1, 10\]"),
        ({"weights_s3_uri": "https://x"}, "s3://bucket/prefix"),
        ({"account": "123456789012"}, "set both meshdrop:account and meshdrop:region"),
        ({"weights_s3_uri": "s3://bucket/weights/"}, "needs meshdrop:weights_s3_sha256"),
        (
            {"weights_s3_uri": "s3://bkt/w/", "weights_s3_sha256": "a" * 64, "compute": "cpu"},
            "needs compute=gpu",
        ),
        ({"weights_model_sha256": "ABC"}, "64 lower-case hex digits"),
        ({"weights_revision": "main"}, "a 40-hex-digit Hub commit"),
        ({"ami_id": "ubuntu"}, "an AMI id"),
        ({"ami_ssm_parameter": "aws/x"}, "an SSM parameter name"),
        ({"root_volume_gib": 20}, r"\[30, 16384\]"),
        ({"compute": "tpu"}, "expected one of gpu, cpu"),
        ({"image_build": "cloud"}, "expected one of local, codebuild"),
        ({"monthly_budget_usd": -1}, r"\[0, 1000000\]"),
        ({"job_vcpus": 8, "max_vcpus": 4}, "no job could ever start"),
        ({"job_vcpus": 4, "max_vcpus": 6}, "Spot and on-demand each get half"),
        ({"max_vcpu": 4}, "unknown setting.*meshdrop:max_vcpu"),
    ],
)
def test_bad_values_fail_with_the_key_named(raw: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        MeshdropSettings.from_mapping(raw)


def test_environment_comes_from_settings_else_the_cli_credentials() -> None:
    assert MeshdropSettings().environment() is None
    assert MeshdropSettings().environment({"CDK_DEFAULT_REGION": "eu-west-1"}) is None
    cli = {"CDK_DEFAULT_ACCOUNT": "111111111111", "CDK_DEFAULT_REGION": "us-east-2"}
    assert MeshdropSettings().environment(cli) == {"account": "111111111111", "region": "us-east-2"}
    settings = MeshdropSettings.from_mapping({"account": "123456789012", "region": "eu-west-1"})
    assert settings.environment(cli) == {"account": "123456789012", "region": "eu-west-1"}


def test_gpu_with_baked_weights_is_the_default_shape() -> None:
    settings = MeshdropSettings()
    assert (settings.compute, settings.weights_mode) == ("gpu", "baked")
    assert settings.instance_types == ("g5.xlarge", "g6.xlarge", "g4dn.xlarge")
    assert settings.ami_parameter.endswith("/amazon-linux-2023/gpu/recommended/image_id")
    # No checksum is invented: the build needs them from whoever deploys.
    assert settings.missing_weight_pins == [
        "meshdrop:weights_revision",
        "meshdrop:weights_config_sha256",
        "meshdrop:weights_model_sha256",
        "meshdrop:u2net_sha256",
    ]
    cpu = MeshdropSettings.from_mapping({"compute": "cpu"})
    assert (cpu.weights_mode, cpu.missing_weight_pins) == ("none", [])
    assert cpu.instance_types == ("m7i.xlarge", "m6i.xlarge")
    assert cpu.ami_parameter.endswith("/amazon-linux-2023/recommended/image_id")


def test_empty_strings_mean_unset() -> None:
    settings = MeshdropSettings.from_mapping({"alarm_email": "", "weights_s3_uri": ""})
    assert settings.alarm_email is None
    assert settings.weights_s3_uri is None


def test_from_context_reads_the_app_context() -> None:
    from aws_cdk import App

    app = App(context={"meshdrop:max_vcpus": 8, "meshdrop:spot": False, "unrelated": 1})
    settings = MeshdropSettings.from_context(app.node)
    assert settings.max_vcpus == 8
    assert settings.spot is False
    assert settings.gpu_instance_types == ("g5.xlarge", "g6.xlarge", "g4dn.xlarge")


def test_packs_above_ten_photos_need_a_batching_window() -> None:
    assert MeshdropSettings.from_mapping({"pack_size": 10, "pack_wait_seconds": 0}).pack_size == 10
    with pytest.raises(SettingsError, match="pack_wait_seconds"):
        MeshdropSettings.from_mapping({"pack_size": 12, "pack_wait_seconds": 0})
    with pytest.raises(SettingsError, match="pack_size"):
        MeshdropSettings.from_mapping({"pack_size": 21})
