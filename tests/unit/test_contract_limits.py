"""The shared input-size rule and the DynamoDB value conversion, each written once."""

from __future__ import annotations

from decimal import Decimal

from meshdrop_contract import MAX_IMAGE_PIXELS, MIN_IMAGE_SIDE
from meshdrop_contract.jobs import from_dynamo
from meshdrop_contract.limits import image_size_problem


def test_an_ordinary_photo_has_no_size_problem() -> None:
    assert image_size_problem(4032, 3024) is None
    assert image_size_problem(MIN_IMAGE_SIDE, MIN_IMAGE_SIDE) is None


def test_too_many_pixels_names_the_size_and_the_limit() -> None:
    problem = image_size_problem(8000, 6000)
    assert problem is not None
    assert "8000x6000 (48.0 megapixels)" in problem
    assert f"limit of {MAX_IMAGE_PIXELS / 1e6:.1f} megapixels" in problem


def test_a_side_below_the_minimum_is_too_small() -> None:
    problem = image_size_problem(4000, MIN_IMAGE_SIDE - 1)
    assert problem is not None and "too small" in problem and str(MIN_IMAGE_SIDE) in problem


def test_limits_can_be_overridden_by_a_deployment() -> None:
    assert image_size_problem(100, 100, max_pixels=5000) is not None
    assert image_size_problem(10, 10, min_side=8) is None


def test_from_dynamo_gives_plain_numbers_all_the_way_down() -> None:
    item = {
        "faces": Decimal(12),
        "seconds": Decimal("1.5"),
        "tags": {Decimal(1)},
        "m": {"x": [Decimal(2)]},
    }
    assert from_dynamo(item) == {"faces": 12, "seconds": 1.5, "tags": [1], "m": {"x": [2]}}
    assert isinstance(from_dynamo(item)["faces"], int)
