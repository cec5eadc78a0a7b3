"""ClassMix: which pixels are pasted, from where, and what stays."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mmseg.registry import TRANSFORMS

import calsfda_lab  # noqa: F401  registers the lab's transforms


def _build(**kwargs):
    return TRANSFORMS.build(dict(type='ClassMix', **kwargs))


def _sample(seg: np.ndarray, value: int) -> dict:
    """An image of constant colour ``value`` with label map ``seg``."""
    img = np.full(seg.shape + (3, ), value, np.uint8)
    return dict(img=img, gt_seg_map=seg.astype(np.uint8))


def _mixed(base: dict, other: dict, **kwargs) -> dict:
    return _build(**kwargs)(dict(base, mix_results=[other]))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(0.05, 1.0))
def test_pastes_whole_labelled_classes_of_the_other_image(seed, share):
    rng = np.random.default_rng(seed)
    base = _sample(rng.integers(0, 4, (12, 10)), 10)
    other_seg = rng.choice([3, 4, 5, 6, 255], size=(12, 10))
    other = _sample(other_seg, 200)
    inputs = [{k: v.copy() for k, v in sample.items()}
              for sample in (base, other)]
    np.random.seed(seed)
    out = _mixed(base, other, class_share=share)
    pasted = out['img'][..., 0] == 200
    # an independent re-expression: the pasted pixels are exactly those of
    # some set of the other image's labelled classes, of the share's size
    classes = set(np.unique(other_seg[pasted]).tolist())
    labelled = set(np.unique(other_seg).tolist()) - {255}
    assert 255 not in classes and classes <= labelled
    assert len(classes) == np.ceil(share * len(labelled))
    np.testing.assert_array_equal(pasted, np.isin(other_seg, list(classes)))
    np.testing.assert_array_equal(out['gt_seg_map'][pasted],
                                  other_seg[pasted])
    np.testing.assert_array_equal(out['gt_seg_map'][~pasted],
                                  base['gt_seg_map'][~pasted])
    assert (out['img'][~pasted] == 10).all()
    # neither input is changed in place
    for sample, before in ((base, inputs[0]), (other, inputs[1])):
        for key in ('img', 'gt_seg_map'):
            np.testing.assert_array_equal(sample[key], before[key])


def test_half_of_an_odd_count_rounds_up_and_the_draw_varies():
    base = _sample(np.zeros((5, 5)), 10)
    other = _sample(np.arange(25).reshape(5, 5) % 5 + 1, 200)  # 5 classes
    chosen = set()
    for seed in range(30):
        np.random.seed(seed)
        out = _mixed(dict(base), other)
        pasted = np.unique(out['gt_seg_map'][out['gt_seg_map'] > 0])
        assert len(pasted) == 3
        chosen.add(tuple(pasted))
        np.random.seed(seed)  # the same seed, the same mix
        np.testing.assert_array_equal(
            _mixed(dict(base), other)['gt_seg_map'], out['gt_seg_map'])
    assert len(chosen) > 3


def test_prob_zero_and_unlabelled_other_leave_the_image():
    base = _sample(np.ones((4, 4)), 10)
    for other, kwargs in ((_sample(np.zeros((4, 4)), 200), dict(prob=0)),
                          (_sample(np.full((4, 4), 255), 200), {})):
        out = _mixed(dict(base), other, **kwargs)
        assert (out['img'] == 10).all() and (out['gt_seg_map'] == 1).all()


def test_different_sizes_mix_where_they_overlap():
    base = _sample(np.ones((4, 6)), 10)
    other = _sample(np.full((6, 3), 2), 200)  # one class: always pasted
    out = _mixed(base, other)
    assert out['img'].shape == (4, 6, 3) and out['gt_seg_map'].shape == (4, 6)
    assert (out['gt_seg_map'][:, :3] == 2).all()
    assert (out['gt_seg_map'][:, 3:] == 1).all()


def test_bad_settings_and_missing_inputs_are_named():
    with pytest.raises(ValueError, match='class_share'):
        _build(class_share=0)
    with pytest.raises(ValueError, match='prob'):
        _build(prob=1.5)
    base = dict(_sample(np.ones((2, 2)), 1), img_path='a.png')
    for mix in (None, []):
        results = dict(base) if mix is None else dict(base, mix_results=mix)
        with pytest.raises(KeyError, match='MultiImageMixDataset'):
            _build()(results)
    unlabelled = dict(img=base['img'], img_path='b.png')
    with pytest.raises(KeyError, match="gt_seg_map for b.png"):
        _build()(dict(base, mix_results=[unlabelled]))
