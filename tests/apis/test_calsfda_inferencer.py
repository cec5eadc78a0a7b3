"""CalSFDAInferencer: MMSeg's inferencer, whose results give each image's
estimated ECE in percent."""
import glob
import os.path as osp

import pytest
from mmseg.apis import MMSegInferencer

from mmseg_calsfda.apis import (
    EST_ECE_PERCENT,
    CalSFDAInferencer,
    MissingValueHeadError,
)
from tests.utils import tiny_source_cfg


def images(synthetic_root):
    return sorted(glob.glob(osp.join(synthetic_root, 'cityscapes',
                                     'leftImg8bit', 'train', '*', '*.png')))


def test_results_give_the_estimate_in_percent(stage2, synthetic_root):
    config, ckpt, _ = stage2
    inferencer = CalSFDAInferencer(config, ckpt, device='cpu')
    first, second = images(synthetic_root)[:2]
    sample = inferencer(first, return_datasamples=True)
    fraction = float(sample.est_ece)  # the model's own unit
    assert 0 < fraction < 1
    result = inferencer(first)
    assert set(result) == {'predictions', 'visualization', EST_ECE_PERCENT}
    assert result[EST_ECE_PERCENT] == pytest.approx(fraction * 100)
    assert result['predictions'].shape == sample.pred_sem_seg.shape
    both = inferencer([first, second])
    assert len(both[EST_ECE_PERCENT]) == 2
    assert both[EST_ECE_PERCENT][0] == pytest.approx(fraction * 100)
    # MMSeg's inferencer on the same model drops the estimate
    plain = MMSegInferencer(config, ckpt, device='cpu')(first)
    assert EST_ECE_PERCENT not in plain


def test_refuses_a_checkpoint_without_value_head(stage2):
    config, _, stage1 = stage2
    with pytest.raises(MissingValueHeadError, match='no value head'):
        CalSFDAInferencer(config, stage1, device='cpu')


def test_model_without_value_head_is_mmseg_s(stage2, synthetic_root,
                                             tmp_path):
    _, _, stage1 = stage2
    cfg = tiny_source_cfg(synthetic_root, tmp_path)
    result = CalSFDAInferencer(cfg, stage1, device='cpu')(
        images(synthetic_root)[0])
    assert set(result) == {'predictions', 'visualization'}
