"""The contract's side of the TripoSR work: the ``backend`` option and provenance."""

from __future__ import annotations

import hashlib
import json

import jsonschema
import pytest

from meshdrop_contract import (
    SCHEMA_VERSION,
    Backend,
    DetailType,
    InvalidOptionsError,
    JobOptions,
    JobSpec,
    Provenance,
    base_detail,
    parse_options,
    schema,
)


def test_backend_is_read_from_metadata_like_the_other_options() -> None:
    assert parse_options({"x-amz-meta-backend": " TripoSR "}).backend is Backend.TRIPOSR
    assert parse_options({"backend": "priors"}).backend is Backend.PRIORS
    assert parse_options({}).backend is Backend.AUTO
    with pytest.raises(InvalidOptionsError, match=r"backend='nerf' is not one of auto\|triposr"):
        parse_options({"backend": "nerf"})


def test_default_backend_leaves_plain_uploads_as_they_were() -> None:
    """Options, metadata and the reuse digest of a plain upload do not mention the backend."""
    plain = JobOptions()
    assert "backend" not in plain.to_dict() and "backend" not in plain.to_metadata()
    before = json.dumps({"format": "glb", "preset": "balanced", "texture": True}, sort_keys=True)
    assert plain.digest() == hashlib.sha256(before.encode()).hexdigest()[:16]
    forced = JobOptions(backend=Backend.TRIPOSR)
    assert forced.digest() != plain.digest()  # another backend is another asset


def test_backend_survives_metadata_and_the_job_environment() -> None:
    options = JobOptions(backend=Backend.TRIPOSR)
    assert parse_options(options.to_metadata()) == options
    spec = JobSpec(job_id="0" * 32, bucket="b", source_key="images/uploaded/a.jpg", options=options)
    assert JobSpec.from_env(spec.to_env()).options.backend is Backend.TRIPOSR


def test_provenance_round_trips_through_s3_metadata() -> None:
    prov = Provenance("triposr", "stabilityai/TripoSR", "abc123", "f" * 64, "cuda")
    meta = prov.to_metadata()
    assert all(k.startswith("meshdrop-") and v.isascii() for k, v in meta.items())
    assert Provenance.from_metadata({f"x-amz-meta-{k}": v for k, v in meta.items()}) == prov
    priors = Provenance("priors")
    assert priors.to_metadata()["meshdrop-model-sha256"] == "none"  # every field, always
    assert Provenance.from_metadata(priors.to_metadata()) == priors


@pytest.mark.parametrize(
    "prov", [Provenance("triposr", "m", "r", "a" * 64, "cuda"), Provenance("priors")]
)
def test_success_event_with_provenance_validates(prov: Provenance) -> None:
    assert SCHEMA_VERSION.startswith("1.")  # provenance and options.backend are additive (1.1)
    detail = base_detail(
        job_id="0" * 32,
        bucket="bucket",
        source_key="images/uploaded/a.jpg",
        asset_key="3d_assets/uploaded/a.glb",
        options=JobOptions(backend=Backend.TRIPOSR).to_dict(),
    )
    detail.update(faces=10, bytes=100, seconds=1.0, provenance=prov.to_dict())
    jsonschema.validate(detail, schema(DetailType.SUCCEEDED))
    bad = {**detail, "provenance": {**prov.to_dict(), "backend": "auto"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema(DetailType.SUCCEEDED))
