"""The key layout: what uploaders may drop and where their asset appears."""

from __future__ import annotations

import pytest

from meshdrop_contract import (
    Category,
    InvalidKeyError,
    decode_event_key,
    is_asset_key,
    parse_source_key,
    source_key_for,
)


@pytest.mark.parametrize(
    ("key", "asset"),
    [
        ("images/uploaded/mug.jpg", "3d_assets/uploaded/mug.glb"),
        ("images/generated/a/b/vase.PNG", "3d_assets/generated/a/b/vase.glb"),
        ("images/text_to_3d/x.y.jpeg", "3d_assets/text_to_3d/x.y.glb"),
        ("images/uploaded/My Mug (2).WebP", "3d_assets/uploaded/My Mug (2).glb"),
        ("images/uploaded/chaise été/tasse 杯.tiff", "3d_assets/uploaded/chaise été/tasse 杯.glb"),
        ("images/uploaded/scan.bmp", "3d_assets/uploaded/scan.glb"),
    ],
)
def test_asset_key_keeps_category_subpath_and_stem(key: str, asset: str) -> None:
    assert parse_source_key(key).asset_key() == asset


def test_asset_key_follows_requested_format_and_thumbnail_sits_beside_it() -> None:
    src = parse_source_key("images/uploaded/shoes/boot.jpg")
    assert src.asset_key("stl") == "3d_assets/uploaded/shoes/boot.stl"
    assert src.thumbnail_key() == "3d_assets/uploaded/shoes/boot.thumb.png"
    assert src.category is Category.UPLOADED
    assert src.subpath == ("shoes",)


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("images/uploaded/my+mug.jpg", "images/uploaded/my mug.jpg"),
        ("images/uploaded/caf%C3%A9+cup.JPG", "images/uploaded/café cup.JPG"),
        ("images/uploaded/a%2Bb.png", "images/uploaded/a+b.png"),
    ],
)
def test_event_keys_are_url_decoded(raw: str, decoded: str) -> None:
    assert decode_event_key(raw) == decoded
    parse_source_key(decode_event_key(raw))


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "empty"),
        ("uploads/uploaded/mug.jpg", "must start with images/"),
        ("3d_assets/uploaded/mug.glb", "outputs, not inputs"),
        ("images/mug.jpg", "must look like"),
        ("images/secret/mug.jpg", "unknown category"),
        ("images/uploaded/../../etc/passwd.jpg", "'..'"),
        ("images/uploaded//mug.jpg", "empty"),
        ("images/uploaded/./mug.jpg", "'.'"),
        ("images/uploaded/mug\x00.jpg", "control characters"),
        ("images/uploaded/mug\n.jpg", "control characters"),
        ("images/uploaded/mug.gif", "unsupported file extension '.gif'"),
        ("images/uploaded/mug", "unsupported file extension"),
        ("images/uploaded/.jpg", "unsupported file extension"),
        ("images/uploaded/a\\b.jpg", "backslash"),
        ("images/uploaded/" + "x" * 1000 + ".jpg", "longer than"),
    ],
)
def test_hostile_or_foreign_keys_are_rejected_with_a_reason(key: str, reason: str) -> None:
    with pytest.raises(InvalidKeyError, match=reason.replace("(", r"\(").replace(".", r"\.")):
        parse_source_key(key)


def test_asset_writes_never_look_like_sources() -> None:
    asset = parse_source_key("images/uploaded/mug.jpg").asset_key()
    assert is_asset_key(asset)
    with pytest.raises(InvalidKeyError):
        parse_source_key(asset)


def test_unicode_is_normalised_so_one_name_gives_one_asset() -> None:
    composed = parse_source_key("images/uploaded/caf\u00e9.jpg").asset_key()
    decomposed = parse_source_key("images/uploaded/cafe\u0301.jpg").asset_key()
    assert composed == decomposed


def test_source_key_for_builds_and_checks() -> None:
    assert source_key_for("generated", "a/b.png") == "images/generated/a/b.png"
    with pytest.raises(ValueError):
        source_key_for("nope", "b.png")
    with pytest.raises(InvalidKeyError):
        source_key_for("uploaded", "b.txt")


@pytest.mark.parametrize(
    ("key", "error"),
    [
        ("images/uploaded/mug.jpg", "3d_assets/uploaded/mug.error.json"),
        ("images/generated/a/b/vase.PNG", "3d_assets/generated/a/b/vase.error.json"),
        ("images/uploaded/My Mug (2).WebP", "3d_assets/uploaded/My Mug (2).error.json"),
    ],
)
def test_error_file_sits_beside_the_asset(key: str, error: str) -> None:
    source = parse_source_key(key)
    assert source.error_key() == error
    assert source.error_key().rsplit("/", 1)[0] == source.asset_key().rsplit("/", 1)[0]
    assert is_asset_key(source.error_key())


@pytest.mark.parametrize(
    ("key", "size", "folder"),
    [
        ("images/uploaded/kitchen/", 0, True),
        ("images/uploaded/kitchen/", None, True),
        ("images/uploaded/kitchen/", 12, False),  # not what the console writes: rejected
        ("images/uploaded/kitchen", 0, False),
        ("images/uploaded/mug.jpg", 0, False),  # an empty file: rejected with a reason
    ],
)
def test_folder_placeholders(key: str, size: int | None, folder: bool) -> None:
    from meshdrop_contract.keys import is_folder_placeholder

    assert is_folder_placeholder(key, size) is folder
