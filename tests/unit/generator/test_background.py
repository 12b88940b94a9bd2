"""Background removal: masks recovered from synthetic photos whose true mask is known."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from gpu_container.meshgen import background
from gpu_container.meshgen.background import (
    BackgroundRemover,
    Segmentation,
    fill_holes,
    keep_main_object,
)
from gpu_container.meshgen.errors import BadInputError
from gpu_container.meshgen.image import load_image
from tests.helpers.photos import SHAPES, iou, make_photo

SIZE = 256


def in_crop(truth: np.ndarray, seg: Segmentation) -> np.ndarray:
    """Resample an image-space mask (h, w) into the segmentation's square crop, as bool."""
    left, top, right, bottom = seg.crop_box
    size = seg.mask.shape[0]
    sx, sy = (right - left) / size, (bottom - top) / size
    matrix = np.array([[sx, 0.0, left + 0.5 * sx - 0.5], [0.0, sy, top + 0.5 * sy - 0.5]])
    out = cv2.warpAffine(
        truth.astype(np.float32),
        matrix,
        (size, size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
    )
    return out > 0.5


def segment(data: bytes, size: int = SIZE, **kwargs: object) -> Segmentation:
    return BackgroundRemover().segment(load_image(data), size=size, **kwargs)


def png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue()


# -- classical path ------------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("backdrop", ["plain", "gradient"])
def test_classical_mask_matches_truth_with_shadow_and_jpeg(shape: str, backdrop: str) -> None:
    photo = make_photo(shape, background=backdrop, shadow=True, jpeg_quality=80, seed=3)
    seg = segment(photo.data)

    assert seg.method == "classical"
    assert seg.rgb.shape == (SIZE, SIZE, 3) and seg.rgb.dtype == np.uint8
    assert seg.mask.shape == (SIZE, SIZE) and seg.mask.dtype == np.float32
    assert seg.mask.min() >= 0.0 and seg.mask.max() <= 1.0
    assert iou(seg.mask, in_crop(photo.mask, seg)) >= 0.95
    # The contact shadow stays backdrop.
    shadow = in_crop(photo.shadow, seg)
    assert (seg.mask[shadow] > 0.5).mean() < 0.1


def test_clean_png_gives_a_near_exact_mask_with_soft_edges() -> None:
    photo = make_photo("disc", noise=0.5)
    seg = segment(photo.data)
    assert iou(seg.mask, in_crop(photo.mask, seg)) >= 0.98
    edge = (seg.mask > 0.05) & (seg.mask < 0.95)
    assert 0 < edge.sum() < 0.1 * seg.mask.size  # anti-aliased, but only along the outline


def test_mug_handle_hole_stays_open_and_near_backdrop_label_is_filled() -> None:
    photo = make_photo("mug", background="gradient", shadow=True, label=True, jpeg_quality=80)
    seg = segment(photo.data)

    assert iou(seg.mask, in_crop(photo.mask, seg)) >= 0.95
    hole = in_crop(photo.hole, seg)
    label = in_crop(photo.label, seg)
    assert hole.sum() > 100 and label.sum() > 100
    assert (seg.mask[hole] > 0.5).mean() < 0.2, "the handle's opening was filled"
    assert (seg.mask[label] > 0.5).mean() > 0.98, "the label left a hole in the mask"


@pytest.mark.parametrize("shape", ["box", "bottle"])
def test_labels_on_plain_backdrop_are_filled(shape: str) -> None:
    photo = make_photo(shape, background="plain", label=True, jpeg_quality=85)
    seg = segment(photo.data)
    label = in_crop(photo.label, seg)
    assert (seg.mask[label] > 0.5).mean() > 0.98
    assert iou(seg.mask, in_crop(photo.mask, seg)) >= 0.97


def test_neutral_grey_object_is_not_taken_for_a_shadow() -> None:
    # Grey on a light backdrop is "the backdrop, darker" by colour alone; its crisp outline
    # is what tells it from a shadow.
    photo = make_photo("bottle", colour=(120, 120, 118), jpeg_quality=90)
    seg = segment(photo.data)
    assert iou(seg.mask, in_crop(photo.mask, seg)) >= 0.95


def test_dark_object_with_shadow() -> None:
    photo = make_photo("mug", colour=(25, 25, 25), shadow=True, background="gradient")
    seg = segment(photo.data)
    assert iou(seg.mask, in_crop(photo.mask, seg)) >= 0.95
    assert (seg.mask[in_crop(photo.shadow, seg)] > 0.5).mean() < 0.1


def test_specks_and_a_smaller_second_object_are_dropped() -> None:
    photo = make_photo("disc", height=360, width=640)
    rgb = photo.rgb.copy()
    rng = np.random.default_rng(7)
    for y, x in zip(rng.integers(10, 350, 40), rng.integers(560, 630, 40), strict=True):
        rgb[y : y + 2, x : x + 2] = (20, 20, 20)  # dust specks, right-hand side
    rgb[20:60, 20:60] = (30, 160, 30)  # a small unrelated object, far top-left
    seg = segment(png(rgb))

    truth = in_crop(photo.mask, seg)
    assert iou(seg.mask, truth) >= 0.97
    left, top, right, bottom = seg.crop_box
    # The crop is centred on the disc (centre 320, 180), not stretched to the distractors.
    assert abs((left + right) / 2 - 320) <= 3 and abs((top + bottom) / 2 - 180) <= 3


def test_crop_box_is_square_with_the_margin_around_the_object() -> None:
    photo = make_photo("box", noise=0.5)  # box: x 110..370, y 72..288 in a 480x360 frame
    ys, xs = np.nonzero(photo.mask)
    side = max(xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min())
    for margin in (0.0, 0.1, 0.25):
        seg = segment(photo.data, margin=margin)
        left, top, right, bottom = seg.crop_box
        assert right - left == bottom - top
        assert abs((right - left) - side * (1 + 2 * margin)) <= 3
        assert left <= xs.min() and right >= xs.max() + 1
        assert top <= ys.min() and bottom >= ys.max() + 1


def test_object_at_the_image_edge_pads_the_crop() -> None:
    photo = make_photo("disc", noise=0.5)
    rgb = photo.rgb[:, 150:]  # the disc now touches the left edge
    seg = segment(png(rgb), margin=0.2)
    left = seg.crop_box[0]
    assert left < 0
    pad_cols = round(-left / (seg.crop_box[2] - left) * SIZE)
    assert pad_cols > 2
    assert seg.mask[:, : pad_cols - 1].max() == 0.0  # nothing invented outside the photo


def test_blank_photo_has_no_object() -> None:
    rgb = np.full((200, 300, 3), 230, dtype=np.uint8)
    rgb += np.random.default_rng(1).integers(0, 3, rgb.shape, dtype=np.uint8)
    with pytest.raises(BadInputError, match="no object found"):
        segment(png(rgb))


def test_bad_arguments() -> None:
    loaded = load_image(make_photo("disc").data)
    with pytest.raises(ValueError, match="size"):
        BackgroundRemover().segment(loaded, size=4)
    with pytest.raises(ValueError, match="margin"):
        BackgroundRemover().segment(loaded, size=64, margin=1.5)


# -- alpha path ----------------------------------------------------------------------------
def test_real_alpha_channel_is_the_mask() -> None:
    photo = make_photo("bottle", noise=0.5)
    alpha = np.where(photo.mask, 255, 0).astype(np.uint8)
    # Garbage colour under the transparent pixels must not matter.
    rgb = np.where(photo.mask[:, :, None], photo.rgb, 0).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(buf, "PNG")
    seg = segment(buf.getvalue())

    assert seg.method == "alpha"
    assert iou(seg.mask, in_crop(photo.mask, seg)) >= 0.98
    ys, xs = np.nonzero(photo.mask)
    left, top, right, bottom = seg.crop_box
    assert left <= xs.min() and right > xs.max() and top <= ys.min() and bottom > ys.max()


# -- cleanup rules -------------------------------------------------------------------------
def _ring(size: int = 120, outer: int = 40, inner: int = 15) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size]
    r = np.hypot(yy - size / 2, xx - size / 2)
    return (r <= outer) & (r > inner), r <= inner


