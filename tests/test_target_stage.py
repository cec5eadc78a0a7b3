"""Stage 3 on tiny data: rounds, pseudo-labels, label-free selection."""
import json
import os
import os.path as osp

import numpy as np
import pytest
from mmengine.runner import Runner
from PIL import Image

from mmseg_calsfda.models.losses import SymmetricCELoss
from tests.utils import tiny_cfg


def target_cfg(synthetic_root, work_dir, stage2_ckpt, rounds=2,
               epochs_per_round=2):
    cfg = tiny_cfg('deeplabv2_gta2cs.py', synthetic_root, work_dir,
                   max_epochs=rounds * epochs_per_round, lr=1e-3)
    cfg.load_from = stage2_ckpt
    cfg.custom_hooks[0].epochs_per_round = epochs_per_round
    cfg.custom_hooks[0].bn_warmup_batches = 2
    cfg.custom_hooks[1].num_batches = 2
    return cfg


def test_two_rounds_with_label_free_selection(synthetic_root, stage2,
                                              tmp_path):
    cfg = target_cfg(synthetic_root, tmp_path, stage2[1])
    runner = Runner.from_cfg(cfg)
    runner.train()
    labels = tmp_path / 'pseudo_labels'
    assert sorted(os.listdir(labels)) == ['round_0', 'round_1']
    for r in (0, 1):
        summary = json.loads((labels / f'round_{r}' / 'summary.json')
                             .read_text())
        assert summary['round'] == r
        assert summary['cb_prop'] == pytest.approx(0.15 + 0.05 * r)
        assert summary['local_prop'] == pytest.approx(0.1 + 0.05 * r)
        assert len(summary['thresholds']) == 19
        assert sum(summary['class_weights']) == pytest.approx(1, abs=1e-4)
        pngs = sorted((labels / f'round_{r}' / 'synthcity').glob('*.png'))
        assert len(pngs) == 6
        label = np.array(Image.open(pngs[0]))
        assert label.shape == (64, 128) and label.dtype == np.uint8
        assert set(np.unique(label)) <= set(range(19)) | {255}
    # the training dataset reads the last round, the SCE its class weights
    dataset = runner.train_dataloader.dataset
    assert dataset.pseudo_label_dir == str(labels / 'round_1')
    sce = [m for m in runner.model.modules()
           if isinstance(m, SymmetricCELoss)][0]
    assert sce.class_weight is not None
    # lr divided by sqrt(2) in round 1
    group = runner.optim_wrapper.param_groups[0]
    assert group['lr'] == pytest.approx(group['round_base_lr'] / 2**0.5)
    # label-free selection, with the labelled report beside it
    selection = json.loads((tmp_path / 'selection.json').read_text())
    assert selection['criterion'] == dict(key='estECE', rule='less')
    assert len(selection['history']) == 4
    assert all('mIoU' in r and 'estECE' in r for r in selection['history'])
    best = min(selection['history'], key=lambda r: r['estECE'])
    assert selection['selected'] == best
    assert selection['checkpoint'] == f'best_estECE_epoch_{best["epoch"]}.pth'
    assert (tmp_path / 'best_estECE.pth').is_symlink()
    # the value head never trained on target
    assert not any(p.requires_grad
                   for p in runner.model.value_head.parameters())
