"""Photo decoding: modes, orientation, frames, and every way an upload can be unusable."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from gpu_container.meshgen.errors import BadInputError
from gpu_container.meshgen.image import LoadedImage, load_image
from meshdrop_contract import MAX_IMAGE_PIXELS, MIN_IMAGE_SIDE
from tests.helpers.photos import png_header_only


def encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def marked(width: int = 60, height: int = 40) -> np.ndarray:
    """(h, w, 3) uint8 grey image with a red top-left quadrant: shows orientation."""
    rgb = np.full((height, width, 3), 128, dtype=np.uint8)
    rgb[: height // 2, : width // 2] = (220, 30, 30)
    return rgb


def test_rgb_jpeg() -> None:
    loaded = load_image(encode(Image.fromarray(marked()), "JPEG", quality=95))
    assert isinstance(loaded, LoadedImage)
    assert loaded.rgb.shape == (40, 60, 3) and loaded.rgb.dtype == np.uint8
    assert (loaded.source_format, loaded.source_mode, loaded.frames) == ("JPEG", "RGB", 1)
    assert loaded.alpha is None
    assert loaded.size == (60, 40)
    assert np.abs(loaded.rgb.astype(int) - marked()).mean() < 3


@pytest.mark.parametrize(("orientation", "rotate"), [(3, 180), (6, 90), (8, 270)])
def test_exif_orientation_is_applied(orientation: int, rotate: int) -> None:
    # Stored rotated, with the EXIF tag that tells viewers how to turn it back upright.
    stored = Image.fromarray(marked()).rotate(rotate, expand=True)
    exif = Image.Exif()
    exif[0x0112] = orientation
    loaded = load_image(encode(stored, "JPEG", quality=95, exif=exif.tobytes()))
    assert loaded.rgb.shape == (40, 60, 3)
    top_left = loaded.rgb[:20, :30].mean(axis=(0, 1))
    bottom_right = loaded.rgb[20:, 30:].mean(axis=(0, 1))
    assert top_left[0] > 180 and top_left[1] < 80, "red quadrant not at the top left"
    assert abs(bottom_right - 128).max() < 10


def test_grayscale() -> None:
    gray = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (48, 1))
    loaded = load_image(encode(Image.fromarray(gray, "L"), "PNG"))
    assert loaded.source_mode == "L"
    assert loaded.rgb.shape == (48, 64, 3)
    assert (loaded.rgb == gray[:, :, None]).all()


def test_cmyk_jpeg() -> None:
    cmyk = Image.new("CMYK", (50, 40), (0, 255, 255, 0))  # pure red in print colours
    loaded = load_image(encode(cmyk, "JPEG", quality=95))
    assert loaded.source_mode == "CMYK"
    r, g, b = loaded.rgb.reshape(-1, 3).mean(axis=0)
    assert r > 200 and g < 60 and b < 60


def test_palette_with_transparency_gives_alpha() -> None:
    pal = Image.new("P", (40, 40), 0)
    pal.putpalette([255, 255, 255, 200, 40, 40] + [0] * 762)
    pal.paste(1, (10, 10, 30, 30))  # a red square on a transparent (index 0) ground
    loaded = load_image(encode(pal, "PNG", transparency=0))
    assert loaded.source_mode == "P"
    assert loaded.alpha is not None
    assert (loaded.alpha[10:30, 10:30] == 255).all() and loaded.alpha[:10].max() == 0
    assert tuple(loaded.rgb[20, 20]) == (200, 40, 40)


def test_palette_without_transparency_has_no_alpha() -> None:
    pal = Image.fromarray(marked()).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    loaded = load_image(encode(pal, "PNG"))
    assert loaded.alpha is None
    assert loaded.rgb[5, 5, 0] > 180


def test_16_bit_png_is_scaled_not_clipped() -> None:
    wide = np.full((40, 40), 32768, dtype=np.uint16)  # mid-grey in 16 bits
    wide[:20] = 65535
    loaded = load_image(encode(Image.fromarray(wide), "PNG"))
    assert loaded.source_mode.startswith("I")
    assert (loaded.rgb[:20] == 255).all()
    assert np.abs(loaded.rgb[20:].astype(int) - 128).max() <= 1


def test_rgba_real_and_opaque_alpha() -> None:
    rgba = np.dstack([marked(), np.full((40, 60), 255, dtype=np.uint8)])
    assert load_image(encode(Image.fromarray(rgba, "RGBA"), "PNG")).alpha is None
    rgba[:, :10, 3] = 0
    loaded = load_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert loaded.alpha is not None and loaded.alpha.shape == (40, 60)
    assert loaded.alpha[:, :10].max() == 0 and loaded.alpha[:, 10:].min() == 255


def test_animated_gif_uses_the_first_frame() -> None:
    frames = [
        Image.new("RGB", (40, 40), colour) for colour in ((250, 0, 0), (0, 250, 0), (0, 0, 250))
    ]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    loaded = load_image(data)
    assert loaded.frames == 3
    r, g, b = loaded.rgb.reshape(-1, 3).mean(axis=0)
    assert r > 200 and g < 30 and b < 30


# -- unusable uploads ------------------------------------------------------------------------
def test_empty() -> None:
    with pytest.raises(BadInputError, match="empty"):
        load_image(b"")


def test_not_an_image() -> None:
    with pytest.raises(BadInputError, match="not an image"):
        load_image(b"%PDF-1.7 this is a document, not a photo" * 10)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated(fmt: str) -> None:
    noisy = np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noisy), fmt)
    with pytest.raises(BadInputError, match="truncated or corrupt"):
        load_image(data[: len(data) // 2])


def test_decompression_bomb_is_refused_from_the_header() -> None:
    # 40000 x 40000 = 1.6 Gpx; the file is a few hundred bytes and must never be decoded.
    with pytest.raises(BadInputError, match="too many pixels"):
        load_image(png_header_only(40000, 40000))


def test_over_our_pixel_limit_names_the_size() -> None:
    side = int(MAX_IMAGE_PIXELS**0.5) + 100  # over our limit, under PIL's own bomb check
    with pytest.raises(BadInputError, match=rf"{side}x{side}.*limit"):
        load_image(png_header_only(side, side))
    small = encode(Image.fromarray(marked()), "PNG")
    with pytest.raises(BadInputError, match="limit of 1,000 pixels"):
        load_image(small, max_pixels=1000)


def test_too_small() -> None:
    with pytest.raises(BadInputError, match=r"1x1 pixels, too small"):
        load_image(encode(Image.new("RGB", (1, 1)), "PNG"))
    narrow = encode(Image.new("RGB", (400, MIN_IMAGE_SIDE - 1)), "PNG")
    with pytest.raises(BadInputError, match=f"at least {MIN_IMAGE_SIDE}"):
        load_image(narrow)