def test_fill_holes_keeps_openings_that_show_the_backdrop() -> None:
    ring, hole = _ring()
    delta_e = np.where(ring, 40.0, 0.8)  # the hole is the backdrop, give or take noise
    assert not fill_holes(ring, delta_e)[hole].any()


def test_fill_holes_fills_near_backdrop_labels_and_tiny_holes() -> None:
    ring, hole = _ring()
    label = np.where(ring, 40.0, 6.0)  # a hole of off-backdrop colour: a label
    assert fill_holes(ring, label)[hole].all()
    small, small_hole = _ring(inner=2)  # a few pixels: JPEG block or glint
    assert fill_holes(small, np.where(small, 40.0, 0.5))[small_hole].all()


def test_keep_main_object_keeps_attached_parts_only() -> None:
    mask = np.zeros((100, 200), dtype=bool)
    mask[20:80, 20:80] = True  # the object
    mask[40:60, 82:90] = True  # a handle 2 px away: attached
    mask[40:60, 150:160] = True  # something else far away
    mask[5, 190] = True  # a speck
    kept = keep_main_object(mask, gap=3)
    assert kept[20:80, 20:80].all() and kept[40:60, 82:90].all()
    assert not kept[:, 140:].any()
    assert not keep_main_object(np.zeros((10, 10), dtype=bool)).any()


