"""The GrabCut path: rendered objects of known outline pasted on real CC0 textures.

The backgrounds are scikit-image's CC0 texture photos (brick wall, grass, gravel), tinted:
busy, high-contrast clutter that the plain-backdrop path cannot model. These composites are
the tuning set of the cluttered path (the real photos of ``make eval`` are kept for reporting).
"""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data

from gpu_container.meshgen.background import BackgroundRemover, Segmentation
from gpu_container.meshgen.errors import BadInputError
from gpu_container.meshgen.evaluation import crop_truth
from gpu_container.meshgen.image import load_image
from gpu_container.meshgen.scenes import render, scenes
from gpu_container.meshgen.segmentation.clutter import (
    border_contrast,
    border_reach,
    guided_filter,
)
from gpu_container.meshgen.segmentation.confidence import assess

TEXTURES = {"brick": (230, 200, 180), "grass": (150, 220, 120), "gravel": (220, 220, 230)}
H, W = 360, 480


def backdrop(texture: str) -> np.ndarray:
    """(H, W, 3) float32 tinted texture photo."""
    grey = np.asarray(getattr(data, texture)(), dtype=np.float32) / 255.0
    grey = cv2.resize(grey, (W, H), interpolation=cv2.INTER_AREA)
    return grey[:, :, None] * np.asarray(TEXTURES[texture], dtype=np.float32)


def paste(
    canvas: np.ndarray, mask: np.ndarray, obj: str, size: int, cx: int, cy: int, yaw: float = 20
) -> None:
    """Render ``obj`` at ``size`` px and paste it centred at (cx, cy), clipped to the frame."""
    rgb, m = render(scenes()[obj], size=size, yaw_deg=yaw, elevation_deg=10)
    y0, x0 = cy - size // 2, cx - size // 2
    ys, xs = np.nonzero(m)
    ty, tx = ys + y0, xs + x0
    inside = (ty >= 0) & (ty < canvas.shape[0]) & (tx >= 0) & (tx < canvas.shape[1])
    canvas[ty[inside], tx[inside]] = rgb[ys[inside], xs[inside]]
    mask[ty[inside], tx[inside]] = True


