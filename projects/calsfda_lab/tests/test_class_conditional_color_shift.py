"""ClassConditionalColorShift: what moves, by how much, and what stays."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mmseg.registry import TRANSFORMS

import calsfda_lab  # noqa: F401  registers the lab's transforms


def _build(**kwargs):
    return TRANSFORMS.build(dict(type='ClassConditionalColorShift', **kwargs))


def _two_class_image(rng):
    """Class 0 dark and class 1 bright, both textured; a strip of 255."""
    seg = np.zeros((16, 16), np.uint8)
    seg[8:] = 1
    seg[:, :2] = 255
    img = np.where(seg[..., None] == 1, 180, 60).astype(np.float32)
    img = img + rng.integers(-20, 21, size=(16, 16, 3))
    return img.astype(np.uint8), seg


def test_prob_zero_leaves_the_image():
    img, seg = _two_class_image(np.random.default_rng(0))
    out = _build(prob=0)(dict(img=img.copy(), gt_seg_map=seg))['img']
    np.testing.assert_array_equal(out, img)


def test_two_classes_move_towards_each_other_keeping_texture():
    rng = np.random.default_rng(1)
    img, seg = _two_class_image(rng)
    np.random.seed(3)
    out = _build(prob=1, class_prob=1, max_share=0.4)(
        dict(img=img.copy(), gt_seg_map=seg))['img'].astype(np.float32)
    src = img.astype(np.float32)
    m = [src[seg == c].mean(0) for c in (0, 1)]
    new = [out[seg == c].mean(0) for c in (0, 1)]
    # both classes took share b of the other's mean colour (a slow,
    # independent re-expression: each pixel moved by the same offset)
    b = (new[0] - m[0]) / (m[1] - m[0])
    assert np.allclose(b, b[0], atol=0.02) and 0 < b[0] <= 0.4
    for c, partner in ((0, 1), (1, 0)):
        offset = b[0] * (m[partner] - m[c])
        expected = np.clip(src[seg == c] + offset, 0, 255)
        assert np.abs(out[seg == c] - expected).max() <= 1.0  # uint8 cast
    # unlabelled pixels keep their colour
    np.testing.assert_array_equal(out[seg == 255], src[seg == 255])


def test_small_classes_are_left_alone():
    img, seg = _two_class_image(np.random.default_rng(2))
    seg[0, 5:8] = 7  # 3 pixels: below min_pixels
    np.random.seed(0)
    out = _build(prob=1, class_prob=1, min_pixels=4)(
        dict(img=img.copy(), gt_seg_map=seg))['img']
    np.testing.assert_array_equal(out[seg == 7], img[seg == 7])


def test_bad_input_is_named():
    with pytest.raises(ValueError, match='max_share'):
        _build(max_share=1.5)
    img, seg = _two_class_image(np.random.default_rng(0))
    with pytest.raises(ValueError, match='a.png'):
        _build(prob=1)(dict(img=img, gt_seg_map=seg[:8], img_path='a.png'))


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 5),
       st.floats(0, 1), st.floats(0, 1))
def test_properties(seed, num_classes, share, class_prob):
    rng = np.random.default_rng(seed)
    seg = rng.integers(0, num_classes, size=(12, 10)).astype(np.uint8)
    seg[rng.random((12, 10)) < 0.1] = 255
    img = rng.integers(0, 256, size=(12, 10, 3)).astype(np.uint8)
    np.random.seed(seed)
    out = _build(prob=1, max_share=share, class_prob=class_prob,
                 min_pixels=1)(dict(img=img.copy(), gt_seg_map=seg))['img']
    assert out.shape == img.shape and out.dtype == img.dtype
    np.testing.assert_array_equal(out[seg == 255], img[seg == 255])
    if num_classes == 1 or share == 0 or class_prob == 0:
        np.testing.assert_array_equal(out, img)
    # a class moves rigidly: one offset per class and channel, wherever
    # the result was not clipped
    for c in np.unique(seg[seg != 255]):
        before, after = img[seg == c].astype(int), out[seg == c].astype(int)
        for ch in range(3):
            free = (after[:, ch] > 0) & (after[:, ch] < 255)
            moved = (after - before)[free, ch]
            assert moved.size == 0 or moved.min() == moved.max()
