"""RandomBlurNoise: off leaves the image, blur smooths, noise has the drawn
spread, uint8 stays uint8, bad settings are refused."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mmseg.registry import TRANSFORMS

import calsfda_lab  # noqa: F401  registers the lab's transforms


def _build(**kwargs):
    return TRANSFORMS.build(dict(type='RandomBlurNoise', **kwargs))


def _image(seed=0, shape=(24, 32, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape,
                                                dtype=np.uint8)


def test_both_off_leaves_the_image():
    img = _image()
    out = _build(blur_prob=0, noise_prob=0)(dict(img=img.copy()))['img']
    np.testing.assert_array_equal(out, img)


def test_blur_alone_smooths_without_shifting_the_mean():
    img = _image(1)
    np.random.seed(0)
    out = _build(blur_prob=1, noise_prob=0, max_sigma=3.0)(
        dict(img=img.copy()))['img']
    # neighbouring pixels agree more after a blur; the mean colour stays
    def roughness(x):
        return np.abs(np.diff(x.astype(np.float32), axis=1)).mean()
    assert roughness(out) < 0.8 * roughness(img)
    assert abs(out.astype(np.float32).mean() - img.mean()) < 3


def test_noise_alone_has_a_spread_below_max_std():
    img = np.full((64, 64, 3), 128, np.uint8)
    spreads = []
    for seed in range(20):
        np.random.seed(seed)
        out = _build(blur_prob=0, noise_prob=1, max_std=10.0)(
            dict(img=img.copy()))['img']
        spreads.append((out.astype(np.float32) - 128).std())
    # each image draws its own std in (0, 10): they differ, none above 10
    assert max(spreads) < 10.5 and max(spreads) - min(spreads) > 2


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1),
       blur=st.floats(0, 1), noise=st.floats(0, 1))
def test_output_is_an_image_of_the_same_shape(seed, blur, noise):
    img = _image(seed % 1000, (9, 13, 3))
    np.random.seed(seed)
    out = _build(blur_prob=blur, noise_prob=noise)(dict(img=img))['img']
    assert out.shape == img.shape and out.dtype == np.uint8


@pytest.mark.parametrize('kwargs, key', [
    (dict(blur_prob=1.5), 'blur_prob'),
    (dict(noise_prob=-0.1), 'noise_prob'),
    (dict(max_sigma=-1), 'max_sigma'),
    (dict(max_std=-2), 'max_std'),
])
def test_bad_settings_are_refused(kwargs, key):
    with pytest.raises(ValueError, match=key):
        _build(**kwargs)