def encode(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def segment(rgb: np.ndarray, size: int = 256) -> Segmentation:
    return BackgroundRemover().segment(load_image(encode(rgb)), size=size)


def iou(seg: Segmentation, truth: np.ndarray) -> float:
    inside = seg.mask > 0.5
    t = crop_truth(truth, seg.crop_box, seg.mask.shape[0])
    return float((inside & t).sum() / max((inside | t).sum(), 1))


@pytest.mark.slow
@pytest.mark.parametrize("texture", sorted(TEXTURES))
@pytest.mark.parametrize("obj", ["box", "mug", "bottle"])
def test_object_on_a_busy_background_is_cut_out(texture: str, obj: str) -> None:
    canvas, truth = backdrop(texture), np.zeros((H, W), dtype=bool)
    paste(canvas, truth, obj, 300, 240, 190)
    seg = segment(canvas)
    assert seg.method == "grabcut"
    assert iou(seg, truth) >= 0.8
    assert seg.confidence >= 0.5


def test_the_object_nearest_the_centre_wins_over_a_small_one_at_the_side() -> None:
    canvas, truth = backdrop("brick"), np.zeros((H, W), dtype=bool)
    paste(canvas, truth, "bottle", 260, 250, 180)
    other = np.zeros_like(truth)
    paste(canvas, other, "sphere", 110, 60, 80)
    seg = segment(canvas)
    assert iou(seg, truth) >= 0.8
    left, _, right, _ = seg.crop_box
    assert left > 60 and abs((left + right) / 2 - 250) < 30


def light_pool(obj: str) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) float32 dusk sky over grass with a pale light pool left of centre, ``obj`` at
    the right of centre, and the (H, W) bool truth.

    The pool is larger than the object, as central and of colours the border never shows
    (like the sky paling low between two towers); it fades smoothly into the dark sky.
    """
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)  # (H, W) float each
    glow = np.exp(-0.5 * (((xx - 190) / 85) ** 2 + ((yy - 175) / 55) ** 2))[:, :, None]
    dark, pale = np.array([40, 55, 110], np.float32), np.array([215, 220, 235], np.float32)
    sky = dark * (1 - glow) + pale * glow + rng.normal(0, 1.5, (H, W, 1)).astype(np.float32)
    canvas = np.where((yy >= 250)[:, :, None], backdrop("grass"), sky).astype(np.float32)
    truth = np.zeros((H, W), dtype=bool)
    paste(canvas, truth, obj, 220, 330, 170)
    return canvas, truth


@pytest.mark.slow
@pytest.mark.parametrize("obj", ["box", "mug", "bottle"])
def test_a_smooth_light_pool_larger_than_the_object_is_background(obj: str) -> None:
    canvas, truth = light_pool(obj)
    seg = segment(canvas)
    assert seg.method == "grabcut"
    assert iou(seg, truth) >= 0.85


def test_border_reach_follows_smooth_gradients_and_stops_at_outlines() -> None:
    yy, xx = np.mgrid[0:160, 0:240].astype(np.float32)
    shade = np.exp(-0.5 * (((xx - 100) / 40) ** 2 + ((yy - 80) / 28) ** 2))  # pale middle
    rgb = np.repeat(40 + 120 * shade[:, :, None], 3, axis=2).astype(np.uint8)  # (160, 240, 3)
    rgb[60:100, 160:200] = (200, 40, 30)  # an object with a hard outline
    rgb[120:, 10:40] = (30, 200, 60)  # another one running off the bottom edge
    reach = border_reach(rgb, border_contrast(rgb))
    assert reach[80, 100]  # the pale middle is reached along the gradient
    assert not reach[70:90, 170:190].any()
    assert not reach[140:, 20:30].any()  # its border pixels are no flood's start


@pytest.mark.slow
def test_a_close_up_is_refused_and_says_why() -> None:
    canvas, truth = backdrop("grass"), np.zeros((H, W), dtype=bool)
    paste(canvas, truth, "box", 700, 110, 180)  # runs off the top, bottom and left
    # Its colour is then a border colour, so it is "background"; what is left is a speck.
    with pytest.raises(BadInputError, match=r"touches three edges|only a small detail"):
        segment(canvas)


def test_an_object_running_off_three_sides_is_refused() -> None:
    chosen = np.zeros((90, 120), dtype=bool)
    chosen[:, :100] = True
    verdict = assess(chosen)
    assert verdict.refused
    assert "touches three edges of the photo (top, bottom, left)" in verdict.message()


def test_two_objects_of_the_same_size_are_refused() -> None:
    canvas, truth = backdrop("gravel"), np.zeros((H, W), dtype=bool)
    paste(canvas, truth, "sphere", 170, 130, 180)
    paste(canvas, truth, "sphere", 170, 350, 180)
    with pytest.raises(BadInputError, match="two objects of about the same size"):
        segment(canvas)


def test_assess_reads_edges_rivals_and_colour_overlap() -> None:
    chosen = np.zeros((100, 100), dtype=bool)
    chosen[30:70, 30:70] = True
    assert assess(chosen).confidence == 1.0
    rival = chosen.copy()
    rival[30:70, 75:100] = True
    verdict = assess(chosen, rival)
    assert verdict.confidence < 1.0 and "two objects" in verdict.notes[0]
    wide = np.zeros_like(chosen)
    wide[:, 10:90] = True
    verdict = assess(wide)
    assert verdict.confidence <= 0.55 and "two edges" in verdict.notes[0]
    grey = np.full((100, 100, 3), 128, dtype=np.uint8)  # object and background look alike
    assert assess(chosen, None, grey).refused


def test_border_contrast_is_zero_on_the_border_colours_and_one_off_them() -> None:
    rgb = np.zeros((80, 120, 3), dtype=np.uint8)
    rgb[::2] = (90, 60, 40)  # striped "wood"
    rgb[1::2] = (140, 100, 70)
    rgb[30:50, 50:70] = (30, 200, 220)
    unlike = border_contrast(rgb)
    assert unlike[:10].max() == 0.0
    assert unlike[35:45, 55:65].min() > 0.9


def test_guided_filter_snaps_a_blurred_edge_to_the_guide() -> None:
    guide = np.zeros((64, 64), dtype=np.float32)
    guide[:, 33:] = 1.0  # the photo's edge, between two coarse pixels
    coarse = cv2.resize(guide, (16, 16), interpolation=cv2.INTER_AREA) >= 0.5
    up = cv2.resize(coarse.astype(np.float32), (64, 64), interpolation=cv2.INTER_LINEAR)
    assert ((up >= 0.5) != (guide >= 0.5)).any()  # the coarse cut misses the edge
    sharp = guided_filter(guide, up, radius=4, eps=1e-3)
    assert ((sharp >= 0.5) == (guide >= 0.5)).all()
