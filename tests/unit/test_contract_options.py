"""Per-upload options from S3 metadata."""

from __future__ import annotations

import pytest

from meshdrop_contract import (
    PRESETS,
    AssetFormat,
    InvalidOptionsError,
    JobOptions,
    JobSpec,
    Preset,
    parse_options,
)


def test_defaults_for_a_plain_upload() -> None:
    opts = parse_options({})
    assert opts == JobOptions(texture=True, format=AssetFormat.GLB, preset=Preset.BALANCED)
    assert parse_options(None) == opts


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ({"texture": "off"}, JobOptions(texture=False)),
        ({"texture": "FALSE"}, JobOptions(texture=False)),
        ({"texture": "on"}, JobOptions(texture=True)),
        ({"format": "STL"}, JobOptions(format=AssetFormat.STL)),
        ({"preset": " quality "}, JobOptions(preset=Preset.QUALITY)),
        ({"x-amz-meta-preset": "fast"}, JobOptions(preset=Preset.FAST)),
        ({"Preset": "fast", "colour": "blue"}, JobOptions(preset=Preset.FAST)),
    ],
)
def test_metadata_is_read_leniently_in_case_and_spacing(meta: dict, expected: JobOptions) -> None:
    assert parse_options(meta) == expected


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({"preset": "qualty"}, "preset='qualty' is not one of fast|balanced|quality"),
        ({"format": "fbx"}, "format='fbx' is not one of glb|obj|stl|ply"),
        ({"texture": "maybe"}, "texture='maybe' is not one of on|off"),
    ],
)
def test_bad_values_are_errors_that_say_what_is_allowed(meta: dict, message: str) -> None:
    with pytest.raises(InvalidOptionsError) as err:
        parse_options(meta)
    assert message in str(err.value)


def test_round_trips_through_metadata_dict_and_job_env() -> None:
    opts = JobOptions(texture=False, format=AssetFormat.PLY, preset=Preset.FAST)
    assert parse_options(opts.to_metadata()) == opts
    assert JobOptions.from_dict(opts.to_dict()) == opts
    spec = JobSpec(job_id="a" * 32, bucket="b", source_key="images/uploaded/x.jpg", options=opts)
    back = JobSpec.from_env(spec.to_env())
    assert back == spec
    assert back.asset_key == "3d_assets/uploaded/x.ply"


def test_digest_separates_options() -> None:
    digests = {JobOptions(preset=p).digest() for p in Preset}
    assert len(digests) == len(Preset)
    assert JobOptions().digest() == JobOptions().digest()


def test_presets_grow_in_resolution_and_budget() -> None:
    specs = [PRESETS[p] for p in (Preset.FAST, Preset.BALANCED, Preset.QUALITY)]
    assert [s.grid for s in specs] == [128, 256, 384]
    assert specs[0].max_faces < specs[1].max_faces < specs[2].max_faces