# -- rembg path ----------------------------------------------------------------------------
@pytest.mark.usefixtures("no_downloads")
def test_rembg_runs_through_a_model_under_u2net_home(
    u2net_home: Path, distance_onnx: bytes, write_model: Callable[[Path, bytes], Path]
) -> None:
    write_model(u2net_home / "u2net.onnx", distance_onnx)
    photo = make_photo("disc", shadow=False, jpeg_quality=90)
    remover = BackgroundRemover()
    assert remover.model_file() == (u2net_home / "u2net.onnx").resolve()
    seg = remover.segment(load_image(photo.data), size=SIZE)
    assert seg.method == "rembg"
    assert iou(seg.mask, in_crop(photo.mask, seg)) >= 0.9


@pytest.mark.usefixtures("no_downloads")
def test_rembg_mask_is_the_models_not_the_photos(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    square_onnx: Callable[[tuple[int, int, int, int]], bytes],
    write_model: Callable[[Path, bytes], Path],
) -> None:
    # A model outside $U2NET_HOME, named by the container's environment: rembg itself refuses
    # such paths, so this also checks the local-file session.
    model = write_model(tmp_path / "weights" / "seg.onnx", square_onnx((40, 80, 120, 240)))
    monkeypatch.setenv(background.ENV_REMBG_MODEL, str(model))
    photo = make_photo("disc", height=320, width=320)  # disc centred at (160, 160)
    seg = segment(photo.data)
    assert seg.method == "rembg"
    left, top, right, bottom = seg.crop_box
    # The model's square (x 40..120, y 80..240), not the disc, decides where the crop is.
    assert abs((left + right) / 2 - 80) <= 2 and abs((top + bottom) / 2 - 160) <= 2
    assert abs((right - left) - 160 * 1.2) <= 3


@pytest.mark.usefixtures("no_downloads")
def test_explicit_model_path_under_u2net_home(
    u2net_home: Path,
    square_onnx: Callable[[tuple[int, int, int, int]], bytes],
    write_model: Callable[[Path, bytes], Path],
) -> None:
    model = write_model(u2net_home / "custom" / "mine.onnx", square_onnx((100, 100, 220, 220)))
    photo = make_photo("box", height=320, width=320)
    seg = BackgroundRemover(model_path=model).segment(load_image(photo.data), size=SIZE)
    assert seg.method == "rembg"
    assert seg.crop_box[0] < 100 < 220 < seg.crop_box[2]


@pytest.mark.usefixtures("no_downloads")
def test_one_rembg_session_per_process(
    u2net_home: Path,
    distance_onnx: bytes,
    write_model: Callable[[Path, bytes], Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import rembg

    write_model(u2net_home / "u2net.onnx", distance_onnx)
    created: list[str] = []
    real = rembg.new_session

    def counting(*args: object, **kwargs: object) -> object:
        created.append(str(args[0]) if args else "")
        return real(*args, **kwargs)

    monkeypatch.setattr(rembg, "new_session", counting)
    first, second = BackgroundRemover(), BackgroundRemover()
    assert created == []  # lazily: nothing loaded until an image needs it
    loaded = load_image(make_photo("disc").data)
    assert first.segment(loaded, size=64).method == "rembg"
    assert second.segment(loaded, size=64).method == "rembg"
    assert first.rembg_session() is second.rembg_session()
    assert created == ["u2net"]
    assert BackgroundRemover.shared() is BackgroundRemover.shared()


@pytest.mark.usefixtures("no_downloads")
def test_without_a_model_file_rembg_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photo = make_photo("disc")
    assert BackgroundRemover().model_file() is None
    assert segment(photo.data).method == "classical"
    monkeypatch.setenv(background.ENV_REMBG_MODEL, str(tmp_path / "missing.onnx"))
    remover = BackgroundRemover()
    assert remover.rembg_session() is None
    assert remover.segment(load_image(photo.data), size=64).method == "classical"
